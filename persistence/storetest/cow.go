package storetest

import (
	"context"
	"errors"
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
}
