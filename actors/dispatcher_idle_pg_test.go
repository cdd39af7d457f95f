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

// claimCounter counts the claim queries that reach the store.
type claimCounter struct {
	*postgres.Store
	n atomic.Int64
}

func (s *claimCounter) StepsClaim(ctx context.Context, p persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	s.n.Add(1)
	return s.Store.StepsClaim(ctx, p)
}

// An idle fleet's polls do not each cost a claim query: after a claim came
// back short, new requests with the capabilities it covered wait without
// querying until a wake-up (or EmptyClaimFor) — and a step that becomes ready
// then still reaches a waiting request at once.
func TestIdlePollsShareAShortClaim(t *testing.T) {
	t.Parallel()
	var cs *claimCounter
	e := newPGEngine(t, engineWorkflow, Config{EmptyClaimFor: time.Minute}, func(ps *postgres.Store) Store {
		cs = &claimCounter{Store: ps}
		return cs
	})
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
	var cs *claimCounter
	e := newPGEngine(t, engineWorkflow, Config{EmptyClaimFor: 100 * time.Millisecond}, func(ps *postgres.Store) Store {
		cs = &claimCounter{Store: ps}
		return cs
	})
	require.Nil(t, e.claim(t, uuid.NewString(), 20*time.Millisecond))
	n := cs.n.Load()
	time.Sleep(200 * time.Millisecond) // let EmptyClaimFor pass; nothing to wait for
	require.Nil(t, e.claim(t, uuid.NewString(), 20*time.Millisecond))
	require.Greater(t, cs.n.Load(), n)
}
