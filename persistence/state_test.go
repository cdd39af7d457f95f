package persistence

import (
	"reflect"
	"testing"
	"time"

	"github.com/stroem/stroem"
)

// A state shared with Share copies a step the first time it is changed:
// whatever is done to it, through every way there is, the other state (the
// store's before-image) stays as it was, and Diff writes what changed.
func TestShareCopiesOnWrite(t *testing.T) {
	t.Parallel()
	before := cloneFixture(40) // over indexMin: names are found by index
	want := cloneFixture(40)
	st := before.Share()

	a := st.MutAt(0)
	a.ErrorMessage = "x"
	a.Input["i"] = -1.0
	a.Input["nested"].([]any)[0] = "changed"
	*a.StartedAt = a.StartedAt.Add(time.Hour)
	*a.ExitCode = 9
	b := st.Mut("s001")
	b.DependsOn[0] = "changed"
	if st.Mut("s001") != b || st.MutAt(0) != a {
		t.Fatal("a step is copied once, then changed in place")
	}
	c := st.Find("s030")
	c.Status = stroem.StepCompleted // a copy
	d := st.At(31)
	d.Status = stroem.StepCompleted // a copy
	st.Append(&StepState{Name: "s030[0]", Position: 40, Status: stroem.StepPending})
	if st.Mut("missing") != nil || st.Find("missing") != nil || st.Index("s030[0]") != 40 {
		t.Fatal("lookups")
	}
	// The before-image may not change its steps in place either now.
	before.MutAt(5).Status = stroem.StepCancelled
	if st.At(5).Status != stroem.StepCompleted {
		t.Fatal("a change to the before-image reached the shared state")
	}
	before.steps[5] = want.steps[5] // undo, to compare below

	for i := range want.steps {
		if !reflect.DeepEqual(before.steps[i], want.steps[i]) {
			t.Fatalf("step %d of the before-image changed:\n%+v\n%+v", i, before.steps[i], want.steps[i])
		}
	}
	if st.At(30).Status != stroem.StepPending || st.At(31).Status != stroem.StepPending {
		t.Fatal("a change to a copy reached the state")
	}
	if got := st.Changed(); !reflect.DeepEqual(got, []int{0, 1, 40}) {
		t.Fatalf("changed %v", got)
	}
	before = want
	before.Seal()
	w, _, err := Diff(before, st)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range w {
		names = append(names, x.Cur.Name)
	}
	// s001's dependency list is not a column a JobUpdate writes.
	if !reflect.DeepEqual(names, []string{"s000", "s030[0]"}) {
		t.Fatalf("writes %v", names)
	}

	// Sealed (as a store returns it), the state copies before a change.
	st.Seal()
	kept := st.At(0)
	st.MutAt(0).ErrorMessage = "after"
	if kept.ErrorMessage != "x" || before.steps[0].ErrorMessage != "" {
		t.Fatal("a sealed state changed a step in place")
	}
}

// A state shared again in the middle of a callback (a wrapper taking its
// before-image, as the metrics store does at the start) copies a step it
// took before once more when it is changed again: the step is still one
// change, listed once and written once.
func TestChangedListsAStepOnce(t *testing.T) {
	t.Parallel()
	before := cloneFixture(3)
	st := before.Share()
	st.MutAt(1).ErrorMessage = "first"
	_ = st.Share()
	st.MutAt(1).ErrorMessage = "second"
	st.Append(&StepState{Name: "s002[0]", Position: 3, Status: stroem.StepPending})
	st.MutAt(3)
	if got := st.Changed(); !reflect.DeepEqual(got, []int{1, 3}) {
		t.Fatalf("changed %v, want [1 3]", got)
	}
	w, _, err := Diff(before, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 2 || w[0].Cur.ErrorMessage != "second" || w[1].Cur.Name != "s002[0]" {
		t.Fatalf("writes %+v", w)
	}
}

// ReadStatusAt answers with the statuses of the state as it was shared out,
// whatever changed since, twice or after a Seal in between; a step appended
// since, and every step of a state that was not shared out, has none.
func TestReadStatusAtIsTheStateAsShared(t *testing.T) {
	t.Parallel()
	src := &JobState{}
	src.SetSteps([]*StepState{
		{Name: "a", Position: 0, Status: stroem.StepReady},
		{Name: "b", Position: 1, Status: stroem.StepPending},
		{Name: "c", Position: 2, Status: stroem.StepRunning},
	}, nil)
	if _, ok := src.ReadStatusAt(0); ok {
		t.Fatal("a state that was not shared out has no statuses as read")
	}
	st := src.Share()
	st.MutAt(0).Status = stroem.StepRunning
	st.MutAt(1).Status = stroem.StepReady
	st.Seal() // a Share in the middle of a callback
	st.MutAt(0).Status = stroem.StepCompleted
	st.Append(&StepState{Name: "d", Position: 3, Status: stroem.StepReady})
	for i, want := range []stroem.StepStatus{stroem.StepReady, stroem.StepPending, stroem.StepRunning} {
		if got, ok := st.ReadStatusAt(i); !ok || got != want {
			t.Fatalf("step %d as read: %q, %v; want %q", i, got, ok, want)
		}
	}
	for _, i := range []int{3, -1} {
		if _, ok := st.ReadStatusAt(i); ok {
			t.Fatalf("step %d (appended since, or none) has a status as read", i)
		}
	}
	if st.StatusAt(0) != stroem.StepCompleted {
		t.Fatal("the state itself has changed")
	}
}
