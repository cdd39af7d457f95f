package workspace

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// Conditions and loops of a flow step (upstream guides/conditionals.md and
// guides/loops.md):
//
//   - When is a template rendered once the step's dependencies are done;
//     a falsy result (see Falsy) skips the step, a render error fails it.
//   - ForEach is a template that renders to a list, or a literal list; the
//     step runs once per item as instances "<step>[0]", "<step>[1]", …,
//     each seeing each.item and each.index. Sequential runs them one at a
//     time, in order.

// MaxLoopItems is the most items a for_each may expand into.
const MaxLoopItems = 10000

// loopStepKeys are the step keys of conditions and loops.
var loopStepKeys = []string{"when", "for_each", "sequential"}

// Falsy reports whether a rendered when condition skips its step: empty
// (after trimming spaces), "false", "0", "null" or "none", letter case
// ignored, or an empty list or object as it prints ("[]", "{}": what
// `{{ state and … }}` prints when there is no state yet, since Jinja's and
// returns its falsy operand).
func Falsy(rendered string) bool {
	switch strings.ToLower(strings.TrimSpace(rendered)) {
	case "", "false", "0", "null", "none", "[]", "{}":
		return true
	}
	return false
}

// parseStepFlow reads a step's when, for_each and sequential.
func (f *fileParser) parseStepFlow(fs map[string]yamlEntry, s *FlowStep, what string, kn *yaml.Node) {
	if strings.ContainsAny(s.Name, "[]") {
		f.errorf(kn, "%s: a step name must not contain [ or ] (they name the instances of a for_each step)", what)
	}
	if v, ok := fs["when"]; ok {
		if v.val.Kind != yaml.ScalarNode || yamlIsNull(v.val) {
			f.errorf(v.val, "%s must be a template (a string), not %s", v.path, yamlDescribe(v.val))
		} else {
			s.When = v.val.Value
			f.template(v.val, v.path)
		}
	}
	if v, ok := fs["for_each"]; ok {
		switch {
		case v.val.Kind == yaml.ScalarNode && v.val.ShortTag() == "!!str":
			if !hasTemplateSyntax(v.val.Value) {
				f.errorf(v.val, "%s must be a list or a template that renders to one ({{ … }}), not the plain string %q", v.path, v.val.Value)
				break
			}
			s.ForEach = v.val.Value
			f.template(v.val, v.path)
		case v.val.Kind == yaml.SequenceNode:
			val, ok := f.value(v.val, v.path)
			list, _ := val.([]any)
			if ok && len(list) > MaxLoopItems {
				f.errorf(v.val, "%s has %d items; at most %d are allowed", v.path, len(list), MaxLoopItems)
			}
			if list == nil {
				list = []any{}
			}
			s.ForEach = list
		default:
			f.errorf(v.val, "%s must be a list or a template, not %s", v.path, yamlDescribe(v.val))
		}
	}
	if v, ok := fs["sequential"]; ok {
		s.Sequential, _ = f.boolean(v)
		if _, loop := fs["for_each"]; !loop && s.Sequential {
			f.errorf(v.val, "%s: sequential applies to for_each steps only", what)
		}
	}
}

// IsLoop reports whether the step has a for_each.
func (s *FlowStep) IsLoop() bool { return s.ForEach != nil }

// LoopList returns a literal for_each list, or nil when ForEach is a
// template (or absent).
func (s *FlowStep) LoopList() []any {
	l, _ := s.ForEach.([]any)
	return l
}

// LoopTemplate returns a for_each template, or "".
func (s *FlowStep) LoopTemplate() string {
	t, _ := s.ForEach.(string)
	return t
}

// isInlineActionKey reports whether a key of a step with an inline action
// belongs to the action: every key that is not one of the step's own
// (action, name, description, depends_on, input, continue_on_failure,
// timeout, retry, when, for_each, sequential). The action's parser then
// checks it as for a named action, so every action type and every key it
// knows work inline, and an unknown key is reported as one.
func isInlineActionKey(k string) bool {
	return !inList(stepKeys, k) && !inList(loopStepKeys, k)
}

// inlineStepKeys are the keys of a step with an inline action that go to
// the action.
func inlineStepKeys(e yamlEntry) []string {
	n := yamlResolve(e.val)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var out []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		if kn := yamlResolve(n.Content[i]); kn != nil && isInlineActionKey(kn.Value) {
			out = append(out, kn.Value)
		}
	}
	return out
}
