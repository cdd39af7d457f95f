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
			Tags:         st.Tags,
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
	loopOutputs(out)
	return orderLoops(out)
}

// loopOutputs gives an ended loop step the output its dependents' templates
// and the job's output see: its instances' outputs in index order, {} for
// one that completed without output, null for one that did not complete
// (actors.loopOutput). It is assembled here, not stored: the instances
// hold it already.
func loopOutputs(steps []stroem.Step) {
	var at map[string]int
	for i := range steps {
		loop := &steps[i]
		if len(loop.Instances) == 0 || !loop.Status.Terminal() || loop.Output != nil {
			continue
		}
		if at == nil {
			at = make(map[string]int, len(steps))
			for j := range steps {
				at[steps[j].StepName] = j
			}
		}
		list := make([]any, len(loop.Instances))
		for k, name := range loop.Instances {
			j, ok := at[name]
			if !ok || steps[j].Status != stroem.StepCompleted {
				continue
			}
			if list[k] = steps[j].Output; list[k] == nil {
				list[k] = map[string]any{}
			}
		}
		loop.Output = list
	}
}
