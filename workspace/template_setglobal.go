package workspace

import (
	"fmt"

	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/nodes"
	"github.com/nikolalohinski/gonja/v2/parser"
	"github.com/nikolalohinski/gonja/v2/tokens"
)

// Tera's {% set_global name = value %}.
//
// In Tera as in gonja, {% set %} inside a {% for %} body assigns in the
// loop's scope, gone after the loop; set_global assigns in the template's
// top-level scope, so a loop can count or collect into a variable that
// outlives it. Elsewhere the two are the same.
//
// gonja's scopes are contexts, each knowing its parent only through an
// unexported field, so a statement cannot reach the top-level one from a
// loop's. A template that uses set_global therefore starts with one more,
// hidden statement (rootMarker): run first, in the top-level scope, it
// records that scope under rootKey, which set_global looks up from wherever
// it runs (a lookup walks up to it).

// rootKey holds a render's top-level context. It contains a space, so no
// template can refer to it.
const rootKey = "stroem root"

// setGlobal is a parsed {% set_global name = value %}.
type setGlobal struct {
	location *tokens.Token
	name     string
	value    nodes.Expression
}

func (s *setGlobal) Position() *tokens.Token { return s.location }

func (s *setGlobal) String() string {
	return fmt.Sprintf("SetGlobal(Line=%d Col=%d)", s.location.Line, s.location.Col)
}

// Execute evaluates the value and assigns it in the top-level scope.
func (s *setGlobal) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	v := r.Eval(s.value)
	if v.IsError() {
		return v
	}
	root := r.Environment.Context
	if c, ok := root.Get(rootKey); ok {
		if rc, ok := c.(*exec.Context); ok {
			root = rc
		}
	}
	root.Set(s.name, v.Interface())
	return nil
}

// setGlobalParser parses `name = expression`, the only form Tera has (no
// attribute or item targets, no block form).
func setGlobalParser(_ *parser.Parser, args *parser.Parser) (nodes.ControlStructure, error) {
	s := &setGlobal{location: args.Current()}
	name := args.Match(tokens.Name)
	if name == nil {
		return nil, args.Error("set_global wants a variable name: {% set_global name = value %}", args.Current())
	}
	s.name = name.Val
	if args.Match(tokens.Assign) == nil {
		return nil, args.Error("set_global wants '=' after the name: {% set_global name = value %}", args.Current())
	}
	value, err := args.ParseExpression()
	if err != nil {
		return nil, err
	}
	s.value = value
	if !args.End() {
		return nil, args.Error("set_global takes one assignment: {% set_global name = value %}", args.Current())
	}
	return s, nil
}

// rootMarker records the top-level context of a render under rootKey.
type rootMarker struct{}

func (rootMarker) Position() *tokens.Token { return &tokens.Token{} }

func (rootMarker) String() string { return "RootMarker" }

func (rootMarker) Execute(r *exec.Renderer, _ *nodes.ControlStructureBlock) error {
	r.Environment.Context.Set(rootKey, r.Environment.Context)
	return nil
}

// markRoot makes a template that uses set_global record its top-level
// context before anything else runs.
func markRoot(root *nodes.Template, tree parsedTree) {
	if len(tree.setGlobals) == 0 {
		return
	}
	root.Nodes = append([]nodes.Node{&nodes.ControlStructureBlock{Name: "stroem root", ControlStructure: rootMarker{}}}, root.Nodes...)
}
