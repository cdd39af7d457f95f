package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Orchestrator is the server's job engine: the facade the HTTP layer calls,
// and the owner of the actor system.
type Orchestrator struct {
	cfg    Config
	store  Store
	ws     Workspaces
	events Events
	log    *slog.Logger
	pool   *goPool // goroutines for transitions, claims and mailboxes (gopool.go)

	plans     *planCache
	taskPlans sync.Map // workspace\x00revision\x00task → *taskPlan
	jobPlans  sync.Map // job id → *plan, for masking log lines

	masks maskCache // job id → redaction (redact.go)
	// loopItems caches expanded loops' items for claims (loop.go).
	loopItems loopItemsCache
	// workerCaps caches the worker list for the unmatched-step checks
	// (unmatched.go).
	workerCaps workerListCache

	// loadSem bounds concurrent job loads (recovery spawns many JobActors).
	loadSem chan struct{}

	system     *actor.ActorSystem
	root       *actor.RootContext
	orch       *actor.PID
	dispatcher *actor.PID

	startOnce, stopOnce sync.Once
	stopped             chan struct{}
	// draining is set when the server stops handing out steps (shutdown).
	draining atomic.Bool
	// storeDown is set while leases are in doubt after a store outage (see
	// outage.go).
	storeDown atomic.Bool
	// inherited are the claims an earlier server process left running
	// (see inherited.go).
	inherited inheritedClaims
	// startDue receives the acknowledgement deadlines of handed-over steps
	// (see startack.go); unacked holds those steps until acknowledged
	// here (StepRef → struct{}).
	startDue chan startDue
	unacked  sync.Map
	// files gives templates the tasks' state (files.go); nil: none.
	files atomic.Pointer[Files]
	// idleTypes are the action types a waiting long poll can run, as the
	// Dispatcher last published them (dispatcher.publishIdle); nil: none.
	idleTypes atomic.Pointer[map[string][]route]
}

type taskPlan struct {
	plan *plan
	body []byte
}

// JobRequest asks for a new job.
type JobRequest struct {
	Workspace  string
	Task       string
	Input      map[string]any
	SourceType stroem.SourceType
	SourceID   string
	// CreatedBy names who asked for the job (auth.Identity.Actor), kept on
	// the job.
	CreatedBy string
	// Tick, when not zero, is the scheduler tick the job is fired for
	// (Trigger names the trigger): the store creates at most one job per
	// tick, in tick order, and answers persistence.ErrTickFired otherwise.
	Tick    time.Time
	Trigger string
	// SkipIfUnfinished (with Tick): while an earlier job of the trigger is
	// unfinished, the job is recorded as skipped (see recordSkipped) and
	// JobCreate answers its id with persistence.ErrTriggerBusy.
	SkipIfUnfinished bool
	// Webhook is the request context a webhook job's templates see as
	// `webhook` (headers, query); nil for other jobs.
	Webhook map[string]any
	// retry, when set, makes the job the next of a task-level retry chain
	// (see tasklimits.go).
	retry *taskRetry
	// WebhookInput, for a webhook job, holds the input keys the request
	// gives in the upstream's shape (workspace.WebhookInputKeys): set after
	// the input is checked, over anything else.
	WebhookInput map[string]any
}

// New returns an orchestrator; Start runs it.
func New(cfg Config, store Store, ws Workspaces, events Events, log *slog.Logger) *Orchestrator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Orchestrator{
		cfg:      cfg.withDefaults(),
		store:    store,
		ws:       ws,
		events:   events,
		log:      log,
		plans:    newPlanCache(512, log),
		pool:     newGoPool(),
		loadSem:  make(chan struct{}, 8),
		stopped:  make(chan struct{}),
		startDue: make(chan startDue, 1024),
	}
}

// Start spawns the actors and recovers every unfinished job: leases of
// running steps are extended by one lease period (no heartbeat could be
// processed while no server ran), then each job gets its JobActor back.
func (o *Orchestrator) Start(ctx context.Context) error {
	var err error
	o.startOnce.Do(func() {
		plog := o.log.With("lib", "protoactor")
		o.system = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return plog }))
		o.root = o.system.Root
		restart := actor.NewOneForOneStrategy(10, 10*time.Second, func(reason any) actor.Directive {
			o.log.Error("actor panicked; restarting it", "reason", fmt.Sprint(reason))
			return actor.RestartDirective
		})
		o.dispatcher = o.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return newDispatcher(o) },
			actor.WithGuardian(restart), actor.WithDispatcher(o.pool)))
		o.orch = o.root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &orchestratorActor{o: o, jobs: map[string]*actor.PID{}} },
			actor.WithGuardian(restart), actor.WithSupervisor(restart), actor.WithDispatcher(o.pool)))

		var n int64
		// One lease, plus the time an idle worker may take to send its
		// first heartbeat here (inherited.go needs two of them).
		if n, err = o.store.LeasesExtendAll(ctx, o.cfg.Lease+idleHeartbeat(o.cfg.Lease)); err != nil {
			err = fmt.Errorf("extend leases: %w", err)
			return
		}
		if err = o.inherit(ctx); err != nil {
			err = fmt.Errorf("list running steps: %w", err)
			return
		}
		var ids []string
		if ids, err = o.store.JobsUnfinished(ctx); err != nil {
			err = fmt.Errorf("list unfinished jobs: %w", err)
			return
		}
		o.log.Info("orchestrator started", "unfinished_jobs", len(ids), "leases_extended", n)
		o.root.Send(o.orch, &recoverJobs{ids: ids})
		o.Wake()
		go o.watchStore()
		go o.watchStarts()
	})
	return err
}

// Stop stops the actors. Waiting claims are answered with nothing; state is
// in the store already. Safe to call twice.
func (o *Orchestrator) Stop() {
	o.stopOnce.Do(func() {
		close(o.stopped)
		defer o.pool.close() // after the actors: a mailbox may still run on it
		if o.system == nil {
			return
		}
		_ = o.root.PoisonFuture(o.dispatcher).Wait()
		_ = o.root.PoisonFuture(o.orch).Wait()
		o.system.Shutdown()
	})
}

// Drain stops handing out steps: waiting claims are answered with nothing
// at once and new ones return nothing, so a server shutting down is not held
// open by long polls. Reports are still accepted until Stop.
func (o *Orchestrator) Drain() {
	if o.draining.Swap(true) || o.dispatcher == nil {
		return
	}
	o.root.Send(o.dispatcher, &drain{})
}

// requestKeysAsGiven splits off the values of in for the task's fields named
// like a webhook's request keys (workspace.WebhookInputKeys), to be kept as
// given, and returns the schema and the input without them. A webhook job's are
// set by the server unchecked; a job started by hand takes them as given
// too, so a task written for a webhook (the upstream's ci-pipeline
// declares body: { type: string } and reads input.body.ref) runs with a
// body passed by hand. Fields not given keep their defaults and checks.
func requestKeysAsGiven(schema workspace.Schema, in map[string]any) (workspace.Schema, map[string]any, map[string]any) {
	var given map[string]any
	for _, k := range workspace.WebhookInputKeys {
		if v, ok := in[k]; ok && v != nil && schema.Lookup(k) != nil {
			if given == nil {
				given = map[string]any{}
			}
			given[k] = v
		}
	}
	if given == nil {
		return schema, in, nil
	}
	rest := maps.Clone(in)
	for k := range given {
		delete(rest, k)
	}
	out := make(workspace.Schema, 0, len(schema))
	for _, f := range schema {
		if _, ok := given[f.Name]; !ok {
			out = append(out, f)
		}
	}
	return out, rest, given
}

// Wake tells the Dispatcher steps may have become ready (a NOTIFY from any
// server, a retry's backoff elapsed).
func (o *Orchestrator) Wake() {
	if o.dispatcher != nil {
		o.root.Send(o.dispatcher, &wakeUp{})
	}
}

// JobCreate checks the input, freezes the task definition and inserts the
// job with all its steps in one transaction. Roots are ready at once.
func (o *Orchestrator) JobCreate(ctx context.Context, r JobRequest) (string, error) {
	ws := o.ws.Get(r.Workspace)
	if ws == nil {
		return "", stroem.Errorf(stroem.CodeNotFound, "workspace %q not found", r.Workspace)
	}
	task := ws.Tasks[r.Task]
	if task == nil {
		return "", stroem.Errorf(stroem.CodeNotFound, "task %q not found in workspace %q", r.Task, r.Workspace)
	}
	schema := task.Input
	if r.WebhookInput != nil {
		schema = schema.WithoutWebhookInputKeys()
	}
	resolved, problems := resolveConnections(ws, task, r.Input) // connection.go
	if len(problems) > 0 {
		return "", stroem.Invalid(fmt.Sprintf("invalid input for task %q: %d problem(s)", task.Name, len(problems)), o.maskProblems(ws, task, problems)...)
	}
	schema, resolved, asGiven := requestKeysAsGiven(schema, resolved)
	input, problems := workspace.CheckInput(schema, resolved)
	maps.Copy(input, asGiven)
	maps.Copy(input, r.WebhookInput)
	if len(problems) > 0 {
		return "", stroem.Invalid(fmt.Sprintf("invalid input for task %q: %d problem(s)", task.Name, len(problems)), o.maskProblems(ws, task, problems)...)
	}
	tp, err := o.planForTask(ws, task)
	if err != nil {
		return "", stroem.Errorf(stroem.CodeInvalid, "task %q cannot run: %v", task.Name, err)
	}
	p := tp.plan
	if err := renderDefaults(p, schema, r.Input, input); err != nil {
		return "", err
	}
	if err := o.checkRunnable(ctx, task.Name, p); err != nil {
		return "", err
	}
	if r.SourceType == "" {
		r.SourceType = stroem.SourceAPI
	}
	s := &persistence.JobState{
		Job: stroem.Job{
			ID: uuid.NewString(), Workspace: ws.Name, TaskName: task.Name, Mode: task.Mode,
			Input: input, Status: stroem.JobPending, SourceType: r.SourceType, SourceID: r.SourceID, CreatedBy: r.CreatedBy,
			Revision: ws.Revision,
		},
		SnapshotID: p.id,
		Now:        time.Now().UTC(),
	}
	if r.Webhook != nil {
		s.Context = map[string]any{"webhook": r.Webhook}
	}
	if err := o.addJobState(ctx, p, s); err != nil { // state_tmpl.go
		return "", err
	}
	o.setTaskLimits(task, r, s)
	for i, name := range p.dag.Order() {
		ps := p.steps[name]
		s.Append(&persistence.StepState{
			Name: name, Position: i, ActionName: ps.action.Name, ActionType: ps.action.Type, Image: ps.action.Image,
			Tags: ps.tags(), DependsOn: ps.flow.DependsOn, ContinueOnFailure: ps.flow.ContinueOnFailure, MaxAttempts: ps.maxAttempts(),
			Status: stroem.StepPending,
		})
	}
	advance(p, s)
	nj := persistence.NewJob{Job: s.Job, SnapshotID: p.id, SnapshotBody: tp.body, Context: s.Context}
	if !r.Tick.IsZero() {
		nj.Tick = &persistence.TriggerTick{Trigger: r.Trigger, At: r.Tick, SkipIfUnfinished: r.SkipIfUnfinished}
	}
	for _, st := range s.All() {
		nj.Steps = append(nj.Steps, persistence.NewStep{
			Name: st.Name, ActionName: st.ActionName, ActionType: st.ActionType, Image: st.Image,
			Tags: st.Tags, DependsOn: st.DependsOn, ContinueOnFailure: st.ContinueOnFailure, MaxAttempts: st.MaxAttempts,
			Status: st.Status, Input: st.Input, ErrorMessage: st.ErrorMessage,
			Output: st.Output, // a root gate's message (approval.go)
		})
	}
	stampStepRevisions(p, &nj)
	if err := o.store.JobInsert(ctx, nj); errors.Is(err, persistence.ErrTriggerBusy) {
		return o.recordSkipped(ctx, nj)
	} else if err != nil {
		return "", fmt.Errorf("insert job: %w", err)
	}
	if !s.Job.Status.Terminal() {
		o.masks.put(s.Job.ID, o.createdRedaction(p, input, r))
		o.jobPlans.Store(s.Job.ID, p)
		o.root.Send(o.orch, &jobCreated{plan: p, state: s})
		o.Wake()
	} else {
		o.jobEnded(p, s, false) // ended at creation: its hooks fire (hook.go)
	}
	return s.Job.ID, nil
}

// recordSkipped stores the job of a tick that a `concurrency: skip` trigger
// skips, its previous job being unfinished, as upstream records it: status
// skipped, the job's row only (no step runs), ended at once, no hooks. The
// tick is recorded with it (no longer asking for the trigger to be idle), so
// however many servers handle the tick, it makes one job: another server's
// record of it, or a job it fired once the previous job had ended, makes
// this insert persistence.ErrTickFired. It answers the job's id and
// persistence.ErrTriggerBusy.
func (o *Orchestrator) recordSkipped(ctx context.Context, nj persistence.NewJob) (string, error) {
	tick := *nj.Tick
	tick.SkipIfUnfinished = false
	nj.Tick, nj.Steps = &tick, nil
	nj.Job.Status, nj.Job.Output = stroem.JobSkipped, nil
	if err := o.store.JobInsert(ctx, nj); err != nil {
		return "", fmt.Errorf("record skipped job: %w", err)
	}
	return nj.Job.ID, fmt.Errorf("job %s recorded as skipped: %w", nj.Job.ID, persistence.ErrTriggerBusy)
}

// JobCancel cancels a job: unstarted steps at once, running ones on their
// worker. Cancelling a finished job is a conflict.
func (o *Orchestrator) JobCancel(ctx context.Context, jobID string) error {
	return o.request(ctx, jobID, evCancel{})
}

// StepComplete applies a worker's completion report, fenced by its attempt
// (without the claim for its slot a completion may carry: see
// StepCompleteNext).
func (o *Orchestrator) StepComplete(ctx context.Context, jobID, step string, c stroem.Completion) error {
	c.Next = nil
	_, err := o.StepCompleteNext(ctx, jobID, step, c)
	return err
}

// request sends ev to the job's actor and waits for the outcome.
func (o *Orchestrator) request(ctx context.Context, jobID string, ev event) error {
	return o.requestEvent(ctx, jobID, jobEvent{ev: ev, reply: make(chan error, 1)})
}

// requestEvent sends e (its reply set) to the job's actor and waits for the
// outcome.
func (o *Orchestrator) requestEvent(ctx context.Context, jobID string, e jobEvent) error {
	o.root.Send(o.orch, &routed{jobID: jobID, msg: &e})
	t := time.NewTimer(o.cfg.RequestTimeout)
	defer t.Stop()
	select {
	case err := <-e.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return stroem.Errorf(stroem.CodeUnavailable, "job %s did not answer within %s", jobID, o.cfg.RequestTimeout)
	case <-o.stopped:
		return stroem.Errorf(stroem.CodeUnavailable, "server is shutting down")
	}
}

// Masker returns the secret masker for a job's log lines.
// It masks the job's secret inputs too, and a child or hook job its
// parent's (redact.go).
func (o *Orchestrator) Masker(ctx context.Context, jobID string) (*workspace.Masker, error) {
	if p, ok := o.jobPlans.Load(jobID); ok && len(secretInputKeys(p.(*plan))) == 0 && !derivedJobID(jobID) {
		return p.(*plan).masker, nil
	}
	r, err := o.redaction(ctx, jobID)
	if err != nil {
		return nil, err
	}
	return r.masker, nil
}

// planFor returns the compiled plan of a stored snapshot.
func (o *Orchestrator) planFor(ctx context.Context, snapshotID string) (*plan, error) {
	if p := o.plans.get(snapshotID); p != nil {
		return p, nil
	}
	body, err := o.store.SnapshotGet(ctx, snapshotID)
	if err != nil {
		return nil, fmt.Errorf("load task snapshot %s: %w", snapshotID, err)
	}
	p, err := compilePlan(snapshotID, body)
	if err != nil {
		return nil, err
	}
	o.secretsSeen(p)
	o.plans.put(p)
	return p, nil
}

// planForTask freezes and compiles a task of the current workspace, once per
// revision.
func (o *Orchestrator) planForTask(ws *workspace.Workspace, task *workspace.Task) (*taskPlan, error) {
	key := ws.Name + "\x00" + ws.Revision + "\x00" + task.Name + ownersKey(ws, task, o.ws.Get)
	if v, ok := o.taskPlans.Load(key); ok {
		tp := v.(*taskPlan)
		if o.plans.get(tp.plan.id) == nil {
			o.plans.put(tp.plan)
		}
		return tp, nil
	}
	id, body, err := newSnapshotRefs(ws, task, o.ws.Get)
	if err != nil {
		return nil, err
	}
	p := o.plans.get(id)
	if p == nil {
		if p, err = compilePlan(id, body); err != nil {
			return nil, err
		}
		o.secretsSeen(p)
		o.plans.put(p)
	}
	tp := &taskPlan{plan: p, body: body}
	o.taskPlans.Store(key, tp)
	return tp, nil
}

// orchestratorActor owns the JobActors.
type orchestratorActor struct {
	o    *Orchestrator
	jobs map[string]*actor.PID
}

func (a *orchestratorActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *routed:
		ctx.Send(a.job(ctx, m.jobID, nil, nil), m.msg)
	case *jobCreated:
		a.job(ctx, m.state.Job.ID, m.plan, m.state)
	case *recoverJobs:
		for _, id := range m.ids {
			a.job(ctx, id, nil, nil)
		}
	case *jobFinished:
		if pid, ok := a.jobs[m.jobID]; ok && pid.Equal(m.pid) {
			delete(a.jobs, m.jobID)
			a.o.jobPlans.Delete(m.jobID)
		}
		ctx.Poison(m.pid)
	case *actor.Terminated:
		for id, pid := range a.jobs {
			if pid.Equal(m.Who) {
				delete(a.jobs, id)
			}
		}
	}
}

// job returns the JobActor of id, spawning it when missing.
func (a *orchestratorActor) job(ctx actor.Context, id string, p *plan, s *persistence.JobState) *actor.PID {
	if pid, ok := a.jobs[id]; ok {
		return pid
	}
	o := a.o
	restart := actor.NewOneForOneStrategy(10, 10*time.Second, func(reason any) actor.Directive {
		o.log.Error("step actor panicked; restarting it", "job_id", id, "reason", fmt.Sprint(reason))
		return actor.RestartDirective
	})
	props := actor.PropsFromProducer(func() actor.Actor {
		j := newJobActor(o, id)
		// Only the first instance gets the state built at creation; a
		// restarted one reloads from the store.
		if p != nil {
			j.plan, j.initial = p, s
			p, s = nil, nil
		}
		return j
	}, actor.WithSupervisor(restart), actor.WithDispatcher(o.pool))
	pid := ctx.Spawn(props)
	a.jobs[id] = pid
	return pid
}

// isUnavailable reports whether err means the store is down (retry later).
func isUnavailable(err error) bool {
	return errors.Is(err, stroem.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}
