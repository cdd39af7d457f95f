package workspace

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Static checks of what templates refer to, so that `stroem validate`
// reports what would otherwise fail when the step runs:
//
//   - input.NAME in a step's input must be an input of the task; in an
//     action's templates, an input of the action;
//   - STEP.output in a step's input must name a step of the task that the
//     step depends on, directly or transitively.
//
// A reference guarded by `| default(...)` or `is defined` / `is undefined`
// is intentional and not reported. Names bound in the template itself (for,
// set, with) are not steps.

// tmplRef is one NAME.ATTR reference in a template's code.
type tmplRef struct {
	root, attr string
	guarded    bool
}

var (
	tagRE     = regexp.MustCompile(`(?s)\{\{.*?\}\}|\{%.*?%\}`)
	rawRE     = regexp.MustCompile(`(?s)\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}`)
	strLitRE  = regexp.MustCompile(`'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"`)
	dottedRE  = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*`)
	guardRE   = regexp.MustCompile(`^\s*(\|\s*(default|d)\b|is\s+(not\s+)?(defined|undefined)\b)`)
	bindingRE = regexp.MustCompile(`\b(for|set|with)\s+([A-Za-z_][A-Za-z0-9_]*(\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)`)
)

// templateRefs lists the NAME.ATTR references in src's tags (outside string
// literals and raw blocks), and the names the template binds itself.
func templateRefs(src string) (refs []tmplRef, bound map[string]bool) {
	bound = map[string]bool{}
	if !strings.Contains(src, "{{") && !strings.Contains(src, "{%") {
		return nil, bound
	}
	src = rawRE.ReplaceAllString(src, "")
	var code strings.Builder
	for _, tag := range tagRE.FindAllString(src, -1) {
		code.WriteString(strLitRE.ReplaceAllString(tag, `""`))
		code.WriteByte('\n')
	}
	c := code.String()
	for _, m := range bindingRE.FindAllStringSubmatch(c, -1) {
		for _, n := range strings.Split(m[2], ",") {
			bound[strings.TrimSpace(n)] = true
		}
	}
	guardedNames := map[string]bool{}
	locs := dottedRE.FindAllStringIndex(c, -1)
	for _, loc := range locs {
		if loc[0] > 0 && (c[loc[0]-1] == '.' || c[loc[0]-1] == '_' || isAlnum(c[loc[0]-1])) {
			continue // the middle of a longer path or name
		}
		full := c[loc[0]:loc[1]]
		root, attr, _ := strings.Cut(full, ".")
		// The whole dotted path, for "input.x.y is defined".
		end := loc[1]
		for end < len(c) && (c[end] == '.' || c[end] == '_' || isAlnum(c[end])) {
			end++
		}
		g := guardRE.MatchString(c[end:])
		if g {
			guardedNames[root+"."+attr] = true
		}
		refs = append(refs, tmplRef{root: root, attr: attr, guarded: g})
	}
	for i := range refs {
		if guardedNames[refs[i].root+"."+refs[i].attr] {
			refs[i].guarded = true
		}
	}
	return refs, bound
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// stringsOf returns every string in a YAML value, at any depth.
func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case map[string]any:
		var out []string
		for _, k := range loadSortedKeys(x) {
			out = append(out, stringsOf(x[k])...)
		}
		return out
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsOf(e)...)
		}
		return out
	}
	return nil
}

// checkActionRefs reports input.NAME references in an action's templates
// that are not inputs of the action. An action that declares no input is
// not checked: it takes the step's input as given (as upstream), and an
// absent one is an undefined variable when the step runs.
func (l *wsLoader) checkActionRefs(a *Action) bool {
	if a.Type != ActionShell && a.Type != ActionDocker && a.Type != ActionPod || len(a.Input) == 0 {
		return true
	}
	srcs := map[string]string{"cmd": a.Cmd, "script": a.Inline}
	if _, args := SplitScript(a.Script); args != "" {
		srcs["script"] = args
	}
	for i, arg := range a.Args {
		srcs[fmt.Sprintf("args[%d]", i)] = arg
	}
	for k, v := range a.Env {
		srcs["env "+k] = v
	}
	ok := true
	seen := map[string]bool{}
	for _, where := range loadSortedKeys(srcs) {
		if _, err := CompileTemplate(srcs[where]); err != nil {
			continue // code that runs as written, or reported already
		}
		refs, bound := templateRefs(srcs[where])
		for _, r := range refs {
			if r.root != "input" || r.guarded || bound["input"] || a.Input.Lookup(r.attr) != nil || seen[r.attr] {
				continue
			}
			seen[r.attr] = true
			l.add(a.Pos, fmt.Sprintf("action %s: %s uses input.%s, which is not an input of the action%s", a.Name, where, r.attr, l.suggest(r.attr, schemaNames(a.Input))))
			ok = false
		}
	}
	return ok
}

// checkStepRefs reports, in a step's input templates, inputs the task does
// not declare and outputs of steps that are unknown or not upstream.
// byTemplate maps the task's steps' template names to their names.
func (l *wsLoader) checkStepRefs(t *Task, rs *rawStep, what string, byTemplate map[string]string, up *UpstreamWalk) bool {
	ok := true
	seen := map[string]bool{}
	for _, key := range loadSortedKeys(rs.s.Input) {
		pos := rs.inputPos[key]
		for _, src := range stringsOf(rs.s.Input[key]) {
			refs, bound := templateRefs(src)
			for _, r := range refs {
				if r.guarded || bound[r.root] || seen[r.root+"."+r.attr] {
					continue
				}
				switch {
				case r.root == "input":
					// A task that declares no input is not checked: upstream
					// workflows often leave the schema out.
					// A webhook job also has the request's keys (body, …).
					if len(t.Input) == 0 || t.Input.Lookup(r.attr) != nil || IsWebhookInputKey(r.attr) {
						continue
					}
					l.add(pos, fmt.Sprintf("%s: input %s uses input.%s, which is not an input of task %s%s", what, key, r.attr, t.Name, l.suggest(r.attr, schemaNames(t.Input))))
				case r.attr == "output" && !inList(reservedStepNames, r.root):
					step, isStep := byTemplate[r.root]
					switch {
					case !isStep:
						names := make([]string, 0, len(byTemplate))
						for n := range byTemplate {
							names = append(names, n)
						}
						sort.Strings(names)
						l.add(pos, fmt.Sprintf("%s: input %s uses %s.output, but the task has no step %s%s", what, key, r.root, r.root, l.suggest(r.root, names)))
					case step == rs.s.Name:
						l.add(pos, fmt.Sprintf("%s: input %s uses the step's own output (%s.output)", what, key, r.root))
					case !up.Has(step):
						l.add(pos, fmt.Sprintf("%s: input %s uses %s.output, but step %s is not upstream of this step: add it to depends_on", what, key, r.root, step))
					default:
						continue
					}
				default:
					continue
				}
				seen[r.root+"."+r.attr] = true
				ok = false
			}
		}
	}
	return ok
}
