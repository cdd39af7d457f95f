package workspace

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/nikolalohinski/gonja/v2/builtins"
	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
)

// Templates (SPEC §3) are Jinja, rendered by gonja with a private
// environment so that nothing here changes gonja's package globals and
// nothing another package registers there changes our templates.
//
// What differs from stock gonja, and why:
//
//   - Printing: `{{ expr }}` prints values the way the original Tera engine
//     did, because they land in shell commands: true/false, null as empty,
//     2.0 as 2, lists and maps as compact JSON. See template_print.go.
//   - Undefined variables are errors naming the variable (StrictUndefined).
//   - No file access and no recursion: include, import, from, extends,
//     block, macro, call and recursive for-loops are not available. A
//     template is one self-contained string; and recursion without a depth
//     limit (a macro calling itself, a block rendering itself through
//     self, a file including itself) overflows the Go stack, a fatal error
//     that no recover can catch, which would take the whole server down.
//   - range() returns a list of at most maxRangeItems numbers (gonja's
//     feeds a channel from a goroutine that leaks when the loop stops early).
//   - Extra filters: shell_quote, and Tera's json_encode.

// templateID is the name the one-template loader answers to.
const templateID = "/template"

// maxRangeItems bounds range(): templates build shell commands, not data sets.
const maxRangeItems = 10000

// allowedControlStructures are the {% … %} statements templates may use.
var allowedControlStructures = []string{
	"if", "for", "set", "with", "filter", "raw", "do", "break", "continue", "autoescape",
}

var templateEnv = newTemplateEnv()

func newTemplateEnv() *exec.Environment {
	cs := map[string]parser.ControlStructureParser{}
	for _, name := range allowedControlStructures {
		if p, ok := builtins.ControlStructures.Get(name); ok {
			cs[name] = p
		}
	}
	if p, ok := cs["for"]; ok {
		cs["for"] = nonRecursiveFor(p)
	}
	cs["set_global"] = setGlobalParser // Tera's (template_setglobal.go)
	ours := exec.NewFilterSet(map[string]exec.FilterFunction{
		"shell_quote": filterShellQuote,
		"json_encode": filterJSONEncode,
	})
	ctx := exec.EmptyContext().Update(builtins.GlobalFunctions).Update(builtins.GlobalVariables)
	ctx.Set("range", teraRange)
	ctx.Set("now", teraNow)
	ctx.Set("throw", teraThrow)
	ctx.Set("get_random", teraGetRandom)
	ctx.Set(printFuncName, printValue)
	ctx.Set(opFuncName, budgetedOp)
	ctx.Set(chargeFuncName, chargeCall)
	ctx.Set(loopFuncName, loopCharge)
	lipsum, _ := ctx.Get("lipsum")
	ctx.Set("lipsum", boundedLipsum(lipsum))
	filters := exec.NewFilterSet(map[string]exec.FilterFunction{}).Update(builtins.Filters).Update(exec.NewFilterSet(teraFilterSet())).Update(ours)
	return &exec.Environment{
		Context:           ctx,
		Filters:           budgetFilters(filters),
		Tests:             exec.NewTestSet(map[string]exec.TestFunction{}).Update(builtins.Tests).Update(exec.NewTestSet(teraTests)),
		ControlStructures: exec.NewControlStructureSet(cs),
		Methods:           budgetMethods(builtins.Methods),
	}
}

func newTemplateConfig() *config.Config {
	cfg := config.New()
	cfg.AutoEscape = false // shell commands, not HTML
	cfg.StrictUndefined = true
	cfg.KeepTrailingNewline = true // a script's final newline is content
	return cfg
}

// nonRecursiveFor refuses `{% for … recursive %}`: `loop(items)` over a
// constant list recurses forever (see the note at the top of this file).
func nonRecursiveFor(p parser.ControlStructureParser) parser.ControlStructureParser {
	return func(doc *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
		cs, err := p(doc, args)
		if err != nil {
			return nil, err
		}
		if f, ok := cs.(*controlStructures.ForControlStructure); ok && f.Recursive {
			return nil, errors.New("recursive for-loops are not supported")
		}
		return cs, nil
	}
}

// boundedRange is range() returning a list, capped at maxRangeItems.
func boundedRange(e *exec.Evaluator, params *exec.VarArgs) ([]int, error) {
	var start, stop, step = 0, 0, 1
	ints := make([]int, len(params.Args))
	for i, a := range params.Args {
		if !a.IsInteger() {
			return nil, exec.ErrInvalidCall(errors.New("expected signature is [start, ]stop[, step] where all arguments are integers"))
		}
		ints[i] = a.Integer()
	}
	switch len(ints) {
	case 1:
		stop = ints[0]
	case 2:
		start, stop = ints[0], ints[1]
	case 3:
		start, stop, step = ints[0], ints[1], ints[2]
	default:
		return nil, exec.ErrInvalidCall(errors.New("expected signature is [start, ]stop[, step] where all arguments are integers"))
	}
	if step == 0 {
		return nil, exec.ErrInvalidCall(errors.New("step cannot be 0"))
	}
	// The count in unsigned arithmetic, exact over the whole int range.
	var span, stride uint64
	switch {
	case step > 0 && stop > start:
		span, stride = uint64(stop)-uint64(start), uint64(step)
	case step < 0 && stop < start:
		span, stride = uint64(start)-uint64(stop), uint64(-(step+1))+1
	}
	var n uint64
	if span > 0 {
		n = span / stride
		if span%stride != 0 {
			n++
		}
	}
	if n > maxRangeItems {
		return nil, fmt.Errorf("range of %d numbers is too long (at most %d)", n, maxRangeItems)
	}
	if err := budgetOf(e.Environment.Context).charge(8 * int64(n)); err != nil {
		return nil, err
	}
	// Counted, not `i += step` until stop: near the ends of int that would
	// overflow and never stop.
	out := make([]int, int(n))
	for k := range out {
		out[k] = start + k*step
	}
	return out, nil
}

// oneTemplateLoader hands gonja the template's own source once, at compile
// time, and nothing else ever: no file is read, and a template cannot load
// itself again (gonja's memory loader would let `{% include "/x" %}`
// re-read "/x" forever). The statements that load templates are not even
// registered; this is the second line of defence.
type oneTemplateLoader struct {
	src  string
	done bool
}

var errNoLoading = errors.New("templates cannot include, import or extend other templates")

func (l *oneTemplateLoader) Read(path string) (io.Reader, error) {
	// Called exactly once, by exec.NewTemplate, before the template is
	// shared: no lock needed.
	if path != templateID || l.done {
		return nil, errNoLoading
	}
	l.done = true
	return strings.NewReader(l.src), nil
}

func (l *oneTemplateLoader) Resolve(string) (string, error) { return "", errNoLoading }

func (l *oneTemplateLoader) Inherit(string) (loaders.Loader, error) { return nil, errNoLoading }

// Template is a parsed template, compiled once (when a workspace loads or a
// job's snapshot is read) and rendered many times, concurrently if need be.
type Template struct {
	src string
	// static is set when src has no template syntax: Render returns src
	// without going through gonja.
	static bool
	tpl    *exec.Template
	cfg    *config.Config
	loader loaders.Loader
	// native is the template's only {{ output }} (before the printing rewrite)
	// when the source is exactly one expression with optional surrounding
	// whitespace; ValueTemplate renders it to a native value.
	native *nodes.Output
}

// TemplateError is a template that does not parse or does not render. Its
// message is meant for users: it becomes a validation problem or a step's
// error_message.
type TemplateError struct {
	// Line and Column locate the problem in the template source (1-based),
	// when known; zero otherwise.
	Line, Column int
	Message      string
	// Undefined is the undefined variable the template used
	// (`secret.token`, `say_hello.output.x`), when that is the problem.
	Undefined string
	// Err is gonja's own error, kept for debugging.
	Err error
}

func (e *TemplateError) Error() string { return e.Message }

// Unwrap returns gonja's error.
func (e *TemplateError) Unwrap() error { return e.Err }

// CompileTemplate parses src. A syntax error, an unknown filter or an
// unknown test is a *TemplateError with the line and column. Undefined
// variables are only found when rendering.
func CompileTemplate(src string) (t *Template, err error) {
	if !hasTemplateSyntax(src) {
		return &Template{src: src, static: true}, nil
	}
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, panicError("parse", r)
		}
	}()
	cfg := newTemplateConfig()
	if err := checkNesting(src, cfg); err != nil {
		return nil, err
	}
	loader := &oneTemplateLoader{src: src}
	tpl, err := exec.NewTemplate(templateID, cfg, loader, templateEnv)
	if err != nil {
		return nil, syntaxError(err)
	}
	tree := inspectTree(tpl.Root())
	if err := checkNames(tree); err != nil {
		return nil, err
	}
	t = &Template{src: src, tpl: tpl, cfg: cfg, loader: loader}
	if o := singleOutput(tpl.Root()); o != nil {
		native := *o
		t.native = &native
	}
	rewriteUndefinedLogic(tree)
	budgetCalls(tree.calls)
	budgetOperators(tree.binary)
	markLoops(tree.fors)
	rewriteOutputs(tree.outputs)
	markRoot(tpl.Root(), tree)
	return t, nil
}

// Source returns the template's source text.
func (t *Template) Source() string { return t.src }

// hasTemplateSyntax is false for plain strings, which need no parsing.
func hasTemplateSyntax(s string) bool {
	return strings.Contains(s, "{{") || strings.Contains(s, "{%") || strings.Contains(s, "{#")
}

// Render renders the template with ctx (see TemplateContext.Map). ctx is
// never modified, even by templates that assign to attributes.
func (t *Template) Render(ctx map[string]any) (out string, err error) {
	if t.static {
		return t.src, nil
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = "", panicError("render", r)
		}
	}()
	b := newRenderBudget()
	data := cloneContextWith(ctx, b)
	w := &limitedWriter{budget: b}
	w.b.Grow(len(t.src))
	err = t.tpl.Execute(w, exec.NewContext(data))
	if err := t.budgetError(b, err); err != nil {
		return "", err
	}
	if err != nil {
		return "", t.renderError(err)
	}
	return w.b.String(), nil
}

// budgetError is the error of a render that went over its budget b (err is
// the render's own error, if any), nil when it did not: the first excess
// is what the render reports, even if the template went on after it.
func (t *Template) budgetError(b *renderBudget, err error) error {
	if b.err == nil {
		return nil
	}
	te := &TemplateError{Message: b.err.Error(), Err: b.err}
	if err != nil {
		if m := reAtLine.FindStringSubmatch(err.Error()); m != nil {
			te.Line, _ = strconv.Atoi(m[1])
			if strings.Contains(strings.TrimRight(t.src, "\n"), "\n") {
				te.Message += fmt.Sprintf(" (line %d)", te.Line)
			}
		}
	}
	return te
}

// renderNative renders a single-expression template to the expression's
// value, and any other template to a string.
func (t *Template) renderNative(ctx map[string]any) (out any, err error) {
	if t.native == nil {
		return t.Render(ctx)
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, panicError("render", r)
		}
	}()
	b := newRenderBudget()
	data := cloneContextWith(ctx, b)
	ev := &exec.Evaluator{
		Config: t.cfg.Inherit(),
		Loader: t.loader,
		Environment: &exec.Environment{
			Context:           templateEnv.Context.Inherit().Update(exec.NewContext(data)),
			Filters:           templateEnv.Filters,
			Tests:             templateEnv.Tests,
			ControlStructures: templateEnv.ControlStructures,
			Methods:           templateEnv.Methods,
		},
	}
	o := t.native
	var v *exec.Value
	if o.Condition != nil {
		c := ev.Eval(o.Condition)
		if c.IsError() {
			if err := t.budgetError(b, c); err != nil {
				return nil, err
			}
			return nil, t.renderError(c)
		}
		switch {
		case c.IsTrue():
			v = ev.Eval(o.Expression)
		case o.Alternative != nil:
			v = ev.Eval(o.Alternative)
		default:
			return "", nil // what the string rendering prints
		}
	} else {
		v = ev.Eval(o.Expression)
	}
	if v.IsError() {
		if err := t.budgetError(b, v); err != nil {
			return nil, err
		}
		return nil, t.renderError(v)
	}
	if err := t.budgetError(b, nil); err != nil {
		return nil, err
	}
	if err := checkPrintable("the value", v); err != nil {
		return nil, t.renderError(err)
	}
	return nativeValue(v)
}

// singleOutput returns the template's only {{ … }} when everything else in
// it is whitespace.
func singleOutput(root *nodes.Template) *nodes.Output {
	var out *nodes.Output
	for _, n := range root.Nodes {
		switch n := n.(type) {
		case *nodes.Output:
			if out != nil {
				return nil
			}
			out = n
		case *nodes.Data:
			if strings.TrimSpace(n.Data.Val) != "" {
				return nil
			}
		default:
			return nil
		}
	}
	return out
}

// ValueTemplate is a YAML value (a step's input, say) whose strings, at any
// depth, are templates.
type ValueTemplate struct {
	kind  byte // 'm' map, 'l' list, 't' template, 'v' plain value
	keys  []string
	elems []*ValueTemplate
	tpl   *Template
	value any
}

// CompileValue compiles every string in v (maps and lists are walked). The
// error names the path of the first string that does not parse.
func CompileValue(v any) (*ValueTemplate, error) { return compileValue("", v) }

func compileValue(path string, v any) (*ValueTemplate, error) {
	switch v := v.(type) {
	case map[string]any:
		vt := &ValueTemplate{kind: 'm'}
		keys := tmplSortedKeys(v)
		for _, k := range keys {
			e, err := compileValue(valuePath(path, k), v[k])
			if err != nil {
				return nil, err
			}
			vt.keys = append(vt.keys, k)
			vt.elems = append(vt.elems, e)
		}
		return vt, nil
	case []any:
		vt := &ValueTemplate{kind: 'l'}
		for i, x := range v {
			e, err := compileValue(path+"["+strconv.Itoa(i)+"]", x)
			if err != nil {
				return nil, err
			}
			vt.elems = append(vt.elems, e)
		}
		return vt, nil
	case string:
		t, err := CompileTemplate(v)
		if err != nil {
			return nil, atPath(path, err)
		}
		return &ValueTemplate{kind: 't', tpl: t}, nil
	default:
		return &ValueTemplate{kind: 'v', value: v}, nil
	}
}

// Render renders every template in the value: a string that is exactly one
// `{{ expression }}` becomes the expression's value (a number stays a
// number, a map a map), other strings render to strings, and other values
// are returned as they are. The error names the path of the failing string.
func (vt *ValueTemplate) Render(ctx map[string]any) (any, error) {
	return vt.render("", ctx)
}

func (vt *ValueTemplate) render(path string, ctx map[string]any) (any, error) {
	switch vt.kind {
	case 'm':
		out := make(map[string]any, len(vt.keys))
		for i, k := range vt.keys {
			v, err := vt.elems[i].render(valuePath(path, k), ctx)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case 'l':
		out := make([]any, len(vt.elems))
		for i, e := range vt.elems {
			v, err := e.render(path+"["+strconv.Itoa(i)+"]", ctx)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case 't':
		v, err := vt.tpl.renderNative(ctx)
		if err != nil && path != "" {
			return nil, atPath(path, err)
		}
		return v, err
	default:
		return vt.value, nil
	}
}

// TemplateName is how a step is named in templates: "-" is not allowed in a
// Jinja name, so "say-hello" is "say_hello".
func TemplateName(step string) string { return strings.ReplaceAll(step, "-", "_") }

// TemplateNames maps the template names of steps to the steps' names.
func TemplateNames(steps []string) map[string]string {
	m := make(map[string]string, len(steps))
	for _, name := range steps {
		m[TemplateName(name)] = name
	}
	return m
}

// JobInfo is the job's identity, `job.*` in templates.
type JobInfo struct {
	ID        string
	Task      string
	Workspace string
}

// TemplateContext is everything a template may refer to (SPEC §3).
type TemplateContext struct {
	// Input is the job's input (defaults applied), or the step's rendered
	// input when rendering an action's cmd, script or env.
	Input map[string]any
	// Steps maps a completed upstream step's name (as written, with
	// hyphens) to its output: any JSON value, an object most often.
	Steps map[string]any
	// Secrets are the resolved secrets.
	Secrets map[string]any
	Job     JobInfo
	// Webhook is the request that started a webhook job (`webhook.headers`,
	// `webhook.query`); nil otherwise, and then `webhook` is undefined.
	Webhook map[string]any
}

// Map builds the variables templates see: input, secret, job, webhook (for
// webhook jobs), and one `<step_name>: {output: …}` per step with hyphens
// turned into underscores. input, secret, job and webhook win over a step
// of the same name.
func (c TemplateContext) Map() map[string]any {
	m := make(map[string]any, len(c.Steps)+3)
	for name, out := range c.Steps {
		if out == nil {
			out = map[string]any{}
		}
		m[TemplateName(name)] = map[string]any{"output": out}
	}
	m["input"] = orEmpty(c.Input)
	m["secret"] = orEmpty(c.Secrets)
	m["job"] = map[string]any{"id": c.Job.ID, "task": c.Job.Task, "workspace": c.Job.Workspace}
	if c.Webhook != nil {
		m["webhook"] = c.Webhook
	}
	return m
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// cloneContext deep-copies the maps and lists of a context, so that a
// template that assigns to an attribute (`{% set input.x = 1 %}`) or calls
// a mutating method cannot change the caller's data, and concurrent renders
// never share anything writable. json.Number values become int64 or float64
// so that they print and compare as numbers.
func cloneContext(ctx map[string]any) map[string]any {
	out := make(map[string]any, len(ctx))
	for k, v := range ctx {
		out[k] = cloneData(v)
	}
	return out
}

// cloneContextWith is cloneContext with the render's budget added.
func cloneContextWith(ctx map[string]any, b *renderBudget) map[string]any {
	out := make(map[string]any, len(ctx)+1)
	for k, v := range ctx {
		out[k] = cloneData(v)
	}
	out[budgetKey] = b
	return out
}

func cloneData(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneContext(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneData(e)
		}
		return out
	case map[string]map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = cloneContext(e)
		}
		return out
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil {
			return f
		}
		return string(v)
	default:
		return v
	}
}

// Errors.

var (
	reUndefinedName = regexp.MustCompile(`Unable to evaluate name "([^"]*)"`)
	reUndefinedAttr = regexp.MustCompile(`(?i)unable to evaluate (\S+?): (?:attribute|item) .*? not found`)
	reAttrOfNone    = regexp.MustCompile(`(?i)unable to evaluate (\S+?): Can't use (?:getitem|getattr) on None`)
	reAtLine        = regexp.MustCompile(`at line (\d+)`)
)

// renderError turns gonja's error chain into one sentence naming the
// culprit. gonja reports problems as text only (no error types), so the
// undefined-variable case is recognised by its message; gonja's version is
// pinned and the tests pin these messages.
func (t *Template) renderError(err error) error {
	full := err.Error()
	root := rootCause(err)
	msg := root.Error()
	name := undefinedName(full)
	if name != "" {
		msg = fmt.Sprintf("undefined variable %q", name)
	}
	te := &TemplateError{Message: msg, Undefined: name, Err: err}
	if i := strings.Index(msg, budgetPrefix); i >= 0 {
		// gonja flattens a method's or function's error into text that
		// starts with the method's receiver: keep only our message.
		te.Message = msg[i:]
		te.Err = &budgetError{msg: te.Message}
	}
	if m := reAtLine.FindStringSubmatch(full); m != nil {
		te.Line, _ = strconv.Atoi(m[1])
		if strings.Contains(strings.TrimRight(t.src, "\n"), "\n") {
			te.Message += fmt.Sprintf(" (line %d)", te.Line)
		}
	}
	return te
}

// undefinedName extracts the variable from gonja's strict-undefined
// messages: the whole path when an attribute or item is missing
// (`say_hello.output.greeting`), the name when the name itself is unknown
// (`shout_it` in `shout_it.output.x`: the step is not upstream, or
// misspelt).
func undefinedName(full string) string {
	if m := reUndefinedAttr.FindStringSubmatch(full); m != nil {
		return m[1]
	}
	if m := reAttrOfNone.FindStringSubmatch(full); m != nil {
		return m[1]
	}
	if m := reUndefinedName.FindStringSubmatch(full); m != nil {
		return m[1]
	}
	return ""
}

// rootCause follows gonja's wrapping (pkg/errors causes, and *exec.Value
// holding an error) down to the first error raised.
func rootCause(err error) error {
	for i := 0; i < 100; i++ {
		switch e := err.(type) {
		case interface{ Cause() error }:
			if c := e.Cause(); c != nil {
				err = c
				continue
			}
		case *exec.Value:
			if e.IsError() {
				if inner, ok := e.Interface().(error); ok && inner != err {
					err = inner
					continue
				}
			}
		}
		if u := errors.Unwrap(err); u != nil {
			err = u
			continue
		}
		return err
	}
	return err
}

var (
	reUnknownStatement = regexp.MustCompile(`^ControlStructure '([^']*)' not found`)
	// unsupportedStatements are Jinja statements deliberately left out
	// (see the note at the top of this file).
	unsupportedStatements = []string{"include", "import", "from", "extends", "block", "macro", "call"}
)

var reSyntaxPrefix = regexp.MustCompile(`(?s)^failed to parse template '.*': `)

func syntaxError(err error) error {
	var se *parser.SyntaxError
	if errors.As(err, &se) {
		msg := strings.TrimSuffix(se.Message, ".")
		if m := reUnknownStatement.FindStringSubmatch(msg); m != nil {
			msg = fmt.Sprintf("unknown statement %q", m[1])
			if slices.Contains(unsupportedStatements, m[1]) {
				msg = fmt.Sprintf("statement %q is not supported (a template cannot load other templates or define macros)", m[1])
			}
		}
		if se.Line > 0 {
			msg = fmt.Sprintf("%s at line %d, column %d", msg, se.Line, se.Column)
			if se.Raw != "" {
				msg += fmt.Sprintf(" near %q", se.Raw)
			}
		}
		return &TemplateError{Line: se.Line, Column: se.Column, Message: "template syntax error: " + msg, Err: err}
	}
	// Errors from statement parsers come without position; drop gonja's
	// prefix, which repeats the whole source.
	msg := reSyntaxPrefix.ReplaceAllString(rootCause(err).Error(), "")
	return &TemplateError{Message: "template syntax error: " + msg, Err: err}
}

// panicError turns a panic inside gonja into an error: one template must not
// take the server down.
func panicError(what string, r any) error {
	return &TemplateError{
		Message: fmt.Sprintf("template %s failed: internal error in the template engine: %v", what, r),
		Err:     fmt.Errorf("panic: %v\n%s", r, debug.Stack()),
	}
}

// atPath prefixes a template's error with the path of the value it stands
// in (a TemplateError keeps its type); with no path it is err unchanged.
func atPath(path string, err error) error {
	if path == "" {
		return err
	}
	var te *TemplateError
	if errors.As(err, &te) {
		c := *te
		c.Message = path + ": " + te.Message
		return &c
	}
	return fmt.Errorf("%s: %w", path, err)
}
