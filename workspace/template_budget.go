package workspace

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// The render budget: what one render may cost the server.
//
// Templates are written by workspace authors and rendered on the server
// (step inputs, when:, for_each, hooks, commands at claim time). Without a
// bound, `{{ 'x' * 100000000 }}` allocates 100 MB at once and a loop that
// doubles a string never ends; one author could take the server, and every
// other workspace on it, down. So each render gets a budget:
//
//   - No string, and no rendered output, larger than MaxTemplateValueBytes
//     (16 MiB: more than the 10 MiB an API request body may carry, so any
//     input that reached the server passes through a template whole).
//     Operators and filters that can make big values from small ones
//     (`*`, `~`, `+`, join, replace, center, indent, format, wordwrap,
//     batch, the ljust/center/zfill/… methods) check the size before they
//     allocate; the others are checked on their result.
//   - No list longer than MaxTemplateListItems (1,000,000 items).
//   - All values made during one render together at most
//     MaxTemplateRenderBytes (128 MiB): retained memory is bounded by what
//     was made, so a loop cannot pile up many values just under the cap.
//   - At most MaxTemplateLoopIterations (100,000) loop iterations in all,
//     nested loops included, charged when a loop starts, for its whole
//     length (Jinja's sandbox allows range() up to 100,000 per loop; our
//     range() stops at 10,000). A loop iteration costs gonja about 5 µs
//     and 2 KB, so that is about half a second.
//   - At most MaxTemplateRenderTime (5 s) of wall-clock time, checked at
//     every loop iteration and every budgeted operation: what the counters
//     miss (sorting, `in` over long lists inside loops) is cut there.
//   - At compile time, at most maxTemplateNesting levels of brackets and
//     blocks and maxTemplateOperators operators per tag: gonja parses and
//     evaluates recursively, and a Go stack overflow is a fatal error that
//     no recover catches.
//
// Exceeding the budget fails the render with a *TemplateError that wraps
// ErrRenderBudget and names the limit, never a value. The first excess is
// sticky: a filter such as default() that swallows errors cannot resume the
// render.

// The limits (see above).
const (
	MaxTemplateValueBytes     = 16 << 20
	MaxTemplateListItems      = 1_000_000
	MaxTemplateRenderBytes    = 128 << 20
	MaxTemplateLoopIterations = 100_000
	MaxTemplateRenderTime     = 5 * time.Second

	maxTemplateNesting   = 100
	maxTemplateOperators = 1000
)

// ErrRenderBudget is wrapped by every error of a render that went over its
// budget.
var ErrRenderBudget = errors.New("template render budget exceeded")

// budgetError is one excess: what went over which limit.
type budgetError struct{ msg string }

func (e *budgetError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrRenderBudget) hold. Not Unwrap: rootCause
// would then report the bare sentinel instead of this message.
func (e *budgetError) Is(target error) bool { return target == ErrRenderBudget }

// budgetPrefix starts every budget message. gonja flattens the errors of
// methods and functions into text, so renderError finds ours by it (and
// cuts what gonja put before it, the method's receiver included).
const budgetPrefix = "template render budget exceeded: "

// budgetKey holds a render's *renderBudget in its top-level context. It
// contains a space, so no template can refer to it.
const budgetKey = "stroem budget"

// renderBudget is what remains of one render's allowance. A render runs
// on one goroutine, so it needs no lock.
type renderBudget struct {
	bytes    int64
	iters    int64
	ops      int
	deadline time.Time
	err      error
}

// renderTimeLimit is MaxTemplateRenderTime; a test shortens it.
var renderTimeLimit = MaxTemplateRenderTime

func newRenderBudget() *renderBudget {
	return &renderBudget{
		bytes:    MaxTemplateRenderBytes,
		iters:    MaxTemplateLoopIterations,
		deadline: time.Now().Add(renderTimeLimit),
	}
}

// budgetOf finds the render's budget from any scope of it.
func budgetOf(ctx *exec.Context) *renderBudget {
	if ctx == nil {
		return nil
	}
	v, _ := ctx.Get(budgetKey)
	b, _ := v.(*renderBudget)
	return b
}

// fail records the first excess and returns it.
func (b *renderBudget) fail(err error) error {
	if b == nil {
		return err
	}
	if b.err == nil {
		b.err = err
	}
	return b.err
}

func overLimit(format string, a ...any) error {
	return &budgetError{msg: budgetPrefix + fmt.Sprintf(format, a...)}
}

// charge takes n bytes from the budget (and checks the clock now and then).
func (b *renderBudget) charge(n int64) error {
	if b == nil {
		return nil
	}
	if b.err != nil {
		return b.err
	}
	b.bytes -= n
	if b.bytes < 0 {
		return b.fail(overLimit("the values made by this template add up to more than %s", sizeText(MaxTemplateRenderBytes)))
	}
	b.ops++
	if b.ops&63 == 0 {
		return b.checkClock()
	}
	return nil
}

func (b *renderBudget) checkClock() error {
	if time.Now().After(b.deadline) {
		return b.fail(overLimit("rendering took longer than %s", renderTimeLimit))
	}
	return nil
}

// iterate takes n loop iterations from the budget.
func (b *renderBudget) iterate(n int64) error {
	if b == nil {
		return nil
	}
	if b.err != nil {
		return b.err
	}
	b.iters -= n
	if b.iters < 0 {
		return b.fail(overLimit("more than %d loop iterations", MaxTemplateLoopIterations))
	}
	return b.checkClock()
}

// checkString is the size check for a string of n bytes about to be made
// by what (`"string repetition"`).
func checkString(what string, n int64) error {
	if n < 0 || n > MaxTemplateValueBytes {
		return overLimit("%s would make a string larger than %s", what, sizeText(MaxTemplateValueBytes))
	}
	return nil
}

func checkList(what string, n int64) error {
	if n < 0 || n > MaxTemplateListItems {
		return overLimit("%s would make a list of more than %d items", what, MaxTemplateListItems)
	}
	return nil
}

// chargeValue checks a value just made and charges its size.
func (b *renderBudget) chargeValue(what string, v *exec.Value) error {
	if v == nil || !v.Val.IsValid() {
		return nil
	}
	rv := v.Val
	for rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.String:
		n := int64(rv.Len())
		if err := checkString(what, n); err != nil {
			return b.fail(err)
		}
		return b.charge(n)
	case reflect.Slice, reflect.Array, reflect.Map:
		n := int64(rv.Len())
		if err := checkList(what, n); err != nil {
			return b.fail(err)
		}
		return b.charge(16 * n)
	}
	return b.charge(8)
}

func sizeText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// approxSize is about the length of v printed (as JSON or Python), counted
// without printing it and given up once over limit: a list may hold the same
// long string many times, and printing it is what must not happen. It
// walks with reflection and allocates nothing for lists and strings: it
// runs on every printed list.
func approxSize(v any, limit int64) int64 {
	var n int64
	if ev, ok := v.(*exec.Value); ok {
		if ev == nil {
			return 4
		}
		sizeWalk(ev.Val, &n, limit)
		return n
	}
	sizeWalk(reflect.ValueOf(v), &n, limit)
	return n
}

var (
	valuePtrType = reflect.TypeFor[*exec.Value]()
	dictPtrType  = reflect.TypeFor[*exec.Dict]()
)

func sizeWalk(rv reflect.Value, n *int64, limit int64) {
	if *n > limit {
		return
	}
	if !rv.IsValid() {
		*n += 4
		return
	}
	switch rv.Kind() {
	case reflect.String:
		*n += int64(rv.Len()) + 2
	case reflect.Interface:
		if rv.IsNil() {
			*n += 4
			return
		}
		sizeWalk(rv.Elem(), n, limit)
	case reflect.Pointer:
		if rv.IsNil() {
			*n += 4
			return
		}
		switch rv.Type() {
		case valuePtrType:
			sizeWalk((*exec.Value)(rv.UnsafePointer()).Val, n, limit)
		case dictPtrType:
			*n += 2
			for _, p := range (*exec.Dict)(rv.UnsafePointer()).Pairs {
				if *n > limit {
					return
				}
				*n += 2
				if p == nil {
					continue
				}
				if p.Key != nil {
					sizeWalk(p.Key.Val, n, limit)
				}
				if p.Value != nil {
					sizeWalk(p.Value.Val, n, limit)
				}
			}
		default:
			sizeWalk(rv.Elem(), n, limit)
		}
	case reflect.Slice, reflect.Array:
		*n += 2
		for i := 0; i < rv.Len() && *n <= limit; i++ {
			*n++
			sizeWalk(rv.Index(i), n, limit)
		}
	case reflect.Map:
		*n += 2
		it := rv.MapRange()
		for it.Next() && *n <= limit {
			*n += 2
			sizeWalk(it.Key(), n, limit)
			sizeWalk(it.Value(), n, limit)
		}
	default:
		*n += 8
	}
}

// checkPrintable refuses a list or map whose printed form would be larger
// than a value may be.
func checkPrintable(what string, v *exec.Value) error {
	if v == nil || v.IsError() || !(v.IsList() || v.IsDict()) {
		return nil
	}
	if approxSize(v, MaxTemplateValueBytes) > MaxTemplateValueBytes {
		return overLimit("%s would make a string larger than %s", what, sizeText(MaxTemplateValueBytes))
	}
	return nil
}

func budgetValue(err error) *exec.Value { return exec.AsValue(err) }

// ---- operators ----

// opFuncName is the function `a * b`, `a + b` and `a ~ b` are rewritten to
// call (see budgetOperators).
const opFuncName = "stroem op"

// budgetOperators rewrites the operators that can make large values (`*`,
// `+`, `~`) into calls of budgetedOp, which checks sizes before it
// allocates. gonja evaluates operators in a fixed switch that cannot be
// extended, and a node cannot be swapped in its parent (gonja keeps some
// in unexported fields), so each such node is turned in place into
// `true and stroem_op(a, b, "op")`: `and` with a true left side returns its
// right side unchanged.
func budgetOperators(binary []*nodes.BinaryExpression) {
	for _, b := range binary {
		if b.Operator == nil || b.Operator.Token == nil {
			continue
		}
		op := b.Operator.Token
		switch op.Type {
		case tokens.Multiply, tokens.Addition, tokens.Tilde:
		default:
			continue
		}
		at := *op
		name := &tokens.Token{Type: tokens.Name, Val: opFuncName, Pos: at.Pos, Line: at.Line, Col: at.Col}
		call := &nodes.Call{
			Location: name,
			Func:     &nodes.Name{Name: name},
			Args:     []nodes.Expression{b.Left, b.Right, &nodes.String{Location: &at, Val: op.Val}},
			Kwargs:   map[string]nodes.Expression{},
		}
		b.Left = &nodes.Bool{Location: &at, Val: true}
		b.Operator = &nodes.BinOperator{Token: &tokens.Token{Type: tokens.And, Val: "and", Pos: at.Pos, Line: at.Line, Col: at.Col}}
		b.Right = call
	}
}

// budgetedOp is gonja's `*`, `+` and `~` with the budget's checks.
func budgetedOp(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	if len(params.Args) != 3 {
		return exec.AsValue(errors.New("internal error: bad operator call"))
	}
	left, right, op := params.Args[0], params.Args[1], params.Args[2].String()
	b := budgetOf(e.Environment.Context)
	if b != nil && b.err != nil {
		return budgetValue(b.err)
	}
	var out *exec.Value
	switch op {
	case "+":
		switch {
		case left.IsList():
			if !right.IsList() {
				return exec.AsValue(fmt.Errorf("unable to concatenate a list and %s", typeName(right)))
			}
			n := itemCount(left) + itemCount(right)
			if err := checkList("list concatenation", n); err != nil {
				return budgetValue(b.fail(err))
			}
			l := appendItems(appendItems(make([]any, 0, n), left), right)
			out = exec.AsValue(l)
		case left.IsFloat() || right.IsFloat():
			return exec.AsValue(left.Float() + right.Float())
		case left.IsString() || right.IsString():
			return concat(b, "string concatenation", left, right)
		default:
			return exec.AsValue(left.Integer() + right.Integer())
		}
	case "*":
		switch {
		case left.IsFloat() || right.IsFloat():
			return exec.AsValue(left.Float() * right.Float())
		case left.IsString():
			s, n := left.String(), right.Integer()
			if n <= 0 || s == "" {
				return exec.AsValue("")
			}
			if int64(n) > MaxTemplateValueBytes/int64(len(s)) {
				return budgetValue(b.fail(checkString("string repetition", -1)))
			}
			out = exec.AsValue(strings.Repeat(s, n))
		default:
			return exec.AsValue(left.Integer() * right.Integer())
		}
	case "~":
		return concat(b, "string concatenation (~)", left, right)
	default:
		return exec.AsValue(fmt.Errorf("internal error: unknown operator %q", op))
	}
	if err := b.chargeValue(op, out); err != nil {
		return budgetValue(err)
	}
	return out
}

// appendItems appends the items of the list v to l, as gonja's `+` does
// (one reflect.Append per item) but at the speed of a copy for the lists
// templates make.
func appendItems(l []any, v *exec.Value) []any {
	rv := v.Val
	for rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return l
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return l
	}
	if rv.Type() == reflect.TypeFor[[]any]() {
		return append(l, rv.Interface().([]any)...)
	}
	for i := range rv.Len() {
		l = append(l, rv.Index(i).Interface())
	}
	return l
}

func concat(b *renderBudget, what string, left, right *exec.Value) *exec.Value {
	if err := checkPrintable(what, left); err != nil {
		return budgetValue(b.fail(err))
	}
	if err := checkPrintable(what, right); err != nil {
		return budgetValue(b.fail(err))
	}
	if left.IsString() && right.IsString() {
		if err := checkString(what, strLen(left)+strLen(right)); err != nil {
			return budgetValue(b.fail(err))
		}
	}
	out := exec.AsValue(left.String() + right.String())
	if err := b.chargeValue(what, out); err != nil {
		return budgetValue(err)
	}
	return out
}

func typeName(v *exec.Value) string {
	switch {
	case v.IsString():
		return "a string"
	case v.IsNumber():
		return "a number"
	case v.IsDict():
		return "a map"
	case v.IsNil():
		return "none"
	}
	return "a value"
}

// chargeFuncName is the function every call of a function or method is
// wrapped in (see budgetCalls).
const chargeFuncName = "stroem charge"

// budgetCalls wraps every function and method call `f(x)` into
// `stroem_charge(f(x))`, which checks and charges the result: methods get
// no evaluator, so they cannot reach the budget themselves. The node is
// changed in place (gonja keeps some in unexported fields).
func budgetCalls(calls []*nodes.Call) {
	for _, c := range calls {
		orig := *c
		name := &tokens.Token{Type: tokens.Name, Val: chargeFuncName}
		if orig.Location != nil {
			name.Pos, name.Line, name.Col = orig.Location.Pos, orig.Location.Line, orig.Location.Col
		}
		args := []nodes.Expression{&orig}
		if _, method := orig.Func.(*nodes.GetAttribute); method && orig.Parent != nil && isPath(orig.Parent) {
			// gonja copies a list's or map's receiver for each method
			// call: charged by its size (a path is cheap to read again).
			args = append(args, orig.Parent)
		}
		*c = nodes.Call{Location: name, Func: &nodes.Name{Name: name}, Args: args, Kwargs: map[string]nodes.Expression{}}
	}
}

// chargeCall is the function budgetCalls wraps calls in.
func chargeCall(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	if len(params.Args) != 1 && len(params.Args) != 2 {
		return exec.AsValue(errors.New("internal error: bad charge call"))
	}
	v := params.Args[0]
	b := budgetOf(e.Environment.Context)
	if b != nil && b.err != nil {
		return budgetValue(b.err)
	}
	if len(params.Args) == 2 {
		if err := b.charge(16 * itemCount(params.Args[1])); err != nil {
			return budgetValue(err)
		}
	}
	if err := b.chargeValue("a function call", v); err != nil {
		return budgetValue(err)
	}
	return v
}

// boundedLipsum is lipsum() with its size bounded.
func boundedLipsum(lipsum any) func(*exec.Evaluator, *exec.VarArgs) *exec.Value {
	f, _ := lipsum.(func(*exec.Evaluator, *exec.VarArgs) *exec.Value)
	return func(e *exec.Evaluator, p *exec.VarArgs) *exec.Value {
		n, words := int64(5), int64(100)
		if v := arg(p, 0, "n"); v != nil && v.IsInteger() {
			n = int64(v.Integer())
		}
		if v := p.KwArgs["max"]; v != nil && v.IsInteger() {
			words = int64(v.Integer())
		}
		if n > 0 && words > 0 && n > MaxTemplateValueBytes/16/words {
			return budgetValue(budgetOf(e.Environment.Context).fail(checkString("lipsum", -1)))
		}
		if f == nil {
			return exec.AsValue(errors.New("lipsum is not available"))
		}
		return f(e, p)
	}
}

// ---- loops ----

// loopMarker is the hidden first statement of every for-loop body: it takes
// one iteration from the budget.
type loopMarker struct{}

func (loopMarker) Position() *tokens.Token { return &tokens.Token{} }

func (loopMarker) String() string { return "LoopMarker" }

func (loopMarker) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	b := budgetOf(r.Environment.Context)
	if b == nil {
		return nil
	}
	if b.err != nil {
		return b.err
	}
	return b.checkClock()
}

// loopCharge is the function a loop's iterable passes through: it takes
// the loop's length from the budget's iterations.
func loopCharge(e *exec.Evaluator, params *exec.VarArgs) *exec.Value {
	if len(params.Args) != 1 {
		return exec.AsValue(errors.New("internal error: bad loop call"))
	}
	v := params.Args[0]
	b := budgetOf(e.Environment.Context)
	if b == nil {
		return v
	}
	n := itemCount(v)
	if v.IsString() {
		n = int64(utf8.RuneCountInString(v.String()))
	}
	if err := b.iterate(n); err != nil {
		return budgetValue(err)
	}
	return v
}

// loopFuncName is the function a loop's iterable is passed through.
const loopFuncName = "stroem loop"

// markLoops budgets every for-loop: its iterable goes through loopCharge,
// which charges the loop's whole length before gonja walks it (gonja
// prepares every item before the first iteration), and its body starts
// with loopMarker, which checks the clock.
func markLoops(fors []*controlStructures.ForControlStructure) {
	for _, f := range fors {
		if f.BodyWrapper == nil || f.ObjectEvaluator == nil {
			continue
		}
		name := &tokens.Token{Type: tokens.Name, Val: loopFuncName}
		if at := f.BodyWrapper.Location; at != nil {
			name.Pos, name.Line, name.Col = at.Pos, at.Line, at.Col
		}
		f.ObjectEvaluator = &nodes.Call{Location: name, Func: &nodes.Name{Name: name}, Args: []nodes.Expression{f.ObjectEvaluator}, Kwargs: map[string]nodes.Expression{}}
		f.BodyWrapper.Nodes = append([]nodes.Node{&nodes.ControlStructureBlock{Name: "stroem loop", ControlStructure: loopMarker{}}}, f.BodyWrapper.Nodes...)
	}
}

// ---- filters and methods ----

// structuralFilters take a list or map apart or look into it; they never
// print it whole, so their input's size is not checked up front.
var structuralFilters = map[string]bool{
	"length": true, "count": true, "first": true, "last": true, "default": true, "d": true,
	"items": true, "dictsort": true, "map": true, "select": true, "reject": true,
	"selectattr": true, "rejectattr": true, "sort": true, "unique": true, "reverse": true,
	"sum": true, "min": true, "max": true, "list": true, "batch": true, "slice": true,
	"groupby": true, "attr": true, "random": true, "nth": true, "get": true, "concat": true,
	"filter": true, "group_by": true, "safe": true, "abs": true, "int": true, "float": true,
	"round": true, "vals": true,
}

// budgetFilter wraps a filter: the input and arguments of a filter that
// prints them are checked for size first, filters that can grow their input
// by their arguments check those, and the result is checked and charged.
func budgetFilter(name string, f exec.FilterFunction) exec.FilterFunction {
	structural := structuralFilters[name]
	pre := filterPreChecks[name]
	what := "filter " + name
	return func(e *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
		b := budgetOf(e.Environment.Context)
		if b != nil && b.err != nil {
			return budgetValue(b.err)
		}
		if !in.IsError() {
			if !structural {
				if err := checkPrintable(what, in); err != nil {
					return budgetValue(b.fail(err))
				}
				for _, a := range params.Args {
					if err := checkPrintable(what, a); err != nil {
						return budgetValue(b.fail(err))
					}
				}
				for _, a := range params.KwArgs {
					if err := checkPrintable(what, a); err != nil {
						return budgetValue(b.fail(err))
					}
				}
			}
			if pre != nil {
				if err := pre(in, params); err != nil {
					return budgetValue(b.fail(err))
				}
			}
		}
		out := f(e, in, params)
		if out != nil && !out.IsError() {
			if err := b.chargeValue(what, out); err != nil {
				return budgetValue(err)
			}
		}
		return out
	}
}

// arg is a filter's argument by position or keyword, nil when absent.
func arg(p *exec.VarArgs, pos int, kw ...string) *exec.Value {
	if pos < len(p.Args) {
		return p.Args[pos]
	}
	for _, k := range kw {
		if v, ok := p.KwArgs[k]; ok {
			return v
		}
	}
	return nil
}

func intArg(v *exec.Value) int64 {
	if v == nil || !v.IsInteger() {
		return 0
	}
	return int64(v.Integer())
}

func strLen(v *exec.Value) int64 {
	if v == nil {
		return 0
	}
	if v.IsString() {
		return int64(len(v.String()))
	}
	return approxSize(v, MaxTemplateValueBytes)
}

// itemCount is the number of items of a list or map (0 for anything
// else), without gonja's Len, which turns a string into runes to count
// them and lists a map's keys.
func itemCount(v *exec.Value) int64 {
	if v == nil || !v.Val.IsValid() {
		return 0
	}
	rv := v.Val
	for rv.Kind() == reflect.Interface || rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return 0
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return int64(rv.Len())
	}
	if d, ok := v.Interface().(*exec.Dict); ok {
		return int64(len(d.Pairs))
	}
	return 0
}

// filterPreChecks bound what the filters that grow their input by their
// arguments would make, before they make it.
var filterPreChecks = map[string]func(in *exec.Value, p *exec.VarArgs) error{
	"center": func(in *exec.Value, p *exec.VarArgs) error {
		return checkString("filter center", intArg(arg(p, 0, "width")))
	},
	"indent": func(in *exec.Value, p *exec.VarArgs) error {
		prefix := arg(p, 0, "prefix", "width")
		w := strLen(prefix)
		if prefix != nil && prefix.IsInteger() {
			w = intArg(prefix)
		}
		if err := checkString("filter indent", w); err != nil {
			return err
		}
		s := in.String()
		lines := int64(strings.Count(s, "\n") + 1)
		return checkString("filter indent", int64(len(s))+lines*w)
	},
	"replace": func(in *exec.Value, p *exec.VarArgs) error {
		from, to := arg(p, 0, "old", "from"), arg(p, 1, "new", "to")
		if from == nil || to == nil || !in.IsString() {
			return nil
		}
		s, old := in.String(), from.String()
		n := int64(strings.Count(s, old))
		if c := arg(p, 2, "count"); c != nil && c.IsInteger() && c.Integer() >= 0 && int64(c.Integer()) < n {
			n = int64(c.Integer())
		}
		grow := strLen(to) - int64(len(old))
		if grow <= 0 {
			return nil
		}
		if n > 0 && grow > (MaxTemplateValueBytes-int64(len(s)))/n {
			return checkString("filter replace", -1)
		}
		return nil
	},
	"format": func(in *exec.Value, p *exec.VarArgs) error {
		return checkFormat("filter format", in.String(), p)
	},
	"wordwrap": func(in *exec.Value, p *exec.VarArgs) error {
		wrap := arg(p, 2, "wrapstring")
		if wrap == nil {
			return nil
		}
		s := strLen(in)
		w := strLen(wrap)
		if w > 0 && s+1 > (MaxTemplateValueBytes-s)/w {
			return checkString("filter wordwrap", -1)
		}
		return nil
	},
	"batch": func(in *exec.Value, p *exec.VarArgs) error {
		return checkList("filter batch", intArg(arg(p, 0, "linecount")))
	},
	"list": func(in *exec.Value, p *exec.VarArgs) error {
		if in.IsString() {
			return checkList("filter list", int64(utf8.RuneCountInString(in.String())))
		}
		return nil
	},
	"join": func(in *exec.Value, p *exec.VarArgs) error {
		sep := strLen(arg(p, 0, "sep", "d"))
		if n := itemCount(in); sep > 0 && n > MaxTemplateValueBytes/sep {
			return checkString("filter join", -1)
		}
		return nil
	},
	"truncate": func(in *exec.Value, p *exec.VarArgs) error {
		return checkString("filter truncate", strLen(in)+strLen(arg(p, 1, "end")))
	},
}

// checkFormat bounds a printf-style format: every number in it may be a
// width, and `*` takes a width from the arguments.
func checkFormat(what, format string, p *exec.VarArgs) error {
	total := int64(len(format))
	var num int64
	for i := 0; i <= len(format); i++ {
		if i < len(format) && format[i] >= '0' && format[i] <= '9' {
			if num = num*10 + int64(format[i]-'0'); num > MaxTemplateValueBytes {
				return checkString(what, -1)
			}
			continue
		}
		total += num
		num = 0
	}
	for _, a := range p.Args {
		if strings.Contains(format, "*") && a.IsInteger() {
			total += intArg(a)
		}
		total += strLen(a)
	}
	for _, a := range p.KwArgs {
		total += strLen(a)
	}
	return checkString(what, total)
}

// budgetStrMethod wraps a string method (`'x'.center(…)`): integer
// arguments are widths or counts and bound the result, join's list and
// replace's growth are checked, and the result is checked too.
func budgetStrMethod(name string, m exec.Method[string]) exec.Method[string] {
	what := "method " + name
	return func(self string, selfValue *exec.Value, p *exec.VarArgs) (any, error) {
		total := int64(len(self))
		switch name {
		case "replace":
			if len(p.Args) >= 2 {
				n, grow := int64(strings.Count(self, p.Args[0].String())), strLen(p.Args[1])-int64(len(p.Args[0].String()))
				if grow > 0 && n > 0 && grow > (MaxTemplateValueBytes-total)/n {
					return nil, checkString(what, -1)
				}
			}
		case "join":
			for _, a := range p.Args {
				n := itemCount(a)
				if a.IsString() {
					n = strLen(a)
				}
				if err := checkPrintable(what, a); err != nil {
					return nil, err
				}
				if n > 0 && total > MaxTemplateValueBytes/n {
					return nil, checkString(what, -1)
				}
			}
		case "expandtabs":
			tabs := int64(strings.Count(self, "\t"))
			for _, a := range p.Args {
				if w := intArg(a); w > 0 && tabs > 0 && w > MaxTemplateValueBytes/tabs {
					return nil, checkString(what, -1)
				}
			}
		case "format", "format_map":
			if err := checkFormat(what, self, p); err != nil {
				return nil, err
			}
		default:
			for _, a := range p.Args {
				if err := checkString(what, intArg(a)); err != nil {
					return nil, err
				}
			}
		}
		out, err := m(self, selfValue, p)
		if err == nil {
			if s, ok := out.(string); ok {
				if err := checkString(what, int64(len(s))); err != nil {
					return nil, err
				}
			}
		}
		return out, err
	}
}

// budgetListMethod bounds append (and the other list methods) to the list
// length limit.
func budgetListMethod(name string, m exec.Method[[]any]) exec.Method[[]any] {
	return func(self []any, selfValue *exec.Value, p *exec.VarArgs) (any, error) {
		if err := checkList("method "+name, int64(len(self))+1); err != nil {
			return nil, err
		}
		return m(self, selfValue, p)
	}
}

// budgetMethods is gonja's methods with the string and list ones budgeted.
func budgetMethods(m exec.Methods) exec.Methods {
	str := map[string]exec.Method[string]{}
	for name, f := range methodMap(m.Str) {
		str[name] = budgetStrMethod(name, f)
	}
	list := map[string]exec.Method[[]any]{}
	for name, f := range methodMap(m.List) {
		list[name] = budgetListMethod(name, f)
	}
	m.Str = exec.NewMethodSet(str)
	m.List = exec.NewMethodSet(list)
	return m
}

// methodMap reads a MethodSet's methods. gonja offers no way to list them;
// the set is built once, at start-up, and read here only then.
func methodMap[I any](s *exec.MethodSet[I]) map[string]exec.Method[I] {
	f := reflect.ValueOf(s).Elem().FieldByName("methods")
	return *(*map[string]exec.Method[I])(unsafe.Pointer(f.UnsafeAddr()))
}

// filterMap reads a FilterSet's filters, likewise.
func filterMap(s *exec.FilterSet) map[string]exec.FilterFunction {
	f := reflect.ValueOf(s).Elem().FieldByName("filters")
	return *(*map[string]exec.FilterFunction)(unsafe.Pointer(f.UnsafeAddr()))
}

// budgetFilters wraps every filter of s.
func budgetFilters(s *exec.FilterSet) *exec.FilterSet {
	out := map[string]exec.FilterFunction{}
	for name, f := range filterMap(s) {
		out[name] = budgetFilter(name, f)
	}
	return exec.NewFilterSet(out)
}

// ---- output ----

// limitedWriter is the render's output, refused past the value limit.
type limitedWriter struct {
	b      strings.Builder
	budget *renderBudget
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if err := w.check(len(p)); err != nil {
		return 0, err
	}
	return w.b.Write(p)
}

// WriteString spares io.WriteString, which gonja writes with, a copy.
func (w *limitedWriter) WriteString(s string) (int, error) {
	if err := w.check(len(s)); err != nil {
		return 0, err
	}
	return w.b.WriteString(s)
}

func (w *limitedWriter) check(n int) error {
	if int64(w.b.Len())+int64(n) > MaxTemplateValueBytes {
		return w.budget.fail(overLimit("the rendered text would be larger than %s", sizeText(MaxTemplateValueBytes)))
	}
	return nil
}

// ---- nesting ----

// blockStatements open a block that an end… statement closes.
var blockStatements = map[string]bool{
	"if": true, "for": true, "with": true, "filter": true, "autoescape": true, "raw": true,
	"macro": true, "call": true, "block": true,
}

// checkNesting refuses, before gonja parses it, a template nested so deep
// (brackets, blocks) or with a tag so long (operators) that gonja's
// recursive parser or evaluator could overflow the stack.
func checkNesting(src string, cfg *config.Config) error {
	stream := tokens.LexAll(src, cfg)
	depth, blocks, ops := 0, 0, 0
	afterBlockBegin := false
	// inSet is within {% set … %}, a block ({% set x %}…{% endset %})
	// unless it assigns (setAssigns).
	inSet, setAssigns := false, false
	for ; stream.Current() != nil && !stream.End(); stream.Next() {
		tok := stream.Current()
		switch tok.Type {
		case tokens.LeftParenthesis, tokens.LeftBracket, tokens.LeftBrace:
			depth++
		case tokens.RightParenthesis, tokens.RightBracket, tokens.RightBrace:
			depth = max(depth-1, 0)
		case tokens.VariableBegin, tokens.BlockBegin:
			ops = 0
		case tokens.Addition, tokens.Subtraction, tokens.Multiply, tokens.Division, tokens.FloorDivision,
			tokens.Modulo, tokens.Power, tokens.Tilde, tokens.Not, tokens.And, tokens.Or, tokens.Is,
			tokens.In, tokens.Pipe, tokens.Equals, tokens.Ne, tokens.LowerThan, tokens.LowerThanOrEqual,
			tokens.GreaterThan, tokens.GreaterThanOrEqual, tokens.Dot, tokens.Operator:
			ops++
		case tokens.Assign:
			setAssigns = true
		case tokens.BlockEnd:
			if inSet && !setAssigns {
				blocks++
			}
			inSet = false
		case tokens.Name:
			if afterBlockBegin {
				switch {
				case tok.Val == "set":
					inSet, setAssigns = true, false
				case blockStatements[tok.Val]:
					blocks++
				case strings.HasPrefix(tok.Val, "end"):
					blocks = max(blocks-1, 0)
				}
			}
		}
		if tok.Type == tokens.Name && (tok.Val == "not" || tok.Val == "and" || tok.Val == "or") {
			ops++
		}
		afterBlockBegin = tok.Type == tokens.BlockBegin
		if depth+blocks > maxTemplateNesting {
			return &TemplateError{Line: tok.Line, Column: tok.Col, Err: ErrRenderBudget,
				Message: fmt.Sprintf("template nests brackets and blocks more than %d deep (line %d)", maxTemplateNesting, tok.Line)}
		}
		if ops > maxTemplateOperators {
			return &TemplateError{Line: tok.Line, Column: tok.Col, Err: ErrRenderBudget,
				Message: fmt.Sprintf("template has more than %d operators in one tag (line %d)", maxTemplateOperators, tok.Line)}
		}
	}
	return nil
}
