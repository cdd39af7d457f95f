package actors

import (
	"context"
	"maps"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Task state in a step's input, when and for_each templates (issue 22,
// docs/state-artifacts.md).
//
// Those templates render inside the JobUpdate transaction that finds a
// step's dependencies done — on whichever server holds the job, and again
// after a restart — where no snapshot can be read. So the newest structured
// state of the task (`state`) and of its workspace (`global_state`) is read
// once, when the job is created, and stored with the job in its context
// (beside a webhook's request): every render of the job's input, when and
// for_each sees the same values, on any server. A variable with no snapshot
// behind it is an empty object, so `{{ not state }}` is true on a first run
// and `state.x | default(…)` falls back.
//
// Only a job whose task mentions state in those templates reads anything;
// only a step whose templates mention it copies it into its render.

// Names of the state variables in templates and in the job's context.
const (
	stateVar       = "state"
	globalStateVar = "global_state"
)

// addJobState stores the task's and the workspace's newest structured state
// in the context of a job being created (s), when the plan's input, when or
// for_each templates mention it. A store error refuses the job (rather than
// run it as if there were no state: `not state` would take the wrong
// branch).
func (o *Orchestrator) addJobState(ctx context.Context, p *plan, s *persistence.JobState) error {
	if !planUsesState(p) {
		return nil
	}
	m := map[string]any{}
	if f := o.files.Load(); f != nil {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var err error
		if m, err = f.TemplateState(c, s.Job.Workspace, s.Job.TaskName); err != nil {
			return stroem.Errorf(stroem.CodeUnavailable, "read the state of task %q for its templates: %v", s.Job.TaskName, err)
		}
	}
	jc := make(map[string]any, len(s.Context)+2)
	maps.Copy(jc, s.Context)
	for _, k := range []string{stateVar, globalStateVar} {
		v, _ := m[k].(map[string]any)
		if v == nil {
			v = map[string]any{}
		}
		jc[k] = v
	}
	s.Context = jc
	return nil
}

// withJobState adds the state stored with the job to the variables of a
// step's input, when or for_each template (m), when that step's templates
// mention state. Jobs created before state was stored with them have none:
// their templates see no `state`, as before.
func withJobState(p *plan, s *persistence.JobState, name string, m map[string]any) map[string]any {
	if len(s.Context) == 0 || !stepFlowUsesState(p, name) {
		return m
	}
	for _, k := range []string{stateVar, globalStateVar} {
		if v, ok := s.Context[k]; ok {
			m[k] = v
		}
	}
	return m
}

// stepFlowUsesState reports whether a step's input, when or for_each
// templates may refer to `state` or `global_state` (a mention anywhere is
// enough: a false positive only copies the values into the render).
func stepFlowUsesState(p *plan, name string) bool {
	ps := p.step(name)
	if ps == nil || ps.flow == nil {
		return false
	}
	fs := ps.flow
	return strings.Contains(fs.When, stateVar) || mentionsState(fs.ForEach) || mentionsState(fs.Input)
}

// planUsesState reports whether any step of the plan needs the job-start
// state.
func planUsesState(p *plan) bool {
	for name := range p.steps {
		if stepFlowUsesState(p, name) {
			return true
		}
	}
	return false
}

// mentionsState reports whether a string of a YAML value, at any depth,
// mentions state.
func mentionsState(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, stateVar)
	case map[string]any:
		for _, e := range x {
			if mentionsState(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if mentionsState(e) {
				return true
			}
		}
	}
	return false
}
