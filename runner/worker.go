package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// Defaults of WorkerConfig.
const (
	DefaultShutdownGrace  = 30 * time.Second
	DefaultClaimWait      = 25 * time.Second
	DefaultLogBatchLines  = 256
	DefaultLogBatchBytes  = 1 << 20
	DefaultLogBatchDelay  = 20 * time.Millisecond
	DefaultLogBufferLines = 512
	DefaultLogBufferBytes = 8 << 20
	DefaultLogSpoolBytes  = 256 << 20
	DefaultMaxRetryWait   = 5 * time.Second
	DefaultReportTimeout  = 15 * time.Second
	defaultHeartbeat      = 2 * time.Second
)

// Causes given to a step's context when it is stopped.
var (
	// ErrCancelledByServer: the server asked to stop the step (a user
	// cancelled the job, or the step is no longer this worker's).
	ErrCancelledByServer = errors.New("cancelled by the server")
	// ErrStale: the server refused a report of the attempt (409): another
	// attempt or worker owns the step now.
	ErrStale = errors.New("the attempt is no longer this worker's")
	// ErrShutdown: the worker is shutting down and the grace period ran out.
	ErrShutdown = errors.New("worker shutting down")
)

// WorkerConfig configures a Worker. Zero fields take the defaults above.
type WorkerConfig struct {
	Name         string
	Capabilities []string
	// Tags and Exclusive route steps to this worker (stroem.TagsMatch):
	// they are sent at registration and with every claim.
	Tags      []string
	Exclusive bool
	// MaxConcurrent is the number of steps run at once, each slot keeping
	// one long-poll claim outstanding while idle.
	MaxConcurrent int
	// WorkDir holds the workspace cache (WorkDir/workspaces) and the
	// steps' directories (WorkDir/steps).
	WorkDir string
	// ShutdownGrace is how long running steps may finish after the worker
	// is told to stop, before they are cancelled.
	ShutdownGrace time.Duration
	// ReportTimeout is how long, once the grace is over, the worker keeps
	// trying to deliver the last logs and completions before it exits.
	ReportTimeout time.Duration
	// ClaimWait is the long poll's wait_ms (at most 30 s).
	ClaimWait time.Duration
	// A step's log lines are pushed when LogBatchLines are buffered (or the
	// buffer is full), or LogBatchDelay after the previous push started,
	// whichever comes first; one push carries at most LogBatchLines lines
	// and about LogBatchBytes.
	LogBatchLines int
	LogBatchBytes int
	LogBatchDelay time.Duration
	// LogBufferLines and LogBufferBytes bound one step's lines held in
	// memory: those waiting and those in the pushes in flight. When they
	// are reached and the server answers, the step's output blocks until
	// lines are stored (backpressure); while the server cannot be reached,
	// further lines go to a spool file. Everything in this buffer is a line
	// waiting to reach SSE clients, so it is kept small (about two batches).
	LogBufferLines int
	LogBufferBytes int
	// LogSpoolBytes bounds one step's spool file (under WorkDir/spool).
	// Only lines that find the server unreachable and the spool full are
	// dropped, replaced by one line saying how many.
	LogSpoolBytes int64
	// MaxRetryWait caps the exponential backoff of every retry.
	MaxRetryWait time.Duration
	// Runner runs the steps; nil means a ShellRunner under WorkDir/steps.
	Runner Runner
	// PassEnv names variables of the worker's environment that the default
	// ShellRunner passes to steps (CheckPassEnv refuses STROEM_* names).
	PassEnv []string
	// OnSecrets, when set, is told the secret values of each step before it
	// runs, so the worker's own log can mask them.
	OnSecrets func(values []string)
	// MaskExtra are values masked in every step's output besides the
	// step's secrets: the worker's own credentials, should a step find
	// them somewhere.
	MaskExtra []string
	// WrapRunner, when set, wraps the runner (worker metrics and tracing).
	WrapRunner func(Runner) Runner
}

func (c *WorkerConfig) setDefaults() {
	positiveOr(&c.MaxConcurrent, 1)
	if len(c.Capabilities) == 0 {
		c.Capabilities = []string{"shell"}
	}
	positiveOr(&c.ShutdownGrace, DefaultShutdownGrace)
	positiveOr(&c.ReportTimeout, DefaultReportTimeout)
	positiveOr(&c.ClaimWait, DefaultClaimWait)
	c.ClaimWait = min(c.ClaimWait, client.MaxClaimWait)
	positiveOr(&c.LogBatchLines, DefaultLogBatchLines)
	positiveOr(&c.LogBatchBytes, DefaultLogBatchBytes)
	positiveOr(&c.LogBatchDelay, DefaultLogBatchDelay)
	positiveOr(&c.LogBufferLines, DefaultLogBufferLines)
	positiveOr(&c.LogBufferBytes, DefaultLogBufferBytes)
	positiveOr(&c.LogSpoolBytes, DefaultLogSpoolBytes)
	positiveOr(&c.MaxRetryWait, DefaultMaxRetryWait)
}

// Worker is a worker process's main loop (SPEC §8): it registers, keeps a
// long-poll claim outstanding for each of its MaxConcurrent slots that is
// idle, runs each claimed step, heartbeats the running steps' leases, ships
// their logs in small batches and reports their completion — which claims
// the slot's next step too — retrying with backoff for as long as the
// server is unreachable.
type Worker struct {
	c      *client.Client
	cfg    WorkerConfig
	log    *slog.Logger
	runner Runner
	shell  *ShellRunner // the ShellRunner NewWorker made (nil when cfg.Runner was given)
	cache  *WorkspaceCache
	down   downTracker
	files  filesPool // the steps' emptied state and artifact directories, for reuse (files_pool.go)

	maskMu   sync.Mutex // guards the last masker built (mask.go)
	maskFor  []string   // the values maskLast was built with
	maskLast *stroem.Masker

	regMu sync.Mutex // serialises (re-)registration

	mu        sync.Mutex
	workerID  string
	heartbeat time.Duration // while a step runs (its lease renewals)
	// idleBeat is the heartbeat period while none runs, and soonBeat the
	// server's request for the next one sooner (HeartbeatResponse).
	idleBeat, soonBeat time.Duration
	running            map[stroem.StepRef]*task
	// beatWake brings the next heartbeat forward when the first step
	// starts while the heartbeat loop waits out the idle period.
	beatWake chan struct{}
}

// task is a step the worker is running (or still reporting).
type task struct {
	ref      stroem.StepRef
	workerID string // the id the step was claimed under: reports are fenced by it
	cancel   context.CancelCauseFunc
}

// NewWorker returns a worker talking to the server through c.
func NewWorker(c *client.Client, cfg WorkerConfig, log *slog.Logger) (*Worker, error) {
	if c == nil {
		return nil, errors.New("runner: NewWorker needs a client")
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("runner: WorkerConfig.WorkDir is not set")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.setDefaults()
	r := cfg.Runner
	var shell *ShellRunner // the worker's own, drained when it stops
	if r == nil {
		if err := CheckPassEnv(cfg.PassEnv); err != nil {
			return nil, fmt.Errorf("runner: pass_env: %w", err)
		}
		shell = &ShellRunner{WorkDir: filepath.Join(cfg.WorkDir, "steps"), PassEnv: cfg.PassEnv}
		r = shell
	}
	if cfg.WrapRunner != nil {
		r = cfg.WrapRunner(r)
	}
	w := &Worker{
		c: c, cfg: cfg, log: log, runner: r, shell: shell,
		running: map[stroem.StepRef]*task{}, beatWake: make(chan struct{}, 1),
	}
	w.down.log = log
	w.cache = NewWorkspaceCache(filepath.Join(cfg.WorkDir, "workspaces"), c.WorkspaceArchive, log)
	return w, nil
}

// ID returns the worker id the server gave at the latest registration.
func (w *Worker) ID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.workerID
}

// Run registers and works until ctx is cancelled, then shuts down
// gracefully: it stops claiming (aborting the outstanding long polls), lets
// running steps finish within ShutdownGrace, cancels those still running,
// delivers their logs and completions (giving up after ReportTimeout), and
// returns nil. It returns an error only when the server refuses the worker
// (a wrong token, say).
func (w *Worker) Run(ctx context.Context) error {
	if err := w.register(ctx, ""); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if w.shell != nil {
		// A supervisor per slot, started now rather than by the first
		// steps (supervise.go).
		defer w.shell.prestart(w.cfg.MaxConcurrent, w.log)()
	}
	stepsCtx, cancelSteps := context.WithCancelCause(context.WithoutCancel(ctx))
	reportCtx, giveUp := context.WithCancelCause(context.WithoutCancel(ctx))
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSteps(nil)
	defer giveUp(nil)
	defer stopHeartbeat()

	var slots sync.WaitGroup
	for range w.cfg.MaxConcurrent {
		slots.Go(func() { w.slot(ctx, stepsCtx, reportCtx) })
	}
	var hb sync.WaitGroup
	hb.Go(func() { w.heartbeatLoop(hbCtx) })

	slotsDone := make(chan struct{})
	go func() {
		slots.Wait()
		close(slotsDone)
	}()
	select {
	case <-slotsDone: // cannot happen before ctx ends, but be safe
	case <-ctx.Done():
	}
	if n := w.runningCount(); n > 0 {
		w.log.Info("worker stopping: waiting for running steps", "running", n, "grace", w.cfg.ShutdownGrace)
	}
	grace := time.NewTimer(w.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-slotsDone:
	case <-grace.C:
		w.log.Warn("shutdown grace over: cancelling running steps", "running", w.runningCount())
		cancelSteps(ErrShutdown)
		report := time.NewTimer(w.cfg.ReportTimeout)
		defer report.Stop()
		select {
		case <-slotsDone:
		case <-report.C:
			w.log.Error("giving up delivering reports", "running", w.runningCount())
			giveUp(ErrShutdown)
			<-slotsDone
		}
	}
	stopHeartbeat()
	hb.Wait()
	w.files.drain(w.log) // every step has ended: remove the kept directories
	if w.shell != nil {
		w.shell.Drain()
	}
	w.log.Info("worker stopped")
	return nil
}

// register registers the worker, retrying while the server is unreachable.
// With stale set, it re-registers only if the current id is still stale
// (another goroutine may have done it already).
func (w *Worker) register(ctx context.Context, stale string) error {
	w.regMu.Lock()
	defer w.regMu.Unlock()
	if stale != "" && w.ID() != stale {
		return nil
	}
	reg, err := retryReachable(ctx, w.retryOptions(), w.log, "", func() (stroem.WorkerRegistered, error) {
		reg, err := w.c.Register(ctx, stroem.WorkerRegistration{
			Name: w.cfg.Name, Capabilities: w.cfg.Capabilities, Tags: nonNil(w.cfg.Tags),
			Exclusive: w.cfg.Exclusive, MaxConcurrent: w.cfg.MaxConcurrent,
		})
		w.down.observe(err, "register") // a refusal is no outage: observe ignores it
		return reg, err
	})
	if err != nil {
		return fmt.Errorf("register with %s: %w", w.c.BaseURL(), err)
	}
	hbEvery := time.Duration(reg.HeartbeatMS) * time.Millisecond
	if hbEvery <= 0 && reg.LeaseMS > 0 {
		hbEvery = time.Duration(reg.LeaseMS) * time.Millisecond / 5
	}
	if hbEvery <= 0 {
		hbEvery = defaultHeartbeat
	}
	hbEvery = max(hbEvery, 50*time.Millisecond)
	// An older server says no idle period: the running one.
	idleEvery := max(time.Duration(reg.IdleHeartbeatMS)*time.Millisecond, hbEvery)
	if w.cfg.OnSecrets != nil {
		w.cfg.OnSecrets([]string{reg.Credential}) // never in the worker's own log
	}
	w.mu.Lock()
	w.workerID, w.heartbeat, w.idleBeat, w.soonBeat = reg.WorkerID, hbEvery, idleEvery, 0
	w.mu.Unlock()
	w.log.Info("worker registered", "worker_id", reg.WorkerID, "server", w.c.BaseURL(),
		"capabilities", w.cfg.Capabilities, "tags", w.cfg.Tags, "exclusive", w.cfg.Exclusive, "max_concurrent", w.cfg.MaxConcurrent, "heartbeat", hbEvery, "idle_heartbeat", idleEvery)
	return nil
}

// retryOptions: exponential backoff with jitter, capped, never giving up
// (the context decides).
func (w *Worker) retryOptions() []backoff.RetryOption {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = w.cfg.MaxRetryWait
	return []backoff.RetryOption{backoff.WithBackOff(bo), backoff.WithMaxElapsedTime(0)}
}

// slot claims and runs steps one at a time until ctx ends. Each step's
// completion claims the slot's next step too (execute); only when it brings
// none does the slot long-poll a claim.
func (w *Worker) slot(ctx, stepsCtx, reportCtx context.Context) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = w.cfg.MaxRetryWait
	var next *stroem.Assignment // the answer to the last completion brought it, under nextID
	var nextID string
	for {
		if next != nil {
			// Run it even if shutdown began meanwhile: the server handed it
			// over, and it gets the same grace as any running step.
			a := *next
			next = w.execute(ctx, stepsCtx, reportCtx, nextID, a)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		id := w.ID()
		a, err := w.c.Claim(ctx, stroem.ClaimRequest{
			WorkerID: id, Capabilities: w.cfg.Capabilities, Tags: w.cfg.Tags, Exclusive: w.cfg.Exclusive,
			WaitMS: int(w.cfg.ClaimWait / time.Millisecond),
		})
		if a != nil {
			w.down.observe(nil, "claim")
			bo.Reset()
			next, nextID = a, id
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.down.observe(err, "claim")
			if errors.Is(err, stroem.ErrNotFound) || errors.Is(err, stroem.ErrUnauthorized) {
				if rerr := w.register(ctx, id); rerr != nil && ctx.Err() == nil {
					w.log.Error("re-register", "err", rerr)
				}
			} else if !client.Retryable(err) {
				w.log.Error("claim refused", "err", err)
			}
			if !sleepCtx(ctx, bo.NextBackOff()) {
				return
			}
			continue
		}
		w.down.observe(nil, "claim")
		bo.Reset()
	}
}

// execute runs one claimed step and reports it. Its completion carries a
// claim for the slot while the slot still takes work (claimCtx not done),
// and execute returns the step that claim brought, held under the same
// workerID; nil when none did.
func (w *Worker) execute(claimCtx, stepsCtx, reportCtx context.Context, workerID string, a stroem.Assignment) *stroem.Assignment {
	ref := stroem.StepRef{JobID: a.JobID, Step: a.StepName, Attempt: a.Attempt}
	log := withLazyAttrs(w.log, slog.String("job_id", a.JobID), slog.String("step", a.StepName), slog.Int("attempt", a.Attempt))
	ctx, cancel := context.WithCancelCause(stepsCtx)
	defer cancel(nil)
	w.mu.Lock()
	if _, dup := w.running[ref]; dup {
		// The same attempt handed to this worker again: the server gave it
		// back while this worker's start was on its way (a restart), and it
		// was claimed here once more. It is already being run: never twice.
		w.mu.Unlock()
		log.Warn("step handed over again while this worker already has it: not run twice")
		return nil
	}
	w.running[ref] = &task{ref: ref, workerID: workerID, cancel: cancel}
	first := len(w.running) == 1
	w.mu.Unlock()
	if first {
		select { // its lease wants renewals from now on (heartbeatLoop)
		case w.beatWake <- struct{}{}:
		default:
		}
	}
	defer func() {
		w.mu.Lock()
		delete(w.running, ref)
		w.mu.Unlock()
	}()
	if !a.Started && !w.acknowledge(ctx, log, workerID, a) { // ack.go; Started: recorded at hand-over
		return nil
	}
	start := time.Now()
	// A step's routine records are debug records: its start, and its end
	// when it succeeded (a failed step's end is info). The server has them
	// all, and one record per step was 2–4% of the worker's CPU (mostly
	// the write to stderr) in the bench's chain and fan-out of trivial
	// steps (issue 23).
	log.Debug("step started", "action", a.ActionName, "revision", a.Revision)

	ship := newShipper(w, reportCtx, workerID, ref, func(err error) { cancel(err) })

	if w.cfg.OnSecrets != nil && len(a.Mask) > 0 {
		w.cfg.OnSecrets(a.Mask)
	}
	mask := w.masker(a)
	var res Result
	files, ferr := w.prepareFiles(ctx, log, workerID, &a) // files.go
	if ferr != nil {
		res = Result{ExitCode: -1, Error: maskResult(mask, Result{Error: ferr.Error()}).Error}
	} else {
		defer func() {
			if res.leftRunning {
				files.remove() // a process of the step may hold them still
			} else {
				files.cleanup()
			}
		}()
		res = maskResult(mask, w.runStep(ctx, log, a, files.watch(maskSink(mask, ship.add))))
		res = maskResult(mask, files.finish(ctx, res, func(text string) {
			ship.add(stroem.PushLine{TS: time.Now().UTC(), Stream: stroem.Stderr, Text: mask.Mask(text)})
		}))
	}
	if res.Cleanup != nil {
		defer res.Cleanup() // after the report: the next step need not wait for it
	}
	ship.close()
	ship.wait()

	if ship.isStale() {
		log.Warn("step abandoned: the server gave it to another attempt", "duration", time.Since(start))
		return nil
	}
	comp := res.Completion(workerID, a.Attempt)
	next, err := w.complete(reportCtx, claimCtx, log, ref, comp)
	switch {
	case err == nil:
		level := slog.LevelInfo
		if res.Succeeded() {
			level = slog.LevelDebug
		}
		log.Log(context.Background(), level, "step finished", "succeeded", res.Succeeded(), "exit_code", res.ExitCode,
			"error", res.Error, "duration", time.Since(start))
	case errors.Is(err, stroem.ErrConflict) || errors.Is(err, stroem.ErrNotFound):
		log.Warn("completion refused as stale", "err", err)
	default:
		log.Error("completion not delivered", "err", err)
	}
	return next
}

// runStep gets the workspace files and runs the step.
func (w *Worker) runStep(ctx context.Context, log *slog.Logger, a stroem.Assignment, sink func(stroem.PushLine)) Result {
	if !slices.Contains(w.cfg.Capabilities, a.ActionType) && a.ActionType != "" {
		return Result{ExitCode: -1, Error: fmt.Sprintf("action type %q is not supported by this worker", a.ActionType)}
	}
	if a.Image != "" {
		return Result{ExitCode: -1, Error: fmt.Sprintf("action image %q needs a container runner, which this worker does not have", a.Image)}
	}
	step := Step{JobID: a.JobID, Name: a.StepName, Attempt: a.Attempt, Spec: a.Spec, Input: a.Input, Mask: w.masker(a), TraceParent: a.TraceParent}
	if a.Revision != "" {
		dir, release, err := w.acquireWorkspace(ctx, log, a.Workspace, a.Revision)
		if err != nil {
			if ctx.Err() != nil {
				return Result{ExitCode: -1, Error: cancelMessage(context.Cause(ctx)), Cancelled: true}
			}
			return Result{ExitCode: -1, Error: "get the workspace files: " + err.Error()}
		}
		defer release()
		step.Workspace = dir
	}
	return w.runner.Run(ctx, step, sink)
}

// acquireWorkspace gets the revision's files, retrying while the server is
// unreachable.
func (w *Worker) acquireWorkspace(ctx context.Context, log *slog.Logger, ws, rev string) (string, func(), error) {
	type got struct {
		dir     string
		release func()
	}
	g, err := backoff.Retry(ctx, func() (got, error) {
		dir, release, err := w.cache.Acquire(ctx, ws, rev)
		if err != nil {
			if !client.Retryable(err) || ctx.Err() != nil {
				return got{}, backoff.Permanent(err)
			}
			log.Warn("workspace download failed, retrying", "err", err)
			return got{}, err
		}
		return got{dir, release}, nil
	}, w.retryOptions()...)
	return g.dir, g.release, err
}

// complete reports a completion until the server answers 2xx or refuses it.
// While the slot takes work (claimCtx not done) and the worker still has
// the id the step was claimed under, the completion claims the slot's next
// step too (a worker shutting down asks for none, and one registered again
// would be refused under its old id); it returns the step that came with
// the answer, or nil: nothing was ready, or the server is older than the
// claim. A try whose answer is lost may have brought a step: the server
// gives it back when its start does not come (start_timeout).
func (w *Worker) complete(ctx, claimCtx context.Context, log *slog.Logger, ref stroem.StepRef, comp stroem.Completion) (*stroem.Assignment, error) {
	return retryReachable(ctx, w.retryOptions(), log, "completion not delivered, retrying", func() (*stroem.Assignment, error) {
		comp.Next = nil
		if claimCtx.Err() == nil && w.ID() == comp.WorkerID {
			comp.Next = &stroem.NextClaim{WorkerID: comp.WorkerID, Capabilities: w.cfg.Capabilities,
				Tags: w.cfg.Tags, Exclusive: w.cfg.Exclusive}
		}
		next, err := w.c.CompleteNext(ctx, ref.JobID, ref.Step, comp)
		w.down.observe(err, "complete")
		return next, err
	})
}

// heartbeatLoop renews the running steps' leases every heartbeat period and
// stops the steps the server lists. While no step runs it heartbeats every
// idle period instead (such a heartbeat renews nothing; it says the worker
// is alive), unless the server asked for the next one sooner.
func (w *Worker) heartbeatLoop(ctx context.Context) {
	last := time.Now()
	for {
		if !w.waitBeat(ctx, last) {
			return
		}
		id := w.ID()
		refs := w.runningRefs()
		w.mu.Lock()
		every := w.heartbeat
		w.mu.Unlock()
		hctx, cancel := context.WithTimeout(ctx, max(2*every, 5*time.Second))
		resp, err := w.c.Heartbeat(hctx, stroem.Heartbeat{WorkerID: id, Running: refs})
		cancel()
		last = time.Now()
		if ctx.Err() != nil {
			return
		}
		w.down.observe(err, "heartbeat")
		if err == nil {
			w.mu.Lock()
			w.soonBeat = time.Duration(resp.HeartbeatMS) * time.Millisecond
			w.mu.Unlock()
		}
		if errors.Is(err, stroem.ErrNotFound) || errors.Is(err, stroem.ErrUnauthorized) {
			// Unknown worker, or unknown credential (a server whose
			// database was reset): a new registration gets a new one.
			w.log.Warn("the server does not know this worker any more: registering again", "worker_id", id)
			if err := w.register(ctx, id); err != nil && ctx.Err() == nil {
				w.log.Error("re-register", "err", err)
			}
			continue
		}
		if err != nil {
			continue
		}
		for _, ref := range resp.Cancel {
			w.cancelStep(ref, ErrCancelledByServer)
		}
	}
}

// waitBeat waits until the next heartbeat is due, counted from last: a
// heartbeat period on while a step runs, an idle period on while none does
// (the server's request, when it made one, if that is sooner). A step that
// starts meanwhile brings it forward. It reports false when ctx ended.
func (w *Worker) waitBeat(ctx context.Context, last time.Time) bool {
	for {
		w.mu.Lock()
		every := w.heartbeat
		if len(w.running) == 0 && w.idleBeat > 0 {
			every = w.idleBeat
		}
		if w.soonBeat > 0 {
			every = min(every, w.soonBeat)
		}
		w.mu.Unlock()
		if every <= 0 {
			every = defaultHeartbeat
		}
		d := time.Until(last.Add(every))
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
			return true
		case <-w.beatWake:
			t.Stop() // a step started: the period may be shorter now
		}
	}
}

// cancelStep stops a running step; unknown refs are ignored.
func (w *Worker) cancelStep(ref stroem.StepRef, cause error) {
	w.mu.Lock()
	t := w.running[ref]
	w.mu.Unlock()
	if t != nil {
		w.log.Info("stopping step", "job_id", ref.JobID, "step", ref.Step, "attempt", ref.Attempt, "reason", cause)
		t.cancel(cause)
	}
}

func (w *Worker) runningRefs() []stroem.StepRef {
	w.mu.Lock()
	defer w.mu.Unlock()
	refs := make([]stroem.StepRef, 0, len(w.running))
	for ref := range w.running {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b stroem.StepRef) int {
		if a.JobID != b.JobID {
			return compare(a.JobID, b.JobID)
		}
		return compare(a.Step, b.Step)
	})
	return refs
}

func (w *Worker) runningCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.running)
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// downTracker logs when the server becomes unreachable and when it is back,
// once each, instead of once per failed request.
type downTracker struct {
	log   *slog.Logger
	mu    sync.Mutex
	down  bool
	since time.Time
}

func (d *downTracker) observe(err error, op string) {
	unreachable := err != nil && client.Retryable(err)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case unreachable && !d.down:
		d.down, d.since = true, time.Now()
		d.log.Warn("server unavailable: retrying with backoff, steps keep running", "op", op, "err", err)
	case err == nil && d.down:
		d.down = false
		d.log.Info("server reachable again", "op", op, "after", time.Since(d.since).Round(time.Millisecond))
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
