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

// byLabel caches a one-label vector's children by label value: counting
// costs a sync.Map load, not the vector's hash of its label values and lock.
// A child is created on first use, as WithLabelValues creates it, so no
// series appears before it counts (the label values are a small fixed set:
// results, statuses, how a step started). get is the vector's
// WithLabelValues.
type byLabel[T any] struct {
	get func(lvs ...string) T
	m   sync.Map // label value → T
}

func (c *byLabel[T]) with(v string) T {
	if x, ok := c.m.Load(v); ok {
		return x.(T)
	}
	x := c.get(v)
	c.m.Store(v, x)
	return x
}
