package actors

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// writeNow writes the group being gathered, if any, without waiting for
// its window.
func (g *seenGroups) writeNow(store WorkerStore) {
	g.mu.Lock()
	grp := g.pending
	g.mu.Unlock()
	if grp != nil {
		g.write(store, grp)
	}
}

// gathering is how many workers the group being gathered holds.
func (g *seenGroups) gathering() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending == nil {
		return 0
	}
	return len(g.pending.ids)
}

// idleBeatsAtOnce sends an idle heartbeat of each worker at once and
// returns, once the group they wait in holds them all, a function that
// writes the group and returns each heartbeat's error.
func idleBeatsAtOnce(t *testing.T, w *Workers, f *workerStore, ctx context.Context, ids ...string) func() []error {
	t.Helper()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: id})
		}()
	}
	require.Eventually(t, func() bool { return w.seen.gathering() == len(ids) }, 10*time.Second, time.Millisecond)
	return func() []error {
		w.seen.writeNow(f)
		wg.Wait()
		return errs
	}
}

// Idle heartbeats due at the same moment are written to the store in one
// write, and each waits for it: an unknown worker still learns it must
// register again, a store outage still reaches every one of them (and puts
// leases in doubt). A heartbeat listing steps does not wait for the group.
func TestWorkersIdleHeartbeatsAreWrittenTogether(t *testing.T) {
	t.Parallel()
	w, f, _ := newTestWorkers(t)
	w.seenWindow = time.Hour // written by the test (writeNow)
	ctx := context.Background()
	a, b, c := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.unknown = map[string]bool{b: true}

	write := idleBeatsAtOnce(t, w, f, ctx, a, b, c)
	running := []stroem.StepRef{{JobID: uuid.NewString(), Step: "s", Attempt: 1}}
	_, err := w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: a, Running: running})
	require.NoError(t, err)
	require.Empty(t, f.groups, "a heartbeat listing steps went to the store at once, the group waits")
	require.Equal(t, []string{a}, f.renewed)

	errs := write()
	require.Len(t, f.groups, 1, "three idle heartbeats, one write")
	require.ElementsMatch(t, []string{a, b, c}, f.groups[0])
	require.NoError(t, errs[0])
	require.ErrorIs(t, errs[1], stroem.ErrNotFound, "an unknown worker must register again")
	require.Contains(t, errs[1].Error(), b)
	require.NoError(t, errs[2])

	// Recorded: the next idle heartbeats of a and c need no write; b,
	// unknown, is not recorded and is written (and refused) again.
	_, err = w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: a})
	require.NoError(t, err)
	write = idleBeatsAtOnce(t, w, f, ctx, b)
	errs = write()
	require.ErrorIs(t, errs[0], stroem.ErrNotFound)
	require.Equal(t, [][]string{{b}}, f.groups[1:])

	// The store down: every heartbeat of the group gets the error, and
	// leases are in doubt.
	d := uuid.NewString()
	f.renewErr = stroem.Errorf(stroem.CodeUnavailable, "database unavailable")
	write = idleBeatsAtOnce(t, w, f, ctx, d, b)
	for _, err := range write() {
		require.ErrorIs(t, err, stroem.ErrUnavailable)
	}
	require.False(t, w.o.leasesTrusted())

	// A request that gives up waiting leaves the group to the others.
	f.renewErr = nil
	gone, cancel := context.WithCancel(ctx)
	e := uuid.NewString()
	write = idleBeatsAtOnce(t, w, f, ctx, e)
	done := make(chan error, 1)
	go func() { _, err := w.Heartbeat(gone, stroem.Heartbeat{WorkerID: d}); done <- err }()
	require.Eventually(t, func() bool { return w.seen.gathering() == 2 }, 10*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.NoError(t, write()[0])
	require.ElementsMatch(t, []string{e, d}, f.groups[len(f.groups)-1])
}

// Left to its window, a group is written by itself.
func TestWorkersIdleHeartbeatGroupWrittenAfterItsWindow(t *testing.T) {
	t.Parallel()
	w, f, _ := newTestWorkers(t)
	w.seenWindow = 20 * time.Millisecond
	_, err := w.Heartbeat(context.Background(), stroem.Heartbeat{WorkerID: uuid.NewString()})
	require.NoError(t, err)
	require.Len(t, f.groups, 1)
}

// A heartbeat whose caller stops waiting (its deadline passes) before the
// group is written says nothing about the store: leases stay trusted.
func TestWorkersIdleHeartbeatGivingUpIsNoOutage(t *testing.T) {
	t.Parallel()
	w, f, _ := newTestWorkers(t)
	w.seenWindow = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := w.Heartbeat(ctx, stroem.Heartbeat{WorkerID: uuid.NewString()})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.True(t, w.o.leasesTrusted())
	w.seen.writeNow(f)
}
