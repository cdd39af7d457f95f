package persistence

import "github.com/stroem/stroem"

// StepViews assembles the API's view of a job's steps from the stored steps
// (in position order) and their attempts by step name: the same in every
// store.
func StepViews(states []*StepState, attempts map[string][]stroem.Attempt) []stroem.Step {
	out := make([]stroem.Step, 0, len(states))
	instances := loopInstances(states)
	for _, st := range states {
		step := stroem.Step{
			StepName:     st.Name,
			ActionName:   st.ActionName,
			ActionType:   st.ActionType,
			DependsOn:    st.DependsOn,
			Status:       st.Status,
			Input:        st.Input,
			Output:       st.Output,
			StartedAt:    st.StartedAt,
			CompletedAt:  st.CompletedAt,
			ErrorMessage: st.ErrorMessage,
			Attempt:      st.Attempt,
			MaxAttempts:  st.MaxAttempts,
			Attempts:     attempts[st.Name],
		}
		loopView(&step, instances)
		if st.WorkerID != "" {
			w := st.WorkerID
			step.WorkerID = &w
		}
		out = append(out, step)
	}
	return orderLoops(out)
}
