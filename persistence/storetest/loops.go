package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// testAppendSteps: a JobUpdate may append steps (a for_each step's
// instances) in the transaction that records the expansion; they are stored
// with the next positions, claimable when ready, shown in the API, and a
// callback error or an invalid append writes none of them.
func testAppendSteps(t *testing.T, open func(t *testing.T) persistence.Store) {
	ctx := context.Background()
	appendN := func(n int, status stroem.StepStatus) func(*persistence.JobState) error {
		return func(st *persistence.JobState) error {
			loop := st.Mut("loop")
			for i := 0; i < n; i++ {
				ns := &persistence.StepState{
					Name: stroem.LoopInstanceName("loop", i), Position: st.Len(), ActionName: loop.ActionName,
					ActionType: loop.ActionType, DependsOn: loop.DependsOn, MaxAttempts: 2, Status: status,
				}
				if status == stroem.StepReady {
					ns.Input = map[string]any{"item": fmt.Sprint("x", i)}
				}
				st.Append(ns)
			}
			return nil
		}
	}

	t.Run("AppendedInOneTransaction", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "a"}, Step{Name: "loop", Deps: []string{"a"}})
		got, err := s.JobUpdate(ctx, nj.Job.ID, appendN(3, stroem.StepReady))
		require.NoError(t, err)
		require.Equal(t, 5, got.Len())
		st := jobState(t, s, nj.Job.ID)
		require.Equal(t, 5, st.Len())
		for i := 0; i < 3; i++ {
			in := st.At(2 + i)
			require.Equal(t, stroem.LoopInstanceName("loop", i), in.Name)
			require.Equal(t, 2+i, in.Position)
			require.Equal(t, stroem.StepReady, in.Status)
			require.NotNil(t, in.ReadyAt, "the store sets ReadyAt")
			require.Equal(t, 2, in.MaxAttempts)
			require.Equal(t, map[string]any{"item": fmt.Sprint("x", i)}, in.Input)
		}
		// Claimable like any ready step (a's first: older).
		claimed := claim(t, s, "w1", 10, Lease)
		require.Len(t, claimed, 4)
		// A further update (the cached steps now include the new ones).
		report(t, s, nj.Job.ID, Report{Step: "loop[1]", Worker: "w1", Attempt: 1, Output: map[string]any{"seen": true}})
		require.Equal(t, map[string]any{"seen": true}, jobState(t, s, nj.Job.ID).Find("loop[1]").Output)
		report(t, s, nj.Job.ID, Report{Step: "loop[2]", Worker: "w1", Attempt: 1})

		// A loop step ends from pending once it has instances (a step
		// without any cannot: JobUpdate's "step pending → completed").
		update(t, s, nj.Job.ID, func(st *persistence.JobState) {
			st.Mut("loop").Status = stroem.StepCompleted
		})

		j := jobGet(t, s, nj.Job.ID)
		var loop *stroem.Step
		for i := range j.Steps {
			if j.Steps[i].StepName == "loop" {
				loop = &j.Steps[i]
			}
		}
		require.NotNil(t, loop)
		require.Equal(t, []string{"loop[0]", "loop[1]", "loop[2]"}, loop.Instances)
		require.Equal(t, []any{nil, map[string]any{"seen": true}, map[string]any{}}, loop.Output,
			"an ended loop's output is its instances' (null: not completed, {}: completed without output)")
		var order []string
		for _, st := range j.Steps {
			order = append(order, st.StepName)
		}
		require.Equal(t, []string{"a", "loop", "loop[0]", "loop[1]", "loop[2]"}, order, "instances follow their loop")
		last := j.Steps[len(j.Steps)-1]
		require.Equal(t, "loop", last.Loop)
		require.Equal(t, 2, *last.LoopIndex)
	})

	t.Run("CallbackErrorAppendsNothing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "loop"})
		_, err := s.JobUpdate(ctx, nj.Job.ID, func(st *persistence.JobState) error {
			_ = appendN(2, stroem.StepReady)(st)
			return stroem.Errorf(stroem.CodeConflict, "no")
		})
		require.Error(t, err)
		require.Equal(t, 1, jobState(t, s, nj.Job.ID).Len())
	})

	t.Run("InvalidAppendWritesNothing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "loop"})
		for name, fn := range map[string]func(*persistence.JobState) error{
			"duplicate name": func(st *persistence.JobState) error {
				_ = appendN(1, stroem.StepPending)(st)
				_ = appendN(1, stroem.StepPending)(st)
				st.MutAt(2).Position = 2
				return nil
			},
			"wrong position": func(st *persistence.JobState) error {
				_ = appendN(1, stroem.StepPending)(st)
				st.MutAt(1).Position = 7
				return nil
			},
			"inserted completed without transition": func(st *persistence.JobState) error {
				_ = appendN(1, stroem.StepCancelled)(st)
				st.MutAt(1).Status = stroem.StepRunning // no worker, no lease
				return nil
			},
		} {
			_, err := s.JobUpdate(ctx, nj.Job.ID, fn)
			require.Error(t, err, name)
			require.Equal(t, 1, jobState(t, s, nj.Job.ID).Len(), name)
		}
	})

	t.Run("RepeatedExpansionIsIdempotent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		nj := InsertJob(t, s, Step{Name: "loop"})
		// The orchestrator appends only when the instances are missing:
		// running its decision twice (a restart) appends once.
		expand := func(st *persistence.JobState) error {
			if st.Mut("loop[0]") != nil {
				return nil
			}
			return appendN(4, stroem.StepPending)(st)
		}
		for i := 0; i < 2; i++ {
			_, err := s.JobUpdate(ctx, nj.Job.ID, expand)
			require.NoError(t, err)
		}
		require.Equal(t, 5, jobState(t, s, nj.Job.ID).Len())
	})
}
