package runner

import (
	"context"
	"errors"
	"log/slog"

	"github.com/stroem/stroem"
)

// errNotAcknowledged: the server refused the step's start, or it could not
// be delivered before the step was stopped. Nothing of the step runs.
var errNotAcknowledged = errors.New("the start was not acknowledged")

// startAck is a step's start acknowledgement, sent while the worker
// prepares the step (its directories, the workspace files, the command and
// pipes): the step's process starts only once the server has accepted it
// (wait). Overlapping the two takes the acknowledgement's round trip and
// commit off the path from one step to the next (issue 23).
type startAck struct {
	done chan struct{}
	err  error // valid after done
}

// acknowledgeAsync sends the acknowledgement; when it is refused or not
// delivered it stops the preparation through cancel.
func (w *Worker) acknowledgeAsync(ctx context.Context, cancel context.CancelCauseFunc, log *slog.Logger, workerID string, a stroem.Assignment) *startAck {
	s := &startAck{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if !w.acknowledge(ctx, log, workerID, a) {
			s.err = errNotAcknowledged
			cancel(errNotAcknowledged)
			return
		}
		// A step's routine records are debug records: its start, and its
		// end when it succeeded (a failed step's end is info). The server
		// has them all, and one record per step was 2–4% of the worker's
		// CPU (mostly the write to stderr) in the bench's chain and fan-out
		// of trivial steps (issue 23).
		log.Debug("step started", "action", a.ActionName, "revision", a.Revision)
	}()
	return s
}

// wait returns once the server has answered: nil when it accepted the
// start (the step may run), else errNotAcknowledged.
func (s *startAck) wait() error {
	<-s.done
	return s.err
}

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
