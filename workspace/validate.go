package workspace

import (
	"fmt"
	"slices"
	"sort"
)

// link runs the checks that need every file: duplicate names, references
// between definitions (step → action, depends_on → step, trigger → task),
// cycles and step inputs against the action's input schema. It fills ws
// with the definitions that are valid; the rest are left out with a
// problem (see the package documentation).
func (l *wsLoader) link(ws *Workspace) {
	actionDup := l.duplicates("action", len(l.actions), func(i int) (string, Pos) { return l.actions[i].a.Name, l.actions[i].a.Pos })
	taskDup := l.duplicates("task", len(l.tasks), func(i int) (string, Pos) { return l.tasks[i].t.Name, l.tasks[i].t.Pos })
	triggerDup := l.duplicates("trigger", len(l.triggers), func(i int) (string, Pos) { return l.triggers[i].t.Name, l.triggers[i].t.Pos })
	secretDup := l.duplicates("secret", len(l.secrets), func(i int) (string, Pos) { return l.secrets[i].name, l.secrets[i].pos })

	// Every action name that was written down, valid or not: a step naming
	// an invalid one is told so, not "unknown action".
	declared := map[string]bool{}
	for _, ra := range l.actions {
		declared[ra.a.Name] = true
		if !l.checkActionRefs(ra.a) || !l.checkServerAction(ra.a) {
			ra.bad = true
		}
		if !ra.bad && !actionDup[ra.a.Name] {
			ws.Actions[ra.a.Name] = ra.a
		}
	}
	actionNames := loadSortedKeys(declared)

	declaredTasks := map[string]bool{}
	for _, rt := range l.tasks {
		declaredTasks[rt.t.Name] = true
		// A duplicated or broken task is checked all the same, so every
		// problem is reported at once.
		if l.linkTask(ws, rt, declared, actionNames) && !rt.bad && !taskDup[rt.t.Name] {
			ws.Tasks[rt.t.Name] = rt.t
		}
	}
	taskNames := loadSortedKeys(declaredTasks)

	hookAt := map[string]*rawTrigger{}
	for _, rt := range l.triggers {
		if rt.t.Type != TriggerWebhook || rt.bad || triggerDup[rt.t.Name] {
			continue
		}
		if first, dup := hookAt[webhookPath(rt.t)]; dup {
			l.add(rt.t.Pos, fmt.Sprintf("trigger %s: webhook name %q is already used by trigger %s (%s); each webhook needs its own URL", rt.t.Name, webhookPath(rt.t), first.t.Name, first.t.Pos))
			rt.bad = true
			continue
		}
		hookAt[webhookPath(rt.t)] = rt
	}
	for _, rt := range l.triggers {
		if rt.t.Task == "" {
			continue // reported while parsing
		}
		t := rt.t
		switch {
		case ws.Tasks[t.Task] != nil:
			if l.checkTriggerInput(rt, ws.Tasks[t.Task]) && !rt.bad && !triggerDup[t.Name] {
				ws.Triggers[t.Name] = t
			}
		case declaredTasks[t.Task]:
			l.add(rt.taskPos, fmt.Sprintf("trigger %s: task %s has problems and is left out, so this trigger is left out too", t.Name, t.Task))
		default:
			l.add(rt.taskPos, fmt.Sprintf("trigger %s: unknown task %q%s", t.Name, t.Task, l.suggest(t.Task, taskNames)))
		}
	}

	for _, rs := range l.secrets {
		if !rs.bad && !secretDup[rs.name] {
			ws.Secrets[rs.name] = rs.value
		}
	}
	ws.Hooks = mergeHooks(l.hooks)
	l.linkGates(ws)
}

// duplicates reports every definition of a kind whose name was already
// defined (naming where), and returns the duplicated names: all their
// definitions are left out, since which one was meant is unknown.
func (l *wsLoader) duplicates(kind string, n int, at func(int) (string, Pos)) map[string]bool {
	first := map[string]Pos{}
	dup := map[string]bool{}
	for i := 0; i < n; i++ {
		name, pos := at(i)
		if p, ok := first[name]; ok {
			l.add(pos, fmt.Sprintf("%s %s is defined twice: here and at %s; every definition is left out until one is renamed or removed", kind, name, p))
			dup[name] = true
			continue
		}
		first[name] = pos
	}
	return dup
}

// linkTask checks a task's steps against the actions and each other. It
// returns false when the task cannot be served.
func (l *wsLoader) linkTask(ws *Workspace, rt *rawTask, declared map[string]bool, actionNames []string) bool {
	t := rt.t
	ok := true
	what := "task " + t.Name
	deps := make(map[string][]string, len(rt.steps))
	for _, rs := range rt.steps {
		s := rs.s
		sw := what + ", step " + s.Name
		// depends_on names steps of the same task.
		known := make([]string, 0, len(s.DependsOn))
		for i, d := range s.DependsOn {
			if _, exists := t.Flow[d]; exists {
				known = append(known, d)
				continue
			}
			l.add(rs.depPos[i], fmt.Sprintf("%s: depends_on names unknown step %q%s", sw, d, l.suggest(d, t.Order)))
			ok = false
		}
		deps[s.Name] = known

		if s.Action == "" {
			continue // reported while parsing
		}
		a := ws.Actions[s.Action]
		if a == nil && !declared[s.Action] && (IsQualified(s.Action) || l.library) {
			l.warnQualified(rs, sw) // xref.go
			continue
		}
		if a == nil {
			if declared[s.Action] {
				l.add(rs.actionPos, fmt.Sprintf("%s: action %s has problems and is left out, so task %s is left out too", sw, s.Action, t.Name))
			} else {
				l.add(rs.actionPos, fmt.Sprintf("%s: unknown action %q%s", sw, s.Action, l.suggest(s.Action, actionNames)))
			}
			ok = false
			continue
		}
		if !IsServerSide(a.Type) && !l.checkStepInput(rs, sw, a) {
			ok = false
		}
	}
	// Report every cycle: after one is found, drop one of its edges and
	// look again (bounded, since each round removes an edge).
	for range maxCycles {
		c := FindCycle(deps)
		if len(c) == 0 {
			break
		}
		pos := t.Pos
		for _, rs := range rt.steps {
			if rs.s.Name == c[0] {
				pos = rs.depsPos
			}
		}
		l.add(pos, fmt.Sprintf("%s: dependency cycle: %s", what, FormatCycle(c)))
		ok = false
		next := c[0]
		if len(c) > 1 {
			next = c[1]
		}
		deps[c[0]] = slices.DeleteFunc(slices.Clone(deps[c[0]]), func(d string) bool { return d == next })
	}
	byTemplate := TemplateNames(t.Order)
	up := NewUpstreams(deps)
	for _, rs := range rt.steps {
		if !l.checkStepRefs(t, rs, what+", step "+rs.s.Name, byTemplate, up.From(rs.s.Name)) {
			ok = false
		}
	}
	return ok
}

// maxCycles bounds the cycles reported per task.
const maxCycles = 20

// checkStepInput checks a step's input keys against the action's input
// schema: every key must be declared, and every required field without a
// default must be given. An action without an input schema takes the
// step's input as given, as upstream (its files often leave it out).
func (l *wsLoader) checkStepInput(rs *rawStep, what string, a *Action) bool {
	if len(a.Input) == 0 {
		return true
	}
	ok := true
	keys := loadSortedKeys(rs.s.Input)
	for _, k := range keys {
		if a.Input.Lookup(k) != nil {
			continue
		}
		l.add(rs.inputPos[k], fmt.Sprintf("%s: action %s has no input %q%s", what, a.Name, k, l.suggest(k, schemaNames(a.Input))))
		ok = false
	}
	var missing []string
	for _, fd := range a.Input {
		if !fd.Required || fd.HasDefault {
			continue
		}
		if _, given := rs.s.Input[fd.Name]; !given {
			missing = append(missing, fd.Name)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		l.add(rs.s.Pos, fmt.Sprintf("%s: missing required input %q of action %s", what, m, a.Name))
		ok = false
	}
	return ok
}

// checkTriggerInput checks a trigger's input against its task's input
// schema, as a job created by the trigger will be. A webhook's request
// may bring more input, so its fields are not required here.
func (l *wsLoader) checkTriggerInput(rt *rawTrigger, task *Task) bool {
	if rt.t.Type == "event_source" {
		return true // its input is for the jobs of its target_task (not here yet)
	}
	schema := task.Input
	if rt.t.Type == TriggerWebhook {
		schema = make(Schema, len(task.Input))
		for i, f := range task.Input {
			c := *f
			c.Required = false
			schema[i] = &c
		}
	}
	_, problems := CheckInput(schema, rt.t.Input)
	for _, p := range problems {
		l.add(rt.inputPos, fmt.Sprintf("trigger %s: %s (task %s)", rt.t.Name, p, task.Name))
	}
	return len(problems) == 0
}
