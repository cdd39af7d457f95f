package actors

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// DefaultUnmatchedStepTimeout is how long a ready step waits for an active
// worker with its capability before it fails (upstream's
// recovery.unmatched_step_timeout_secs, default 30 s).
const DefaultUnmatchedStepTimeout = 30 * time.Second

// A step no active worker can run would otherwise wait forever. The JobActor
// checks each ready step once it has waited UnmatchedStepTimeout: when no
// active worker offers the step's capability (its action type), the step
// fails with "no worker can run …" and the DAG rules follow (dependents are
// skipped, the job fails). When one does (it is only busy), the check is
// made again after another UnmatchedStepTimeout. As upstream, the step is
// failed, not retried.

// unmatchedCheck asks the JobActor to check a ready step's workers.
type unmatchedCheck struct {
	step       string
	attempt    int
	capability string
}

// armUnmatched starts a check for every ready step among those at
// positions not yet watched, and forgets the ones that are no longer ready
// (sync says which steps to look at).
func (j *jobActor) armUnmatched(ctx actor.Context, s *persistence.JobState, positions []int) {
	if j.unmatched == nil {
		j.unmatched = map[string]int{}
	}
	grace := j.o.cfg.UnmatchedStepTimeout
	for _, i := range positions {
		st := s.At(i)
		if st.Status != stroem.StepReady || st.ActionType == "" || s.Job.Status.Terminal() {
			delete(j.unmatched, st.Name)
			continue
		}
		if j.unmatched[st.Name] == st.Attempt+1 {
			continue
		}
		j.unmatched[st.Name] = st.Attempt + 1
		d := grace
		if st.ReadyAt != nil {
			d = st.ReadyAt.Add(grace).Sub(s.Now)
		}
		j.after(ctx, max(d, time.Millisecond), &unmatchedCheck{step: st.Name, attempt: st.Attempt, capability: st.ActionType})
	}
}

// checkUnmatched looks for an active worker with the step's capability off
// the actor's goroutine.
func (j *jobActor) checkUnmatched(ctx actor.Context, m *unmatchedCheck) {
	if j.finished || j.unmatched[m.step] != m.attempt+1 {
		return // the step left the ready state since
	}
	wl, ok := j.o.store.(interface {
		WorkerList(context.Context) ([]stroem.Worker, error)
	})
	if !ok {
		return
	}
	o, self, root, grace := j.o, ctx.Self(), ctx.ActorSystem().Root, j.o.cfg.UnmatchedStepTimeout
	go func() {
		c, cancel := context.WithTimeout(context.Background(), o.cfg.RequestTimeout)
		defer cancel()
		workers, err := o.workerCaps.list(c, wl.WorkerList, false)
		if err == nil && !anyActiveWith(workers, m.capability) {
			// Never fail a step on a cached list: read it again.
			workers, err = o.workerCaps.list(c, wl.WorkerList, true)
		}
		if err == nil && !anyActiveWith(workers, m.capability) {
			root.Send(self, &jobEvent{ev: evNoWorker{step: m.step, attempt: m.attempt, capability: m.capability, grace: grace}})
		}
		// Look again later: a capable worker exists (busy), the store did
		// not answer, or the step was not failed after all (the check is
		// dropped once the step left the ready state).
		time.AfterFunc(grace, func() { root.Send(self, m) })
	}()
}

// workerListCache shares one worker list among the checks of a second:
// a backlog of ready steps that capable workers will take costs one query,
// not one per step. A step is only failed on a freshly read list.
type workerListCache struct {
	mu      sync.Mutex
	at      time.Time
	workers []stroem.Worker
}

const workerListMaxAge = time.Second

func (c *workerListCache) list(ctx context.Context, read func(context.Context) ([]stroem.Worker, error), fresh bool) ([]stroem.Worker, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !fresh && c.workers != nil && time.Since(c.at) < workerListMaxAge {
		return c.workers, nil
	}
	w, err := read(ctx)
	if err != nil {
		return nil, err
	}
	if w == nil {
		w = []stroem.Worker{}
	}
	c.workers, c.at = w, time.Now()
	return w, nil
}

func anyActiveWith(workers []stroem.Worker, capability string) bool {
	for _, w := range workers {
		if w.Status == "active" && slices.Contains(w.Capabilities, capability) {
			return true
		}
	}
	return false
}

// evNoWorker fails a ready step no active worker can run. It applies only
// while the step is still ready in the same attempt and has waited the
// grace on the database clock.
type evNoWorker struct {
	step       string
	attempt    int
	capability string
	grace      time.Duration
}

func (e evNoWorker) apply(_ *plan, s *persistence.JobState) error {
	st := s.Find(e.step)
	if st == nil || st.Status != stroem.StepReady || st.Attempt != e.attempt || s.Job.Status.Terminal() {
		return nil
	}
	if st.ReadyAt != nil && st.ReadyAt.Add(e.grace).After(s.Now) {
		return nil
	}
	st = s.Mut(e.step)
	st.Status = stroem.StepFailed
	st.ReadyAt = nil
	st.ErrorMessage = fmt.Sprintf("no worker can run this step: no active worker has the %q capability (waited %s)", e.capability, e.grace)
	return nil
}
