package persistence

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stroem/stroem"
)

// cloneFixture is a job of n steps in a chain, half of them completed,
// with the fields a clone must copy set.
func cloneFixture(n int) *JobState {
	now := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	s := &JobState{Job: stroem.Job{ID: "j", Status: stroem.JobRunning, Input: map[string]any{"a": 1.0}, StartedAt: &now}, Now: now}
	for i := range n {
		st := &StepState{Name: fmt.Sprintf("s%03d", i), Position: i, Status: stroem.StepPending,
			Input: map[string]any{"i": float64(i), "nested": []any{"x"}}}
		if i > 0 {
			st.DependsOn = []string{fmt.Sprintf("s%03d", i-1)}
		}
		if i < n/2 {
			code := 0
			t1, t2 := now.Add(time.Duration(i)*time.Second), now.Add(time.Duration(i+1)*time.Second)
			st.Status, st.Attempt, st.ExitCode, st.StartedAt, st.CompletedAt, st.ReadyAt = stroem.StepCompleted, 1, &code, &t1, &t2, &t1
		}
		s.steps = append(s.steps, st)
	}
	return s
}

// A clone is equal to its original and shares nothing with it that a
// transition's function could change in place.
func TestCloneSharesNothing(t *testing.T) {
	t.Parallel()
	orig := cloneFixture(10)
	want := cloneFixture(10)
	c := orig.Clone()
	if !reflect.DeepEqual(orig, c) {
		t.Fatal("the clone differs from the original")
	}
	for _, st := range c.steps {
		st.Input["i"] = -1.0
		st.Input["nested"].([]any)[0] = "changed"
		st.DependsOn = append(st.DependsOn, "more")
		if len(st.DependsOn) > 1 {
			st.DependsOn[0] = "changed"
		}
		for _, p := range []*time.Time{st.StartedAt, st.CompletedAt, st.ReadyAt} {
			if p != nil {
				*p = p.Add(time.Hour)
			}
		}
		if st.ExitCode != nil {
			*st.ExitCode = 9
		}
		st.Status = stroem.StepFailed
	}
	*c.Job.StartedAt = c.Job.StartedAt.Add(time.Hour)
	c.Job.Input["a"] = 2.0
	if !reflect.DeepEqual(orig, want) {
		t.Fatal("changing the clone changed the original")
	}
	// Steps of one clone share no time or exit code either.
	c = orig.Clone()
	*c.At(0).StartedAt = c.At(0).StartedAt.Add(time.Minute)
	*c.At(0).ExitCode = 7
	if !c.At(1).StartedAt.Equal(*orig.At(1).StartedAt) || *c.At(1).ExitCode != 0 {
		t.Fatal("steps of a clone share a value")
	}
}

// BenchmarkJobStateClone: a deep copy of a whole state (a JobUpdate used
// to make one per transition; it shares the steps now, see BenchmarkDiff).
func BenchmarkJobStateClone(b *testing.B) {
	s := cloneFixture(100)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Clone()
	}
}

// BenchmarkDiff: a JobUpdate shares the steps it read with its callback,
// which copies the one it changes; Diff visits that one. Neither grows
// with the job (compare the sizes).
func BenchmarkDiff(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			before := cloneFixture(n)
			b.ReportAllocs()
			for b.Loop() {
				after := before.Share()
				st := after.MutAt(n / 2)
				st.Status, st.ReadyAt = stroem.StepReady, &after.Now
				w, _, err := Diff(before, after)
				if err != nil || len(w) != 1 {
					b.Fatal(err, len(w))
				}
			}
		})
	}
}
