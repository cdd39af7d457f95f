package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/tracing"
)

// The operations sections use the upstream's keys and refuse bad values
// with the key's name.
func TestOpsConfig(t *testing.T) {
	t.Parallel()
	cfg := loadServerConfig(t, "",
		"STROEM__WORKER_TOKEN=t",
		"STROEM__LISTEN=127.0.0.1:8080",
		"STROEM__METRICS__PUBLIC=true",
		"STROEM__RETENTION__JOB_DAYS=30",
		"STROEM__RETENTION__WORKER_HOURS=2",
		"STROEM__RETENTION__INTERVAL_SECS=600",
		"STROEM__TRACING__ENABLED=true",
		"STROEM__TRACING__ENDPOINT=http://collector:4318",
		"STROEM__TRACING__SAMPLE_RATIO=0.25",
	)
	require.NoError(t, cfg.validate())
	require.True(t, cfg.Metrics.Public)
	require.Equal(t, 30, cfg.Retention.JobDays)
	require.Equal(t, 2, cfg.Retention.WorkerHours)
	require.Equal(t, 600, cfg.Retention.IntervalSecs)
	require.True(t, cfg.Tracing.Enabled)
	require.Equal(t, 0.25, cfg.Tracing.SampleRatio)

	def := defaultServerConfig()
	require.False(t, def.Metrics.Public, "metrics need the token by default")
	require.False(t, def.Retention.Enabled(), "retention is off by default")
	require.False(t, def.Tracing.Enabled, "tracing is off by default")

	for env, want := range map[string]string{
		"STROEM__RETENTION__JOB_DAYS=-1":         "key retention.job_days",
		"STROEM__RETENTION__BATCH_SIZE=99999999": "key retention.batch_size",
		"STROEM__TRACING__SAMPLE_RATIO=3":        "key tracing.sample_ratio",
	} {
		c := loadServerConfig(t, "", "STROEM__WORKER_TOKEN=t", "STROEM__TRACING__ENABLED=true", env)
		require.ErrorContains(t, c.validate(), want, env)
	}

	w := defaultWorkerConfig()
	require.NoError(t, loadConfig("", &w, []string{"STROEM__WORKER_TOKEN=t", "STROEM__METRICS_LISTEN=9101"}))
	require.ErrorContains(t, w.validate(), "key metrics_listen")
	w = defaultWorkerConfig()
	require.NoError(t, loadConfig("", &w, []string{"STROEM__WORKER_TOKEN=t", "STROEM__METRICS_LISTEN=127.0.0.1:9101"}))
	require.NoError(t, w.validate())
}

// With tracing on, each assignment names its attempt's span, and a job
// that ends is recorded as one trace: the job's span and a span per
// attempt, under the job's id.
func TestScenarioTracing(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(exp, tracing.Config{Enabled: true}, "stroem-server")
	s := newScenario(t, chainWorkflow, scenarioOpts{tracer: tr})
	w := s.worker()
	id := s.execute("chain", map[string]any{"start": "go"})
	for i, step := range []string{"first", "second", "third"} {
		a := w.mustClaim(step)
		require.Equal(t, tr.TraceParent(id, step, 1), a.TraceParent, "assignment %d carries its attempt's traceparent", i)
		require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"v": "x"}, ""))
	}
	s.waitJob(id, stroem.JobCompleted)

	require.Eventually(t, func() bool { return len(exp.GetSpans()) == 4 }, 10*time.Second, 10*time.Millisecond,
		"the job's span and three attempt spans")
	tid, ok := tracing.TraceID(id)
	require.True(t, ok)
	names := map[string]bool{}
	for _, sp := range exp.GetSpans() {
		require.Equal(t, tid, sp.SpanContext.TraceID())
		names[sp.Name] = true
	}
	require.Equal(t, map[string]bool{"job default/chain": true, "step first": true, "step second": true, "step third": true}, names)
}
