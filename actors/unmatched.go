package actors

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// DefaultUnmatchedStepTimeout is how long a ready step waits for an active
// worker with its capability and matching tags before it fails (upstream's
// recovery.unmatched_step_timeout_secs, default 30 s).
const DefaultUnmatchedStepTimeout = 30 * time.Second

// A step no active worker can run would otherwise wait forever. The JobActor
// checks each ready step once it has waited UnmatchedStepTimeout: when no
// active worker offers the step's capability (its action type) with tags
// that route the step to it (stroem.TagsMatch, as the claim applies it),
// the step fails with "no worker can run …" and the DAG rules follow
// (dependents are skipped, the job fails). When one does (it is only busy), the check is
// made again after another UnmatchedStepTimeout. As upstream, the step is
// failed, not retried.

// unmatchedCheck asks the JobActor to check a ready step's workers.
type unmatchedCheck struct {
	step       string
	attempt    int
	capability string
	tags       []string
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
		j.after(ctx, max(d, time.Millisecond), &unmatchedCheck{step: st.Name, attempt: st.Attempt, capability: st.ActionType, tags: st.Tags})
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
		if err == nil && !anyActiveFor(workers, m.capability, m.tags) {
			// Never fail a step on a cached list: read it again.
			workers, err = o.workerCaps.list(c, wl.WorkerList, true)
		}
		if err == nil && !anyActiveFor(workers, m.capability, m.tags) {
			root.Send(self, &jobEvent{ev: evNoWorker{step: m.step, attempt: m.attempt, grace: grace,
				why: noWorkerReason(workers, m.capability, m.tags)}})
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

// anyActiveFor reports whether an active worker could claim a step of
// capability requiring tags: the claim's own test.
func anyActiveFor(workers []stroem.Worker, capability string, tags []string) bool {
	for _, w := range workers {
		if w.Status == "active" && slices.Contains(w.Capabilities, capability) && stroem.TagsMatch(tags, w.Tags, w.Exclusive) {
			return true
		}
	}
	return false
}

// noWorkerReason says why no active worker can run a step of capability
// requiring tags: none has the capability, or none of those that have it
// is routed the step by its tags.
func noWorkerReason(workers []stroem.Worker, capability string, tags []string) string {
	if !slices.ContainsFunc(workers, func(w stroem.Worker) bool {
		return w.Status == "active" && slices.Contains(w.Capabilities, capability)
	}) {
		if len(tags) == 0 {
			return fmt.Sprintf("no active worker has the %q capability", capability)
		}
		return fmt.Sprintf("no active worker has the %q capability (the step also requires the tags %s)", capability, strings.Join(tags, ", "))
	}
	if len(tags) == 0 {
		return fmt.Sprintf("no active worker with the required capability/tags: every active worker with the %q capability is exclusive to steps that require its tags, and the step requires none", capability)
	}
	return fmt.Sprintf("no active worker with the required capability/tags: the step requires the tags %s, and no active worker with the %q capability has all of them (or it is exclusive to steps that require other tags too)", strings.Join(tags, ", "), capability)
}

// evNoWorker fails a ready step no active worker can run. It applies only
// while the step is still ready in the same attempt and has waited the
// grace on the database clock.
type evNoWorker struct {
	step    string
	attempt int
	why     string // noWorkerReason
	grace   time.Duration
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
	st.ErrorMessage = fmt.Sprintf("no worker can run this step: %s (waited %s)", e.why, e.grace)
	return nil
}
