package actors

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// The worker protocol, owned here: every rule of register, claim, start,
// heartbeat, log push and complete lives in Workers; the HTTP handlers only
// decode a request, call one method and encode its answer.

// WorkerStore is what the worker protocol reads and writes in the store
// beyond what the orchestrator needs (Store).
type WorkerStore interface {
	WorkerRegister(ctx context.Context, r stroem.WorkerRegistration) (stroem.Worker, error)
	LeasesRenew(ctx context.Context, workerID string, running []stroem.StepRef, lease time.Duration) ([]stroem.StepRef, error)
	WorkersSeen(ctx context.Context, workerIDs []string) (unknown []string, err error)
	StepFence(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error)
	WorkerCredentialSet(ctx context.Context, workerID string, hash []byte) error
	WorkerByCredential(ctx context.Context, hash []byte) (string, error)
	WorkerHoldsRevision(ctx context.Context, workerID, revision string) (bool, error)
	StepStart(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error)
}

// LogSink stores pushed log lines durably, fenced by attempt in the same
// transaction, and returns the lines it stored (a retried push stores
// nothing twice); see persistence/logs.go.
type LogSink interface {
	LogAppend(ctx context.Context, a persistence.LogAppend) (persistence.LogAppended, error)
}

// LogPublisher hands stored log lines to live subscribers.
type LogPublisher interface {
	Publish(jobID string, lines []stroem.LogLine)
}

// Workers serves the worker protocol on top of an Orchestrator.
type Workers struct {
	// MaxStepLogBytes bounds the log stored for one step (0: the store's
	// persistence.DefaultMaxStepLogBytes). Set it before serving.
	MaxStepLogBytes int64

	o     *Orchestrator
	store WorkerStore
	logs  LogSink
	hub   LogPublisher
	creds credentialCache
	idle  idleBeats
	seen  seenGroups
	// seenWindow is how long an idle heartbeat waits for others to be
	// written with it (0: defaultSeenWindow; see seen.go); tests shorten it.
	seenWindow time.Duration
	order      logOrder
	// orderWait bounds holding back an early Ordered push (0:
	// defaultLogOrderWait); tests shorten it.
	orderWait time.Duration
}

// NewWorkers returns the worker protocol of o: registrations and leases in
// store, log lines into logs and then to hub.
func NewWorkers(o *Orchestrator, store WorkerStore, logs LogSink, hub LogPublisher) *Workers {
	return &Workers{o: o, store: store, logs: logs, hub: hub}
}

// Bounds of a registration (stroem.MaxWorkerField, stroem.MaxWorkerList).
const (
	maxWorkerField = stroem.MaxWorkerField
	maxWorkerList  = stroem.MaxWorkerList
)

// Register records a new worker process and tells it the lease and the
// heartbeat period. A name and at least one capability are required.
func (w *Workers) Register(ctx context.Context, reg stroem.WorkerRegistration) (stroem.WorkerRegistered, error) {
	if strings.TrimSpace(reg.Name) == "" {
		return stroem.WorkerRegistered{}, stroem.Invalid("name is required")
	}
	if len(reg.Capabilities) == 0 {
		return stroem.WorkerRegistered{}, stroem.Invalid("capabilities must list at least one action type")
	}
	// Bounds, so that one registration cannot bloat every GET /api/workers.
	if len(reg.Name) > maxWorkerField {
		return stroem.WorkerRegistered{}, stroem.Errorf(stroem.CodeInvalid, "name must be at most %d bytes", maxWorkerField)
	}
	for what, list := range map[string][]string{"capabilities": reg.Capabilities, "tags": reg.Tags} {
		if err := checkTags(what, list); err != nil {
			return stroem.WorkerRegistered{}, err
		}
	}
	if reg.MaxConcurrent < 0 {
		return stroem.WorkerRegistered{}, stroem.Invalid("max_concurrent must not be negative")
	}
	if reg.MaxConcurrent > math.MaxInt32 { // the stores keep it in an integer column
		return stroem.WorkerRegistered{}, stroem.Errorf(stroem.CodeInvalid, "max_concurrent must be at most %d", math.MaxInt32)
	}
	wk, err := w.store.WorkerRegister(ctx, reg)
	if err != nil {
		return stroem.WorkerRegistered{}, err
	}
	cred, hash := newCredential()
	if err := w.store.WorkerCredentialSet(ctx, wk.ID, hash); err != nil {
		return stroem.WorkerRegistered{}, err
	}
	w.creds.m.Store(string(hash), wk.ID)
	lease := w.o.cfg.Lease
	return stroem.WorkerRegistered{
		WorkerID: wk.ID, LeaseMS: lease.Milliseconds(), HeartbeatMS: heartbeatPeriod(lease).Milliseconds(),
		IdleHeartbeatMS: idleHeartbeat(lease).Milliseconds(),
		Credential:      cred,
	}, nil
}

// heartbeatPeriod is how often a worker running steps heartbeats
// (WorkerRegistered.HeartbeatMS): five renewals per lease.
func heartbeatPeriod(lease time.Duration) time.Duration { return lease / 5 }

// idleHeartbeat is how often a worker with no step running heartbeats
// (WorkerRegistered.IdleHeartbeatMS). Such a heartbeat renews no lease and
// is written at most once per idleBeatEvery anyway, so sending it every
// lease/5 (2 s), like one that renews leases, cost the server an HTTP
// request per idle worker every 2 s for nothing. Half the lease, at most
// half idleBeatEvery: the worker stays active (persistence.WorkerStaleAfter)
// with a heartbeat lost, and a starting server, which gives running steps
// one lease plus this to be confirmed (Start), learns which inherited
// claims an idle worker never got (inherited.go) before their leases run
// out.
func idleHeartbeat(lease time.Duration) time.Duration {
	return min(lease/2, idleBeatEvery/2)
}

// Heartbeat renews the leases of the steps the worker lists and answers the
// steps it must stop (cancelled, or no longer its own). Right after a store
// outage a lease may have run out only because no heartbeat could be
// recorded: until the running leases are extended, it tells no worker to
// stop a step.
func (w *Workers) Heartbeat(ctx context.Context, hb stroem.Heartbeat) (stroem.HeartbeatResponse, error) {
	if err := callerIs(ctx, &hb.WorkerID); err != nil {
		return stroem.HeartbeatResponse{}, err
	}
	now := time.Now()
	if len(hb.Running) == 0 {
		// No lease to renew: the heartbeat only says the worker is alive.
		// Written at most once per idleBeatEvery (idleBeats), and then
		// with the other idle heartbeats of the moment (seen.go).
		if !w.idle.recent(hb.WorkerID, now) {
			window := w.seenWindow
			if window <= 0 {
				window = defaultSeenWindow
			}
			if err := w.seen.record(ctx, w.store, hb.WorkerID, window); err != nil {
				if ctx.Err() == nil { // the store's answer, not a caller that gave up waiting
					w.o.storeFailed(err)
				}
				return stroem.HeartbeatResponse{}, err
			}
			w.idle.recorded(hb.WorkerID, now)
		}
		return w.answer(w.o.heartbeatSeen(hb.WorkerID, nil), nil), nil
	}
	cancel, err := w.store.LeasesRenew(ctx, hb.WorkerID, hb.Running, w.o.cfg.Lease)
	if err != nil {
		w.o.storeFailed(err)
		return stroem.HeartbeatResponse{}, err
	}
	w.idle.recorded(hb.WorkerID, now)
	checking := w.o.heartbeatSeen(hb.WorkerID, hb.Running)
	if !w.o.leasesTrusted() {
		cancel = nil
	}
	return w.answer(checking, cancel), nil
}

// answer is a heartbeat's answer: the steps to stop, and while this server
// checks the claims it inherited for the worker (checking), the request for
// the next heartbeat one heartbeat period on, even from an idle worker.
func (w *Workers) answer(checking bool, cancel []stroem.StepRef) stroem.HeartbeatResponse {
	if cancel == nil {
		cancel = []stroem.StepRef{}
	}
	r := stroem.HeartbeatResponse{Cancel: cancel}
	if checking {
		r.HeartbeatMS = heartbeatPeriod(w.o.cfg.Lease).Milliseconds()
	}
	return r
}

// Claim waits (up to the request's wait) for a ready step the worker can
// run; nil means nothing became ready. A caller that cannot deliver the
// assignment must give it back with Unassign.
func (w *Workers) Claim(ctx context.Context, req stroem.ClaimRequest) (*stroem.Assignment, error) {
	if err := callerIs(ctx, &req.WorkerID); err != nil {
		return nil, err
	}
	return w.o.Claim(ctx, req)
}

// Unassign gives back an assignment that never reached its worker (the
// caller's, when workerID is empty: a request may leave it out).
func (w *Workers) Unassign(ctx context.Context, a *stroem.Assignment, workerID string) {
	if workerID == "" {
		workerID, _ = ctx.Value(callerKey{}).(string)
	}
	w.o.Unassign(a, canonicalID(workerID))
}

// Start is the worker's acknowledgement of a step handed to it, sent before
// it runs anything of the step: from then on the step counts as started.
// A step not acknowledged within the start timeout is given back
// (startack.go) and its late acknowledgement refused (CodeConflict): the
// worker must then not run it. Fenced like every report; idempotent.
func (w *Workers) Start(ctx context.Context, jobID, step string, st stroem.StepStart) error {
	if err := callerIs(ctx, &st.WorkerID); err != nil {
		return err
	}
	if st.Attempt < 1 {
		return stroem.Errorf(stroem.CodeInvalid, "attempt must be at least 1, got %d", st.Attempt)
	}
	_, err := w.store.StepStart(ctx, jobID, step, st.Attempt, st.WorkerID)
	if err == nil {
		w.o.acknowledged(stroem.StepRef{JobID: jobID, Step: step, Attempt: st.Attempt})
	}
	return err
}

// PushLogs stores a batch of log lines durably, then publishes them. The
// lines are masked with the job's secrets before anything is stored, and
// the push is fenced by the store in the transaction that stores it: no
// line is stored for an attempt that is not the step's running one (one
// declared lost a moment ago included). An Ordered push that came before
// the lines ahead of it is held back a moment rather than refused
// (logorder.go).
func (w *Workers) PushLogs(ctx context.Context, jobID, step string, p stroem.LogPush) (stroem.LogPushResponse, error) {
	if err := callerIs(ctx, &p.WorkerID); err != nil {
		return stroem.LogPushResponse{}, err
	}
	// The cheap checks first: a bad push costs no job lookup.
	if err := persistence.LogCheck(persistence.LogAppend{Step: step, Attempt: p.Attempt, Offset: p.Offset}); err != nil {
		return stroem.LogPushResponse{}, err
	}
	lines, err := persistence.PrepareLogLines(p.Lines, nil)
	if err != nil {
		return stroem.LogPushResponse{}, err
	}
	p.Lines = lines
	if len(p.Lines) > 0 {
		masker, err := w.o.Masker(ctx, jobID)
		if err != nil {
			return stroem.LogPushResponse{}, err
		}
		for i := range p.Lines {
			p.Lines[i].Text = masker.Mask(p.Lines[i].Text)
		}
	}
	stored, done, err := w.appendOrdered(ctx, persistence.LogAppend{
		JobID: jobID, Step: step, Attempt: p.Attempt, WorkerID: p.WorkerID, Offset: p.Offset,
		Lines: p.Lines, MaxStepBytes: w.MaxStepLogBytes, Ordered: p.Ordered,
	})
	defer done()
	if err != nil {
		return stroem.LogPushResponse{}, err
	}
	if len(stored.Lines) > 0 {
		w.hub.Publish(jobID, stored.Lines)
	}
	return stroem.LogPushResponse{Cancel: stored.Cancel, Stored: len(stored.Lines), Ahead: stored.Ahead, Ordered: p.Ordered}, nil
}

// Complete applies the worker's report of an attempt's end (fenced: a
// stale report is CodeConflict and changes nothing). With c.Next it also
// claims the slot's next step without waiting (Orchestrator.StepCompleteNext)
// and returns it, or nil; a caller that cannot deliver it must give it back
// with Unassign.
func (w *Workers) Complete(ctx context.Context, jobID, step string, c stroem.Completion) (*stroem.Assignment, error) {
	if err := callerIs(ctx, &c.WorkerID); err != nil {
		return nil, err
	}
	if c.Next != nil {
		next := *c.Next
		if next.WorkerID == "" {
			next.WorkerID = c.WorkerID
		}
		if err := checkWorkerID(&next.WorkerID); err != nil {
			return nil, err
		}
		if next.WorkerID != c.WorkerID {
			return nil, stroem.Invalid("next.worker_id must be the completion's worker_id: a slot claims for its own worker")
		}
		if len(next.Capabilities) == 0 {
			return nil, stroem.Invalid("next.capabilities must list at least one action type")
		}
		if err := checkTags("next.tags", next.Tags); err != nil {
			return nil, err
		}
		c.Next = &next
	}
	if c.ExitCode < math.MinInt32 || c.ExitCode > math.MaxInt32 {
		// Stored in an int column: a larger one failed the update (500).
		return nil, stroem.Errorf(stroem.CodeInvalid, "exit_code %d is out of range (a 32-bit integer)", c.ExitCode)
	}
	c.Error = stroem.SanitizeText(c.Error)
	return w.o.StepCompleteNext(ctx, jobID, step, c)
}

// checkWorkerID checks that *id is a UUID and rewrites it in the canonical
// form the server issued, so a worker that sends it upper-cased or braced is
// still recognised by every fence and lease.
func checkWorkerID(id *string) error {
	if *id == "" {
		return stroem.Invalid("worker_id is required")
	}
	u, err := uuid.Parse(*id)
	if err != nil {
		return stroem.Errorf(stroem.CodeInvalid, "invalid worker_id %q: not a UUID", *id)
	}
	*id = u.String()
	return nil
}

// idleBeatEvery is how often a worker with no step running has its
// heartbeat written to the store: its last_heartbeat_at only tells whether
// it is active (persistence.WorkerStaleAfter), so a third of that is
// plenty. A heartbeat that lists steps always goes to the store (it renews
// their leases and learns of cancellations).
const idleBeatEvery = persistence.WorkerStaleAfter / 3

// idleBeats remembers when this server last recorded each worker's
// heartbeat. An idle fleet otherwise costs a durable commit per worker per
// heartbeat period (100 workers: 50 a second) for nothing but a timestamp.
// Each server keeps its own: a worker heartbeating to several servers gets
// at least one write per idleBeatEvery from each, and a server that
// restarted writes (and so finds out the worker is unknown) at once.
type idleBeats struct {
	mu    sync.Mutex
	last  map[string]time.Time
	swept time.Time
}

func (b *idleBeats) recent(workerID string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.last[workerID]
	return ok && now.Sub(t) < idleBeatEvery
}

func (b *idleBeats) recorded(workerID string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil {
		b.last = map[string]time.Time{}
	}
	b.last[workerID] = now
	if now.Sub(b.swept) > idleBeatEvery { // forget workers that went away
		for id, t := range b.last {
			if now.Sub(t) >= idleBeatEvery {
				delete(b.last, id)
			}
		}
		b.swept = now
	}
}
