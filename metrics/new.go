package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Constructors for the collectors of Server and Worker: a name, its help
// text and, where it applies, buckets and labels.

func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

// counterByLabel caches a one-label counter vector's children by label
// value: counting costs a sync.Map load, not the vector's hash of its label
// values and lock. A child is created on first use, as WithLabelValues
// creates it, so no series appears before it counts (the label values are
// a small fixed set: results, statuses, how a step started).
type counterByLabel struct {
	vec *prometheus.CounterVec
	m   sync.Map // label value → prometheus.Counter
}

func (c *counterByLabel) with(v string) prometheus.Counter {
	if x, ok := c.m.Load(v); ok {
		return x.(prometheus.Counter)
	}
	x := c.vec.WithLabelValues(v)
	c.m.Store(v, x)
	return x
}

// observerByLabel is counterByLabel for a one-label histogram vector.
type observerByLabel struct {
	vec *prometheus.HistogramVec
	m   sync.Map // label value → prometheus.Observer
}

func (o *observerByLabel) with(v string) prometheus.Observer {
	if x, ok := o.m.Load(v); ok {
		return x.(prometheus.Observer)
	}
	x := o.vec.WithLabelValues(v)
	o.m.Store(v, x)
	return x
}
