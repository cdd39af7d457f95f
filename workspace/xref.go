package workspace

import (
	"fmt"
	"sort"
	"strings"
)

// Qualified action names (docs/workspaces.md): a flow step's action
// "lib.item" names an action of library lib (merged into every workspace
// under that prefix, so it is a plain key of Actions), else "ws.item"
// names action item of workspace ws, run with ws's files, revision and
// secrets (a cross-workspace reference). A name without a dot is always
// local.

// IsQualified reports whether name has the form "prefix.item".
func IsQualified(name string) bool {
	q, item, ok := strings.Cut(name, ".")
	return ok && q != "" && item != ""
}

// warnQualified notes a step whose action is qualified and not in the
// workspace: a library or another workspace may hold it, which only the
// server knows (Registry.RefProblems checks it there).
func (l *wsLoader) warnQualified(rs *rawStep, what string) {
	q, item, _ := strings.Cut(rs.s.Action, ".")
	l.warn(rs.actionPos, fmt.Sprintf("%s: action %s is not in this workspace: it is action %q of library or workspace %q, checked by the server", what, rs.s.Action, item, q))
}

// ResolveAction finds the action a step of ws names: an action of ws
// (library actions included), else, for "other.item", action item of
// workspace other as lookup returns it. owner is that other workspace, nil
// for a local action. The error names the missing workspace or action.
func ResolveAction(ws *Workspace, name string, lookup func(string) *Workspace) (a *Action, owner *Workspace, err error) {
	if a := ws.Actions[name]; a != nil {
		return a, nil, nil
	}
	q, item, ok := strings.Cut(name, ".")
	if !ok || q == "" || item == "" {
		return nil, nil, fmt.Errorf("unknown action %q%s", name, didYouMean(name, loadSortedKeys(ws.Actions)))
	}
	if ws.lib != nil {
		for _, lib := range ws.lib.libs {
			if lib.Name == q {
				return nil, nil, fmt.Errorf("action %q: library %s has no action %q%s", name, q, item, didYouMean(item, loadSortedKeys(lib.WS.Actions)))
			}
		}
	}
	var other *Workspace
	if q == ws.Name {
		other = ws
	} else if lookup != nil {
		other = lookup(q)
	}
	if other == nil {
		return nil, nil, fmt.Errorf("action %q: there is no library or workspace %q", name, q)
	}
	a = other.Actions[item]
	if a == nil {
		msg := fmt.Sprintf("action %q: workspace %s has no action %q%s", name, q, item, didYouMean(item, loadSortedKeys(other.Actions)))
		if len(other.Problems) > 0 {
			msg += fmt.Sprintf(" (workspace %s has %d problem(s))", q, len(other.Problems))
		}
		return nil, nil, fmt.Errorf("%s", msg)
	}
	if other == ws {
		return a, nil, nil
	}
	return a, other, nil
}

// StepInputProblems checks a step's input keys against an action's input
// schema, as the loader does for local actions: every key declared, every
// required field without a default given; none for an action without a
// schema (it takes the step's input as given).
func StepInputProblems(fs *FlowStep, a *Action) []string {
	if len(a.Input) == 0 {
		return nil
	}
	var out []string
	for _, k := range loadSortedKeys(fs.Input) {
		if a.Input.Lookup(k) != nil {
			continue
		}
		out = append(out, fmt.Sprintf("action %s has no input %q%s", a.Name, k, didYouMean(k, schemaNames(a.Input))))
	}
	var missing []string
	for _, fd := range a.Input {
		if fd.Required && !fd.HasDefault {
			if _, given := fs.Input[fd.Name]; !given {
				missing = append(missing, fd.Name)
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		out = append(out, fmt.Sprintf("missing required input %q of action %s", m, a.Name))
	}
	return out
}

// RefProblems checks every step of ws whose action is qualified and not
// local against the workspaces lookup returns: the workspace and its action
// must exist and take the step's input. A job of a task with such a
// problem is refused (400) with the same message.
func RefProblems(ws *Workspace, lookup func(string) *Workspace) []Problem {
	if ws == nil {
		return nil
	}
	var out []Problem
	for _, tn := range loadSortedKeys(ws.Tasks) {
		t := ws.Tasks[tn]
		for _, sn := range t.Order {
			fs := t.Flow[sn]
			if fs == nil || !IsQualified(fs.Action) {
				continue
			}
			own := ws.Actions
			if ws.lib != nil {
				own = ws.lib.base.Actions
			}
			if own[fs.Action] != nil {
				continue // the workspace's own action, checked by Load
			}
			what := fmt.Sprintf("task %s, step %s: ", t.Name, sn)
			a, _, err := ResolveAction(ws, fs.Action, lookup)
			if err != nil {
				out = append(out, Problem{Pos: fs.Pos, Message: what + err.Error()})
				continue
			}
			for _, p := range StepInputProblems(fs, a) {
				out = append(out, Problem{Pos: fs.Pos, Message: what + p})
			}
		}
	}
	return out
}

// RefProblems checks the qualified action references of workspace name
// against the workspaces the registry serves now (see RefProblems).
func (r *Registry) RefProblems(name string) []Problem {
	return RefProblems(r.Get(name), r.Get)
}
