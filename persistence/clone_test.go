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
		s.Steps = append(s.Steps, st)
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
	for _, st := range c.Steps {
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
	*c.Steps[0].StartedAt = c.Steps[0].StartedAt.Add(time.Minute)
	*c.Steps[0].ExitCode = 7
	if !c.Steps[1].StartedAt.Equal(*orig.Steps[1].StartedAt) || *c.Steps[1].ExitCode != 0 {
		t.Fatal("steps of a clone share a value")
	}
}

// BenchmarkJobStateClone: a JobUpdate clones the whole state it read.
func BenchmarkJobStateClone(b *testing.B) {
	s := cloneFixture(100)
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Clone()
	}
}

// BenchmarkDiff: a JobUpdate diffs every step of the job it read, though
// it changes one or two.
func BenchmarkDiff(b *testing.B) {
	before := cloneFixture(100)
	b.ReportAllocs()
	for b.Loop() {
		after := before.Clone()
		st := after.Steps[50]
		st.Status, st.ReadyAt = stroem.StepReady, &after.Now
		if _, _, err := Diff(before, after); err != nil {
			b.Fatal(err)
		}
	}
}
