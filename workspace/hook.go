package workspace

import (
	"fmt"
	"slices"

	"gopkg.in/yaml.v3"
)

// Hooks, sub-tasks and approval gates (issue 19 part B): the workflow side.
// The runtime side is in package actors (hook.go, subjob.go, approval.go).

// Hook events, as YAML keys and as the `event` of a hook job.
const (
	HookOnSuccess   = "on_success"
	HookOnError     = "on_error"
	HookOnCancel    = "on_cancel"
	HookOnSuspended = "on_suspended"
)

// HookEvents lists the hook keys of a task. Workspace level takes all but
// on_suspended (as upstream).
var HookEvents = []string{HookOnSuccess, HookOnError, HookOnCancel, HookOnSuspended}

// MaxTaskDepth bounds the nesting of `type: task` child jobs (a job started
// by a step of a job started by a step …), against recursion through tasks
// that call each other.
const MaxTaskDepth = 10

// Hooks are the hooks of a task or a workspace, by event.
type Hooks struct {
	OnSuccess   []*HookSpec `json:"on_success,omitempty"`
	OnError     []*HookSpec `json:"on_error,omitempty"`
	OnCancel    []*HookSpec `json:"on_cancel,omitempty"`
	OnSuspended []*HookSpec `json:"on_suspended,omitempty"`
}

// HookSpec is one hook: an action run as a job of its own, with input
// templates that see `hook.*` and `secret.*`.
type HookSpec struct {
	Action string         `json:"action"`
	Input  map[string]any `json:"input,omitempty"`
	Pos    Pos            `json:"-"`
}

// For returns the hooks of an event (nil for none or an unknown event).
func (h *Hooks) For(event string) []*HookSpec {
	if h == nil {
		return nil
	}
	switch event {
	case HookOnSuccess:
		return h.OnSuccess
	case HookOnError:
		return h.OnError
	case HookOnCancel:
		return h.OnCancel
	case HookOnSuspended:
		return h.OnSuspended
	}
	return nil
}

func (h *Hooks) add(event string, specs []*HookSpec) {
	switch event {
	case HookOnSuccess:
		h.OnSuccess = append(h.OnSuccess, specs...)
	case HookOnError:
		h.OnError = append(h.OnError, specs...)
	case HookOnCancel:
		h.OnCancel = append(h.OnCancel, specs...)
	case HookOnSuspended:
		h.OnSuspended = append(h.OnSuspended, specs...)
	}
}

// IsServerSide reports whether steps of an action type run on the server
// (no worker ever claims them).
func IsServerSide(actionType string) bool {
	return actionType == ActionTask || actionType == ActionApproval
}

var hookKeys = []string{"action", "input"}

// parseHooks reads the hook keys present in fs (events) into a Hooks, nil
// when there are none.
func (f *fileParser) parseHooks(fs map[string]yamlEntry, events []string) *Hooks {
	var h *Hooks
	for _, ev := range events {
		e, ok := fs[ev]
		if !ok {
			continue
		}
		if h == nil {
			h = &Hooks{}
		}
		h.add(ev, f.parseHookList(e))
	}
	return h
}

func (f *fileParser) parseHookList(e yamlEntry) []*HookSpec {
	n := yamlResolve(e.val)
	if yamlIsNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		f.errorf(n, "%s must be a list of hooks (- action: …), not %s", e.path, yamlDescribe(n))
		return nil
	}
	var out []*HookSpec
	for i, item := range n.Content {
		what := fmt.Sprintf("%s[%d]", e.path, i)
		fs, _ := f.fields(item, what, hookKeys)
		hs := &HookSpec{Pos: f.pos(item)}
		if v, ok := fs["action"]; ok {
			hs.Action, _ = f.nameOf(v)
			hs.Pos = f.pos(v.val)
		} else if item.Kind == yaml.MappingNode {
			f.errorf(item, "%s needs an action", what)
			continue
		}
		if v, ok := fs["input"]; ok {
			hs.Input = f.inputValues(v, nil)
		}
		if hs.Action != "" {
			out = append(out, hs)
		}
	}
	return out
}

// parseServerAction reads a type: task or type: approval action: task
// names the task to run, message is the approver's template. Keys that
// make a worker run something do not apply.
func (f *fileParser) parseServerAction(e yamlEntry, fs map[string]yamlEntry, a *Action, declared string) {
	what := "action " + e.key
	for _, k := range slices.Concat(scriptOnlyKeys, containerOnlyKeys, []string{"cmd", "env", "tags", "workdir", "output", "retry", "manifest", "resources"}) {
		if v, ok := fs[k]; ok {
			f.errorf(v.kn, "%s: %s does not apply to type %s actions (they run on the server, not on a worker)", what, k, declared)
		}
	}
	switch declared {
	case ActionTask:
		if v, ok := fs["timeout"]; ok {
			f.errorf(v.kn, "%s: timeout does not apply to type task actions (the child job's own steps have theirs)", what)
		}
		v, ok := fs["task"]
		if !ok {
			if e.val.Kind == yaml.MappingNode {
				f.errorf(e.kn, "%s: type task needs task (the name of the task to run)", what)
			}
			return
		}
		a.Task, _ = f.nameOf(v)
	case ActionApproval:
		if v, ok := fs["message"]; ok {
			if s, ok := f.text(v); ok {
				a.Message = s
				f.template(v.val, what+": message")
			}
		}
	}
}

// serverKey reports whether an otherwise unsupported key belongs to the
// declared server-side type.
func serverKey(declared, key string) bool {
	return (declared == ActionTask && key == "task") || (declared == ActionApproval && key == "message")
}

// checkServerAction checks what a server-side action names: the task of a
// type: task action must be declared.
func (l *wsLoader) checkServerAction(a *Action) bool {
	if a.Type != ActionTask || a.Task == "" {
		return true
	}
	for _, rt := range l.tasks {
		if rt.t.Name == a.Task {
			return true
		}
	}
	names := make([]string, 0, len(l.tasks))
	for _, rt := range l.tasks {
		names = append(names, rt.t.Name)
	}
	l.add(a.Pos, fmt.Sprintf("action %s: type task names unknown task %q%s", a.Name, a.Task, l.suggest(a.Task, names)))
	return false
}

// linkGates checks, once tasks and actions are linked, what spans both: a
// task whose step runs the task itself (direct recursion; deeper cycles
// stop at MaxTaskDepth at run time), and hooks naming unknown actions or
// actions that cannot be hooks. A task with such a problem is left out.
func (l *wsLoader) linkGates(ws *Workspace) {
	actionNames := loadSortedKeys(ws.Actions)
	checkHooks := func(h *Hooks, what string) bool {
		ok := true
		for _, ev := range HookEvents {
			for i, hs := range h.For(ev) {
				a := ws.Actions[hs.Action]
				switch {
				case a == nil:
					l.add(hs.Pos, fmt.Sprintf("%s: %s[%d]: unknown action %q%s", what, ev, i, hs.Action, l.suggest(hs.Action, actionNames)))
					ok = false
				case a.Type == ActionApproval:
					l.add(hs.Pos, fmt.Sprintf("%s: %s[%d]: action %s is an approval gate; a hook runs an action or a task, it cannot wait for a decision", what, ev, i, hs.Action))
					ok = false
				}
			}
		}
		return ok
	}
	for _, name := range loadSortedKeys(ws.Tasks) {
		t := ws.Tasks[name]
		ok := checkHooks(t.Hooks, "task "+name)
		for _, sn := range t.Order {
			s := t.Flow[sn]
			if a := ws.Actions[s.Action]; a != nil && a.Type == ActionTask && a.Task == name {
				l.add(t.Pos, fmt.Sprintf("task %s, step %s: action %s runs task %s itself; a task cannot run itself as a sub-task", name, sn, a.Name, name))
				ok = false
			}
		}
		if !ok {
			delete(ws.Tasks, name)
		}
	}
	if !checkHooks(ws.Hooks, "workspace") {
		ws.Hooks = nil
	}
}

// mergeHooks merges the workspace-level hooks of every file.
func mergeHooks(hs []*Hooks) *Hooks {
	if len(hs) == 0 {
		return nil
	}
	out := &Hooks{}
	for _, h := range hs {
		for _, ev := range HookEvents {
			out.add(ev, h.For(ev))
		}
	}
	return out
}
