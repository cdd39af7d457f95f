package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/runner"
)

// Worker holds a worker process's metrics, served on the worker's optional
// metrics_listen address.
type Worker struct {
	reg      *prometheus.Registry
	slots    int
	running  prometheus.Gauge
	free     prometheus.Gauge
	finished *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	lines    prometheus.Counter
	bytes    prometheus.Counter
}

// NewWorker registers the worker metrics for a worker with slots slots
// (max_concurrent); worker is its name, a label on every series.
func NewWorker(worker string, slots int) *Worker {
	reg := prometheus.NewRegistry()
	r := prometheus.WrapRegistererWith(prometheus.Labels{"worker": worker}, reg)
	m := &Worker{
		reg:      reg,
		slots:    slots,
		running:  gauge("stroem_worker_steps_running", "Steps this worker runs now."),
		free:     gauge("stroem_worker_free_slots", "Free slots of this worker (max_concurrent minus running steps)."),
		finished: counterVec("stroem_worker_steps_finished_total", "Step attempts this worker ran to an end, by result (completed, failed, cancelled, timed_out).", "result"),
		seconds:  histogramVec("stroem_worker_step_duration_seconds", "Run time of step attempts on this worker, by result.", stepBuckets, "result"),
		lines:    counter("stroem_worker_log_lines_total", "Output lines steps wrote on this worker."),
		bytes:    counter("stroem_worker_log_bytes_total", "Bytes of output steps wrote on this worker."),
	}
	m.free.Set(float64(slots))
	r.MustRegister(m.running, m.free, m.finished, m.seconds, m.lines, m.bytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the metrics are registered (tests gather from it).
func (m *Worker) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Worker) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// WrapRunner returns r observed by m (runner.WorkerConfig.WrapRunner).
func (m *Worker) WrapRunner(r runner.Runner) runner.Runner {
	return &observedRunner{Runner: r, m: m}
}

type observedRunner struct {
	runner.Runner
	m *Worker
}

func (o *observedRunner) Run(ctx context.Context, step runner.Step, sink func(stroem.PushLine)) runner.Result {
	m := o.m
	m.running.Inc()
	m.free.Dec()
	start := time.Now()
	res := o.Runner.Run(ctx, step, func(l stroem.PushLine) {
		m.lines.Inc()
		m.bytes.Add(float64(len(l.Text)))
		sink(l)
	})
	m.running.Dec()
	m.free.Inc()
	result := "failed"
	switch {
	case res.TimedOut:
		result = "timed_out"
	case res.Cancelled:
		result = "cancelled"
	case res.Succeeded():
		result = "completed"
	}
	m.finished.WithLabelValues(result).Inc()
	m.seconds.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return res
}
