package actors

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// workerStore records what the worker protocol asks of the store.
type workerStore struct {
	outageStore
	mu       sync.Mutex
	renewErr error
	cancel   []stroem.StepRef
	renewed  []string // worker ids, of LeasesRenew and WorkersSeen
	groups   [][]string
	unknown  map[string]bool // WorkersSeen: no such worker
	fenced   []string        // job/step/attempt/worker
	started  []string        // job/step/attempt/worker
	stale    bool            // StepFence answers cancel=true
	creds    fakeCreds
}

func (f *workerStore) WorkerRegister(_ context.Context, r stroem.WorkerRegistration) (stroem.Worker, error) {
	return stroem.Worker{ID: "0b7e3c1a-8d61-4b57-9a51-4c1f1f6a2c01", Name: r.Name}, nil
}

func (f *workerStore) LeasesRenew(_ context.Context, workerID string, _ []stroem.StepRef, _ time.Duration) ([]stroem.StepRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewed = append(f.renewed, workerID)
	return f.cancel, f.renewErr
}

func (f *workerStore) WorkersSeen(_ context.Context, workerIDs []string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewed = append(f.renewed, workerIDs...)
	f.groups = append(f.groups, workerIDs)
	var unknown []string
	for _, id := range workerIDs {
		if f.unknown[id] {
			unknown = append(unknown, id)
		}
	}
	return unknown, f.renewErr
}

func (f *workerStore) StepFence(_ context.Context, jobID, step string, attempt int, workerID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fenced = append(f.fenced, jobID+"/"+step+"/"+strconv.Itoa(attempt)+"/"+workerID)
	return f.stale, nil
}

func (f *workerStore) StepStart(_ context.Context, jobID, step string, attempt int, workerID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, jobID+"/"+step+"/"+strconv.Itoa(attempt)+"/"+workerID)
	return false, nil
}

// logSink records appended batches, checked with the helpers the stores
// use; cancel is what its fence answers. It also records published lines.
type logSink struct {
	cancel    bool
	appended  []persistence.LogAppend
	published [][]stroem.LogLine
}

func (l *logSink) LogAppend(_ context.Context, a persistence.LogAppend) (persistence.LogAppended, error) {
	if err := persistence.LogCheck(a); err != nil {
		return persistence.LogAppended{}, err
	}
	lines, err := persistence.PrepareLogLines(a.Lines, nil)
	if err != nil {
		return persistence.LogAppended{}, err
	}
	l.appended = append(l.appended, a)
	out := make([]stroem.LogLine, 0, len(lines))
	for _, pl := range lines {
		out = append(out, stroem.LogLine{Step: a.Step, Stream: pl.Stream, Text: pl.Text})
	}
	return persistence.LogAppended{Lines: out, Cancel: l.cancel}, nil
}

func (l *logSink) Publish(_ string, lines []stroem.LogLine) { l.published = append(l.published, lines) }

func newTestWorkers(t *testing.T) (*Workers, *workerStore, *logSink) {
	t.Helper()
	f := &workerStore{}
	o := New(Config{Lease: 5 * time.Second}, f, nil, nil, nil)
	logs := &logSink{}
	w := NewWorkers(o, f, logs, logs)
	w.seenWindow = 5 * time.Millisecond
	return w, f, logs
}

// Register checks the registration and answers the server's lease and the
// heartbeat period (lease/5).
func TestWorkersRegister(t *testing.T) {
	t.Parallel()
	w, _, _ := newTestWorkers(t)
	ctx := context.Background()

	_, err := w.Register(ctx, stroem.WorkerRegistration{Name: " ", Capabilities: []string{"shell"}})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	require.Contains(t, err.Error(), "name is required")
	_, err = w.Register(ctx, stroem.WorkerRegistration{Name: "w"})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	require.Contains(t, err.Error(), "capabilities")
	_, err = w.Register(ctx, stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}, MaxConcurrent: -1})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	require.Contains(t, err.Error(), "max_concurrent")
	// PostgreSQL keeps it in an integer column: beyond, its store answered
	// an internal error (500) where SQLite stored it.
	_, err = w.Register(ctx, stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}, MaxConcurrent: math.MaxInt32 + 1})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	require.Contains(t, err.Error(), "max_concurrent")
	// Bounded: one registration cannot bloat every worker list.
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprint("cap", i)
	}
	for _, reg := range []stroem.WorkerRegistration{
		{Name: strings.Repeat("n", 257), Capabilities: []string{"shell"}},
		{Name: "w", Capabilities: many},
		{Name: "w", Capabilities: []string{"shell", ""}},
		{Name: "w", Capabilities: []string{strings.Repeat("c", 257)}},
		{Name: "w", Capabilities: []string{"shell"}, Tags: many},
		{Name: "w", Capabilities: []string{"shell"}, Tags: []string{" "}},
	} {
		_, err = w.Register(ctx, reg)
		require.ErrorIs(t, err, stroem.ErrInvalid, "%.80v", reg)
	}

	got, err := w.Register(ctx, stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}})
	require.NoError(t, err)
	require.NotEmpty(t, got.Credential) // TestWorkerCredentials
	got.Credential = ""
	require.Equal(t, stroem.WorkerRegistered{WorkerID: "0b7e3c1a-8d61-4b57-9a51-4c1f1f6a2c01", LeaseMS: 5000, HeartbeatMS: 1000, IdleHeartbeatMS: 2500}, got)
}

// A heartbeat's worker id must be a UUID and is canonicalised; a failed
// renewal because the store is down puts leases in doubt, and until they
// are trusted again no heartbeat answer tells a worker to stop a step.
func TestWorkersHeartbeat(t *testing.T) {
	t.Parallel()
	w, f, _ := newTestWorkers(t)
	ctx := context.Background()
	id := uuid.NewString()
	stop := []stroem.StepRef{{JobID: uuid.NewString(), Step: "a", Attempt: 1}}
	f.cancel = stop

	_, err := w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: "not-a-uuid"})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	_, err = w.Heartbeat(ctx, stroem.Heartbeat{})
	require.ErrorIs(t, err, stroem.ErrInvalid)

	resp, err := w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: "{" + id + "}", Running: stop})
	require.NoError(t, err)
	require.Equal(t, stop, resp.Cancel)
	require.Equal(t, []string{id}, f.renewed, "the worker id reaches the store canonical")

	// A worker with a step running always reaches the store (its leases).
	f.renewErr = stroem.Errorf(stroem.CodeUnavailable, "database unavailable")
	_, err = w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: id, Running: stop})
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	require.False(t, w.o.leasesTrusted(), "an unreachable store puts leases in doubt")

	f.renewErr = nil
	resp, err = w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: id, Running: stop})
	require.NoError(t, err)
	require.Equal(t, []stroem.StepRef{}, resp.Cancel, "no stop list while leases are in doubt")
}

// An idle worker's heartbeat (no step listed) is written to the store once
// per idleBeatEvery: the rest only prove it is alive, which the last write
// already says for longer than they come. A heartbeat listing steps always
// goes to the store, and a worker this server has not written yet does too.
func TestWorkersIdleHeartbeatWritesSparingly(t *testing.T) {
	t.Parallel()
	w, f, _ := newTestWorkers(t)
	ctx := context.Background()
	a, b := uuid.NewString(), uuid.NewString()
	running := []stroem.StepRef{{JobID: uuid.NewString(), Step: "s", Attempt: 1}}

	for range 3 {
		resp, err := w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: a})
		require.NoError(t, err)
		require.Equal(t, []stroem.StepRef{}, resp.Cancel)
	}
	require.Equal(t, []string{a}, f.renewed, "idle: one write for three heartbeats")

	_, err := w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: a, Running: running})
	require.NoError(t, err)
	_, err = w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: b})
	require.NoError(t, err)
	require.Equal(t, []string{a, a, b}, f.renewed, "a step listed, or another worker: written")

	// Once idleBeatEvery has passed since the last write, the next is written.
	w.idle.mu.Lock()
	w.idle.last[a] = time.Now().Add(-idleBeatEvery)
	w.idle.mu.Unlock()
	_, err = w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: a})
	require.NoError(t, err)
	require.Equal(t, []string{a, a, b, a}, f.renewed)
}

// A log push is checked (offset, streams, worker id) before anything is
// stored; the store's fence answer (cancel) reaches the worker.
func TestWorkersPushLogs(t *testing.T) {
	t.Parallel()
	w, _, logs := newTestWorkers(t)
	ctx := context.Background()
	job, worker := uuid.NewString(), uuid.NewString()

	_, err := w.PushLogs(ctx, job, "a", stroem.LogPush{WorkerID: worker, Attempt: 1, Offset: -1})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	_, err = w.PushLogs(ctx, job, "a", stroem.LogPush{WorkerID: worker, Attempt: 1,
		Lines: []stroem.PushLine{{Stream: "stdin", Text: "x"}}})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	require.Contains(t, err.Error(), "lines[0].stream")
	_, err = w.PushLogs(ctx, job, "a", stroem.LogPush{WorkerID: "nope", Attempt: 1})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	require.Empty(t, logs.appended, "nothing is stored for a bad push")

	logs.cancel = true
	resp, err := w.PushLogs(ctx, job, "a", stroem.LogPush{WorkerID: "{" + worker + "}", Attempt: 1})
	require.NoError(t, err)
	require.Equal(t, stroem.LogPushResponse{Cancel: true}, resp, "an empty push only asks the fence")
	require.Len(t, logs.appended, 1)
	require.Equal(t, persistence.LogAppend{JobID: job, Step: "a", Attempt: 1, WorkerID: worker, Lines: []stroem.PushLine{}}, logs.appended[0],
		"the store fences with the canonical worker id")
	require.Empty(t, logs.published, "nothing to publish")
}

// Start and Complete are fenced with the canonical worker id; a bad one is
// refused before the store or the job is asked.
func TestWorkersStartAndCompleteCheckTheWorker(t *testing.T) {
	t.Parallel()
	w, f, _ := newTestWorkers(t)
	ctx := context.Background()
	job, worker := uuid.NewString(), uuid.NewString()

	require.ErrorIs(t, w.Start(ctx, job, "a", stroem.StepStart{Attempt: 1}), stroem.ErrInvalid)
	_, err := w.Complete(ctx, job, "a", stroem.Completion{WorkerID: "x", Attempt: 1})
	require.ErrorIs(t, err, stroem.ErrInvalid)
	for _, next := range []*stroem.NextClaim{
		{WorkerID: uuid.NewString(), Capabilities: []string{"shell"}}, // another worker's slot
		{WorkerID: worker}, // no capability
		{WorkerID: "x", Capabilities: []string{"shell"}}, // not a worker id
	} {
		_, err = w.Complete(ctx, job, "a", stroem.Completion{WorkerID: worker, Attempt: 1, Next: next})
		require.ErrorIs(t, err, stroem.ErrInvalid, "%+v", next)
	}
	for _, code := range []int{math.MaxInt32 + 1, math.MinInt32 - 1} {
		_, err = w.Complete(ctx, job, "a", stroem.Completion{WorkerID: worker, Attempt: 1, ExitCode: code})
		require.ErrorIs(t, err, stroem.ErrInvalid, "exit code %d: the store keeps 32 bits", code)
	}
	require.ErrorIs(t, w.Start(ctx, job, "a", stroem.StepStart{WorkerID: worker}), stroem.ErrInvalid, "attempt 0")
	require.NoError(t, w.Start(ctx, job, "a", stroem.StepStart{WorkerID: strings.ToUpper(worker), Attempt: 2}))
	require.Equal(t, []string{job + "/a/2/" + worker}, f.started, "recorded as the acknowledgement, canonical id")
}
