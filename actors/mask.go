package actors

import (
	"context"
	"encoding/json"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
)

// stepMask lists the secret values a claimed step holds (in any form) in its
// rendered spec or its input: the worker masks them in what the step
// prints before it splits long lines. A step is never sent a secret it
// does not already hold.
func stepMask(p *plan, spec stroem.StepSpec, input map[string]any) []string {
	if p.masker.Len() == 0 {
		return nil
	}
	texts := make([]string, 0, 4+len(spec.Env))
	texts = append(texts, spec.Cmd, spec.Script, spec.Args)
	for k, v := range spec.Env {
		texts = append(texts, k, v)
	}
	if len(input) > 0 {
		if b, err := json.Marshal(input); err == nil {
			texts = append(texts, string(b))
		}
	}
	return p.masker.Contained(texts...)
}

// maskCompletion masks a worker's report with every secret of the job
// before it is recorded: the error message (its last stderr lines) and the
// output, which flows into the job's output, the next steps' input and a
// webhook's reply.
func maskCompletion(m *stroem.Masker, c stroem.Completion) stroem.Completion {
	c.Error = m.Mask(c.Error)
	c.Output = m.MaskValue(c.Output)
	return c
}

// MaskJob returns the secret masker of a job, or nil when the job is
// unknown; for masking what is served about it.
func (o *Orchestrator) MaskJob(ctx context.Context, jobID string) *stroem.Masker {
	m, err := o.Masker(ctx, jobID)
	if err != nil {
		return nil
	}
	return m
}

// maskProblems masks input problems with the task's secrets: a problem
// quotes the value it found, which may be a secret pasted into the wrong
// field. A task whose plan does not build has no secrets to mask with
// (its creation fails on the plan next anyway).
func (o *Orchestrator) maskProblems(ws *workspace.Workspace, task *workspace.Task, problems []string) []string {
	tp, err := o.planForTask(ws, task)
	if err != nil {
		return problems
	}
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = tp.plan.masker.Mask(p)
	}
	return out
}

// secretsSeen adds Config.MaskExtra to a newly compiled plan's masker and
// tells Config.OnSecrets about its secrets.
func (o *Orchestrator) secretsSeen(p *plan) {
	if len(o.cfg.MaskExtra) > 0 {
		p.masker = stroem.NewMasker(append(p.masker.Values(), o.cfg.MaskExtra...))
	}
	if o.cfg.OnSecrets != nil && p.masker.Len() > 0 {
		o.cfg.OnSecrets(p.masker.Values())
	}
}
