package tracing

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/runner"
)

// WrapRunner returns r recording a "run <step>" span per attempt, a child
// of the attempt span named by the assignment's traceparent (so the
// worker's part shows inside the server's trace). Attempts without a
// traceparent run untraced. With a nil Tracer it returns r itself.
func (t *Tracer) WrapRunner(r runner.Runner) runner.Runner {
	if t == nil {
		return r
	}
	return &tracedRunner{Runner: r, t: t}
}

type tracedRunner struct {
	runner.Runner
	t *Tracer
}

// ContextFromTraceParent returns ctx carrying the remote span context a
// W3C traceparent names (ctx unchanged when it is empty or malformed).
func ContextFromTraceParent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

func (r *tracedRunner) Run(ctx context.Context, step runner.Step, sink func(stroem.PushLine)) runner.Result {
	sctx := ContextFromTraceParent(ctx, step.TraceParent)
	if !trace.SpanContextFromContext(sctx).IsValid() {
		return r.Runner.Run(ctx, step, sink)
	}
	sctx, span := r.t.tracer.Start(sctx, "run "+step.Name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("stroem.job.id", step.JobID),
			attribute.String("stroem.step", step.Name),
			attribute.Int("stroem.attempt", step.Attempt),
		))
	res := r.Runner.Run(sctx, step, sink)
	span.SetAttributes(attribute.Int("stroem.exit_code", res.ExitCode))
	// Only the outcome, never res.Error: a step's message is its own text
	// and may hold what it printed.
	switch {
	case res.TimedOut:
		span.SetStatus(codes.Error, "timed out")
	case res.Cancelled:
		span.SetStatus(codes.Error, "cancelled")
	case !res.Succeeded():
		span.SetStatus(codes.Error, fmt.Sprintf("failed (exit code %d)", res.ExitCode))
	}
	span.End()
	return res
}
