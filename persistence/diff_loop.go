package persistence

import (
	"fmt"
	"slices"

	"github.com/stroem/stroem"
)

// appendedSteps validates the steps a JobUpdate appended after the stored
// ones (a for_each step expanding into its instances, in the same
// transaction that records the expansion) and returns their writes. Each
// new step has a fresh name and the next position; it is written as a
// pending skeleton and then changed to what fn made of it, with the same
// transition rules as a stored step (pending → ready, → running for a
// hand-off, → skipped …).
func appendedSteps(before, after *JobState, loops func() map[string][]string) ([]StepWrite, error) {
	if len(after.steps) == len(before.steps) {
		return nil, nil
	}
	names := make(map[string]bool, len(after.steps)-len(before.steps))
	var out []StepWrite
	for i := len(before.steps); i < len(after.steps); i++ {
		cur := after.steps[i]
		if cur == nil || cur.Name == "" || cur.Position != i {
			return nil, fmt.Errorf("job %s: an appended step must have a name and position %d", after.Job.ID, i)
		}
		if names[cur.Name] || before.Index(cur.Name) >= 0 {
			return nil, fmt.Errorf("job %s: the update appended step %s twice", after.Job.ID, cur.Name)
		}
		names[cur.Name] = true
		if cur.MaxAttempts < 1 {
			cur.MaxAttempts = 1
		}
		if cur.DependsOn == nil {
			cur.DependsOn = []string{}
		}
		old := skeleton(cur)
		if err := completeStep(after.Job.ID, old, cur, after.Now, loops); err != nil {
			return nil, err
		}
		out = append(out, StepWrite{
			Old: old, Cur: cur, Insert: true, Attempt: attemptChanged(old, cur),
			Ready: cur.Status == stroem.StepReady,
		})
	}
	return out, nil
}

// skeleton is the pending row a new step is inserted as.
func skeleton(st *StepState) *StepState {
	return &StepState{
		Name: st.Name, Position: st.Position, ActionName: st.ActionName, ActionType: st.ActionType,
		Image: st.Image, Tags: st.Tags, DependsOn: slices.Clone(st.DependsOn), ContinueOnFailure: st.ContinueOnFailure,
		MaxAttempts: st.MaxAttempts, Status: stroem.StepPending,
	}
}

// loopView fills in the loop fields of a step's API view: an instance
// names its loop and index, a loop step lists its instances.
func loopView(step *stroem.Step, instances map[string][]string) {
	step.SkipReason = stroem.SkipReasonOf(step.Status, step.ErrorMessage)
	if loop, i, ok := stroem.ParseLoopInstance(step.StepName); ok {
		step.Loop, step.LoopIndex = loop, &i
		return
	}
	step.Instances = instances[step.StepName]
}

// loopInstances maps each loop step to its instances' names, in position
// (= index) order.
func loopInstances(states []*StepState) map[string][]string {
	var out map[string][]string
	for _, st := range states {
		if loop, _, ok := stroem.ParseLoopInstance(st.Name); ok {
			if out == nil {
				out = map[string][]string{}
			}
			out[loop] = append(out[loop], st.Name)
		}
	}
	return out
}

// orderLoops puts each loop's instances right after their loop step, in
// index order (they are stored after every step of the task, in the order
// the loops expanded).
func orderLoops(steps []stroem.Step) []stroem.Step {
	byLoop := map[string][]stroem.Step{}
	n := 0
	for _, st := range steps {
		if st.Loop != "" {
			byLoop[st.Loop] = append(byLoop[st.Loop], st)
			n++
		}
	}
	if n == 0 {
		return steps
	}
	out := make([]stroem.Step, 0, len(steps))
	for _, st := range steps {
		if st.Loop != "" {
			continue
		}
		out = append(out, st)
		out = append(out, byLoop[st.StepName]...)
		delete(byLoop, st.StepName)
	}
	for _, st := range steps { // instances of a step not shown (cannot happen)
		if _, left := byLoop[st.Loop]; left && st.Loop != "" {
			out = append(out, st)
		}
	}
	return out
}

// loopEnds allows the one move a loop step makes that other steps cannot:
// pending → completed, when its instances (which it waited for) exist.
func loopEnds(old, cur *StepState, loops map[string][]string) bool {
	return old.Status == stroem.StepPending && cur.Status == stroem.StepCompleted && len(loops[cur.Name]) > 0
}
