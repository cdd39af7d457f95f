package runner

import (
	"context"
	"errors"
	"log/slog"

	"github.com/stroem/stroem"
)

// acknowledge sends the step's `start` report before anything of the step
// runs: the server counts a handed-over step as started only once it has
// this acknowledgement, and gives an unacknowledged one back to `ready`
// (without using an attempt) after its start timeout. It retries while the
// server is unreachable and reports whether the step may run: false when the
// server refused (the step was given back, or given to someone else
// meanwhile) — the step must then neither run nor be reported.
func (w *Worker) acknowledge(ctx context.Context, log *slog.Logger, workerID string, a stroem.Assignment) bool {
	_, err := retryReachable(ctx, w.retryOptions(), log, "start not acknowledged, retrying", func() (struct{}, error) {
		err := w.c.StepStart(ctx, a.JobID, a.StepName, stroem.StepStart{WorkerID: workerID, Attempt: a.Attempt})
		w.down.observe(err, "start")
		return struct{}{}, err
	})
	switch {
	case err == nil:
		return true
	case errors.Is(err, stroem.ErrConflict) || errors.Is(err, stroem.ErrNotFound):
		log.Warn("step not started: the server gave it back before it was acknowledged", "err", err)
	default:
		log.Error("step not started: its start was not acknowledged", "err", err)
	}
	return false
}
