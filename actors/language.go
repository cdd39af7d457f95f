package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
)

// renderScript fills the parts of a step's spec that come from a
// `type: script` action: its inline code, language, interpreter, argument
// list, dependencies and working directory. Actions in the older form (cmd,
// or script as "path args") leave Language empty, so a worker runs them as
// before.
func renderScript(p *plan, ps *planStep, ctx map[string]any, spec *stroem.StepSpec) error {
	a := ps.action
	spec.Workdir = a.Workdir
	if a.Inline == "" && a.Source == "" {
		return nil
	}
	spec.Language = a.Language
	if spec.Language == "" {
		spec.Language = workspace.LangShell
	}
	spec.Interpreter = a.Interpreter
	spec.Dependencies = a.Dependencies
	switch {
	case ps.code != nil:
		code, err := ps.code.Render(ctx)
		if err != nil {
			return p.renderError("script", err)
		}
		spec.Code = code
	case ps.literal != "":
		spec.Code = ps.literal
	}
	for i, t := range ps.argList {
		arg, err := t.Render(ctx)
		if err != nil {
			return p.renderError(fmt.Sprintf("args[%d]", i), err)
		}
		spec.ArgList = append(spec.ArgList, arg)
	}
	return nil
}

// withValsRefs adds to the resolved secrets the values of the references
// the snapshot's templates resolve inline with `| vals`, so that the log
// masker hides them too. A reference that does not resolve is left out (the
// step that uses it fails with the reason).
func withValsRefs(secrets map[string]any, snap *Snapshot) map[string]any {
	var refs []string
	scan := func(src string) { refs = append(refs, workspace.ValsRefs(src)...) }
	for _, a := range snap.Actions {
		scan(a.Cmd)
		scan(a.Script)
		scan(a.Inline)
		for _, arg := range a.Args {
			scan(arg)
		}
		for _, v := range a.Env {
			scan(v)
		}
	}
	if snap.Task != nil {
		for _, fs := range snap.Task.Flow {
			walkStrings(fs.Input, scan)
		}
	}
	if len(refs) == 0 {
		return secrets
	}
	out := make(map[string]any, len(secrets)+1)
	for k, v := range secrets {
		out[k] = v
	}
	vals := map[string]any{}
	for i, ref := range refs {
		if r, err := workspace.ResolveSecrets(map[string]any{"v": ref}); err == nil {
			vals[fmt.Sprint(i)] = r["v"]
		}
	}
	// A key no secret can have (secret names are YAML keys; this one is
	// only ever seen by the masker).
	out["\x00vals"] = vals
	return out
}

// walkStrings calls fn for every string in v, at any depth.
func walkStrings(v any, fn func(string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case map[string]any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, fn)
		}
	}
}

// jsonLists decodes, in place, a JSON array given as text to an action field
// of type string (`"{{ input.environments | json_encode() }}"`, the upstream
// way of passing a multi-select on), so the action's templates see a list
// as upstream's do. It returns the schema to check the input with: the
// fields it decoded take a list there.
func jsonLists(schema workspace.Schema, in map[string]any) workspace.Schema {
	var out workspace.Schema
	for i, f := range schema {
		s, ok := in[f.Name].(string)
		if f.Type != workspace.TypeString || f.Multiple || !ok || !strings.HasPrefix(strings.TrimSpace(s), "[") {
			continue
		}
		var list []any
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			continue
		}
		in[f.Name] = list
		if out == nil {
			out = append(workspace.Schema(nil), schema...)
		}
		c := *f
		c.Type, c.Enum = workspace.TypeArray, nil
		out[i] = &c
	}
	if out == nil {
		return schema
	}
	return out
}

// renderDefaults renders the input defaults that are templates
// (`default: "{{ secret.DEPLOY_KEY }}"`) for the fields the caller did not
// give, with the workspace's secrets, and checks the result against the
// field. A default that does not render is the caller's 400 only when the
// field is required; the message never holds a secret's value.
func renderDefaults(p *plan, schema workspace.Schema, given, input map[string]any) error {
	var problems []string
	for _, f := range schema {
		src, ok := f.Default.(string)
		if !f.HasDefault || !ok || !strings.Contains(src, "{{") && !strings.Contains(src, "{%") {
			continue
		}
		if v, present := given[f.Name]; present && v != nil {
			continue
		}
		t, err := workspace.CompileValue(src)
		if err != nil {
			problems = append(problems, fmt.Sprintf("input %q: its default does not parse: %v", f.Name, err))
			continue
		}
		out, err := t.Render(map[string]any{"secret": p.secrets})
		if err != nil {
			problems = append(problems, fmt.Sprintf("input %q: its default does not render: %v", f.Name, p.renderError("default", err)))
			continue
		}
		v, problem := workspace.CheckFieldValue(f, out)
		if problem != "" {
			problems = append(problems, fmt.Sprintf("input %q: its default: %s", f.Name, problem))
			continue
		}
		input[f.Name] = v
	}
	if len(problems) > 0 {
		return stroem.Invalid(fmt.Sprintf("%d input default(s) cannot be used", len(problems)), problems...)
	}
	return nil
}

// containerTypes are the action types this version's workers cannot run
// (no docker or pod runner exists yet).
var containerTypes = map[string]bool{workspace.ActionDocker: true, workspace.ActionPod: true}

// checkRunnable refuses a job with a step of a type no worker of this
// version runs (docker, pod) when no registered worker offers it with tags
// that route the step to it (stroem.TagsMatch), instead of creating a job
// that would wait forever. Other types are not checked: a shell worker
// (with any tags) may simply not have registered yet; a ready step no
// active worker can take fails after unmatched_step_timeout_secs
// (unmatched.go).
func (o *Orchestrator) checkRunnable(ctx context.Context, task string, p *plan) error {
	type want struct {
		name string
		tags []string
	}
	wants := map[string][]want{}
	for _, name := range p.dag.Order() {
		if ps := p.steps[name]; containerTypes[ps.action.Type] {
			wants[ps.action.Type] = append(wants[ps.action.Type], want{name: name, tags: ps.tags()})
		}
	}
	if len(wants) == 0 {
		return nil
	}
	// Both stores list workers; a store that cannot is not checked.
	wl, ok := o.store.(interface {
		WorkerList(context.Context) ([]stroem.Worker, error)
	})
	if !ok {
		return nil
	}
	workers, err := wl.WorkerList(ctx)
	if err != nil {
		return err
	}
	need, tagged := map[string][]string{}, false
	for t, ws := range wants {
		for _, wt := range ws {
			if !slices.ContainsFunc(workers, func(w stroem.Worker) bool {
				return slices.Contains(w.Capabilities, t) && stroem.TagsMatch(wt.tags, w.Tags, w.Exclusive)
			}) {
				name := wt.name
				if len(wt.tags) > 0 {
					name += " (tags " + strings.Join(wt.tags, ", ") + ")"
					tagged = true
				}
				need[t] = append(need[t], name)
			}
		}
	}
	if len(need) == 0 {
		return nil
	}
	which := "that capability"
	if tagged {
		which = "that capability with tags that route the step to it"
	}
	types := make([]string, 0, len(need))
	for t := range need {
		types = append(types, t)
	}
	sort.Strings(types)
	var parts []string
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%s (steps %s)", t, strings.Join(need[t], ", ")))
	}
	return stroem.Errorf(stroem.CodeConflict, "task %q cannot run: no worker can run %s steps: no registered worker has %s, and this version's workers run only local scripts; needs: %s",
		task, strings.Join(types, " and "), which, strings.Join(parts, "; "))
}

// stepTimeout is a step's timeout: its own (action's or step's), else the
// server's default_step_timeout.
func (o *Orchestrator) stepTimeout(own stroem.Duration) stroem.Duration {
	if own > 0 {
		return own
	}
	return stroem.Duration(o.cfg.DefaultStepTimeout)
}
