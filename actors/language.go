package actors

import (
	"fmt"

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
