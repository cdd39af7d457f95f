package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/blob"
	stroemhttp "github.com/stroem/stroem/http"
	"github.com/stroem/stroem/metrics"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/retention"
	"github.com/stroem/stroem/runner"
	"github.com/stroem/stroem/tracing"
)

// metricsConfig is the `metrics` section of the server config.
type metricsConfig struct {
	// Public serves /metrics without the worker token (upstream's key).
	Public bool `yaml:"public"`
}

// opsParts are the server's operations features — metrics, tracing and
// retention — wired around the other components without changing them.
// Every method is safe on a nil *opsParts.
type opsParts struct {
	cfg     serverConfig
	log     *slog.Logger
	metrics *metrics.Server
	tracer  *tracing.Tracer
	store   persistence.Store
	ret     *retention.Service
	traces  sync.WaitGroup
}

// startOps sets metrics and tracing up around a migrated store and returns
// the store to use from then on (observed by the metrics).
func startOps(ctx context.Context, cfg serverConfig, store persistence.Store, tracer *tracing.Tracer, log *slog.Logger) (*opsParts, persistence.Store, error) {
	o := &opsParts{cfg: cfg, log: log, tracer: tracer}
	o.metrics = metrics.NewServer(store.Origin(), store)
	var err error
	if o.tracer == nil {
		if o.tracer, err = tracing.New(ctx, cfg.Tracing, "stroem-server"); err != nil {
			return nil, store, err
		}
	}
	o.store = metrics.WrapStore(store, o.metrics)
	return o, o.store, nil
}

// mount adds GET /metrics (worker token unless metrics.public).
func (o *opsParts) mount(r chi.Router) {
	if o == nil {
		return
	}
	r.Method(http.MethodGet, "/metrics", o.metrics.Handler(o.cfg.WorkerToken, o.cfg.Metrics.Public))
}

// instrument wraps the API handler with the request metrics.
func (o *opsParts) instrument(h http.Handler) http.Handler {
	if o == nil {
		return h
	}
	return o.metrics.Instrument(h)
}

// hub observes the log hub (log lines and bytes, SSE clients).
func (o *opsParts) hub(h metrics.Hub) metrics.Hub {
	if o == nil {
		return h
	}
	return metrics.WrapHub(h, o.metrics)
}

// workers adds the traceparent of its attempt to every assignment.
func (o *opsParts) workers(w stroemhttp.Workers) stroemhttp.Workers {
	if o == nil || o.tracer == nil {
		return w
	}
	return tracedWorkers{Workers: w, t: o.tracer}
}

type tracedWorkers struct {
	stroemhttp.Workers
	t *tracing.Tracer
}

func (o tracedWorkers) Claim(ctx context.Context, req stroem.ClaimRequest) (*stroem.Assignment, error) {
	a, err := o.Workers.Claim(ctx, req)
	if a != nil {
		a.TraceParent = o.t.TraceParent(a.JobID, a.StepName, a.Attempt)
	}
	return a, err
}

// startRetention starts the retention passes. A pruned job's log lines go
// with it (a trigger on jobs deletes them in the same transaction).
func (o *opsParts) startRetention() {
	if o == nil {
		return
	}
	// blob.PruneHook: the blobs of deleted jobs' artifacts, replaced
	// artifacts, pruned state snapshots and cut-off uploads.
	o.ret = retention.New(o.cfg.Retention, o.store, []retention.Hook{blob.PruneHook(o.store)}, o.metrics.Pruned, o.log)
	o.ret.Start()
}

// jobFinished records the trace of a job that ended on this server.
func (o *opsParts) jobFinished(jobID string) {
	if o == nil || o.tracer == nil {
		return
	}
	o.traces.Add(1)
	go func() {
		defer o.traces.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		j, err := o.store.JobGet(ctx, jobID)
		if err == nil {
			err = o.tracer.JobFinished(ctx, j)
		}
		if err != nil {
			o.log.Warn("record job trace", "job_id", jobID, "err", err)
		}
	}()
}

// stop ends retention, waits for traces being recorded and flushes them;
// call it before the store closes.
func (o *opsParts) stop() {
	if o == nil {
		return
	}
	if o.ret != nil {
		o.ret.Stop()
	}
	o.traces.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.tracer.Shutdown(ctx); err != nil {
		o.log.Warn("flush traces", "err", err)
	}
}

// workerOps are a worker's metrics endpoint (metrics_listen) and tracing.
type workerOps struct {
	log    *slog.Logger
	m      *metrics.Worker
	tracer *tracing.Tracer
	srv    *http.Server
	done   chan struct{}
}

// startWorkerOps serves the worker's metrics when metrics_listen is set and
// starts its tracer when tracing is enabled.
func startWorkerOps(ctx context.Context, cfg workerConfig, log *slog.Logger) (*workerOps, error) {
	o := &workerOps{log: log}
	var err error
	if o.tracer, err = tracing.New(ctx, cfg.Tracing, "stroem-worker"); err != nil {
		return nil, err
	}
	if cfg.MetricsListen == "" {
		return o, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		_ = o.tracer.Shutdown(ctx)
		return nil, exitCode(2, fmt.Errorf("key metrics_listen: %w", err))
	}
	o.m = metrics.NewWorker(cfg.WorkerName, cfg.MaxConcurrent)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.m.Handler())
	o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	o.done = make(chan struct{})
	go func() {
		defer close(o.done)
		if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("worker metrics server stopped", "err", err)
		}
	}()
	log.Info("worker metrics listening", "addr", ln.Addr().String())
	return o, nil
}

// wrap observes the worker's runner (runner.WorkerConfig.WrapRunner).
func (o *workerOps) wrap(r runner.Runner) runner.Runner {
	r = o.tracer.WrapRunner(r)
	if o.m != nil {
		r = o.m.WrapRunner(r)
	}
	return r
}

func (o *workerOps) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if o.srv != nil {
		_ = o.srv.Shutdown(ctx)
		<-o.done
	}
	if err := o.tracer.Shutdown(ctx); err != nil {
		o.log.Warn("flush traces", "err", err)
	}
}
