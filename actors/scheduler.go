package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/robfig/cron/v3"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// The scheduler fires the jobs of scheduler (cron) triggers.
//
// One actor keeps one timer per enabled trigger (time.AfterFunc delivering
// a message; there is no polling loop). When a timer goes off, the actor
// finds the latest tick of the cron that is due and not yet handled, and
// fires it in a goroutine: JobCreate with the tick, so the store records the
// tick in the job's own transaction and refuses a tick that any server
// already fired. That is what makes each tick fire exactly once with
// several servers, and across restarts.
//
// Missed ticks: when several ticks are due at once (the server was down,
// or stalled), only the latest fires; the others are skipped. A starting
// scheduler compares the cron with the trigger's last fired tick in the
// store, so after an outage it fires at most one job, at once, for the
// whole missed period. A trigger that never fired, or that is new or
// changed by a reload, starts with the next tick.
//
// Nothing here blocks the actor: store reads and JobCreate run in
// goroutines and report back as messages.

// Scheduler timing.
const (
	// schedFireTimeout bounds one tick's JobCreate (and cancels).
	schedFireTimeout = 30 * time.Second
	// schedRetryDelay is the wait before a tick that failed with the store
	// unavailable is tried again, and before the initial read is retried.
	schedRetryDelay = 2 * time.Second
	// maxLookback is how far back latestTick looks for a missed tick.
	maxLookback = 5 * 366 * 24 * time.Hour
	// schedReloadWait bounds how long a workspace reload waits for the
	// scheduler to take the new definitions.
	schedReloadWait = 5 * time.Second
)

// TriggerStore is what the scheduler reads besides what JobCreate writes.
type TriggerStore interface {
	// TriggerLastTick returns the latest tick fired for the trigger, or the
	// zero time when it never fired.
	TriggerLastTick(ctx context.Context, workspace, trigger string) (time.Time, error)
	// TriggerJobsUnfinished returns the unfinished jobs the trigger fired
	// for ticks before the given one.
	TriggerJobsUnfinished(ctx context.Context, workspace, trigger string, before time.Time) ([]string, error)
}

// WorkspaceList gives every current workspace.
type WorkspaceList interface {
	List() []*workspace.Workspace
}

// Scheduler runs the cron triggers of every workspace. Start it after the
// Orchestrator, stop it before.
type Scheduler struct {
	o     *Orchestrator
	store TriggerStore
	ws    WorkspaceList
	log   *slog.Logger

	pid    *actor.PID
	ctx    context.Context
	cancel context.CancelFunc
	fires  sync.WaitGroup
	ids    atomic.Uint64

	// next holds each armed trigger's next fire time, for the API.
	next sync.Map // entry key → time.Time

	startOnce, stopOnce sync.Once
	stopped             atomic.Bool
}

// NewScheduler returns a scheduler creating jobs through o.
func NewScheduler(o *Orchestrator, store TriggerStore, ws WorkspaceList, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{o: o, store: store, ws: ws, log: log, ctx: ctx, cancel: cancel}
}

// Start spawns the scheduler actor in the Orchestrator's actor system. It
// reads the last fired ticks and arms the timers in the background.
func (s *Scheduler) Start() error {
	if s.o.root == nil {
		return errors.New("start the orchestrator before the scheduler")
	}
	s.startOnce.Do(func() {
		restart := actor.NewOneForOneStrategy(10, 10*time.Second, func(reason any) actor.Directive {
			s.log.Error("scheduler panicked; restarting it", "reason", fmt.Sprint(reason))
			return actor.RestartDirective
		})
		s.pid = s.o.root.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &schedulerActor{s: s, entries: map[string]*schedEntry{}}
		}, actor.WithGuardian(restart)))
	})
	return nil
}

// Stop stops the timers and waits for ticks being fired. Safe to call twice.
func (s *Scheduler) Stop() {
	s.stopOnce.Do(func() {
		s.stopped.Store(true)
		if s.pid != nil {
			_ = s.o.root.PoisonFuture(s.pid).Wait()
		}
		s.cancel()
		s.fires.Wait()
	})
}

// Reload takes the triggers of a reloaded workspace: removed or disabled
// triggers stop, new ones start, a changed cron or timezone takes effect.
// It returns once the scheduler has applied the change (or after a few
// seconds); use it as a workspace.Registry OnReload hook.
func (s *Scheduler) Reload(ws *workspace.Workspace) {
	if s.pid == nil || s.stopped.Load() {
		return
	}
	done := make(chan struct{})
	s.o.root.Send(s.pid, &schedReload{ws: ws, done: done})
	t := time.NewTimer(schedReloadWait)
	defer t.Stop()
	select {
	case <-done:
	case <-s.ctx.Done(): // stopped meanwhile
	case <-t.C:
		s.log.Warn("scheduler did not take the reloaded triggers in time", "workspace", ws.Name)
	}
}

// NextFire returns when a scheduler trigger fires next on this server;
// false when it is disabled, unknown, or its cron never fires again.
func (s *Scheduler) NextFire(ws, trigger string) (time.Time, bool) {
	v, ok := s.next.Load(entryKey(ws, trigger))
	if !ok {
		return time.Time{}, false
	}
	return v.(time.Time), true
}

func entryKey(ws, trigger string) string { return ws + "\x00" + trigger }

// fire creates the job of one tick, applying the trigger's concurrency
// policy. It runs off the actor.
func (s *Scheduler) fire(ctx context.Context, ws string, t workspace.Trigger, tick time.Time) (string, error) {
	req := JobRequest{
		Workspace: ws, Task: t.Task, Input: maps.Clone(t.Input),
		SourceType: stroem.SourceTrigger, SourceID: stroem.TriggerSourceID(ws, t.Name), Trigger: t.Name, Tick: tick,
	}
	switch t.Concurrency {
	case workspace.ConcurrencySkip:
		req.SkipIfUnfinished = true
	case workspace.ConcurrencyCancelPrevious:
		ids, err := s.store.TriggerJobsUnfinished(ctx, ws, t.Name, tick)
		if err != nil {
			return "", err
		}
		for _, id := range ids {
			// A job that finished meanwhile is a conflict: nothing to cancel.
			if err := s.o.JobCancel(ctx, id); err != nil && !errors.Is(err, stroem.ErrConflict) {
				s.log.Warn("cancel previous job of trigger", "workspace", ws, "trigger", t.Name, "job_id", id, "err", err)
			}
		}
	}
	return s.o.JobCreate(ctx, req)
}

// schedEntry is one armed trigger.
type schedEntry struct {
	key  string
	id   uint64 // unique per entry instance
	ws   string
	trig workspace.Trigger
	// spec is the cron and time zone: when a reload changes it, the entry
	// is replaced (and starts with the next tick).
	spec  string
	sched cron.Schedule

	last  time.Time // the latest tick handled: fired, skipped, or fired elsewhere
	timer *time.Timer
	seq   uint64

	busy    bool // a tick is being fired
	recheck bool // the timer went off while busy
}

// schedulerActor owns the entries and their timers.
type schedulerActor struct {
	s       *Scheduler
	entries map[string]*schedEntry
	ready   bool
	loading bool
	// waiting holds reloads that arrived before the initial read finished.
	waiting []chan struct{}
}

func (a *schedulerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.load(ctx)
	case *schedInit:
		a.load(ctx)
	case *schedLoaded:
		a.loading = false
		if m.err != nil {
			a.s.log.Warn("scheduler cannot read the last fired ticks; retrying", "in", schedRetryDelay, "err", m.err)
			a.after(ctx, schedRetryDelay, &schedInit{})
			return
		}
		a.ready = true
		now := time.Now()
		for _, ws := range a.s.ws.List() {
			a.apply(ctx, ws, m.last, now)
		}
		for _, done := range a.waiting {
			close(done)
		}
		a.waiting = nil
	case *schedReload:
		if !a.ready {
			// The initial read builds every entry from the current workspaces.
			if m.done != nil {
				a.waiting = append(a.waiting, m.done)
			}
			return
		}
		a.apply(ctx, m.ws, nil, time.Now())
		if m.done != nil {
			close(m.done)
		}
	case *schedTimer:
		if e := a.entries[m.key]; e != nil && e.id == m.id && e.seq == m.seq {
			a.check(ctx, e)
		}
	case *schedFired:
		a.fired(ctx, m)
	case *actor.Stopping:
		for key, e := range a.entries {
			a.remove(key, e)
		}
		for _, done := range a.waiting {
			close(done)
		}
		a.waiting = nil
	case *actor.Restarting:
		for key, e := range a.entries {
			a.remove(key, e)
		}
	}
}

// load reads the last fired tick of every enabled scheduler trigger, off
// the actor.
func (a *schedulerActor) load(ctx actor.Context) {
	if a.loading || a.ready {
		return
	}
	a.loading = true
	type ref struct{ ws, name string }
	var refs []ref
	for _, ws := range a.s.ws.List() {
		for name, t := range ws.Triggers {
			if t.Type == workspace.TriggerScheduler && t.Enabled {
				refs = append(refs, ref{ws.Name, name})
			}
		}
	}
	s, self, root := a.s, ctx.Self(), ctx.ActorSystem().Root
	go func() {
		last := make(map[string]time.Time, len(refs))
		var err error
		for _, r := range refs {
			c, cancel := context.WithTimeout(s.ctx, schedFireTimeout)
			var t time.Time
			t, err = s.store.TriggerLastTick(c, r.ws, r.name)
			cancel()
			if err != nil {
				err = fmt.Errorf("trigger %s/%s: %w", r.ws, r.name, err)
				break
			}
			last[entryKey(r.ws, r.name)] = t
		}
		root.Send(self, &schedLoaded{last: last, err: err})
	}()
}

// apply makes the entries of ws match its enabled scheduler triggers. last
// holds the last fired ticks read at start (nil on a reload): a trigger
// starts from its last fired tick when known, so the latest tick missed
// since fires at once; otherwise from now.
func (a *schedulerActor) apply(ctx actor.Context, ws *workspace.Workspace, last map[string]time.Time, now time.Time) {
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(ws.Triggers)) {
		t := ws.Triggers[name]
		if t.Type != workspace.TriggerScheduler || !t.Enabled {
			continue
		}
		key := entryKey(ws.Name, name)
		sched, spec, err := triggerSchedule(t)
		if err != nil {
			a.s.log.Error("trigger cannot be scheduled", "workspace", ws.Name, "trigger", name, "err", err)
			continue
		}
		seen[key] = true
		if e := a.entries[key]; e != nil && e.spec == spec {
			e.trig = *t // task, input or concurrency may have changed
			continue
		} else if e != nil {
			a.remove(key, e)
		}
		from := now
		if l := last[key]; !l.IsZero() {
			from = l
		}
		e := &schedEntry{key: key, id: a.s.ids.Add(1), ws: ws.Name, trig: *t, spec: spec, sched: sched, last: from}
		a.entries[key] = e
		a.check(ctx, e)
	}
	for key, e := range a.entries {
		if e.ws == ws.Name && !seen[key] {
			a.remove(key, e)
		}
	}
}

func (a *schedulerActor) remove(key string, e *schedEntry) {
	if e.timer != nil {
		e.timer.Stop()
	}
	delete(a.entries, key)
	a.s.next.Delete(key)
}

// check fires the latest due tick of e, if any, and arms e's timer for the
// tick after now.
func (a *schedulerActor) check(ctx actor.Context, e *schedEntry) {
	if e.busy {
		e.recheck = true
		return
	}
	now := time.Now()
	if due := latestTick(e.sched, e.last, now); !due.IsZero() {
		prev := e.last
		e.last, e.busy = due, true
		s, self, root := a.s, ctx.Self(), ctx.ActorSystem().Root
		key, id, ws, trig := e.key, e.id, e.ws, e.trig
		s.fires.Add(1)
		go func() {
			defer s.fires.Done()
			c, cancel := context.WithTimeout(s.ctx, schedFireTimeout)
			jobID, err := s.fire(c, ws, trig, due)
			cancel()
			root.Send(self, &schedFired{key: key, id: id, tick: due, prev: prev, jobID: jobID, err: err})
		}()
	}
	from := now
	if e.last.After(from) {
		from = e.last // a tick in the future was fired (another server's clock is ahead)
	}
	a.arm(ctx, e, e.sched.Next(from))
}

// arm sets e's timer to go off at next (never, when next is zero).
func (a *schedulerActor) arm(ctx actor.Context, e *schedEntry, next time.Time) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.seq++
	if next.IsZero() {
		a.s.next.Delete(e.key)
		return
	}
	a.s.next.Store(e.key, next.UTC())
	self, root, msg := ctx.Self(), ctx.ActorSystem().Root, &schedTimer{key: e.key, id: e.id, seq: e.seq}
	e.timer = time.AfterFunc(time.Until(next), func() { root.Send(self, msg) })
}

// fired records the outcome of a tick.
func (a *schedulerActor) fired(ctx actor.Context, m *schedFired) {
	log := a.s.log.With("trigger", triggerName(m.key), "tick", m.tick.UTC().Format(time.RFC3339))
	switch {
	case m.err == nil:
		log.Info("trigger fired", "job_id", m.jobID)
	case errors.Is(m.err, persistence.ErrTickFired):
		log.Debug("tick already fired by another server")
	case errors.Is(m.err, persistence.ErrTriggerBusy):
		log.Info("tick skipped: the trigger's previous job is unfinished (concurrency: skip)", "job_id", m.jobID)
	case a.s.ctx.Err() != nil:
		return
	default:
		log.Error("trigger failed to fire", "err", m.err)
	}
	e := a.entries[m.key]
	if e == nil || e.id != m.id {
		return
	}
	e.busy = false
	if m.err != nil && isUnavailable(m.err) && e.last.Equal(m.tick) {
		// The store is down: try this tick again (or the latest tick due by
		// then) shortly, unless another server fires it meanwhile.
		e.last, e.recheck = m.prev, false
		a.arm(ctx, e, time.Now().Add(schedRetryDelay))
		return
	}
	if e.recheck {
		e.recheck = false
		a.check(ctx, e)
	}
}

// after delivers msg to the actor after d.
func (a *schedulerActor) after(ctx actor.Context, d time.Duration, msg any) {
	self, root := ctx.Self(), ctx.ActorSystem().Root
	time.AfterFunc(d, func() { root.Send(self, msg) })
}

func triggerName(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return key[:i] + "/" + key[i+1:]
		}
	}
	return key
}

// triggerSchedule parses a trigger's cron in its time zone. spec identifies
// the schedule: a reload that changes it restarts the trigger's timer.
func triggerSchedule(t *workspace.Trigger) (cron.Schedule, string, error) {
	loc := time.UTC
	if t.Timezone != "" {
		var err error
		if loc, err = time.LoadLocation(t.Timezone); err != nil {
			return nil, "", fmt.Errorf("timezone %q: %w", t.Timezone, err)
		}
	}
	sched, err := workspace.CronSchedule(t.Cron, loc)
	if err != nil {
		return nil, "", fmt.Errorf("cron %q: %w", t.Cron, err)
	}
	if every, ok := sched.(cron.ConstantDelaySchedule); ok {
		sched = alignedEvery{every.Delay}
	}
	return sched, t.Cron + "\x00" + loc.String(), nil
}

// alignedEvery is "@every D" with ticks at multiples of D (counted from
// Go's zero time, so from midnight UTC for any D that divides a day).
// robfig/cron counts @every from when the schedule is asked, which would
// give each server, and each restart, different ticks, and defeat the
// once-per-tick check.
type alignedEvery struct{ d time.Duration }

func (e alignedEvery) Next(t time.Time) time.Time { return t.Truncate(e.d).Add(e.d) }

// latestTick returns the latest tick of s in (after, now], or the zero time
// when there is none. It searches back from now in doubling windows, so a
// long outage of a frequent cron costs a few steps, not one per missed tick.
func latestTick(s cron.Schedule, after, now time.Time) time.Time {
	if !now.After(after) {
		return time.Time{}
	}
	if lim := now.Add(-maxLookback); after.Before(lim) {
		after = lim // cron's own search horizon; and it bounds the loops below
	}
	from := after
	for d := time.Second; d <= 2*maxLookback; d *= 2 {
		f := now.Add(-d)
		if !f.After(after) {
			break
		}
		if t := s.Next(f); !t.IsZero() && !t.After(now) {
			from = f
			break
		}
	}
	var latest time.Time
	for t := s.Next(from); !t.IsZero() && !t.After(now); t = s.Next(t) {
		latest = t
	}
	return latest
}
