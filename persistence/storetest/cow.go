package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// testCopyOnWrite checks that JobUpdate's callback, sharing its steps with
// the store's before-image (and cache), cannot change them: not by failing,
// not by an invalid change, not by changing maps and times in place, not by
// keeping a step after the commit, not by changing the state returned.
// Each time, the next update reads what was stored.
func testCopyOnWrite(t *testing.T, open func(t *testing.T) persistence.Store) {
	t.Run("CopyOnWriteKeepsTheBeforeImage", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj := InsertJob(t, s, Step{Name: "a"}, Step{Name: "b", Deps: []string{"a"}}, Step{Name: "c", Deps: []string{"b"}})
		id := nj.Job.ID
		// A first update, so that a store keeping steps between updates
		// keeps this job's; a's input holds maps and lists to change in place.
		update(t, s, id, func(st *persistence.JobState) {
			st.Mut("a").Input = map[string]any{"k": "v", "nested": map[string]any{"x": "y"}, "list": []any{"l"}}
		})
		want := storedOf(jobState(t, s, id))
		require.NotNil(t, want.Steps[0].ReadyAt)
		// seen is the state the next update's callback is given.
		seen := func() stored {
			var got stored
			update(t, s, id, func(st *persistence.JobState) { got = storedOf(st) })
			return got
		}
		require.Equal(t, want, seen())

		// scribble changes the state through every way there is.
		scribble := func(st *persistence.JobState) {
			a := st.Mut("a")
			a.Status, a.ErrorMessage = stroem.StepCancelled, "scribbled"
			a.Input["k"] = "changed"
			a.Input["nested"].(map[string]any)["x"] = "changed"
			a.Input["list"].([]any)[0] = "changed"
			*a.ReadyAt = a.ReadyAt.Add(time.Hour)
			a.DependsOn = append(a.DependsOn, "z")
			for i, step := range st.All() {
				if step.Name == "b" {
					st.MutAt(i).Status = stroem.StepSkipped
				}
			}
			c := st.Find("c") // a copy: changing it changes nothing
			c.Status, c.ErrorMessage = stroem.StepCompleted, "copy"
			cc := st.At(2)
			cc.ErrorMessage = "copy"
			st.Job.Status = stroem.JobCancelled
		}

		_, err := s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
			scribble(st)
			st.Append(&persistence.StepState{Name: stroem.LoopInstanceName("c", 0), Position: st.Len(), Status: stroem.StepPending})
			return errors.New("no")
		})
		require.Error(t, err)
		require.Equal(t, want, seen(), "a failed callback leaves the before-image as it was")
		require.Equal(t, want, storedOf(jobState(t, s, id)))

		_, err = s.JobUpdate(ctx, id, func(st *persistence.JobState) error {
			scribble(st)
			st.Mut("c").Status = stroem.StepCompleted // pending → completed: rolled back
			return nil
		})
		require.Error(t, err)
		require.Equal(t, want, seen(), "a rolled-back update leaves the before-image as it was")
		require.Equal(t, want, storedOf(jobState(t, s, id)))

		var kept *persistence.StepState
		got := update(t, s, id, func(st *persistence.JobState) {
			kept = st.Mut("a")
			kept.ErrorMessage = "written"
		})
		require.Equal(t, "written", got.Find("a").ErrorMessage)
		want = storedOf(jobState(t, s, id))
		require.Equal(t, "written", want.Steps[0].ErrorMessage)
		kept.ErrorMessage = "after the commit" // the callback kept its step
		kept.Input["k"] = "after the commit"
		scribble(got) // the caller changes the state returned
		require.Equal(t, want, seen(), "changes after the commit reach nothing stored")
		require.Equal(t, want, storedOf(jobState(t, s, id)))
	})
	// A job big enough that names are found by an index (which a store may
	// keep between updates), grown by appended steps past the point where
	// the index is rebuilt: every update's callback finds each step at its
	// stored position and sees what was stored.
	t.Run("CopyOnWriteBigJobFindsEveryStep", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		var steps []Step
		for i := range 40 {
			steps = append(steps, Step{Name: fmt.Sprintf("s%02d", i)})
		}
		id := InsertJob(t, s, steps...).Job.ID
		check := func(st *persistence.JobState) {
			t.Helper()
			require.Equal(t, storedOf(jobState(t, s, id)), storedOf(st), "the callback sees what is stored")
			for i, step := range st.All() {
				require.Equal(t, i, step.Position)
				require.Equal(t, i, st.Find(step.Name).Position, step.Name)
			}
		}
		appendInstances := func(st *persistence.JobState, loop string, n int) {
			for k := range n {
				st.Append(&persistence.StepState{Name: stroem.LoopInstanceName(loop, k), Position: st.Len(), Status: stroem.StepPending})
			}
		}
		update(t, s, id, func(st *persistence.JobState) {
			check(st)
			st.Mut("s01").ErrorMessage = "one"
			appendInstances(st, "s00", 5)
		})
		update(t, s, id, func(st *persistence.JobState) {
			check(st)
			st.Mut(stroem.LoopInstanceName("s00", 3)).Status = stroem.StepReady
			appendInstances(st, "s01", 40) // past the index: rebuilt
			st.Mut(stroem.LoopInstanceName("s01", 39)).Status = stroem.StepCancelled
		})
		update(t, s, id, func(st *persistence.JobState) {
			check(st)
			require.Equal(t, 85, st.Len())
			require.Equal(t, stroem.StepReady, st.Find(stroem.LoopInstanceName("s00", 3)).Status)
			require.Equal(t, stroem.StepCancelled, st.Find(stroem.LoopInstanceName("s01", 39)).Status)
			require.Equal(t, "one", st.Find("s01").ErrorMessage)
			st.Mut("s39").ErrorMessage = "last"
			st.Mut(stroem.LoopInstanceName("s01", 0)).Status = stroem.StepReady
		})
		update(t, s, id, func(st *persistence.JobState) {
			check(st)
			require.Equal(t, "last", st.Find("s39").ErrorMessage)
			require.Equal(t, stroem.StepReady, st.Find(stroem.LoopInstanceName("s01", 0)).Status)
		})
	})
}
