package workspace

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	controlStructures "github.com/nikolalohinski/gonja/v2/builtins/control_structures"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// How `{{ expr }}` prints like Tera in gonja.
//
// gonja writes `value.String()` for every output node, and that is Python's
// str(): True, 2.0, ['a']. The value itself must stay as it is, because
// `{% if input.flag %}`, `| length` and `for` work on it. So the formatting
// happens at the one place where a value becomes text: after parsing, every
// output node's expression `e` is rewritten to a call `print(e)` of a
// function that formats the final value Tera's way. Expressions anywhere
// else (conditions, loop sources, filter arguments) are untouched.
//
// A call rather than a filter: gonja hands filters their input even when it
// is an error (so that `default` works) and then rewraps the error as text,
// losing the chain; a call's argument error keeps its chain, so error
// messages stay clean.
//
// Output nodes also sit inside statements ({% if %}, {% for %}, {% with %},
// …), some of which keep their bodies in unexported fields; inspectTree
// finds them all by walking the parsed tree with reflection.

// printFuncName contains a space, so no template can refer to it.
const printFuncName = "stroem print"

// printValue is the function the rewritten output nodes call.
// A list or map too large to print is refused before it is printed (the
// render budget, template_budget.go); the render stops there, so the
// refusal need not be recorded in the budget.
func printValue(in *exec.Value) *exec.Value {
	if err := checkPrintable("printing a value", in); err != nil {
		return exec.AsValue(err)
	}
	s, err := formatValue(in)
	if err != nil {
		return exec.AsValue(err)
	}
	return &exec.Value{Val: reflect.ValueOf(s), Safe: in.Safe}
}

var (
	outputPtrType     = reflect.TypeFor[*nodes.Output]()
	filterCallPtrType = reflect.TypeFor[*nodes.FilterCall]()
	testCallPtrType   = reflect.TypeFor[*nodes.TestCall]()
	negationPtrType   = reflect.TypeFor[*nodes.Negation]()
	binaryPtrType     = reflect.TypeFor[*nodes.BinaryExpression]()
	ifPtrType         = reflect.TypeFor[*controlStructures.IfControlStructure]()
	setGlobalPtrType  = reflect.TypeFor[*setGlobal]()
	callPtrType       = reflect.TypeFor[*nodes.Call]()
	forPtrType        = reflect.TypeFor[*controlStructures.ForControlStructure]()
)

// parsedTree is what inspectTree finds in a parsed template.
type parsedTree struct {
	outputs []*nodes.Output
	filters []*nodes.FilterCall
	tests   []*nodes.TestCall
	nots    []*nodes.Negation
	binary  []*nodes.BinaryExpression
	ifs     []*controlStructures.IfControlStructure
	// setGlobals are the {% set_global %} statements (template_setglobal.go).
	setGlobals []*setGlobal
	// calls and fors are the function/method calls and for-loops, which
	// the render budget watches (template_budget.go).
	calls []*nodes.Call
	fors  []*controlStructures.ForControlStructure
}

// inspectTree collects every output node, filter call and test call of a
// parsed template, wherever gonja keeps them.
func inspectTree(root *nodes.Template) parsedTree {
	type key struct {
		t reflect.Type
		p uintptr
	}
	var tree parsedTree
	seen := map[key]bool{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				return
			}
			k := key{v.Type(), v.Pointer()}
			if seen[k] {
				return
			}
			seen[k] = true
			// Reflection may read gonja's unexported fields but not write
			// through them, and the output nodes are to be changed: take
			// the pointers as they are.
			switch v.Type() {
			case outputPtrType:
				tree.outputs = append(tree.outputs, (*nodes.Output)(v.UnsafePointer()))
			case filterCallPtrType:
				tree.filters = append(tree.filters, (*nodes.FilterCall)(v.UnsafePointer()))
			case testCallPtrType:
				tree.tests = append(tree.tests, (*nodes.TestCall)(v.UnsafePointer()))
			case negationPtrType:
				tree.nots = append(tree.nots, (*nodes.Negation)(v.UnsafePointer()))
			case binaryPtrType:
				tree.binary = append(tree.binary, (*nodes.BinaryExpression)(v.UnsafePointer()))
			case ifPtrType:
				tree.ifs = append(tree.ifs, (*controlStructures.IfControlStructure)(v.UnsafePointer()))
			case setGlobalPtrType:
				tree.setGlobals = append(tree.setGlobals, (*setGlobal)(v.UnsafePointer()))
			case callPtrType:
				tree.calls = append(tree.calls, (*nodes.Call)(v.UnsafePointer()))
			case forPtrType:
				tree.fors = append(tree.fors, (*controlStructures.ForControlStructure)(v.UnsafePointer()))
			}
			walk(v.Elem())
		case reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i))
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i))
			}
		case reflect.Map:
			it := v.MapRange()
			for it.Next() {
				walk(it.Value())
			}
		}
	}
	walk(reflect.ValueOf(root))
	return tree
}

// rewriteOutputs makes every output node print through printValue.
func rewriteOutputs(outputs []*nodes.Output) {
	for _, o := range outputs {
		o.Expression = withPrint(o.Expression, o.Start)
		if o.Alternative != nil {
			o.Alternative = withPrint(o.Alternative, o.Start)
		}
	}
}

// rewriteUndefinedLogic gives conditions Tera's treatment of an undefined
// variable: a condition of `{% if %}` / `{% elif %}`, or an operand of
// `not`, `and`, `or`, that is a plain variable or path (`input.flag`,
// `a.b['c']`) is false when it is undefined, not an error — so
// `{{ not input.flag }}` prints true for an absent flag. Each such p
// becomes `(p is defined and p)`. Any other expression with an undefined
// variable (`input.x == 1`) is still an error, as in Tera.
func rewriteUndefinedLogic(tree parsedTree) {
	for _, c := range tree.ifs {
		for i, cond := range c.Conditions {
			c.Conditions[i] = definedAnd(cond)
		}
	}
	for _, n := range tree.nots {
		n.Term = definedAnd(n.Term)
	}
	for _, b := range tree.binary {
		if b.Operator == nil || b.Operator.Token == nil {
			continue
		}
		if v := b.Operator.Token.Val; v == "and" || v == "or" {
			b.Left, b.Right = definedAnd(b.Left), definedAnd(b.Right)
		}
	}
}

// definedAnd is `(e is defined and e)` when e is a path, else e.
func definedAnd(e nodes.Expression) nodes.Expression {
	if !isPath(e) {
		return e
	}
	at := e.Position()
	tok := func(typ tokens.Type, val string) *tokens.Token {
		t := &tokens.Token{Type: typ, Val: val}
		if at != nil {
			t.Pos, t.Line, t.Col = at.Pos, at.Line, at.Col
		}
		return t
	}
	return &nodes.BinaryExpression{
		Left:     &nodes.TestExpression{Expression: e, Test: &nodes.TestCall{Token: tok(tokens.Name, "defined"), Name: "defined", Kwargs: map[string]nodes.Expression{}}},
		Operator: &nodes.BinOperator{Token: tok(tokens.And, "and")},
		Right:    e,
	}
}

// checkNames reports the first unknown filter or test: gonja only notices
// them when rendering, but the validator should.
func checkNames(tree parsedTree) error {
	for _, fc := range tree.filters {
		if !templateEnv.Filters.Exists(fc.Name) {
			return nameError("filter", fc.Name, fc.Token)
		}
	}
	for _, tc := range tree.tests {
		if !templateEnv.Tests.Exists(tc.Name) {
			return nameError("test", tc.Name, tc.Token)
		}
	}
	return nil
}

func nameError(what, name string, at *tokens.Token) error {
	te := &TemplateError{Message: fmt.Sprintf("template error: unknown %s %q", what, name)}
	if at != nil && at.Line > 0 {
		te.Line, te.Column = at.Line, at.Col
		te.Message += fmt.Sprintf(" at line %d, column %d", at.Line, at.Col)
	}
	return te
}

// withPrint wraps e in a call of printValue. The call is placed at the
// output's opening braces (at, which gonja reports error lines from), not at
// e: gonja builds some malformed expressions (`{{in 0}}`) whose Position
// method panics.
func withPrint(e nodes.Expression, at *tokens.Token) nodes.Expression {
	tok := &tokens.Token{Type: tokens.Name, Val: printFuncName}
	if at != nil {
		tok.Pos, tok.Line, tok.Col = at.Pos, at.Line, at.Col
	}
	return &nodes.Call{Location: tok, Func: &nodes.Name{Name: tok}, Args: []nodes.Expression{e}}
}

// formatValue prints a value as Tera did: strings as they are, nil as
// nothing, booleans true/false, integers and integral floats without a
// decimal point, other floats in their shortest form, lists and maps as
// compact JSON with sorted keys.
func formatValue(v *exec.Value) (string, error) {
	switch {
	case v.IsNil():
		return "", nil
	case v.IsString():
		return v.String(), nil
	case v.IsBool():
		return strconv.FormatBool(v.Bool()), nil
	case v.IsInteger():
		return v.String(), nil
	case v.IsFloat():
		return formatFloat(v.Float()), nil
	case v.IsList() || v.IsDict():
		plain, err := plainValue(v)
		if err != nil {
			return "", err
		}
		if s, err := compactJSON(plain, false); err == nil {
			return s, nil
		}
		return v.String(), nil
	default:
		return v.String(), nil
	}
}

// formatFloat prints f like JSON (and JavaScript): 2 for 2.0, 2.5, 1e+21,
// 1e-7. Non-finite values, which JSON lacks, print as NaN, inf and -inf.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7, as encoding/json does.
		if n := len(s); n >= 4 && s[n-4] == 'e' && s[n-3] == '-' && s[n-2] == '0' {
			s = s[:n-2] + s[n-1:]
		}
	}
	return s
}

// plainValue converts a gonja value into plain Go data (nil, bool, int,
// float64, string, []any, map[string]any) that can be stored as JSON.
// Map keys that are not strings are printed; floats that JSON cannot hold
// become their printed form; anything else (functions, template objects)
// becomes its printed form too.
func plainValue(v *exec.Value) (any, error) {
	if v.IsError() {
		return nil, v
	}
	simple := v.ToGoSimpleType(true)
	if err, ok := simple.(error); ok {
		return nil, err
	}
	return normalizePlain(simple), nil
}

func normalizePlain(x any) any {
	switch x := x.(type) {
	case nil, bool, string, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return x
	case float32:
		return normalizePlain(float64(x))
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return formatFloat(x)
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizePlain(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				ks, _ = formatValue(exec.AsValue(k))
			}
			out[ks] = normalizePlain(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalizePlain(e)
		}
		return out
	default:
		s, _ := formatValue(exec.AsValue(x))
		return s
	}
}

// nativeValue is what a single-expression template renders to in a
// ValueTemplate: plain Go data.
func nativeValue(v *exec.Value) (any, error) {
	if v.IsNil() {
		return nil, nil
	}
	return plainValue(v)
}

// compactJSON encodes like Tera's JSON (serde_json): no HTML escaping, keys
// sorted, compact unless pretty.
func compactJSON(v any, pretty bool) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if pretty {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// filterJSONEncode is Tera's json_encode (`| json_encode`, `| json_encode(pretty=true)`),
// kept so that templates written for the original Strøm still work.
func filterJSONEncode(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	if in.IsError() {
		return in
	}
	var pretty bool
	if err := params.Take(exec.KeywordArgument("pretty", exec.AsValue(false), exec.BoolArgument(&pretty))); err != nil {
		return exec.AsValue(exec.ErrInvalidCall(err))
	}
	plain, err := plainValue(in)
	if err != nil {
		return exec.AsValue(err)
	}
	s, err := compactJSON(plain, pretty)
	if err != nil {
		return exec.AsValue(fmt.Errorf("json_encode: %w", err))
	}
	return exec.AsSafeValue(s)
}

// formatArg is the printed form of a filter's input for a filter that
// takes no arguments; when the input is an error or on failure it returns
// the value to answer instead.
func formatArg(in *exec.Value, params *exec.VarArgs) (string, *exec.Value) {
	if in.IsError() {
		return "", in
	}
	if err := params.Take(); err != nil {
		return "", exec.AsValue(exec.ErrInvalidCall(err))
	}
	s, err := formatValue(in)
	if err != nil {
		return "", exec.AsValue(err)
	}
	return s, nil
}

// filterShellQuote quotes a value for /bin/sh: `{{ x | shell_quote }}` is
// one word whose value is exactly x, whatever x holds. Non-string values
// are quoted as they would print.
func filterShellQuote(_ *exec.Evaluator, in *exec.Value, params *exec.VarArgs) *exec.Value {
	s, errv := formatArg(in, params)
	if errv != nil {
		return errv
	}
	return exec.AsSafeValue(ShellQuote(s))
}

// ShellQuote quotes s as one POSIX shell word: wrapped in single quotes,
// inside which nothing is special, and each single quote written as '\”
// (close, escaped quote, reopen). The empty string is ”.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func tmplSortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
