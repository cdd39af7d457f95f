package actors

import (
	"fmt"
	"strings"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// Conditions (`when`) and loops (`for_each`) make the JobActor decide at run
// time what a job runs. Both are decided in advance, inside the JobUpdate
// transaction that finds a step's dependencies done, from the stored state
// alone: a crash before the commit decides again after the restart, a crash
// after it finds the decision (a skipped step, a loop's instances) stored.

// flowControl is a step's compiled when and for_each.
type flowControl struct {
	when *workspace.Template
	// forEach renders the item list; items is a literal list instead.
	forEach    *workspace.ValueTemplate
	items      []any
	loop       bool
	sequential bool
	// eachInAction: the action's own templates (cmd, script, env) use
	// each.*, so a claim must be given the instance's item.
	eachInAction bool
	// inputSrc is every string of the step's input: an instance's input is
	// rendered with only the upstream outputs it names (rendering copies
	// the variables, and a loop's list is often an upstream output).
	inputSrc string
}

// compileFlow compiles the step's when and for_each.
func compileFlow(ps *planStep) error {
	fs := ps.flow
	if fs.When == "" && !fs.IsLoop() {
		return nil
	}
	fc := &flowControl{sequential: fs.Sequential}
	var err error
	if fs.When != "" {
		if fc.when, err = workspace.CompileTemplate(fs.When); err != nil {
			return fmt.Errorf("step %q when: %w", ps.name, err)
		}
	}
	if fs.IsLoop() {
		fc.loop = true
		if t := fs.LoopTemplate(); t != "" {
			if fc.forEach, err = workspace.CompileValue(t); err != nil {
				return fmt.Errorf("step %q for_each: %w", ps.name, err)
			}
		} else {
			fc.items = fs.LoopList()
			if fc.items == nil {
				fc.items = []any{}
			}
		}
		var in strings.Builder
		walkStrings(fs.Input, func(s string) {
			in.WriteString(s)
			in.WriteByte('\n')
		})
		fc.inputSrc = in.String()
		a := ps.action
		srcs := []string{a.Cmd, a.Inline, a.Script}
		srcs = append(srcs, a.Args...)
		for _, v := range a.Env {
			srcs = append(srcs, v)
		}
		for _, src := range srcs {
			if strings.Contains(src, "each.") || strings.Contains(src, "each[") {
				fc.eachInAction = true
			}
		}
	}
	ps.flowCtl = fc
	return nil
}

// step returns the plan step of a step or of a loop instance ("deploy[2]"
// runs step "deploy"'s action, retry and timeout), or nil.
func (p *plan) step(name string) *planStep {
	if ps := p.steps[name]; ps != nil {
		return ps
	}
	if loop, _, ok := stroem.ParseLoopInstance(name); ok {
		if ps := p.steps[loop]; ps != nil && ps.flowCtl != nil && ps.flowCtl.loop {
			return ps
		}
	}
	return nil
}

// satisfiedSkip reports whether a skipped step lets its dependents run: it
// was skipped by its condition, by a cascade of conditions, or for an empty
// loop — not for a dependency that failed.
func satisfiedSkip(st *persistence.StepState) bool {
	return stroem.SkipReasonOf(st.Status, st.ErrorMessage).Satisfies()
}

// dagStatuses are the statuses the DAG rules see, for every step of the
// task (dagStatus); the job's outcome is decided on them.
func dagStatuses(p *plan, s *persistence.JobState) map[string]stroem.StepStatus {
	m := make(map[string]stroem.StepStatus, len(p.steps))
	for i := range s.Len() {
		st := s.At(i)
		if p.steps[st.Name] == nil {
			continue
		}
		m[st.Name] = dagStatusOf(p, s, nil, &st)
	}
	return m
}

// dagStatus is the status the DAG rules see of a step of the task (loop
// instances are the loop's business): a step skipped by a condition is
// done, and a loop whose instances have not all ended is running. A step
// not in the state is pending.
func dagStatus(p *plan, s *persistence.JobState, g *progress, name string) stroem.StepStatus {
	i := s.Index(name)
	if i < 0 {
		return stroem.StepPending
	}
	st := s.At(i)
	return dagStatusOf(p, s, g, &st)
}

func dagStatusOf(p *plan, s *persistence.JobState, g *progress, st *persistence.StepState) stroem.StepStatus {
	switch {
	case st.Status == stroem.StepSkipped && satisfiedSkip(st):
		return stroem.StepCompleted
	case isExpanded(p, st) && !instancesDone(s, g, st):
		return stroem.StepRunning
	case st.Status == "":
		return stroem.StepPending
	}
	return st.Status
}

// startFlow decides a step whose dependencies are done, before it would
// become ready: skipped when every dependency was skipped by a condition
// (the cascade) or when its own condition is falsy, failed when the
// condition or the loop's list does not render, expanded into instances
// when it is a loop. It returns false when the step simply runs.
func startFlow(p *plan, s *persistence.JobState, st *persistence.StepState) bool {
	ps := p.steps[st.Name]
	if ps == nil {
		return false
	}
	if deps := ps.flow.DependsOn; len(deps) > 0 && !ps.flow.ContinueOnFailure {
		all := true
		for _, d := range deps {
			if ds := s.Find(d); ds == nil || !satisfiedSkip(ds) {
				all = false
				break
			}
		}
		if all {
			skipStep(st, stroem.SkipCascade, "every dependency was skipped")
			return true
		}
	}
	fc := ps.flowCtl
	if fc == nil {
		return false
	}
	if fc.when != nil {
		out, err := fc.when.Render(templateContext(p, s, st.Name))
		if err != nil {
			failStep(p, st, p.renderError("when", err))
			return true
		}
		if workspace.Falsy(out) {
			skipStep(st, stroem.SkipCondition, fmt.Sprintf("when rendered %q", truncate(out, 80)))
			return true
		}
	}
	if !fc.loop {
		return false
	}
	expandLoop(p, s, st, fc)
	return true
}

func skipStep(st *persistence.StepState, reason stroem.SkipReason, detail string) {
	st.Status = stroem.StepSkipped
	st.ErrorMessage = stroem.SkipMessage(reason, detail)
	st.ReadyAt = nil
}

func failStep(p *plan, st *persistence.StepState, err error) {
	st.Status = stroem.StepFailed
	st.ErrorMessage = p.masker.MaskError(err)
	st.ReadyAt = nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
