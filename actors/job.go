package actors

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// jobActor drives one job. It applies events in batches through one
// Store.JobUpdate at a time (events that arrive meanwhile wait and go into
// the next batch, so a burst of completions costs one transaction), keeps a
// StepActor per running or backing-off step, and stops when the job is
// finished.
type jobActor struct {
	o  *Orchestrator
	id string

	plan    *plan
	initial *persistence.JobState // set when spawned at creation
	loaded  bool
	loading bool

	queue    []jobEvent
	inFlight bool
	finished bool

	steps map[string]*trackedStep
	gates gateState // server-side steps (approval.go)
	// deadline is the task timeout's timer (tasklimits.go); unmatched the
	// steps waiting for a capable worker (unmatched.go).
	deadline  *time.Timer
	unmatched map[string]int
	// prog remembers the job's finished steps between transitions
	// (progress.go): read by a transition, recorded from what committed.
	prog progress
	// resync: an update failed, and what it changed may have committed
	// unseen (its answer lost): the next one that succeeds syncs every
	// step, not only those it changed.
	resync bool
}

// trackedStep is what the JobActor knows of a watched step.
type trackedStep struct {
	pid     *actor.PID
	attempt int
}

func newJobActor(o *Orchestrator, id string) *jobActor {
	return &jobActor{o: o, id: id, steps: map[string]*trackedStep{}}
}

func (j *jobActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		if j.initial != nil {
			s := j.initial
			j.initial = nil
			j.loaded = true
			// Its creator woke the Dispatcher once the job was committed
			// (JobCreate, the sub-job's creation): a second wake-up for the
			// same ready steps had every idle long poll claim again for
			// nothing.
			j.sync(ctx, s, true, nil, false)
			j.o.orphanCheck(s) // a child created as its parent was cancelled (subjob.go)
			return
		}
		j.load(ctx)
	case *loadRetry:
		j.load(ctx)
	case *stateLoaded:
		j.loading = false
		if m.err != nil {
			if errors.Is(m.err, stroem.ErrNotFound) {
				j.o.log.Warn("job not found; dropping its actor", "job_id", j.id)
				j.failQueue(m.err)
				j.finish(ctx, nil)
				return
			}
			j.o.log.Warn("load job failed; retrying", "job_id", j.id, "err", m.err)
			j.after(ctx, time.Second, &loadRetry{})
			return
		}
		j.plan, j.loaded = m.plan, true
		j.o.jobPlans.Store(j.id, m.plan)
		if m.state.Job.Status.Terminal() && len(j.queue) == 0 {
			j.finish(ctx, nil)
			return
		}
		j.sync(ctx, m.state, true, nil, true)
		j.o.orphanCheck(m.state)
		// A reconcile repairs a job whose state is behind (recovery).
		j.queue = append(j.queue, jobEvent{ev: evReconcile{}})
		j.flush(ctx)
	case *jobEvent:
		if j.finished && !j.loaded {
			if m.reply != nil {
				m.reply <- stroem.Errorf(stroem.CodeNotFound, "job %s not found", j.id)
			}
			return
		}
		if j.finished {
			// Routed here before the Orchestrator forgot this actor, which
			// is poisoned next: an update started now would never be
			// answered. Route it again; the Orchestrator reads jobFinished
			// first and gives the job a fresh actor.
			ctx.Send(j.o.orch, &routed{jobID: j.id, msg: m})
			return
		}
		j.queue = append(j.queue, *m)
		j.flush(ctx)
	case *updateDone:
		j.updated(ctx, m)
	case *stepClaimed:
		j.watchClaimed(ctx, m)
	case *gateTimer:
		j.gateTimerFired(ctx, m)
	case *unmatchedCheck:
		j.checkUnmatched(ctx, m)
	case *stepResync:
		j.queue = append(j.queue, jobEvent{ev: evReconcile{}})
		j.flush(ctx)
	case *actor.Terminated:
		for name, t := range j.steps {
			if t.pid.Equal(m.Who) {
				delete(j.steps, name)
			}
		}
	}
}

// load reads the job and its plan off the actor's goroutine.
func (j *jobActor) load(ctx actor.Context) {
	if j.loading {
		return
	}
	j.loading = true
	o, id, self, root := j.o, j.id, ctx.Self(), ctx.ActorSystem().Root
	go func() {
		o.loadSem <- struct{}{}
		defer func() { <-o.loadSem }()
		c, cancel := context.WithTimeout(context.Background(), o.cfg.RequestTimeout)
		defer cancel()
		s, err := o.store.JobState(c, id)
		var p *plan
		if err == nil {
			p, err = o.planFor(c, s.SnapshotID)
		}
		root.Send(self, &stateLoaded{state: s, plan: p, err: err})
	}()
}

// flush starts one JobUpdate for every queued event, unless one is running.
func (j *jobActor) flush(ctx actor.Context) {
	if j.inFlight || !j.loaded || len(j.queue) == 0 {
		return
	}
	events := j.queue
	j.queue = nil
	j.inFlight = true
	o, id, p, self, root := j.o, j.id, j.plan, ctx.Self(), ctx.ActorSystem().Root
	// The goroutine reads prog while this actor waits for updateDone,
	// which alone records into it.
	g, all := &j.prog, reconciles(events)
	o.pool.Go(func() {
		c, cancel := context.WithTimeout(context.Background(), o.cfg.RequestTimeout)
		defer cancel()
		var results []error
		var before stroem.JobStatus
		var changed []int
		h := newHandoff(o, events)
		s, err := o.store.JobUpdate(c, id, func(s *persistence.JobState) error {
			before = s.Job.Status
			results = make([]error, len(events))
			for i, e := range events {
				results[i] = e.ev.apply(p, s)
			}
			if !s.Job.Status.Terminal() {
				advanceFrom(p, s, g, all)
			}
			h.assign(s, g, readyAsRead(s), results)
			changed = s.Changed() // of the run that committed, when it runs again
			return nil
		})
		if err != nil {
			h.release()
		} else {
			h.deliver(p, s, g)
		}
		if err == nil && claimable(s, g) {
			o.Wake() // straight away, not after the actor has read the result
		}
		root.Send(self, &updateDone{events: events, results: results, state: s, changed: changed, before: before, err: err})
	})
}

// updated answers the events of a finished JobUpdate and follows its result.
func (j *jobActor) updated(ctx actor.Context, m *updateDone) {
	j.inFlight = false
	if m.err != nil {
		j.o.log.Warn("job update failed", "job_id", j.id, "err", m.err)
		j.resync = true
		var retry []jobEvent
		for _, e := range m.events {
			if e.reply != nil {
				e.reply <- m.err
			} else if !errors.Is(m.err, stroem.ErrNotFound) {
				retry = append(retry, e) // internal events are retried
			}
		}
		if len(retry) > 0 {
			j.after(ctx, time.Second, &jobEvent{ev: batchEvent(retry)})
		}
		j.flush(ctx)
		return
	}
	for i, e := range m.events {
		if e.reply == nil {
			continue
		}
		err := m.results[i]
		if errors.Is(err, errDuplicate) {
			err = nil
		}
		e.reply <- err
	}
	s := m.state
	// flush's goroutine already woke the Dispatcher, unless a failed update
	// came before: then every step is looked at and woken for (resync).
	j.sync(ctx, s, j.resync, m.changed, true)
	j.resync = false
	if s.Job.Status.Terminal() {
		if !m.before.Terminal() && j.o.events != nil {
			j.o.events.JobFinished(j.id, s.Job.Status)
		}
		if !m.before.Terminal() {
			retried := j.o.retryTask(j.plan, s)
			j.o.jobEnded(j.plan, s, retried) // parent, hooks (hook.go)
		}
		if len(j.queue) == 0 {
			j.finish(ctx, s)
			return
		}
	}
	j.flush(ctx)
}

// reconciles reports whether a batch must advance every step of the job
// (advanceFrom): it holds a reconcile, or events retried after a failure.
func reconciles(events []jobEvent) bool {
	for _, e := range events {
		switch e.ev.(type) {
		case evReconcile, batchEvent:
			return true
		}
	}
	return false
}

// batchEvent re-applies internal events that failed with the store down.
type batchEvent []jobEvent

func (b batchEvent) apply(p *plan, s *persistence.JobState) error {
	for _, e := range b {
		_ = e.ev.apply(p, s)
	}
	return nil
}

// sync aligns the StepActors with the stored state: one per running step
// (lease and timeout) and per ready step still backing off (retry wake-up).
// State older than what the JobActor already knows of a step (a claim that
// raced the read) is ignored for that step.
//
// With full set, s is the job as loaded: every step is looked at, the
// finished ones are recorded (progress) and, with wakeReady, the Dispatcher
// is woken when a step can be claimed. Otherwise s is what a transition
// committed and changed its positions: only those steps and the watched
// ones are looked at (a step becomes running outside a transition only by a
// claim, which the Dispatcher reports with stepClaimed; it leaves running
// outside one only by a give-back, and is watched then), and the
// transition's goroutine woke the Dispatcher already.
func (j *jobActor) sync(ctx actor.Context, s *persistence.JobState, full bool, changed []int, wakeReady bool) {
	positions := changed
	if full {
		j.prog.observeAll(s)
		positions = make([]int, s.Len())
		for i := range positions {
			positions[i] = i
		}
	} else {
		j.prog.observe(s, changed)
		for name := range j.steps {
			if i := s.Index(name); i >= 0 && !slices.Contains(changed, i) {
				positions = append(positions, i)
			}
		}
	}
	j.armDeadline(ctx, s)
	j.armUnmatched(ctx, s, positions)
	wake := false
	for _, i := range positions {
		st := s.At(i)
		t := j.steps[st.Name]
		if t != nil && st.Attempt < t.attempt {
			continue
		}
		var w *stepWatch
		switch {
		case st.Status == stroem.StepRunning:
			w = &stepWatch{attempt: st.Attempt, status: st.Status}
			if st.LeaseExpiresAt != nil {
				w.leaseIn = st.LeaseExpiresAt.Sub(s.Now)
			}
			if ps := j.plan.step(st.Name); ps != nil && j.o.stepTimeout(stroem.Duration(ps.timeout)) > 0 && st.StartedAt != nil {
				w.timeoutIn = st.StartedAt.Add(j.o.stepTimeout(stroem.Duration(ps.timeout)).D() + j.o.cfg.TimeoutGrace).Sub(s.Now)
				if w.timeoutIn <= 0 {
					w.timeoutIn = time.Millisecond
				}
			}
		case st.Status == stroem.StepReady && st.ReadyAt != nil && st.ReadyAt.After(s.Now):
			w = &stepWatch{attempt: st.Attempt, status: st.Status, readyIn: st.ReadyAt.Sub(s.Now)}
		case st.Status == stroem.StepReady:
			wake = full && wakeReady
		}
		if w == nil {
			if t != nil {
				ctx.Stop(t.pid)
				delete(j.steps, st.Name)
			}
			continue
		}
		j.watch(ctx, st.Name, w)
	}
	if wake {
		j.o.Wake()
	}
	j.gatesSync(ctx, s)
}

func (j *jobActor) watch(ctx actor.Context, step string, w *stepWatch) {
	t := j.steps[step]
	if t == nil {
		o, jobID, instances := j.o, j.id, 0
		pid := ctx.Spawn(actor.PropsFromProducer(func() actor.Actor {
			instances++
			return &stepActor{o: o, jobID: jobID, step: step, restarted: instances > 1}
		}, actor.WithDispatcher(o.pool)))
		t = &trackedStep{pid: pid}
		j.steps[step] = t
	}
	t.attempt = w.attempt
	ctx.Send(t.pid, w)
}

// claimable reports whether a step of s can be claimed now. g lets it skip
// the steps known to be finished.
func claimable(s *persistence.JobState, g *progress) bool {
	for i := g.openFrom(s, 0); i < s.Len(); i = g.openFrom(s, i+1) {
		if s.StatusAt(i) != stroem.StepReady {
			continue
		}
		if st := s.At(i); st.ReadyAt == nil || !st.ReadyAt.After(s.Now) {
			return true
		}
	}
	return false
}

// watchClaimed starts lease tracking for a step the Dispatcher handed out.
func (j *jobActor) watchClaimed(ctx actor.Context, m *stepClaimed) {
	if t := j.steps[m.step]; t != nil && t.attempt > m.attempt {
		return
	}
	w := &stepWatch{attempt: m.attempt, status: stroem.StepRunning, leaseIn: m.leaseIn}
	if m.timeout > 0 {
		w.timeoutIn = m.timeout + j.o.cfg.TimeoutGrace
	}
	j.watch(ctx, m.step, w)
}

// finish ends the actor: the Orchestrator forgets it and poisons it, so
// messages already routed here are still answered.
func (j *jobActor) finish(ctx actor.Context, _ *persistence.JobState) {
	if j.finished {
		return
	}
	j.finished = true
	j.stopDeadline()
	for name, t := range j.steps {
		ctx.Stop(t.pid)
		delete(j.steps, name)
	}
	ctx.Send(ctx.Parent(), &jobFinished{jobID: j.id, pid: ctx.Self()})
}

func (j *jobActor) failQueue(err error) {
	for _, e := range j.queue {
		if e.reply != nil {
			e.reply <- err
		}
	}
	j.queue = nil
}

// after delivers msg to this actor after d.
func (j *jobActor) after(ctx actor.Context, d time.Duration, msg any) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(d, func() { root.Send(self, msg) })
}
