// Package tracing owns Strøm's OpenTelemetry traces: one trace per job
// (its trace id is the job's UUID, so every server and worker names the
// same trace without coordinating), a span for the job and one per step
// attempt, and the W3C traceparent a worker receives with each assignment
// so its own span joins the trace. Off by default; exported over OTLP/HTTP.
//
// The server records a job's spans once, when the job ends, from the
// stored timestamps: the spans of a job are then complete and consistent
// however many servers drove it. Span ids are derived from the job id, the
// step name and the attempt, so the traceparent handed to a worker at claim
// time already names the attempt span recorded later.
//
// It must not contain job logic; it reads stored jobs only.
package tracing

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/stroem/stroem"
)

// Config is the `tracing` section of the server and worker configs.
type Config struct {
	// Enabled turns tracing on; it is off by default.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/HTTP collector URL (http://collector:4318);
	// empty uses the OTEL_EXPORTER_OTLP_* environment variables, whose
	// default is http://localhost:4318.
	Endpoint string `yaml:"endpoint"`
	// Headers are sent with every export (an API key of a hosted backend).
	Headers map[string]string `yaml:"headers"`
	// ServiceName names the process in the backend (default stroem-server
	// or stroem-worker).
	ServiceName string `yaml:"service_name"`
	// SampleRatio is the fraction of jobs traced, 0 < r ≤ 1 (default 1).
	// The decision depends on the job id only, so a job's server and
	// worker spans are kept or dropped together.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// Validate checks the section; key names the section in messages.
func (c Config) Validate(key string) error {
	if !c.Enabled {
		return nil
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("key %s.sample_ratio: %v, want 0 < ratio ≤ 1", key, c.SampleRatio)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("key %s.endpoint: %q is not an http(s) URL (e.g. http://collector:4318)", key, c.Endpoint)
		}
	}
	return nil
}

// Tracer records spans. A nil *Tracer does nothing, so callers need no
// checks when tracing is off.
type Tracer struct {
	tp      *sdktrace.TracerProvider
	tracer  trace.Tracer
	sampler sdktrace.Sampler
}

// New starts a Tracer exporting over OTLP/HTTP; nil when cfg is disabled.
// It does not connect: export failures are reported by the OpenTelemetry
// error handler, never to the caller.
func New(ctx context.Context, cfg Config, defaultService string) (*Tracer, error) {
	if !cfg.Enabled {
		return nil, nil
	}
	var opts []otlptracehttp.Option
	if cfg.Endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(cfg.Endpoint))
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	return newTracer(sdktrace.WithBatcher(exp), cfg, defaultService), nil
}

// NewWithExporter returns a Tracer that hands every span to exp as soon as
// it ends (tests use tracetest.NewInMemoryExporter).
func NewWithExporter(exp sdktrace.SpanExporter, cfg Config, defaultService string) *Tracer {
	return newTracer(sdktrace.WithSyncer(exp), cfg, defaultService)
}

func newTracer(export sdktrace.TracerProviderOption, cfg Config, defaultService string) *Tracer {
	ratio := cfg.SampleRatio
	if ratio == 0 {
		ratio = 1
	}
	service := cfg.ServiceName
	if service == "" {
		service = defaultService
	}
	sampler := jobRatio(ratio)
	tp := sdktrace.NewTracerProvider(export,
		sdktrace.WithSampler(sdktrace.ParentBased(sampler)),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	return &Tracer{tp: tp, tracer: tp.Tracer("github.com/stroem/stroem"), sampler: sampler}
}

// jobRatio samples a fraction of traces by a hash of the trace id. The
// SDK's TraceIDRatioBased reads the id's low bytes, which in a UUID (our
// trace ids) carry fixed variant bits: it would keep no job at ratio 0.5.
type jobRatio float64

func (r jobRatio) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	res := sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: trace.SpanContextFromContext(p.ParentContext).TraceState()}
	h := sha256.Sum256(p.TraceID[:])
	if r >= 1 || float64(binary.BigEndian.Uint64(h[:8])>>11) < float64(r)*(1<<53) {
		res.Decision = sdktrace.RecordAndSample
	}
	return res
}

func (r jobRatio) Description() string { return fmt.Sprintf("JobRatio{%g}", float64(r)) }

// Shutdown flushes and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.tp.Shutdown(ctx)
}

// TraceID is the trace of a job: its UUID's 16 bytes.
func TraceID(jobID string) (trace.TraceID, bool) {
	u, err := uuid.Parse(jobID)
	if err != nil {
		return trace.TraceID{}, false
	}
	return trace.TraceID(u), true
}

func derivedSpanID(parts ...string) trace.SpanID {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var id trace.SpanID
	copy(id[:], h.Sum(nil))
	if !id.IsValid() {
		id[7] = 1
	}
	return id
}

// JobSpanID is the span id of a job's span.
func JobSpanID(jobID string) trace.SpanID { return derivedSpanID("job", jobID) }

// AttemptSpanID is the span id of one attempt of a step.
func AttemptSpanID(jobID, step string, attempt int) trace.SpanID {
	return derivedSpanID("attempt", jobID, step, fmt.Sprint(attempt))
}

// TraceParent is the W3C traceparent naming an attempt's span, for the
// worker that runs it; "" when tracing is off or the job id is no UUID.
// The sampled flag follows the job's sampling decision.
func (t *Tracer) TraceParent(jobID, step string, attempt int) string {
	if t == nil {
		return ""
	}
	tid, ok := TraceID(jobID)
	if !ok {
		return ""
	}
	flags := "00"
	if t.sampled(tid) {
		flags = "01"
	}
	sid := AttemptSpanID(jobID, step, attempt)
	return "00-" + hex.EncodeToString(tid[:]) + "-" + hex.EncodeToString(sid[:]) + "-" + flags
}

func (t *Tracer) sampled(tid trace.TraceID) bool {
	r := t.sampler.ShouldSample(sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: tid})
	return r.Decision == sdktrace.RecordAndSample
}

// ErrNoTrace is returned for a job whose id cannot be a trace id.
var ErrNoTrace = errors.New("tracing: job id is not a UUID")

// JobFinished records the spans of a finished job: the job's span from its
// creation to its end, and one child span per step attempt with the
// attempt's worker, exit code and outcome. Call it once per job, when the
// job has ended (a job that is not terminal records nothing).
func (t *Tracer) JobFinished(ctx context.Context, j *stroem.Job) error {
	if t == nil || j == nil || !j.Status.Terminal() {
		return nil
	}
	tid, ok := TraceID(j.ID)
	if !ok {
		return ErrNoTrace
	}
	end := j.CreatedAt
	if j.CompletedAt != nil {
		end = *j.CompletedAt
	}
	jctx := withIDs(ctx, tid, JobSpanID(j.ID))
	jctx, span := t.tracer.Start(jctx, "job "+j.Workspace+"/"+j.TaskName,
		trace.WithNewRoot(), trace.WithTimestamp(j.CreatedAt),
		trace.WithAttributes(
			attribute.String("stroem.job.id", j.ID),
			attribute.String("stroem.workspace", j.Workspace),
			attribute.String("stroem.task", j.TaskName),
			attribute.String("stroem.job.status", string(j.Status)),
			attribute.String("stroem.job.source_type", string(j.SourceType)),
		))
	if j.Status != stroem.JobCompleted {
		span.SetStatus(codes.Error, "job "+string(j.Status))
	}
	for _, st := range j.Steps {
		for _, a := range st.Attempts {
			t.attemptSpan(jctx, j, st, a, end)
		}
	}
	span.End(trace.WithTimestamp(end))
	return nil
}

func (t *Tracer) attemptSpan(ctx context.Context, j *stroem.Job, st stroem.Step, a stroem.Attempt, jobEnd time.Time) {
	end := jobEnd
	if a.CompletedAt != nil {
		end = *a.CompletedAt
	}
	tid, _ := TraceID(j.ID)
	ctx = withIDs(ctx, tid, AttemptSpanID(j.ID, st.StepName, a.Attempt))
	_, span := t.tracer.Start(ctx, "step "+st.StepName,
		trace.WithTimestamp(a.StartedAt),
		trace.WithAttributes(
			attribute.String("stroem.step", st.StepName),
			attribute.String("stroem.action", st.ActionName),
			attribute.String("stroem.action_type", st.ActionType),
			attribute.Int("stroem.attempt", a.Attempt),
			attribute.String("stroem.worker_id", a.WorkerID),
			attribute.String("stroem.attempt.status", string(a.Status)),
		))
	if a.ExitCode != nil {
		span.SetAttributes(attribute.Int("stroem.exit_code", *a.ExitCode))
	}
	if a.Status != stroem.AttemptCompleted {
		span.SetStatus(codes.Error, string(a.Status))
	}
	span.End(trace.WithTimestamp(end))
}

// idGenerator gives a span the ids put in its context by withIDs (so ids
// can be derived from the job), and random ones otherwise.
type idGenerator struct{}

type idsKey struct{}

type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

func withIDs(ctx context.Context, tid trace.TraceID, sid trace.SpanID) context.Context {
	return context.WithValue(ctx, idsKey{}, ids{trace: tid, span: sid})
}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.trace, v.span
	}
	u, s := uuid.New(), uuid.New()
	var sid trace.SpanID
	copy(sid[:], s[:8])
	return trace.TraceID(u), sid
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if v, ok := ctx.Value(idsKey{}).(ids); ok {
		return v.span
	}
	s := uuid.New()
	var sid trace.SpanID
	copy(sid[:], s[:8])
	return sid
}
