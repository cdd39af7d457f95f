package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stroem/stroem"
)

// stepActor owns the timers of one step: the lease deadline and the timeout
// backstop while it runs, the retry backoff while it waits. Timers are
// time.AfterFunc delivering messages (protoactor's receive timeout has a known
// race); each timer slot has a generation so a replaced timer's late message
// is ignored.
type stepActor struct {
	o     *Orchestrator
	jobID string
	step  string
	// restarted is set on an instance created by a supervisor restart: it has
	// lost its timers and asks the JobActor to resend them.
	restarted bool

	attempt int
	status  stroem.StepStatus

	lease, timeout, ready timerSlot
	checking              bool // a lease read is in flight
	// recheck is set when the lease timer fired while a read was in flight:
	// that read's answer belongs to a replaced timer and is dropped, so the
	// lease is read again when it arrives.
	recheck bool
	// timeoutFired is set once the timeout backstop fired: the next watch
	// of the step arms it again (the transition refuses a backstop that
	// fired before the running attempt's own deadline).
	timeoutFired bool
}

type timerSlot struct {
	t   *time.Timer
	gen int
}

func (s *timerSlot) stop() {
	if s.t != nil {
		s.t.Stop()
		s.t = nil
	}
	s.gen++
}

func (a *stepActor) slot(k timerKind) *timerSlot {
	switch k {
	case timerLease:
		return &a.lease
	case timerTimeout:
		return &a.timeout
	default:
		return &a.ready
	}
}

func (a *stepActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if a.restarted {
			ctx.Send(ctx.Parent(), &stepResync{})
		}
	case *stepWatch:
		a.configure(ctx, m)
	case *stepTimer:
		if m.gen != a.slot(m.kind).gen {
			return
		}
		a.fire(ctx, m.kind)
	case *leaseChecked:
		a.checking = false
		if m.gen != a.lease.gen {
			if a.recheck && a.status == stroem.StepRunning {
				a.recheck = false
				a.fire(ctx, timerLease)
			}
			return
		}
		a.leaseChecked(ctx, m)
	case *actor.Restarting, *actor.Stopping:
		a.lease.stop()
		a.timeout.stop()
		a.ready.stop()
	}
}

// configure follows the step's stored state. The timeout backstop of a
// running attempt is set once; later watches of the same attempt only move
// the lease deadline.
func (a *stepActor) configure(ctx actor.Context, w *stepWatch) {
	same := w.attempt == a.attempt && w.status == a.status
	a.attempt, a.status = w.attempt, w.status
	switch w.status {
	case stroem.StepRunning:
		a.ready.stop()
		a.set(ctx, timerLease, max(w.leaseIn, 0)+50*time.Millisecond)
		if !same || a.timeoutFired {
			a.timeoutFired = false
			a.timeout.stop()
			if w.timeoutIn > 0 {
				a.set(ctx, timerTimeout, w.timeoutIn)
			}
		}
	case stroem.StepReady:
		a.lease.stop()
		a.timeout.stop()
		a.set(ctx, timerReady, w.readyIn)
	}
}

func (a *stepActor) set(ctx actor.Context, k timerKind, d time.Duration) {
	s := a.slot(k)
	s.stop()
	self, root, gen := ctx.Self(), ctx.ActorSystem().Root, s.gen
	s.t = time.AfterFunc(d, func() { root.Send(self, &stepTimer{gen: gen, kind: k}) })
}

func (a *stepActor) fire(ctx actor.Context, k timerKind) {
	switch k {
	case timerReady:
		a.o.Wake()
	case timerTimeout:
		a.timeoutFired = true
		ctx.Send(ctx.Parent(), &jobEvent{ev: evStepFailed{
			step: a.step, attempt: a.attempt, retry: true, grace: a.o.cfg.TimeoutGrace,
			msg: "timed out: the worker did not report within the step's timeout plus " + a.o.cfg.TimeoutGrace.String(),
		}})
	case timerLease:
		if a.checking {
			a.recheck = true
			return
		}
		a.checking = true
		o, jobID, step, gen, self, root := a.o, a.jobID, a.step, a.lease.gen, ctx.Self(), ctx.ActorSystem().Root
		go func() {
			c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			l, err := o.store.StepLease(c, jobID, step)
			root.Send(self, &leaseChecked{gen: gen, lease: l, err: err})
		}()
	}
}

// leaseChecked acts on a fresh read of the lease: renewed → wait for the new
// deadline; expired → the JobActor fails (or retries) the attempt, fenced
// again in its transaction.
func (a *stepActor) leaseChecked(ctx actor.Context, m *leaseChecked) {
	if m.err != nil {
		a.o.storeFailed(m.err)
		a.o.log.Warn("read lease failed; retrying", "job_id", a.jobID, "step", a.step, "err", m.err)
		a.set(ctx, timerLease, time.Second)
		return
	}
	l := m.lease
	if l.Status != stroem.StepRunning || l.Attempt != a.attempt {
		return // ended or re-claimed; the JobActor reconfigures or stops us
	}
	if l.LeaseExpiresAt != nil && l.LeaseExpiresAt.After(l.Now) {
		a.set(ctx, timerLease, l.LeaseExpiresAt.Sub(l.Now)+50*time.Millisecond)
		return
	}
	if !a.o.leasesTrusted() {
		// The store was unreachable: heartbeats may have been lost on the
		// server's side. Look again once the leases have been extended.
		a.set(ctx, timerLease, max(a.o.cfg.Lease/5, 50*time.Millisecond))
		return
	}
	ctx.Send(ctx.Parent(), &jobEvent{ev: evLeaseExpired{step: a.step, attempt: a.attempt}})
}
