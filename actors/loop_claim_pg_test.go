package actors

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/postgres"
)

const loopClaimWorkflow = `
actions:
  say:
    type: shell
    cmd: "echo {{ each.item }}"
tasks:
  fan:
    flow:
      fanout:
        action: say
        for_each: [a, b, c, d, e, f]
`

// countingStore counts JobState reads.
type countingStore struct {
	*postgres.Store
	reads atomic.Int64
}

func (c *countingStore) JobState(ctx context.Context, id string) (*persistence.JobState, error) {
	c.reads.Add(1)
	return c.Store.JobState(ctx, id)
}

// A claimed instance whose command uses each.* gets its item without a
// read of the whole job per claim (a 10,000-item loop would read its
// 10,000 steps 10,000 times): the loop's items are read once.
func TestForEachClaimsReadTheItemsOnce(t *testing.T) {
	t.Parallel()
	var cs *countingStore
	e := newPGEngine(t, loopClaimWorkflow, Config{}, func(ps *postgres.Store) Store {
		cs = &countingStore{Store: ps}
		return cs
	})
	e.create(t, "fan", nil)
	w := uuid.NewString()
	before := cs.reads.Load()
	seen := map[string]bool{}
	for range 6 {
		a := e.claimed(t, w)
		_, i, ok := stroem.ParseLoopInstance(a.StepName)
		require.True(t, ok, a.StepName)
		require.Equal(t, fmt.Sprintf("echo %c", 'a'+i), a.Spec.Cmd)
		seen[a.StepName] = true
	}
	require.Len(t, seen, 6)
	require.LessOrEqual(t, cs.reads.Load()-before, int64(1), "the loop's items are read once")
}
