package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// sweepStore counts the sweeps for unacknowledged hand-offs.
type sweepStore struct {
	Store
	sweeps atomic.Int32
}

func (f *sweepStore) StepsGiveBackUnstarted(context.Context, time.Duration, int) ([]persistence.HeldStep, error) {
	f.sweeps.Add(1)
	return nil, nil
}

// The store is swept at a hand-off's deadline only if its acknowledgement
// did not come in here; the periodic sweep (every StartTimeout/2) runs
// whatever happened.
func TestStartSweepOnlyForUnacknowledgedHandOffs(t *testing.T) {
	t.Parallel()
	f := &sweepStore{}
	// The periodic sweep is far off (5 s); deadlines are 100 ms away.
	o := New(Config{Lease: time.Minute, StartTimeout: 10 * time.Second}, f, nil, nil, nil)
	go o.watchStarts()
	t.Cleanup(o.Stop)
	due := func(step string) stroem.StepRef {
		ref := stroem.StepRef{JobID: "0b7e3c1a-8d61-4b57-9a51-4c1f1f6a2c01", Step: step, Attempt: 1}
		o.unacked.Store(ref, struct{}{})
		o.startDue <- startDue{at: time.Now().Add(100 * time.Millisecond), ref: ref}
		return ref
	}

	o.acknowledged(due("acked"))
	require.Never(t, func() bool { return f.sweeps.Load() > 0 }, 400*time.Millisecond, 10*time.Millisecond,
		"acknowledged here: no sweep at its deadline")

	due("frozen")
	require.Eventually(t, func() bool { return f.sweeps.Load() == 1 }, 5*time.Second, 10*time.Millisecond,
		"not acknowledged: swept at its deadline")
}
