package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/runner"
	"github.com/stroem/stroem/tracing"
)

func ptr[T any](v T) *T { return &v }

// finishedJob is a failed job: step a completed, step b failed once and
// then completed on a retry, step c failed.
func finishedJob() *stroem.Job {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	return &stroem.Job{
		ID: uuid.NewString(), Workspace: "default", TaskName: "deploy", Status: stroem.JobFailed,
		SourceType: stroem.SourceAPI, CreatedAt: at(0), CompletedAt: ptr(at(10)),
		Steps: []stroem.Step{
			{StepName: "a", ActionName: "build", ActionType: "shell", Attempts: []stroem.Attempt{
				{Attempt: 1, WorkerID: "w1", Status: stroem.AttemptCompleted, ExitCode: ptr(0), StartedAt: at(1), CompletedAt: ptr(at(2))},
			}},
			{StepName: "b", ActionName: "test", ActionType: "shell", Attempts: []stroem.Attempt{
				{Attempt: 1, WorkerID: "w1", Status: stroem.AttemptFailed, ExitCode: ptr(1), StartedAt: at(3), CompletedAt: ptr(at(4))},
				{Attempt: 2, WorkerID: "w2", Status: stroem.AttemptCompleted, ExitCode: ptr(0), StartedAt: at(5), CompletedAt: ptr(at(6))},
			}},
			{StepName: "c", ActionName: "ship", ActionType: "shell", Attempts: []stroem.Attempt{
				{Attempt: 1, WorkerID: "w2", Status: stroem.AttemptLost, StartedAt: at(7)},
			}},
			{StepName: "d", ActionName: "never", ActionType: "shell", Status: stroem.StepSkipped},
		},
	}
}

func TestJobFinishedRecordsAJobTraceWithASpanPerAttempt(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(exp, tracing.Config{Enabled: true}, "stroem-server")
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	j := finishedJob()

	require.NoError(t, tr.JobFinished(context.Background(), j))
	spans := exp.GetSpans()
	require.Len(t, spans, 5, "the job and four attempts; a skipped step never ran")

	tid, ok := tracing.TraceID(j.ID)
	require.True(t, ok)
	require.Equal(t, j.ID, uuid.UUID(tid).String(), "the trace id is the job id")
	byName := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		require.Equal(t, tid, s.SpanContext.TraceID(), "every span is in the job's trace")
		byName[s.Name] = append(byName[s.Name], s)
	}
	job := byName["job default/deploy"]
	require.Len(t, job, 1)
	require.False(t, job[0].Parent.IsValid(), "the job span is the root")
	require.Equal(t, tracing.JobSpanID(j.ID), job[0].SpanContext.SpanID())
	require.Equal(t, j.CreatedAt, job[0].StartTime)
	require.Equal(t, *j.CompletedAt, job[0].EndTime)
	require.Equal(t, codes.Error, job[0].Status.Code, "a failed job is an error span")

	require.Len(t, byName["step b"], 2, "one span per attempt")
	for _, s := range spans[:4] {
		require.Equal(t, tracing.JobSpanID(j.ID), s.Parent.SpanID(), "attempts are children of the job span")
	}
	b2 := byName["step b"][1]
	require.Equal(t, tracing.AttemptSpanID(j.ID, "b", 2), b2.SpanContext.SpanID())
	require.Equal(t, j.Steps[1].Attempts[1].StartedAt, b2.StartTime)
	require.Equal(t, *j.Steps[1].Attempts[1].CompletedAt, b2.EndTime)
	require.Equal(t, codes.Unset, b2.Status.Code)
	require.Equal(t, codes.Error, byName["step b"][0].Status.Code)
	c := byName["step c"][0]
	require.Equal(t, *j.CompletedAt, c.EndTime, "an attempt without an end ends with the job")
	require.Equal(t, codes.Error, c.Status.Code)
	require.Equal(t, "lost", c.Status.Description)
}

func TestJobFinishedIgnoresUnfinishedJobsAndNilTracer(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(exp, tracing.Config{Enabled: true}, "stroem-server")
	j := finishedJob()
	j.Status = stroem.JobRunning
	require.NoError(t, tr.JobFinished(context.Background(), j))
	require.Empty(t, exp.GetSpans())

	var off *tracing.Tracer
	require.NoError(t, off.JobFinished(context.Background(), finishedJob()))
	require.Empty(t, off.TraceParent(uuid.NewString(), "a", 1))

	j = finishedJob()
	j.ID = "not-a-uuid"
	require.ErrorIs(t, tr.JobFinished(context.Background(), j), tracing.ErrNoTrace)
}

// fakeRunner records the span context its Run was given.
type fakeRunner struct {
	got trace.SpanContext
	res runner.Result
}

func (f *fakeRunner) Run(ctx context.Context, _ runner.Step, _ func(stroem.PushLine)) runner.Result {
	f.got = trace.SpanContextFromContext(ctx)
	return f.res
}

func TestWorkerSpanJoinsTheAttemptSpan(t *testing.T) {
	t.Parallel()
	server := tracing.NewWithExporter(tracetest.NewInMemoryExporter(), tracing.Config{Enabled: true}, "stroem-server")
	exp := tracetest.NewInMemoryExporter()
	worker := tracing.NewWithExporter(exp, tracing.Config{Enabled: true}, "stroem-worker")
	jobID := uuid.NewString()
	tp := server.TraceParent(jobID, "build", 2)
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, tp)

	inner := &fakeRunner{res: runner.Result{ExitCode: 3, Error: "secret-ish output"}}
	res := worker.WrapRunner(inner).Run(context.Background(),
		runner.Step{JobID: jobID, Name: "build", Attempt: 2, TraceParent: tp}, func(stroem.PushLine) {})
	require.Equal(t, 3, res.ExitCode, "the result passes through")

	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	s := spans[0]
	tid, _ := tracing.TraceID(jobID)
	require.Equal(t, tid, s.SpanContext.TraceID())
	require.Equal(t, tracing.AttemptSpanID(jobID, "build", 2), s.Parent.SpanID(), "child of the server's attempt span")
	require.Equal(t, s.SpanContext.SpanID(), inner.got.SpanID(), "the step runs inside the worker's span")
	require.Equal(t, codes.Error, s.Status.Code)
	require.NotContains(t, s.Status.Description, "secret-ish", "the step's own message stays out of traces")

	// No traceparent: the step runs untraced.
	inner2 := &fakeRunner{}
	worker.WrapRunner(inner2).Run(context.Background(), runner.Step{JobID: jobID, Name: "x", Attempt: 1}, func(stroem.PushLine) {})
	require.False(t, inner2.got.IsValid())
	require.Len(t, exp.GetSpans(), 1)
}

func TestSampleRatioDecidesPerJob(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tr := tracing.NewWithExporter(exp, tracing.Config{Enabled: true, SampleRatio: 0.5}, "s")
	kept, dropped := 0, 0
	for range 200 {
		j := finishedJob()
		j.ID = uuid.NewString()
		before := len(exp.GetSpans())
		require.NoError(t, tr.JobFinished(context.Background(), j))
		sampled := len(exp.GetSpans()) > before
		if sampled {
			kept++
			require.Len(t, exp.GetSpans()[before:], 5, "a kept job keeps all its spans")
		} else {
			dropped++
		}
		require.Equal(t, sampled, tr.TraceParent(j.ID, "a", 1)[53:] == "01", "the worker's flag matches the server's decision")
	}
	require.Positive(t, kept)
	require.Positive(t, dropped)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, tracing.Config{}.Validate("tracing"), "disabled needs nothing")
	require.NoError(t, tracing.Config{Enabled: true}.Validate("tracing"))
	require.NoError(t, tracing.Config{Enabled: true, Endpoint: "https://otel.example:4318", SampleRatio: 0.1}.Validate("tracing"))
	require.ErrorContains(t, tracing.Config{Enabled: true, SampleRatio: 2}.Validate("tracing"), "key tracing.sample_ratio")
	require.ErrorContains(t, tracing.Config{Enabled: true, Endpoint: "collector:4318"}.Validate("tracing"), "key tracing.endpoint")
}
