package actors

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/postgres"
)

// claimSpy counts the claim queries that reach the store, and hides the
// ready steps from them while hide is set, as a claim's SKIP LOCKED does
// with a step row a concurrent transaction holds.
type claimSpy struct {
	*postgres.Store
	n    atomic.Int64
	hide atomic.Bool
}

func (s *claimSpy) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	s.n.Add(1)
	if s.hide.Load() {
		return nil, nil
	}
	return s.Store.StepsClaim(ctx, p)
}

// spiedEngine is a PostgreSQL engine whose claims go through a claimSpy.
func spiedEngine(t *testing.T, cfg Config) (*pgEngine, *claimSpy) {
	var cs *claimSpy
	e := newPGEngine(t, engineWorkflow, cfg, func(ps *postgres.Store) Store {
		cs = &claimSpy{Store: ps}
		return cs
	})
	return e, cs
}

// An idle fleet's polls do not each cost a claim query: after a claim came
// back short, new requests with the capabilities it covered wait without
// querying until a wake-up (or EmptyClaimFor) — and a step that becomes ready
// then still reaches a waiting request at once.
func TestIdlePollsShareAShortClaim(t *testing.T) {
	t.Parallel()
	e, cs := spiedEngine(t, Config{EmptyClaimFor: time.Minute})
	// Let the start-up's wake-ups pass, then one short claim.
	for deadline := time.Now().Add(5 * time.Second); ; {
		n := cs.n.Load()
		require.Nil(t, e.claim(t, uuid.NewString(), 20*time.Millisecond))
		if cs.n.Load() == n+1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "no claim query reached the store")
	}
	base := cs.n.Load()
	for range 10 {
		require.Nil(t, e.claim(t, uuid.NewString(), 20*time.Millisecond))
	}
	require.Equal(t, base, cs.n.Load(), "ten idle polls after a short claim: no query of their own")

	got := make(chan string, 1)
	go func() {
		a, err := e.o.Claim(context.Background(), stroem.ClaimRequest{
			WorkerID: uuid.NewString(), Capabilities: []string{"shell"}, WaitMS: 10_000,
		})
		if err == nil && a != nil {
			got <- a.JobID
		}
		close(got)
	}()
	require.Eventually(t, func() bool { return e.o.WaitingClaims() > 0 }, 5*time.Second, 5*time.Millisecond)
	id, err := e.o.JobCreate(context.Background(), JobRequest{Workspace: "default", Task: "one"})
	require.NoError(t, err)
	select {
	case j := <-got:
		require.Equal(t, id, j, "the waiting request got the new step (the wake-up queued it)")
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting request never got the new step")
	}

}

// EmptyClaimFor bounds what a short claim vouches for: a request after it
// queries again, wake-up or not.
func TestShortClaimVouchesForEmptyClaimForOnly(t *testing.T) {
	t.Parallel()
	e, cs := spiedEngine(t, Config{EmptyClaimFor: 100 * time.Millisecond})
	require.Nil(t, e.claim(t, uuid.NewString(), 20*time.Millisecond))
	n := cs.n.Load()
	time.Sleep(200 * time.Millisecond) // let EmptyClaimFor pass; nothing to wait for
	require.Nil(t, e.claim(t, uuid.NewString(), 20*time.Millisecond))
	require.Greater(t, cs.n.Load(), n)
}

// A request that waits without querying because a short claim vouched for
// its capabilities looks again once EmptyClaimFor has passed: a step that
// was ready all along (the short claim missed it, and no wake-up follows)
// is not left ready while the request waits out its long poll.
func TestRequestSparedByShortClaimLooksAgainAfterEmptyClaimFor(t *testing.T) {
	t.Parallel()
	e, hs := spiedEngine(t, Config{EmptyClaimFor: 100 * time.Millisecond})
	id := e.create(t, "one", nil) // ready; its wake-up finds nobody waiting
	hs.hide.Store(true)
	require.Nil(t, e.claim(t, uuid.NewString(), 20*time.Millisecond), "the hidden step was claimed")
	hs.hide.Store(false)

	start := time.Now()
	a := e.claim(t, uuid.NewString(), 5*time.Second)
	require.NotNil(t, a, "the ready step was never handed to the waiting request")
	require.Equal(t, id, a.JobID)
	require.Less(t, time.Since(start), 2*time.Second, "the request waited out its long poll with a step ready")
}
