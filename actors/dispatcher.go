package actors

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// waiter is one worker's claim request waiting for a step. reply is answered
// exactly once: an assignment, or nil for "nothing came".
type waiter struct {
	id       uint64
	workerID string
	caps     []string
	key      string
	reply    chan *stroem.Assignment
}

var waiterIDs atomic.Uint64

// dispatcher hands ready steps to waiting workers. Requests are grouped by
// worker (a worker keeps one long poll open per free slot); each group has at
// most one claim query in flight, claiming as many steps as the worker has
// waiting requests, and a wake-up that arrives meanwhile makes it claim again
// afterwards, so no readiness signal is lost and no polling loop is needed.
type dispatcher struct {
	o        *Orchestrator
	groups   map[string][]*waiter
	inFlight map[string]bool
	dirty    map[string]bool
}

func newDispatcher(o *Orchestrator) *dispatcher {
	return &dispatcher{o: o, groups: map[string][]*waiter{}, inFlight: map[string]bool{}, dirty: map[string]bool{}}
}

func (d *dispatcher) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *claimWait:
		d.groups[m.w.key] = append(d.groups[m.w.key], m.w)
		d.claim(ctx, m.w.key)
	case *claimAbandon:
		for key, ws := range d.groups {
			for i, w := range ws {
				if w.id == m.id {
					w.reply <- nil
					d.groups[key] = slices.Delete(ws, i, i+1)
					return
				}
			}
		}
	case *wakeUp:
		for key, ws := range d.groups {
			if len(ws) > 0 {
				d.claim(ctx, key)
			}
		}
	case *claimDone:
		d.claimed(ctx, m)
	case *drain, *actor.Stopping, *actor.Restarting:
		for key, ws := range d.groups {
			for _, w := range ws {
				w.reply <- nil
			}
			delete(d.groups, key)
		}
	}
}

// claim starts a claim for the group, or marks it to run again after the one
// in flight.
func (d *dispatcher) claim(ctx actor.Context, key string) {
	if d.inFlight[key] {
		d.dirty[key] = true
		return
	}
	ws := d.groups[key]
	if len(ws) == 0 {
		return
	}
	d.inFlight[key] = true
	d.dirty[key] = false
	limit := len(ws)
	workerID, caps := ws[0].workerID, ws[0].caps
	o, self, root := d.o, ctx.Self(), ctx.ActorSystem().Root
	go func() {
		root.Send(self, o.claimSteps(key, workerID, caps, limit))
	}()
}

// claimSteps claims up to limit steps for one worker and renders their
// commands.
func (o *Orchestrator) claimSteps(key, workerID string, caps []string, limit int) *claimDone {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := &claimDone{key: key, workerID: workerID, limit: limit}
	claimed, err := o.store.StepsClaim(c, persistence.ClaimParams{
		WorkerID: workerID, Capabilities: caps, Limit: limit, Lease: o.cfg.Lease,
	})
	if err != nil {
		done.err = err
		return done
	}
	for _, cs := range claimed {
		p, err := o.planFor(c, cs.SnapshotID)
		var spec stroem.StepSpec
		if err == nil {
			spec, err = renderSpec(p, cs)
		}
		if err != nil {
			done.failed++
			o.root.Send(o.orch, &routed{jobID: cs.JobID, msg: &jobEvent{ev: evStepFailed{
				step: cs.StepName, attempt: cs.Attempt, msg: err.Error(),
			}}})
			continue
		}
		o.jobPlans.Store(cs.JobID, p)
		done.assignments = append(done.assignments, &stroem.Assignment{
			JobID: cs.JobID, StepName: cs.StepName, Attempt: cs.Attempt,
			ActionName: cs.ActionName, ActionType: cs.ActionType, Image: cs.Image,
			Workspace: cs.Workspace, Revision: cs.Revision, Spec: spec, Input: cs.Input,
			LeaseMS: o.cfg.Lease.Milliseconds(),
		})
	}
	return done
}

// claimed hands claimed steps to waiting workers, oldest request first.
func (d *dispatcher) claimed(ctx actor.Context, m *claimDone) {
	d.inFlight[m.key] = false
	if m.err != nil {
		d.o.log.Warn("claim failed", "err", m.err)
		// The store is likely down: waiters keep waiting; their long polls end
		// on their own deadline, and a wake-up retries.
		if d.dirty[m.key] {
			d.claim(ctx, m.key)
		}
		return
	}
	for _, a := range m.assignments {
		ws := d.groups[m.key]
		if len(ws) == 0 {
			// Every waiter left meanwhile: give the step back.
			go d.o.Unassign(a, m.workerID)
			continue
		}
		w := ws[0]
		d.groups[m.key] = ws[1:]
		w.reply <- a
		ctx.Send(d.o.orch, &routed{jobID: a.JobID, msg: &stepClaimed{
			step: a.StepName, attempt: a.Attempt, leaseIn: d.o.cfg.Lease, timeout: a.Spec.Timeout.D(),
		}})
	}
	got := len(m.assignments) + m.failed
	if d.dirty[m.key] || (got >= m.limit && len(d.groups[m.key]) > 0) || m.failed > 0 {
		d.claim(ctx, m.key)
	}
}

// groupKey groups requests by worker and capability set.
func groupKey(workerID string, caps []string) string {
	c := slices.Clone(caps)
	sort.Strings(c)
	return workerID + "|" + strings.Join(slices.Compact(c), ",")
}

// Claim waits up to req.WaitMS for a step the worker can run. It always
// returns a step the worker now holds, or nil; a step claimed for a caller
// that went away is given back.
func (o *Orchestrator) Claim(ctx context.Context, req stroem.ClaimRequest) (*stroem.Assignment, error) {
	if req.WorkerID == "" {
		return nil, stroem.Invalid("worker_id is required")
	}
	if len(req.Capabilities) == 0 {
		return nil, stroem.Invalid("capabilities must list at least one action type")
	}
	wait := time.Duration(req.WaitMS) * time.Millisecond
	if wait < 0 {
		return nil, stroem.Invalid("wait_ms must not be negative")
	}
	wait = min(wait, o.cfg.MaxWait)
	if o.draining.Load() {
		return nil, nil
	}
	w := &waiter{
		id: waiterIDs.Add(1), workerID: req.WorkerID, caps: req.Capabilities,
		key: groupKey(req.WorkerID, req.Capabilities), reply: make(chan *stroem.Assignment, 1),
	}
	o.root.Send(o.dispatcher, &claimWait{w: w})
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case a := <-w.reply:
		return a, nil
	case <-t.C:
	case <-ctx.Done():
	case <-o.stopped:
	}
	o.root.Send(o.dispatcher, &claimAbandon{id: w.id})
	var a *stroem.Assignment
	select {
	case a = <-w.reply:
	case <-time.After(5 * time.Second):
		// The dispatcher is gone (shutdown); nothing was handed to us.
		return nil, nil
	}
	if a != nil && ctx.Err() != nil {
		o.Unassign(a, req.WorkerID)
		return nil, ctx.Err()
	}
	return a, nil
}

// Unassign gives back a step whose assignment never reached its worker.
func (o *Orchestrator) Unassign(a *stroem.Assignment, workerID string) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.store.StepUnclaim(c, a.JobID, a.StepName, a.Attempt, workerID); err != nil {
		o.log.Warn("give back undelivered step", "job_id", a.JobID, "step", a.StepName, "err", err)
	}
	o.Wake()
}
