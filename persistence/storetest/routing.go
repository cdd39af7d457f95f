package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// routingTable is the upstream's table of its migration 042: whether a
// worker with these tags, exclusive or not, claims a step that requires
// these tags. A few rows of several tags are added.
var routingTable = []struct {
	worker    []string
	exclusive bool
	step      []string
	claims    bool
}{
	{nil, false, nil, true},
	{nil, true, nil, true},
	{nil, false, []string{"claude"}, false},
	{nil, true, []string{"claude"}, false},
	{[]string{"claude"}, false, nil, true},
	{[]string{"claude"}, false, []string{"claude"}, true},
	{[]string{"claude"}, true, nil, false},
	{[]string{"claude"}, true, []string{"claude"}, true},
	{[]string{"gpu", "trusted"}, false, []string{"gpu"}, true},
	{[]string{"gpu", "trusted"}, true, []string{"gpu"}, false},
	{[]string{"trusted", "gpu"}, true, []string{"gpu", "trusted"}, true},
	{[]string{"gpu"}, false, []string{"gpu", "trusted"}, false},
}

// testRouting: a step's tags route it (stroem.TagsMatch). A claim takes a
// step only if every tag the step requires is one of the worker's, and,
// for an exclusive worker, the step requires every one of the worker's
// tags; so does a batch claim, and an offer is refused behind an older
// step of another job only if the offer's claim could take that step. The
// tags are stored sorted, each once, and read back with the step.
func testRouting(t *testing.T, open func(t *testing.T) persistence.Store) {
	ctx := context.Background()
	claimAs := func(t *testing.T, s persistence.Store, worker string, limit int, r persistence.Route) []persistence.ClaimedStep {
		t.Helper()
		got, err := s.StepsClaim(ctx, persistence.ClaimParams{
			WorkerID: worker, Capabilities: r.Capabilities, Tags: r.Tags, Exclusive: r.Exclusive, Limit: limit, Lease: Lease,
		})
		require.NoError(t, err)
		return got
	}

	t.Run("Migration042Table", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// One action type per row: each row's claim sees its own step only.
		for i, c := range routingTable {
			typ := fmt.Sprintf("type%d", i)
			InsertJob(t, s, Step{Name: "a", ActionType: typ, Tags: c.step})
			got := claimAs(t, s, "w1", 1, persistence.Route{Capabilities: []string{typ}, Tags: c.worker, Exclusive: c.exclusive})
			require.Equal(t, c.claims, len(got) == 1, "worker %v exclusive=%v, step %v", c.worker, c.exclusive, c.step)
			require.Equal(t, c.claims, stroem.TagsMatch(c.step, c.worker, c.exclusive), "the claim agrees with TagsMatch")
		}
	})

	t.Run("BatchClaimTakesOnlyMatchingSteps", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Oldest first: gpu, plain, gpu+trusted, plain.
		id := InsertJob(t, s, Step{Name: "gpu", Tags: []string{"gpu"}}).Job.ID
		time.Sleep(2 * time.Millisecond)
		InsertJob(t, s, Step{Name: "plain"})
		time.Sleep(2 * time.Millisecond)
		InsertJob(t, s, Step{Name: "both", Tags: []string{"trusted", "gpu"}})
		time.Sleep(2 * time.Millisecond)
		InsertJob(t, s, Step{Name: "plain2"})

		untagged := claimAs(t, s, "w1", 10, persistence.Route{Capabilities: []string{"shell"}})
		require.Equal(t, []string{"plain", "plain2"}, names(untagged), "a worker without tags skips the tagged steps")

		reserved := claimAs(t, s, "w2", 10, persistence.Route{Capabilities: []string{"shell"}, Tags: []string{"gpu"}, Exclusive: true})
		require.Equal(t, []string{"gpu"}, names(reserved), "an exclusive gpu worker takes only steps that ask for exactly gpu")
		require.Equal(t, id, reserved[0].JobID)

		require.Empty(t, claimAs(t, s, "w3", 10, persistence.Route{Capabilities: []string{"python"}, Tags: []string{"gpu", "trusted"}}),
			"the action type still has to match")
		wide := claimAs(t, s, "w3", 10, persistence.Route{Capabilities: []string{"shell"}, Tags: []string{"trusted", "gpu", "x"}})
		require.Equal(t, []string{"both"}, names(wide))
	})

	t.Run("TagsAreStoredAsASet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := InsertJob(t, s, Step{Name: "a", Tags: []string{"gpu", "b", "gpu"}}, Step{Name: "b"}).Job.ID
		st := jobState(t, s, id)
		require.Equal(t, []string{"b", "gpu"}, st.Find("a").Tags)
		require.Nil(t, st.Find("b").Tags, "no tags: nil")
		j := jobGet(t, s, id)
		require.Equal(t, []string{"b", "gpu"}, j.Steps[0].Tags)
		require.Empty(t, j.Steps[1].Tags)

		got := claimAs(t, s, "w1", 10, persistence.Route{Capabilities: []string{"shell"}, Tags: []string{"gpu", "b"}, Exclusive: true})
		require.Equal(t, []string{"a"}, names(got), "a repeated tag is the same tag")
	})

	t.Run("LoopInstancesKeepTheirTags", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := InsertJob(t, s, Step{Name: "a", ActionType: "python"}, Step{Name: "loop", Deps: []string{"a"}, Tags: []string{"gpu"}}).Job.ID
		_, err := s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
			loop := st.Find("loop")
			now := st.Now
			st.Append(&persistence.StepState{
				Name: stroem.LoopInstanceName("loop", 0), Position: st.Len(), ActionName: loop.ActionName,
				ActionType: loop.ActionType, Tags: loop.Tags, DependsOn: loop.DependsOn, MaxAttempts: 1,
				Status: stroem.StepReady, ReadyAt: &now, Input: map[string]any{},
			})
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, []string{"gpu"}, jobState(t, s, id).Find(stroem.LoopInstanceName("loop", 0)).Tags)
		require.Empty(t, claimAs(t, s, "w1", 10, persistence.Route{Capabilities: []string{"shell"}}))
		got := claimAs(t, s, "w2", 10, persistence.Route{Capabilities: []string{"shell"}, Tags: []string{"gpu"}})
		require.Equal(t, []string{stroem.LoopInstanceName("loop", 0)}, names(got))
	})

	t.Run("OfferBehindAnOlderStepTheClaimCannotTake", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		older := InsertJob(t, s, Step{Name: "x", Tags: []string{"gpu"}}).Job.ID
		time.Sleep(2 * time.Millisecond)
		id := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}).Job.ID
		plain := persistence.Route{Capabilities: []string{"shell"}}
		a := claimAs(t, s, "w1", 1, plain)
		require.Equal(t, []string{"a"}, names(a))

		// The older step requires gpu, which the claim cannot take: it does
		// not stand in line before b for this worker.
		got, err := s.JobUpdate(ctx, id, OfferNextTo("a", "b", "w1", plain))
		require.NoError(t, err)
		require.Equal(t, stroem.StepRunning, got.Find("b").Status, "offer taken")

		// A gpu worker's claim would take the older step first: refused.
		id2 := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b"}).Job.ID
		gpu := persistence.Route{Capabilities: []string{"shell"}, Tags: []string{"gpu"}}
		a2 := claimAs(t, s, "w2", 1, plain)
		require.Equal(t, id2, a2[0].JobID)
		got, err = s.JobUpdate(ctx, id2, OfferNextTo("a", "b", "w2", gpu))
		require.NoError(t, err)
		require.Equal(t, stroem.StepReady, got.Find("b").Status, "offer not taken behind a step the claim could take")

		// An exclusive worker of other tags could take neither x nor
		// id2's b (no tags): the offer is taken.
		id3 := InsertJob(t, s, Step{Name: "a", ActionType: "python"}, Step{Name: "b", ActionType: "python", Tags: []string{"cpu"}}).Job.ID
		a3 := claimAs(t, s, "w3", 1, persistence.Route{Capabilities: []string{"python"}})
		require.Equal(t, id3, a3[0].JobID)
		cpu := persistence.Route{Capabilities: []string{"shell", "python"}, Tags: []string{"cpu"}, Exclusive: true}
		got, err = s.JobUpdate(ctx, id3, OfferNextTo("a", "b", "w3", cpu))
		require.NoError(t, err)
		require.Equal(t, stroem.StepRunning, got.Find("b").Status, "offer taken")

		c := claimAs(t, s, "w4", 10, gpu)
		require.Equal(t, [2]string{older, "x"}, [2]string{c[0].JobID, c[0].StepName})
	})

	t.Run("WorkersKeepTagsAndExclusive", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		w, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "gpu-1", Capabilities: []string{"shell"},
			Tags: []string{"gpu"}, Exclusive: true})
		require.NoError(t, err)
		require.True(t, w.Exclusive)
		_, err = s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "plain", Capabilities: []string{"shell"}})
		require.NoError(t, err)
		list, err := s.WorkerList(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		byName := map[string]stroem.Worker{}
		for _, w := range list {
			byName[w.Name] = w
		}
		require.Equal(t, []string{"gpu"}, byName["gpu-1"].Tags)
		require.True(t, byName["gpu-1"].Exclusive)
		require.False(t, byName["plain"].Exclusive)
	})
}

func names(claimed []persistence.ClaimedStep) []string {
	out := make([]string, len(claimed))
	for i, c := range claimed {
		out[i] = c.StepName
	}
	return out
}
