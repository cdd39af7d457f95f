package actors

import (
	"context"
	"time"

	"github.com/stroem/stroem"
)

// Start acknowledgement (issue 26): a step handed to a worker — the answer
// to its claim, or a hand-off into its waiting long poll — counts as started
// only once the worker acknowledges it with its `start` report (Workers.Start
// → StepStart). One that is not acknowledged within Config.StartTimeout goes
// back to ready, its attempt not used, without waiting for its lease: the
// worker was frozen or cut off right after the hand-off, or the answer got
// lost. The give-back and a late acknowledgement exclude each other in the
// store, and every later report of the given-back attempt is refused by the
// usual fence.
//
// watchStarts sweeps the store at each handed-over step's deadline (the
// deadlines come from Claim, in order), and every StartTimeout/2 as a
// safety net for steps handed over by another server process or before a
// restart, and for clock differences with the database.

// DefaultStartTimeout is how long a handed-over step waits for its worker's
// acknowledgement unless configured otherwise (at most half the lease).
const DefaultStartTimeout = 3 * time.Second

// startDeadlineSlack is added to a deadline so the database clock has
// passed it too.
const startDeadlineSlack = 20 * time.Millisecond

// startDue is when a handed-over step's acknowledgement is due.
type startDue struct {
	at  time.Time
	ref stroem.StepRef
}

// handedOver notes that a step was just handed to a worker: the sweep runs
// when its acknowledgement is due, unless it came in here meanwhile.
func (o *Orchestrator) handedOver(a *stroem.Assignment) {
	if a.Started {
		return // recorded as started when handed over (handoff.go): nothing is due
	}
	ref := stroem.StepRef{JobID: a.JobID, Step: a.StepName, Attempt: a.Attempt}
	o.unacked.Store(ref, struct{}{})
	select {
	case o.startDue <- startDue{at: time.Now().Add(o.cfg.StartTimeout + startDeadlineSlack), ref: ref}:
	default: // the periodic sweep covers it
		o.unacked.Delete(ref)
	}
}

// acknowledged notes a step's start accepted by the store: no sweep is
// needed for it at its deadline.
func (o *Orchestrator) acknowledged(ref stroem.StepRef) { o.unacked.Delete(ref) }

// watchStarts gives back unacknowledged hand-offs until the orchestrator
// stops.
func (o *Orchestrator) watchStarts() {
	net := o.cfg.StartTimeout / 2
	var due []startDue // ascending: every deadline is now + StartTimeout
	lastSweep := time.Now()
	t := time.NewTimer(net)
	defer t.Stop()
	rearm := func() {
		d := net - time.Since(lastSweep)
		if len(due) > 0 {
			d = min(time.Until(due[0].at), d)
		}
		t.Reset(max(d, 0))
	}
	for {
		select {
		case <-o.stopped:
			return
		case d := <-o.startDue:
			due = append(due, d)
			if len(due) == 1 {
				t.Stop()
				rearm()
			}
		case <-t.C:
			now := time.Now()
			// A deadline whose step was acknowledged here needs no sweep:
			// the store has it started, so the sweep would find nothing
			// for it. A sweep per hand-off was a query per step.
			need := now.Sub(lastSweep) >= net
			i := 0
			for i < len(due) && !due[i].at.After(now) {
				if _, ok := o.unacked.LoadAndDelete(due[i].ref); ok {
					need = true
				}
				i++
			}
			due = due[i:]
			if need {
				o.sweepUnstarted()
				lastSweep = time.Now()
			}
			rearm()
		}
	}
}

// sweepUnstarted gives back every step not acknowledged in time.
func (o *Orchestrator) sweepUnstarted() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	given, err := o.store.StepsGiveBackUnstarted(ctx, o.cfg.StartTimeout, 1000)
	if err != nil {
		o.storeFailed(err)
		o.log.Warn("give back unacknowledged steps", "err", err)
		return
	}
	for _, h := range given {
		o.log.Warn("a step handed to a worker was not acknowledged in time: it is ready again, its attempt not used",
			"job_id", h.JobID, "step", h.Step, "attempt", h.Attempt, "worker_id", h.WorkerID,
			"start_timeout", o.cfg.StartTimeout)
	}
	if len(given) > 0 {
		o.Wake()
	}
}
