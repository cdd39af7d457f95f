package actors

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// inheritStore holds the steps an earlier server left running and records
// the claims undone.
type inheritStore struct {
	Store
	running []persistence.HeldStep
	unclaimLog
}

func (f *inheritStore) StepsRunning(context.Context) ([]persistence.HeldStep, error) {
	return f.running, nil
}

// StepLease: every step is still running its inherited attempt, except
// "ended", which completed meanwhile.
func (f *inheritStore) StepLease(_ context.Context, _, step string) (StepLease, error) {
	for _, h := range f.running {
		if h.Step == step && step != "ended" {
			return StepLease{Attempt: h.Attempt, Status: stroem.StepRunning}, nil
		}
	}
	return StepLease{Attempt: 1, Status: stroem.StepCompleted}, nil
}

func (f *inheritStore) StepUnclaim(_ context.Context, jobID, step string, _ int, _ string) error {
	f.record(jobID + "/" + step)
	return nil
}

// A step an earlier server process left running for a worker that leaves it
// out of two heartbeats was never delivered: its claim is undone. A step the
// worker lists is its own, one that ended meanwhile is left alone, and steps
// of other workers are not touched.
func TestInheritedClaimNeverDeliveredIsUndone(t *testing.T) {
	t.Parallel()
	const (
		job = "0b7e3c1a-8d61-4b57-9a51-4c1f1f6a2c01"
		w1  = "6f1c2b7e-0d4a-4e8b-9a3e-5f0c1d2e3a4b"
		w2  = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
	)
	f := &inheritStore{running: []persistence.HeldStep{
		{StepRef: stroem.StepRef{JobID: job, Step: "kept", Attempt: 1}, WorkerID: w1},
		{StepRef: stroem.StepRef{JobID: job, Step: "undelivered", Attempt: 2}, WorkerID: w1},
		{StepRef: stroem.StepRef{JobID: job, Step: "ended", Attempt: 1}, WorkerID: w1},
		{StepRef: stroem.StepRef{JobID: job, Step: "other", Attempt: 1}, WorkerID: w2},
	}}
	o := New(Config{Lease: time.Minute}, f, nil, nil, nil)
	require.NoError(t, o.inherit(context.Background()))

	kept := stroem.StepRef{JobID: strings.ToUpper(job), Step: "kept", Attempt: 1}
	require.True(t, o.heartbeatSeen(w1, []stroem.StepRef{kept}), "still checking w1: its next heartbeat is wanted soon")
	require.Never(t, func() bool { return len(f.all()) > 0 }, 50*time.Millisecond, 5*time.Millisecond,
		"one heartbeat without it is not enough")

	// "kept" was confirmed already; the second miss ends w1's check.
	require.False(t, o.heartbeatSeen(strings.ToUpper(w1), nil), "nothing more to check for w1")
	require.Eventually(t, func() bool { return len(f.all()) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{job + "/undelivered"}, f.all())

	for range 3 {
		require.False(t, o.heartbeatSeen(w1, nil))
	}
	require.Never(t, func() bool { return len(f.all()) != 1 }, 50*time.Millisecond, 5*time.Millisecond,
		"each claim is undone once; w2's are not touched")
	require.Equal(t, []string{job + "/undelivered"}, f.all())
	require.True(t, o.heartbeatSeen(w2, []stroem.StepRef{}), "w2 is still checked")
}

// While this server checks a worker's inherited claims, the heartbeat
// answer asks for the next heartbeat a heartbeat period on (the worker may
// be idle, and heartbeat far less often); otherwise it asks nothing.
func TestInheritedClaimsAskForHeartbeatsSooner(t *testing.T) {
	t.Parallel()
	const w1, w2 = "6f1c2b7e-0d4a-4e8b-9a3e-5f0c1d2e3a4b", "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d"
	inh := &inheritStore{running: []persistence.HeldStep{
		{StepRef: stroem.StepRef{JobID: "0b7e3c1a-8d61-4b57-9a51-4c1f1f6a2c01", Step: "s", Attempt: 1}, WorkerID: w1},
	}}
	f := &inheritingWorkers{workerStore: &workerStore{}, inh: inh}
	o := New(Config{Lease: 5 * time.Second}, f, nil, nil, nil)
	require.NoError(t, o.inherit(context.Background()))
	w := NewWorkers(o, f, nil, nil)
	w.seenWindow = time.Millisecond
	ctx := context.Background()
	resp, err := w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: w1})
	require.NoError(t, err)
	require.Equal(t, int64(1000), resp.HeartbeatMS, "lease/5: s is left out once, w1's check goes on")
	resp, err = w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: w1})
	require.NoError(t, err)
	require.Zero(t, resp.HeartbeatMS, "s left out twice: w1's check is over")
	resp, err = w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: w2})
	require.NoError(t, err)
	require.Zero(t, resp.HeartbeatMS, "nothing inherited for w2")
	require.Eventually(t, func() bool { return len(inh.all()) == 1 }, 5*time.Second, 5*time.Millisecond, "s undone")
}

// inheritingWorkers is a workerStore holding inheritStore's running steps.
type inheritingWorkers struct {
	*workerStore
	inh *inheritStore
}

func (f *inheritingWorkers) StepsRunning(ctx context.Context) ([]persistence.HeldStep, error) {
	return f.inh.StepsRunning(ctx)
}

func (f *inheritingWorkers) StepLease(ctx context.Context, jobID, step string) (StepLease, error) {
	return f.inh.StepLease(ctx, jobID, step)
}

func (f *inheritingWorkers) StepUnclaim(ctx context.Context, jobID, step string, attempt int, workerID string) error {
	return f.inh.StepUnclaim(ctx, jobID, step, attempt, workerID)
}

// Heartbeats are checked only for a few leases after the start: a worker
// that comes back later has lost its steps by lease expiry already.
func TestInheritedClaimsExpire(t *testing.T) {
	t.Parallel()
	f := &inheritStore{running: []persistence.HeldStep{
		{StepRef: stroem.StepRef{JobID: "0b7e3c1a-8d61-4b57-9a51-4c1f1f6a2c01", Step: "s", Attempt: 1}, WorkerID: "w"},
	}}
	o := New(Config{Lease: 20 * time.Millisecond}, f, nil, nil, nil)
	require.NoError(t, o.inherit(context.Background()))
	until := func() time.Time {
		o.inherited.mu.Lock()
		defer o.inherited.mu.Unlock()
		return o.inherited.until
	}()
	require.Eventually(t, func() bool { return time.Now().After(until) }, 5*time.Second, 5*time.Millisecond)
	o.heartbeatSeen("w", nil)
	o.heartbeatSeen("w", nil)
	require.Never(t, func() bool { return len(f.all()) > 0 }, 50*time.Millisecond, 5*time.Millisecond,
		"heartbeats after the check window undo nothing")
}
