package workspace

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"

	"github.com/stroem/stroem"
)

// yamlNodeBudget bounds the work spent on one file: every mapping entry and
// every value node visited counts once. Aliases can make a small file
// expand exponentially ("billion laughs"); real workflow files stay far
// below this.
const yamlNodeBudget = 200_000

// fileParser walks the yaml.Node tree of one workflow file and records
// problems with the file's display name and the node's line and column.
type fileParser struct {
	l    *wsLoader
	name string // file name as shown to the user
	// busy holds the collection nodes being walked, so an alias that refers
	// to one of its own ancestors (`a: &x [*x]`) is reported, not followed.
	busy map[*yaml.Node]bool
	// spent counts visited nodes against yamlNodeBudget.
	spent      int
	overBudget bool
	// inlineAction is set while a step's inline action is parsed: its
	// input fields take any type.
	inlineAction bool
}

// yamlEntry is one key/value pair of a mapping, aliases resolved.
type yamlEntry struct {
	key  string
	kn   *yaml.Node // the key node (for positions)
	val  *yaml.Node // the value node, aliases resolved; never nil
	path string     // what the value is, for messages: "action greet: timeout"
}

func (f *fileParser) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: f.name}
	}
	return Pos{File: f.name, Line: n.Line, Col: n.Column}
}

func (f *fileParser) errorf(n *yaml.Node, format string, args ...any) {
	f.l.add(f.pos(n), fmt.Sprintf(format, args...))
}

// warnf records a warning: the form works, but has a newer spelling.
func (f *fileParser) warnf(n *yaml.Node, format string, args ...any) {
	f.l.warn(f.pos(n), fmt.Sprintf(format, args...))
}

// spend counts n visited nodes; false once the file is over budget (the
// problem is reported once).
func (f *fileParser) spend(n int, at *yaml.Node) bool {
	if f.overBudget {
		return false
	}
	f.spent += n
	if f.spent > yamlNodeBudget {
		f.overBudget = true
		f.errorf(at, "file is too large or expands too many aliases (more than %d nodes); the rest of it is ignored", yamlNodeBudget)
		return false
	}
	return true
}

// resolve follows an alias to the node it names.
func yamlResolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// isNull reports whether n is absent, empty or an explicit null.
func yamlIsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names the kind of a node for "must be X, not Y" messages.
func yamlDescribe(n *yaml.Node) string {
	n = yamlResolve(n)
	if n == nil {
		return "null"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		case "!!int":
			return "an integer (" + n.Value + ")"
		case "!!float":
			return "a number (" + n.Value + ")"
		default:
			return fmt.Sprintf("a string (%q)", n.Value)
		}
	}
	return "an empty value"
}

// enter marks a collection node as being walked; false (and a problem) if
// it already is, which only an alias to an ancestor can cause.
func (f *fileParser) enter(n *yaml.Node, what string) bool {
	if f.busy[n] {
		f.errorf(n, "%s: an alias refers to a value that contains it", what)
		return false
	}
	f.busy[n] = true
	return true
}

func (f *fileParser) leave(n *yaml.Node) { delete(f.busy, n) }

// mapping returns the entries of a mapping node in YAML order, with `<<`
// merge keys applied (explicit keys win) and duplicate keys reported (the
// first one is kept). A null node is an empty mapping. A node of another
// kind is reported as `what must be a mapping` and ok is false.
func (f *fileParser) mapping(n *yaml.Node, what string) (entries []yamlEntry, ok bool) {
	return f.mappingDup(n, what, false)
}

// mappingDup is mapping; with keepDup, duplicate keys are all returned and
// not reported (the caller reports them with both positions).
func (f *fileParser) mappingDup(n *yaml.Node, what string, keepDup bool) (entries []yamlEntry, ok bool) {
	n = yamlResolve(n)
	if yamlIsNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		f.errorf(n, "%s must be a mapping, not %s", what, yamlDescribe(n))
		return nil, false
	}
	if !f.enter(n, what) {
		return nil, false
	}
	defer f.leave(n)
	seen := map[string]*yaml.Node{}
	var merged []yamlEntry
	ok = true
	for i := 0; i+1 < len(n.Content); i += 2 {
		if !f.spend(1, n) {
			return entries, false
		}
		kn, vn := yamlResolve(n.Content[i]), yamlResolve(n.Content[i+1])
		if kn == nil || vn == nil {
			f.errorf(n.Content[i], "%s: an alias refers to itself", what)
			ok = false
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			f.errorf(kn, "%s: keys must be strings, not %s", what, yamlDescribe(kn))
			ok = false
			continue
		}
		if kn.ShortTag() == "!!merge" {
			m, mok := f.merge(vn, what)
			ok = ok && mok
			merged = append(merged, m...)
			continue
		}
		key := kn.Value
		if first, dup := seen[key]; dup && !keepDup {
			f.errorf(kn, "%s: duplicate key %q (first at line %d)", what, key, first.Line)
			ok = false
			continue
		}
		seen[key] = kn
		entries = append(entries, yamlEntry{key: key, kn: kn, val: vn, path: what + ": " + key})
	}
	// Merged keys come after the explicit ones; the first wsSource wins.
	for _, e := range merged {
		if _, dup := seen[e.key]; dup {
			continue
		}
		seen[e.key] = e.kn
		e.path = what + ": " + e.key
		entries = append(entries, e)
	}
	return entries, ok
}

// merge returns the entries a `<<` key brings in: one mapping or a list of
// mappings.
func (f *fileParser) merge(v *yaml.Node, what string) ([]yamlEntry, bool) {
	var srcs []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		srcs = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, c := range v.Content {
			srcs = append(srcs, yamlResolve(c))
		}
	default:
		f.errorf(v, "%s: the merge key << needs a mapping or a list of mappings, not %s", what, yamlDescribe(v))
		return nil, false
	}
	var out []yamlEntry
	ok := true
	for _, s := range srcs {
		if s == nil || s.Kind != yaml.MappingNode {
			f.errorf(v, "%s: the merge key << needs a mapping or a list of mappings, not %s", what, yamlDescribe(s))
			ok = false
			continue
		}
		es, eok := f.mapping(s, what)
		ok = ok && eok
		out = append(out, es...)
	}
	return out, ok
}

// fields reads a mapping whose keys come from a fixed set. Unknown keys are
// reported with a suggestion; the result maps key → yamlEntry.
func (f *fileParser) fields(n *yaml.Node, what string, known []string) (map[string]yamlEntry, bool) {
	es, ok := f.mapping(n, what)
	out := make(map[string]yamlEntry, len(es))
	for _, e := range es {
		if !inList(known, e.key) {
			f.errorf(e.kn, "%s: unknown key %q%s", what, e.key, didYouMean(e.key, known))
			ok = false
			continue
		}
		out[e.key] = e
	}
	return out, ok
}

// setField parses fs[key], when present, into *dst (the zero value when
// it does not parse: parse reported why).
func setField[T any](fs map[string]yamlEntry, key string, dst *T, parse func(yamlEntry) (T, bool)) {
	if v, ok := fs[key]; ok {
		*dst, _ = parse(v)
	}
}

// text reads a free-text field: any scalar (numbers and booleans as
// written); null is "". A mapping or list is a problem.
func (f *fileParser) text(e yamlEntry) (string, bool) {
	if yamlIsNull(e.val) {
		return "", true
	}
	if e.val.Kind != yaml.ScalarNode {
		f.errorf(e.val, "%s must be a string, not %s", e.path, yamlDescribe(e.val))
		return "", false
	}
	return e.val.Value, true
}

// nameOf reads a reference to a name (an action, a step, a task): a non-empty
// string.
func (f *fileParser) nameOf(e yamlEntry) (string, bool) {
	return f.nameNode(e.val, e.path)
}

func (f *fileParser) nameNode(n *yaml.Node, what string) (string, bool) {
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		f.errorf(n, "%s must be a name (a string), not %s", what, yamlDescribe(n))
		return "", false
	}
	if strings.TrimSpace(n.Value) == "" {
		f.errorf(n, "%s must not be empty", what)
		return "", false
	}
	return n.Value, true
}

// names reads a list of names; a single name is accepted as a list of one.
func (f *fileParser) names(e yamlEntry) ([]string, []*yaml.Node, bool) {
	n := e.val
	if yamlIsNull(n) {
		return nil, nil, true
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		s, ok := f.nameNode(n, e.path)
		if !ok {
			return nil, nil, false
		}
		return []string{s}, []*yaml.Node{n}, true
	}
	if n.Kind != yaml.SequenceNode {
		f.errorf(n, "%s must be a list of names, not %s", e.path, yamlDescribe(n))
		return nil, nil, false
	}
	var out []string
	var nodes []*yaml.Node
	ok := true
	for _, c := range n.Content {
		if !f.spend(1, n) {
			return out, nodes, false
		}
		c = yamlResolve(c)
		s, sok := f.nameNode(c, e.path+" yamlEntry")
		if !sok {
			ok = false
			continue
		}
		out = append(out, s)
		nodes = append(nodes, c)
	}
	return out, nodes, ok
}

// boolean reads true or false.
func (f *fileParser) boolean(e yamlEntry) (bool, bool) {
	return scalarOf[bool](f, e, "!!bool", "true or false")
}

// integer reads a whole number.
func (f *fileParser) integer(e yamlEntry) (int, bool) {
	return scalarOf[int](f, e, "!!int", "a whole number")
}

// scalarOf reads a scalar of the YAML tag into a T; anything else is a
// problem saying what it must be.
func scalarOf[T any](f *fileParser, e yamlEntry, tag, what string) (T, bool) {
	var v T
	if e.val.Kind == yaml.ScalarNode && e.val.ShortTag() == tag {
		if err := e.val.Decode(&v); err == nil {
			return v, true
		}
	}
	f.errorf(e.val, "%s must be %s, not %s", e.path, what, yamlDescribe(e.val))
	var zero T
	return zero, false
}

// duration reads a duration: a whole number of seconds (300), or a Go
// duration string ("30s", "5m", "1h30m") that may also count days ("7d",
// "1d12h"). Negative durations are a problem.
func (f *fileParser) duration(e yamlEntry) (stroem.Duration, bool) {
	if e.val.Kind != yaml.ScalarNode || yamlIsNull(e.val) {
		f.errorf(e.val, "%s must be a duration like \"30s\", \"5m\" or a number of seconds, not %s", e.path, yamlDescribe(e.val))
		return 0, false
	}
	d, err := ParseDuration(e.val.Value)
	if err != nil {
		f.errorf(e.val, "%s: %v", e.path, err)
		return 0, false
	}
	return stroem.Duration(d), true
}

// limitedDuration is duration with an upper bound.
func (f *fileParser) limitedDuration(e yamlEntry, limit time.Duration) (stroem.Duration, bool) {
	d, ok := f.duration(e)
	if ok && d.D() > limit {
		f.errorf(e.val, "%s is %s; at most %s is allowed", e.path, d.D(), limit)
		return 0, false
	}
	return d, ok
}

// ParseDuration reads a workflow duration: whole seconds ("300"), or a Go
// duration string that may also count days ("7d", "1d12h", "90s").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("duration must not be negative, got %s", s)
		}
		if n > int64(math.MaxInt64/int64(time.Second)) {
			return 0, fmt.Errorf("duration %s is too long", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	rest := s
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err == nil && n >= 0 && n < 100000 {
			days = time.Duration(n) * 24 * time.Hour
			rest = s[i+1:]
		}
	}
	var d time.Duration
	if rest != "" && (rest[0] == '-' || rest[0] == '+') && days > 0 {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	if rest != "" {
		var err error
		d, err = time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q; use a number of seconds or a duration like \"30s\", \"5m\", \"1h30m\" or \"7d\"", s)
		}
	} else if days == 0 && s != "0d" {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	d += days
	if d < 0 {
		return 0, fmt.Errorf("duration must not be negative, got %s", s)
	}
	return d, nil
}

// oneOf reads a string that must be one of allowed.
func (f *fileParser) oneOf(e yamlEntry, allowed ...string) (string, bool) {
	if e.val.Kind != yaml.ScalarNode || yamlIsNull(e.val) {
		f.errorf(e.val, "%s must be one of %s, not %s", e.path, strings.Join(allowed, ", "), yamlDescribe(e.val))
		return "", false
	}
	if !inList(allowed, e.val.Value) {
		f.errorf(e.val, "%s: unknown value %q%s; want one of %s", e.path, e.val.Value, didYouMean(e.val.Value, allowed), strings.Join(allowed, ", "))
		return "", false
	}
	return e.val.Value, true
}

// value converts a node to plain Go data: nil, bool, int, float64, string,
// []any and map[string]any (keys are strings). Problems (non-string keys,
// non-finite numbers, alias cycles) are reported and ok is false.
func (f *fileParser) value(n *yaml.Node, what string) (v any, ok bool) {
	n = yamlResolve(n)
	if n == nil {
		f.errorf(nil, "%s: an alias refers to itself", what)
		return nil, false
	}
	if !f.spend(1, n) {
		return nil, false
	}
	switch n.Kind {
	case 0:
		return nil, true
	case yaml.ScalarNode:
		return f.scalar(n, what)
	case yaml.SequenceNode:
		if !f.enter(n, what) {
			return nil, false
		}
		defer f.leave(n)
		out := make([]any, 0, len(n.Content))
		ok = true
		for i, c := range n.Content {
			cv, cok := f.value(c, fmt.Sprintf("%s[%d]", what, i))
			ok = ok && cok
			out = append(out, cv)
		}
		return out, ok
	case yaml.MappingNode:
		es, mok := f.mapping(n, what)
		out := make(map[string]any, len(es))
		ok = mok
		if !f.enter(n, what) {
			return nil, false
		}
		defer f.leave(n)
		for _, e := range es {
			ev, eok := f.value(e.val, e.path)
			ok = ok && eok
			out[e.key] = ev
		}
		return out, ok
	}
	f.errorf(n, "%s: unsupported YAML value", what)
	return nil, false
}

// scalar converts one scalar node, following the YAML 1.2 core schema as
// yaml.v3 resolves it; timestamps stay strings.
func (f *fileParser) scalar(n *yaml.Node, what string) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool", "!!int", "!!float", "!!binary":
		var v any
		if err := n.Decode(&v); err != nil {
			f.errorf(n, "%s: %v", what, err)
			return nil, false
		}
		switch x := v.(type) {
		case float64:
			if math.IsInf(x, 0) || math.IsNaN(x) {
				f.errorf(n, "%s: %s is not a finite number", what, n.Value)
				return nil, false
			}
		case int64:
			return int(x), true
		case uint64:
			if x > math.MaxInt64 {
				return float64(x), true
			}
			return int(x), true
		}
		return v, true
	default:
		return n.Value, true
	}
}

// contains reports whether s is in list.
func inList(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns ` (did you mean "x"?)` for the candidate closest to s, or
// "" when none is close enough.
func didYouMean(s string, candidates []string) string {
	// Edit distance is quadratic: long names get no suggestion.
	const longest = 100
	if len(s) > longest {
		return ""
	}
	best, bestD := "", -1
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	ls := strings.ToLower(s)
	for _, c := range sorted {
		if len(c) > longest {
			continue
		}
		d := levenshtein.ComputeDistance(ls, strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || best == s {
		return ""
	}
	limit := max(2, len([]rune(s))/3)
	if bestD > limit || bestD >= len([]rune(s)) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// loadSortedKeys returns the keys of m in order.
func loadSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
