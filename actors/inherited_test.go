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
	o.heartbeatSeen(w1, []stroem.StepRef{kept})
	require.Never(t, func() bool { return len(f.all()) > 0 }, 50*time.Millisecond, 5*time.Millisecond,
		"one heartbeat without it is not enough")

	o.heartbeatSeen(strings.ToUpper(w1), nil) // "kept" was confirmed already
	require.Eventually(t, func() bool { return len(f.all()) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{job + "/undelivered"}, f.all())

	for range 3 {
		o.heartbeatSeen(w1, nil)
	}
	require.Never(t, func() bool { return len(f.all()) != 1 }, 50*time.Millisecond, 5*time.Millisecond,
		"each claim is undone once; w2's are not touched")
	require.Equal(t, []string{job + "/undelivered"}, f.all())
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
