package actors

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// outageStore is a store that can be switched off; only what the outage
// watch calls is implemented: Ping, LeasesExtendAll and LeasesExpired (the
// lease sweep it runs every fifth period while leases are trusted).
type outageStore struct {
	Store
	down     atomic.Bool
	extended atomic.Int64
}

func (f *outageStore) Ping(context.Context) error {
	if f.down.Load() {
		return stroem.Errorf(stroem.CodeUnavailable, "database unavailable")
	}
	return nil
}

// LeasesExpired finds no expired lease. The sweep is not what this test is
// about, but the watch runs it at every fifth period in which the store is
// up and leases are trusted: on a busy machine the test may be that slow
// between two of its steps.
func (f *outageStore) LeasesExpired(context.Context, int) ([]stroem.StepRef, error) {
	if f.down.Load() {
		return nil, stroem.Errorf(stroem.CodeUnavailable, "database unavailable")
	}
	return nil, nil
}

func (f *outageStore) LeasesExtendAll(context.Context, time.Duration) (int64, error) {
	if f.down.Load() {
		return 0, stroem.Errorf(stroem.CodeUnavailable, "database unavailable")
	}
	f.extended.Add(1)
	return 1, nil
}

// An unreachable store puts leases in doubt (expired leases are not lost
// workers, heartbeats stop no step) until the running leases have been
// extended once the store answers again: no heartbeat could be recorded
// meanwhile, as if the server had been down.
func TestStoreOutageHoldsLeasesUntilExtended(t *testing.T) {
	t.Parallel()
	f := &outageStore{}
	o := New(Config{Lease: 250 * time.Millisecond}, f, nil, nil, nil)
	go o.watchStore()
	defer o.Stop()
	require.True(t, o.leasesTrusted())

	// The watch notices an outage no other call ran into.
	f.down.Store(true)
	require.Eventually(t, func() bool { return !o.leasesTrusted() }, 5*time.Second, 10*time.Millisecond)
	require.Never(t, o.leasesTrusted, 200*time.Millisecond, 10*time.Millisecond, "several watch periods: still down")
	require.Zero(t, f.extended.Load())

	f.down.Store(false)
	require.Eventually(t, o.leasesTrusted, 5*time.Second, 10*time.Millisecond)
	require.EqualValues(t, 1, f.extended.Load(), "leases are extended once after the outage")

	// A failed call reports an outage too; other errors do not.
	o.storeFailed(errors.New("syntax error at or near"))
	o.storeFailed(stroem.Errorf(stroem.CodeConflict, "stale"))
	require.True(t, o.leasesTrusted())
	o.storeFailed(stroem.Errorf(stroem.CodeUnavailable, "database unavailable"))
	require.False(t, o.leasesTrusted())
	require.Eventually(t, o.leasesTrusted, 5*time.Second, 10*time.Millisecond)
	require.EqualValues(t, 2, f.extended.Load())
}
