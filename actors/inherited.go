package actors

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
)

// Claims inherited from an earlier server process.
//
// A claim is committed before its answer is written to the worker. A server
// killed in between leaves a step running for a worker that never got it:
// nothing runs it, and one lease later it would fail with "worker lost".
// So a starting server notes, before it serves any worker, every step an
// earlier process left running. The process that could have delivered those
// claims is gone, so a worker's heartbeat to this process lists each of
// them it received; when two heartbeats of the holding worker (the second
// built a heartbeat period after the first) leave one out, the worker never
// got it and the claim is undone: the step is ready again and its attempt
// forgotten, as for an answer that could not be written (Unassign).
//
// A heartbeat can be built just before the worker reads a late answer, so
// leaving a step out is only a hint: the store undoes the claim only while
// the worker has not acknowledged it (StepUnclaim). A worker that read the
// answer and acknowledged it keeps the step; one whose acknowledgement comes
// after the undo is refused and never runs it.

// inheritedMisses is how many heartbeats of its worker must leave an
// inherited step out before its claim is undone.
const inheritedMisses = 2

type inheritedClaims struct {
	mu    sync.Mutex
	until time.Time                         // after this, heartbeats are no longer checked
	held  map[string]map[stroem.StepRef]int // worker id → step → heartbeats without it
}

// inherit records the steps an earlier server process left running. It
// must run before this process hands out any step.
func (o *Orchestrator) inherit(ctx context.Context) error {
	steps, err := o.store.StepsRunning(ctx)
	if err != nil {
		return err
	}
	c := &o.inherited
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = map[string]map[stroem.StepRef]int{}
	for _, h := range steps {
		w := canonicalID(h.WorkerID)
		if c.held[w] == nil {
			c.held[w] = map[stroem.StepRef]int{}
		}
		c.held[w][canonicalRef(h.StepRef)] = 0
	}
	// A worker that does not heartbeat within a few leases has its steps
	// declared lost by lease expiry anyway.
	c.until = time.Now().Add(3 * o.cfg.Lease)
	return nil
}

// heartbeatSeen checks a recorded heartbeat against the claims inherited
// from an earlier server process (see inherited.go): a step the worker
// holds but left out of two heartbeats goes back to ready. It reports
// whether the worker still holds inherited steps to check: its next
// heartbeat is wanted a heartbeat period on, even if it is idle.
func (o *Orchestrator) heartbeatSeen(workerID string, running []stroem.StepRef) bool {
	c := &o.inherited
	c.mu.Lock()
	if len(c.held) == 0 {
		c.mu.Unlock()
		return false
	}
	if time.Now().After(c.until) {
		c.held = nil
		c.mu.Unlock()
		return false
	}
	w := canonicalID(workerID)
	held := c.held[w]
	listed := make(map[stroem.StepRef]bool, len(running))
	for _, r := range running {
		listed[canonicalRef(r)] = true
	}
	var undo []stroem.StepRef
	for ref, misses := range held {
		switch {
		case listed[ref]:
			delete(held, ref) // the worker has it
		case misses+1 >= inheritedMisses:
			delete(held, ref)
			undo = append(undo, ref)
		default:
			held[ref] = misses + 1
		}
	}
	checking := len(held) > 0
	if !checking {
		delete(c.held, w)
	}
	c.mu.Unlock()
	for _, ref := range undo {
		go o.undoInherited(ref, workerID)
	}
	return checking
}

// undoInherited puts back a step its worker never received, unless it is no
// longer running that attempt (it ended meanwhile: the worker reported it
// and then left it out of its heartbeats). The unclaim itself is fenced too.
func (o *Orchestrator) undoInherited(ref stroem.StepRef, workerID string) {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	l, err := o.store.StepLease(c, ref.JobID, ref.Step)
	cancel()
	if err != nil || l.Status != stroem.StepRunning || l.Attempt != ref.Attempt {
		return
	}
	o.log.Warn("a claim made before the server restarted never reached its worker: the step is ready again",
		"job_id", ref.JobID, "step", ref.Step, "attempt", ref.Attempt, "worker_id", workerID)
	o.Unassign(&stroem.Assignment{JobID: ref.JobID, StepName: ref.Step, Attempt: ref.Attempt}, workerID)
}

// canonicalRef writes the job id in PostgreSQL's form of a UUID.
func canonicalRef(r stroem.StepRef) stroem.StepRef {
	r.JobID = canonicalID(r.JobID)
	return r
}

// canonicalID is a UUID in PostgreSQL's text form; other ids as given.
func canonicalID(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return strings.ToLower(id)
}
