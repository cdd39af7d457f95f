package workspace

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gosimple/unidecode"
	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
)

// Tera compatibility. Workflows written for the upstream Strøm use Tera's
// filters, tests and functions, whose arguments are keywords
// (`default(value='x')`, `join(sep=', ')`, `truncate(length=10)`). gonja
// implements Jinja, whose same-named filters take other argument names (or
// none) and sometimes mean something else. Here:
//
//   - kwRenames turns Tera's keyword names into the Jinja filter's own
//     arguments where the meaning is the same;
//   - teraFilters are Tera filters with Tera's semantics, replacing Jinja's
//     where they differ (truncate, slice, indent, split, …) or adding those
//     Jinja lacks (nth, get, concat, trim_start, slugify, date, …);
//   - teraTests and the functions in teraFunctions are Tera's.
//
// Positional arguments keep working as in Jinja where Tera has none.

// kwRenames maps filter → Tera keyword → the position it takes in the Jinja
// filter (-1: rename to the keyword in kwTarget instead).
var kwRenames = map[string]map[string]int{
	"default": {"value": 0},
	"replace": {"from": 0, "to": 1},
}

// kwTarget renames a Tera keyword to a Jinja keyword of the same filter.
var kwTarget = map[string]map[string]string{}

// teraArgs rewrites Tera keyword arguments for a Jinja filter.
func teraArgs(name string, f exec.FilterFunction) exec.FilterFunction {
	pos, kw := kwRenames[name], kwTarget[name]
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if len(params.KwArgs) == 0 {
			return f(e, in, params)
		}
		np := &exec.VarArgs{Args: append([]*exec.Value(nil), params.Args...), KwArgs: map[string]*exec.Value{}}
		type posArg struct {
			at int
			v  *exec.Value
		}
		var moved []posArg
		for k, v := range params.KwArgs {
			if at, ok := pos[k]; ok {
				moved = append(moved, posArg{at, v})
				continue
			}
			if to, ok := kw[k]; ok {
				np.KwArgs[to] = v
				continue
			}
			np.KwArgs[k] = v
		}
		sort.Slice(moved, func(i, j int) bool { return moved[i].at < moved[j].at })
		for _, m := range moved {
			if m.at != len(np.Args) {
				return exec.AsValue(exec.ErrInvalidCall(fmt.Errorf("%s: give the arguments either all by keyword or all by position", name)))
			}
			np.Args = append(np.Args, m.v)
		}
		return f(e, in, np)
	}
}

// teraFilterSet is the filters of the template environment: gonja's, with
// Tera's names and semantics on top.
func teraFilterSet() map[string]exec.FilterFunction {
	out := map[string]exec.FilterFunction{}
	for name := range kwRenames {
		if f, ok := builtins.Filters.Get(name); ok {
			out[name] = teraArgs(name, f)
		}
	}
	for name := range kwTarget {
		if f, ok := builtins.Filters.Get(name); ok {
			out[name] = teraArgs(name, f)
		}
	}
	for name, f := range teraFilters {
		out[name] = f
	}
	return out
}

var teraFilters = map[string]exec.FilterFunction{
	"truncate":           filterTeraTruncate,
	"slice":              filterTeraSlice,
	"split":              filterTeraSplit,
	"indent":             filterTeraIndent,
	"nth":                filterTeraNth,
	"get":                filterTeraGet,
	"concat":             filterTeraConcat,
	"trim_start":         stringFilter(func(s string) string { return strings.TrimLeftFunc(s, unicode.IsSpace) }),
	"trim_end":           stringFilter(func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) }),
	"trim_start_matches": patFilter(strings.TrimPrefix),
	"trim_end_matches":   patFilter(strings.TrimSuffix),
	"addslashes":         stringFilter(addSlashes),
	"slugify":            stringFilter(slugify),
	"linebreaksbr":       stringFilter(func(s string) string { return strings.NewReplacer("\r\n", "<br>", "\n", "<br>").Replace(s) }),
	"spaceless":          stringFilter(func(s string) string { return spacelessRE.ReplaceAllString(s, "><") }),
	"escape_xml":         stringFilter(escapeXML),
	"urlencode":          stringFilter(func(s string) string { return percentEncode(s, urlencodeKeeps) }),
	"urlencode_strict":   stringFilter(func(s string) string { return percentEncode(s, "") }),
	"escape":             stringFilter(escapeHTML),
	"join":               filterTeraJoin,
	"filesizeformat":     filterTeraFilesize,
	"as_str":             filterTeraAsStr,
	"pluralize":          filterTeraPluralize,
	"date":               filterTeraDate,
	"group_by":           filterTeraGroupBy,
	"filter":             filterTeraFilter,
	"vals":               filterVals,
}

var spacelessRE = regexp.MustCompile(`>\s+<`)

// takeTera reads keyword arguments (also given by position, in order).
func takeTera(params *exec.VarArgs, names ...string) (map[string]*exec.Value, error) {
	if len(params.Args) > len(names) {
		return nil, fmt.Errorf("takes at most %d arguments (%s), got %d", len(names), strings.Join(names, ", "), len(params.Args))
	}
	out := map[string]*exec.Value{}
	for i, a := range params.Args {
		out[names[i]] = a
	}
	for k, v := range params.KwArgs {
		if !inList(names, k) {
			return nil, fmt.Errorf("unknown argument %q (it takes %s)", k, strings.Join(names, ", "))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("argument %q given twice", k)
		}
		out[k] = v
	}
	return out, nil
}

// takeTeraNeeds is takeTera for a call whose first argument is required.
func takeTeraNeeds(params *exec.VarArgs, names ...string) (map[string]*exec.Value, error) {
	a, err := takeTera(params, names...)
	if err == nil && a[names[0]] == nil {
		err = errors.New("needs " + names[0])
	}
	return a, err
}

// filterArgs starts a filter: an error input passes through (bad is the
// input), then take (takeTera or takeTeraNeeds) reads the arguments under
// names; else bad is the invalid call the filter returns.
func filterArgs(name string, in *exec.Value, params *exec.VarArgs, take func(*exec.VarArgs, ...string) (map[string]*exec.Value, error), names ...string) (a map[string]*exec.Value, bad *exec.Value) {
	if in.IsError() {
		return nil, in
	}
	a, err := take(params, names...)
	if err != nil {
		return nil, invalid(name, err)
	}
	return a, nil
}

// listArgs is filterArgs for a filter over an array: an input that is not
// one is an invalid call too.
func listArgs(name string, in *exec.Value, params *exec.VarArgs, take func(*exec.VarArgs, ...string) (map[string]*exec.Value, error), names ...string) (list []any, a map[string]*exec.Value, bad *exec.Value) {
	if a, bad = filterArgs(name, in, params, take, names...); bad != nil {
		return nil, nil, bad
	}
	list, ok := plainList(in)
	if !ok {
		return nil, nil, invalid(name, errors.New("applies to an array"))
	}
	return list, a, nil
}

func invalid(name string, err error) *exec.Value {
	return exec.AsValue(exec.ErrInvalidCall(fmt.Errorf("%s: %w", name, err)))
}

func stringFilter(fn func(string) string) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		if err := params.Take(); err != nil {
			return exec.AsValue(exec.ErrInvalidCall(err))
		}
		return exec.AsValue(fn(in.String()))
	}
}

func patFilter(fn func(s, pat string) string) exec.FilterFunction {
	return func(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		if in.IsError() {
			return in
		}
		a, err := takeTeraNeeds(params, "pat")
		if err != nil {
			return invalid("trim_*_matches", err)
		}
		return exec.AsValue(fn(in.String(), a["pat"].String()))
	}
}

// filterTeraTruncate is Tera's truncate: at most length characters, then
// end (default "…") when something was cut.
func filterTeraTruncate(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	a, bad := filterArgs("truncate", in, params, takeTera, "length", "end")
	if bad != nil {
		return bad
	}
	length, end := 255, "…"
	if v := a["length"]; v != nil {
		if !v.IsInteger() || v.Integer() < 0 {
			return invalid("truncate", fmt.Errorf("length must be a whole number ≥ 0"))
		}
		length = v.Integer()
	}
	if v := a["end"]; v != nil {
		end = v.String()
	}
	r := []rune(in.String())
	if len(r) <= length {
		return exec.AsValue(string(r))
	}
	return exec.AsValue(string(r[:length]) + end)
}

// filterTeraSlice is Tera's slice(start, end) of an array (negative
// indexes count from the end).
func filterTeraSlice(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	list, a, bad := listArgs("slice", in, params, takeTera, "start", "end")
	if bad != nil {
		return bad
	}
	n := len(list)
	idx := func(v *exec.Value, def int) (int, error) {
		if v == nil {
			return def, nil
		}
		if !v.IsInteger() {
			return 0, errors.New("start and end must be whole numbers")
		}
		i := v.Integer()
		if i < 0 {
			i += n
		}
		return min(max(i, 0), n), nil
	}
	start, err := idx(a["start"], 0)
	if err != nil {
		return invalid("slice", err)
	}
	end, err := idx(a["end"], n)
	if err != nil {
		return invalid("slice", err)
	}
	if start > end {
		start = end
	}
	return exec.AsValue(list[start:end])
}

// filterTeraSplit is Tera's split(pat): a string split at every pat.
func filterTeraSplit(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	a, bad := filterArgs("split", in, params, takeTera, "pat")
	if bad != nil {
		return bad
	}
	var parts []string
	if a["pat"] == nil {
		parts = strings.Fields(in.String())
	} else {
		parts = strings.Split(in.String(), a["pat"].String())
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return exec.AsValue(out)
}

// filterTeraIndent is Tera's indent(prefix="    ", first=false,
// blank=false): prefix before every line but the first (and blank) ones.
func filterTeraIndent(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	a, bad := filterArgs("indent", in, params, takeTera, "prefix", "first", "blank")
	if bad != nil {
		return bad
	}
	prefix := "    "
	if v := a["prefix"]; v != nil {
		if v.IsInteger() {
			prefix = strings.Repeat(" ", max(v.Integer(), 0)) // Jinja's width
		} else {
			prefix = v.String()
		}
	}
	first := a["first"] != nil && a["first"].IsTrue()
	blank := a["blank"] != nil && a["blank"].IsTrue()
	lines := strings.Split(in.String(), "\n")
	for i, l := range lines {
		if (i == 0 && !first) || (strings.TrimSpace(l) == "" && !blank) {
			continue
		}
		lines[i] = prefix + l
	}
	return exec.AsValue(strings.Join(lines, "\n"))
}

func filterTeraNth(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	a, err := takeTera(params, "n")
	if err != nil || a["n"] == nil || !a["n"].IsInteger() {
		if err == nil {
			err = errors.New("needs n, a whole number")
		}
		return invalid("nth", err)
	}
	list, ok := plainList(in)
	if !ok {
		return invalid("nth", errors.New("applies to an array"))
	}
	n := a["n"].Integer()
	if n < 0 || n >= len(list) {
		return exec.AsValue(nil)
	}
	return exec.AsValue(list[n])
}

// filterTeraGet is Tera's get(key, default): an object's value by a key
// computed at run time.
func filterTeraGet(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	a, bad := filterArgs("get", in, params, takeTeraNeeds, "key", "default")
	if bad != nil {
		return bad
	}
	plain, err := plainValue(in)
	if err != nil {
		return exec.AsValue(err)
	}
	m, ok := plain.(map[string]any)
	if !ok {
		return invalid("get", errors.New("applies to an object"))
	}
	if v, ok := m[a["key"].String()]; ok {
		return exec.AsValue(v)
	}
	if d := a["default"]; d != nil {
		return d
	}
	return exec.AsValue(fmt.Errorf("get: the object has no key %q", a["key"].String()))
}

func filterTeraConcat(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	list, a, bad := listArgs("concat", in, params, takeTeraNeeds, "with")
	if bad != nil {
		return bad
	}
	out := append([]any(nil), list...)
	if more, ok := plainList(a["with"]); ok {
		out = append(out, more...)
	} else {
		w, err := plainValue(a["with"])
		if err != nil {
			return exec.AsValue(err)
		}
		out = append(out, w)
	}
	return exec.AsValue(out)
}

func filterTeraAsStr(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	s, errv := formatArg(in, params)
	if errv != nil {
		return errv
	}
	return exec.AsValue(s)
}

func filterTeraPluralize(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	a, bad := filterArgs("pluralize", in, params, takeTera, "singular", "plural")
	if bad != nil {
		return bad
	}
	singular, plural := "", "s"
	if v := a["singular"]; v != nil {
		singular = v.String()
	}
	if v := a["plural"]; v != nil {
		plural = v.String()
	}
	if !in.IsNumber() {
		return invalid("pluralize", errors.New("applies to a number"))
	}
	if in.Float() == 1 {
		return exec.AsValue(singular)
	}
	return exec.AsValue(plural)
}

// filterTeraGroupBy is Tera's group_by(attribute): an object from the
// attribute's value (as text) to the items that have it.
func filterTeraGroupBy(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	list, a, bad := listArgs("group_by", in, params, takeTeraNeeds, "attribute")
	if bad != nil {
		return bad
	}
	out := map[string]any{}
	for _, item := range list {
		v, ok := attrPath(item, a["attribute"].String())
		if !ok || v == nil {
			continue
		}
		key := fmt.Sprint(v)
		if s, err := formatPlain(v); err == nil {
			key = s
		}
		g, _ := out[key].([]any)
		out[key] = append(g, item)
	}
	return exec.AsValue(out)
}

// filterTeraFilter is Tera's filter(attribute, value): the items whose
// attribute equals value (or is not null, without value).
func filterTeraFilter(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	list, a, bad := listArgs("filter", in, params, takeTeraNeeds, "attribute", "value")
	if bad != nil {
		return bad
	}
	var want any
	hasWant := a["value"] != nil
	if hasWant {
		var err error
		if want, err = plainValue(a["value"]); err != nil {
			return exec.AsValue(err)
		}
	}
	out := []any{}
	for _, item := range list {
		v, ok := attrPath(item, a["attribute"].String())
		if !ok {
			continue
		}
		if (!hasWant && v != nil) || (hasWant && equalJSON(v, want)) {
			out = append(out, item)
		}
	}
	return exec.AsValue(out)
}

// filterTeraDate formats a timestamp (seconds since the epoch, or an RFC
// 3339 / YYYY-MM-DD string) with a strftime format (default %Y-%m-%d), in
// UTC or the timezone given.
func filterTeraDate(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	a, bad := filterArgs("date", in, params, takeTera, "format", "timezone")
	if bad != nil {
		return bad
	}
	var (
		t   time.Time
		err error
	)
	switch {
	case in.IsNumber():
		t = time.Unix(int64(in.Float()), 0).UTC()
	case in.IsString():
		s := in.String()
		if t, err = time.Parse(time.RFC3339Nano, s); err != nil {
			if t, err = time.Parse(time.DateOnly, s); err != nil {
				return invalid("date", fmt.Errorf("%q is not a timestamp, an RFC 3339 time or a date", s))
			}
		}
	default:
		return invalid("date", errors.New("applies to a timestamp or a date string"))
	}
	if v := a["timezone"]; v != nil {
		loc, err := time.LoadLocation(v.String())
		if err != nil {
			return invalid("date", fmt.Errorf("unknown timezone %q", v.String()))
		}
		t = t.In(loc)
	}
	format := "%Y-%m-%d"
	if v := a["format"]; v != nil {
		format = v.String()
	}
	return exec.AsValue(strftime(t, format))
}

// strftime formats t with the common chrono/strftime directives.
func strftime(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			b.WriteString(strconv.Itoa(t.Year()))
		case 'y':
			fmt.Fprintf(&b, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'e':
			fmt.Fprintf(&b, "%2d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'I':
			fmt.Fprintf(&b, "%02d", (t.Hour()+11)%12+1)
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'p':
			b.WriteString(t.Format("PM"))
		case 'b', 'h':
			b.WriteString(t.Format("Jan"))
		case 'B':
			b.WriteString(t.Format("January"))
		case 'a':
			b.WriteString(t.Format("Mon"))
		case 'A':
			b.WriteString(t.Format("Monday"))
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case 'z':
			b.WriteString(t.Format("-0700"))
		case 'Z':
			b.WriteString(t.Format("MST"))
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case 'F':
			b.WriteString(t.Format(time.DateOnly))
		case 'T':
			b.WriteString(t.Format(time.TimeOnly))
		case '+':
			b.WriteString(t.Format(time.RFC3339))
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}

func addSlashes(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, `"`, `\"`).Replace(s)
}

// escapeHTML is Tera's `escape`: also `'` and `/`, as hex entities.
func escapeHTML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;", "/", "&#x2F;").Replace(s)
}

// urlencodeKeeps is what Tera's `urlencode` leaves as it is besides
// letters and digits (Python's quote with "/" safe, and Tera keeps "%").
const urlencodeKeeps = "-._~/%"

// percentEncode percent-encodes every byte of s but ASCII letters, digits
// and the bytes in keep (space as %20, never +).
func percentEncode(s, keep string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(keep, c) >= 0) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// filterTeraJoin is Tera's join: the items printed as `{{ }}` prints them
// (2.0 as 2), joined by sep (default none).
func filterTeraJoin(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	list, a, bad := listArgs("join", in, params, takeTera, "sep")
	if bad != nil {
		return bad
	}
	sep := ""
	if v := a["sep"]; v != nil {
		sep = v.String()
	}
	parts := make([]string, len(list))
	for i, item := range list {
		s, err := formatPlain(item)
		if err != nil {
			return invalid("join", err)
		}
		parts[i] = s
	}
	return exec.AsValue(strings.Join(parts, sep))
}

// filterTeraFilesize is Tera's filesizeformat (the humansize crate's
// WINDOWS format, or BINARY with binary=true): powers of 1024, two
// decimals unless whole, "117.74 MB" / "117.74 MiB", "100 B".
func filterTeraFilesize(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	a, bad := filterArgs("filesizeformat", in, params, takeTera, "binary")
	if bad != nil {
		return bad
	}
	if !in.IsNumber() || in.Float() < 0 {
		return invalid("filesizeformat", errors.New("applies to a number of bytes"))
	}
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"}
	if v := a["binary"]; v != nil && v.IsTrue() {
		units = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
	}
	size, i := float64(in.Integer()), 0
	for size >= 1024 && i < len(units)-1 {
		size /= 1024
		i++
	}
	if size == float64(int64(size)) {
		return exec.AsValue(fmt.Sprintf("%d %s", int64(size), units[i]))
	}
	return exec.AsValue(fmt.Sprintf("%.2f %s", size, units[i]))
}

func escapeXML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}

// slugify is Tera's (the slug crate's): letters beyond ASCII are
// transliterated (Ærø Straße → aero-strasse, with the same Text::Unidecode
// tables deunicode uses), then ASCII letters and digits are kept, lower
// case, every other run becomes one dash, none at either end.
func slugify(s string) string {
	var b strings.Builder
	dash := true // no leading dash
	add := func(c byte) {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteByte(c)
			dash = false
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c - 'A' + 'a')
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	for _, r := range s {
		if r < utf8.RuneSelf {
			add(byte(r))
			continue
		}
		t := unidecode.Unidecode(string(r))
		if t == "" {
			t = "-"
		}
		for i := 0; i < len(t); i++ {
			add(t[i])
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// plainList is v as a list of plain values.
func plainList(v *exec.Value) ([]any, bool) {
	if v == nil || !v.IsList() {
		return nil, false
	}
	p, err := plainValue(v)
	if err != nil {
		return nil, false
	}
	l, ok := p.([]any)
	return l, ok
}

// attrPath follows a dotted attribute path ("a.b") into plain maps.
func attrPath(v any, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[part]; !ok {
			return nil, false
		}
	}
	return v, true
}

// formatPlain prints a plain value as a template prints it.
func formatPlain(v any) (string, error) { return formatValue(exec.AsValue(v)) }

// ---- tests ----

var teraTests = map[string]exec.TestFunction{
	"object":        func(_ *exec.Context, in *exec.Value, _ *exec.VarArgs) (bool, error) { return in.IsDict(), nil },
	"starting_with": stringTest("starting_with", strings.HasPrefix),
	"ending_with":   stringTest("ending_with", strings.HasSuffix),
	"containing":    testContaining,
	"matching":      testMatching,
}

func stringTest(name string, fn func(s, pat string) bool) exec.TestFunction {
	return func(_ *exec.Context, in *exec.Value, params *exec.VarArgs) (bool, error) {
		a, err := takeTeraNeeds(params, "pat")
		if err != nil {
			return false, fmt.Errorf("%s: %w", name, err)
		}
		if !in.IsString() {
			return false, nil
		}
		return fn(in.String(), a["pat"].String()), nil
	}
}

func testContaining(_ *exec.Context, in *exec.Value, params *exec.VarArgs) (bool, error) {
	a, err := takeTeraNeeds(params, "pat")
	if err != nil {
		return false, fmt.Errorf("containing: %w", err)
	}
	switch {
	case in.IsString():
		return strings.Contains(in.String(), a["pat"].String()), nil
	case in.IsList(), in.IsDict():
		return in.Contains(a["pat"]), nil
	}
	return false, nil
}

func testMatching(_ *exec.Context, in *exec.Value, params *exec.VarArgs) (bool, error) {
	a, err := takeTeraNeeds(params, "regex")
	if err != nil {
		return false, fmt.Errorf("matching: %w", err)
	}
	re, err := regexp.Compile(a["regex"].String())
	if err != nil {
		return false, fmt.Errorf("matching: invalid regex: %w", err)
	}
	return in.IsString() && re.MatchString(in.String()), nil
}

// ---- functions ----

// teraRange is range(end, start=0, step_by=1), Tera's keywords, also with
// Jinja's positional [start, ]stop[, step].
func teraRange(e *exec.Evaluator, params *exec.VarArgs) ([]int, error) {
	if len(params.KwArgs) == 0 {
		return boundedRange(e, params)
	}
	a, err := takeTera(&exec.VarArgs{KwArgs: params.KwArgs}, "end", "start", "step_by")
	if err != nil || len(params.Args) > 0 {
		if err == nil {
			err = errors.New("give the arguments either all by keyword (end, start, step_by) or all by position")
		}
		return nil, exec.ErrInvalidCall(err)
	}
	if a["end"] == nil {
		return nil, exec.ErrInvalidCall(errors.New("range needs end"))
	}
	args := []*exec.Value{exec.AsValue(0), a["end"], exec.AsValue(1)}
	if a["start"] != nil {
		args[0] = a["start"]
	}
	if a["step_by"] != nil {
		args[2] = a["step_by"]
	}
	return boundedRange(e, &exec.VarArgs{Args: args})
}

// teraNow is now(timestamp=false, utc=false): the current time as an RFC
// 3339 string, or seconds since the epoch.
func teraNow(_ *exec.Evaluator, params *exec.VarArgs) (any, error) {
	a, err := takeTera(params, "timestamp", "utc")
	if err != nil {
		return nil, exec.ErrInvalidCall(err)
	}
	t := time.Now()
	if a["timestamp"] != nil && a["timestamp"].IsTrue() {
		return t.Unix(), nil
	}
	if a["utc"] != nil && a["utc"].IsTrue() {
		t = t.UTC()
	}
	return t.Format(time.RFC3339Nano), nil
}

// teraThrow is throw(message): fails the rendering with the message.
func teraThrow(_ *exec.Evaluator, params *exec.VarArgs) (any, error) {
	a, err := takeTera(params, "message")
	if err != nil {
		return nil, exec.ErrInvalidCall(err)
	}
	msg := "throw() called"
	if a["message"] != nil {
		msg = a["message"].String()
	}
	return nil, errors.New(msg)
}

// teraGetRandom is get_random(start=0, end): a whole number in [start, end).
func teraGetRandom(_ *exec.Evaluator, params *exec.VarArgs) (any, error) {
	a, err := takeTera(params, "end", "start")
	if err != nil {
		return nil, exec.ErrInvalidCall(err)
	}
	if a["end"] == nil || !a["end"].IsInteger() || (a["start"] != nil && !a["start"].IsInteger()) {
		return nil, exec.ErrInvalidCall(errors.New("get_random needs end (and optionally start), whole numbers"))
	}
	start := 0
	if a["start"] != nil {
		start = a["start"].Integer()
	}
	end := a["end"].Integer()
	if end <= start {
		return nil, exec.ErrInvalidCall(errors.New("get_random: end must be greater than start"))
	}
	return start + rand.IntN(end-start), nil
}

// filterVals is `'ref+KIND://…' | vals`: resolves a secret reference when
// the template renders (on the server). Plain strings and other values pass
// through. The kinds that work without a network here are env and file;
// others (awsssm, vault, gcpsecrets, …) fail with an error saying so.
func filterVals(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	if err := params.Take(); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	if !in.IsString() {
		return in
	}
	s, err := resolveSecretRef(in.String())
	if err != nil {
		return exec.AsValue(fmt.Errorf("vals: %w", err))
	}
	return exec.AsValue(s)
}

// ValsRefs finds the secret references a template resolves with `| vals`
// ("ref+env://X" written as a string literal), so that their values can be
// masked in logs like the workspace's secrets.
func ValsRefs(src string) []string {
	if !strings.Contains(src, "vals") {
		return nil
	}
	var out []string
	for _, m := range valsRefRE.FindAllStringSubmatch(src, -1) {
		out = append(out, m[2])
	}
	return out
}

var valsRefRE = regexp.MustCompile(`(['"])(ref\+[A-Za-z0-9_-]+://[^'"]*)(['"])\s*\|\s*vals\b`)

// isPath reports whether an expression is a variable, optionally followed
// by attributes and constant items.
func isPath(e nodes.Node) bool {
	switch n := e.(type) {
	case *nodes.Name:
		return true
	case *nodes.GetAttribute:
		return isPath(n.Node)
	case *nodes.GetItem:
		return isPath(n.Node)
	}
	return false
}
