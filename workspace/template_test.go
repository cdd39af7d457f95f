package workspace

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// testContext is the context most template tests render with.
func testContext() map[string]any {
	return TemplateContext{
		Input: map[string]any{
			"name":    "World",
			"int":     2,
			"int64":   int64(-7),
			"float2":  2.0, // what JSON decoding makes of 2
			"float":   2.5,
			"small":   0.000001,
			"big":     1e21,
			"yes":     true,
			"no":      false,
			"null":    nil,
			"empty":   "",
			"list":    []any{"a", "b"},
			"numbers": []any{1.0, 2.5, 3},
			"map":     map[string]any{"k": "v", "a": 1.0, "nested": []any{true, nil}},
			"html":    `<b>'x'</b> & "y"`,
			"jsonnum": json.Number("3"),
		},
		Steps: map[string]any{
			"say-hello": map[string]any{"greeting": "Hello World", "x": map[string]any{"y": "deep", "n": 3.0}},
			"empty-out": nil,
		},
		Secrets: map[string]any{"db": map[string]any{"password": "hunter22"}, "token": "t0k"},
		Job:     JobInfo{ID: "0b8f5e0e-0000-4000-8000-000000000001", Task: "hello-world", Workspace: "default"},
	}.Map()
}

func render(t *testing.T, src string, ctx map[string]any) string {
	t.Helper()
	tpl, err := CompileTemplate(src)
	require.NoError(t, err, "compile %q", src)
	out, err := tpl.Render(ctx)
	require.NoError(t, err, "render %q", src)
	return out
}

// renderCase is a template and what it renders to.
type renderCase struct{ src, want string }

// runRenderCases renders each case in ctx as a parallel subtest named by
// its source.
func runRenderCases(t *testing.T, ctx map[string]any, cases []renderCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.src, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, render(t, tt.src, ctx))
		})
	}
}

// runRenderErrors renders each case in ctx as a parallel subtest named by
// its source; the template must compile, and check judges the output and
// the error of its rendering against the case's want.
func runRenderErrors(t *testing.T, ctx map[string]any, cases []renderCase, check func(t *testing.T, want, out string, err error)) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.src, func(t *testing.T) {
			t.Parallel()
			tpl, err := CompileTemplate(tt.src)
			require.NoError(t, err)
			out, err := tpl.Render(ctx)
			check(t, tt.want, out, err)
		})
	}
}

// requireRenders renders each case in ctx within t.
func requireRenders(t *testing.T, ctx map[string]any, cases []renderCase) {
	t.Helper()
	for _, tt := range cases {
		require.Equal(t, tt.want, render(t, tt.src, ctx), tt.src)
	}
}

func TestRenderPrinting(t *testing.T) {
	t.Parallel()
	tests := []renderCase{
		{"{{ input.name }}", "World"},
		{"{{ input.int }}", "2"},
		{"{{ input.int64 }}", "-7"},
		{"{{ input.float2 }}", "2"},
		{"{{ input.float }}", "2.5"},
		{"{{ input.small }}", "0.000001"},
		{"{{ input.big }}", "1e+21"},
		{"{{ input.yes }}", "true"},
		{"{{ input.no }}", "false"},
		{"[{{ input.null }}]", "[]"},
		{"[{{ input.empty }}]", "[]"},
		{"{{ input.list }}", `["a","b"]`},
		{"{{ input.numbers }}", `[1,2.5,3]`},
		{"{{ input.map }}", `{"a":1,"k":"v","nested":[true,null]}`},
		{"{{ input.html }}", `<b>'x'</b> & "y"`}, // no HTML escaping
		{"{{ input.map | json_encode }}", `{"a":1,"k":"v","nested":[true,null]}`},
		{"{{ input.list | json_encode(pretty=true) }}", "[\n  \"a\",\n  \"b\"\n]"},
		{"{{ input.list | tojson }}", `["a","b"]`},
		{"{{ input.jsonnum }}", "3"},
		{"{{ input.jsonnum + 1 }}", "4"},
		// Computed values print the same way.
		{"{{ 1 == 1 }} {{ 1 > 2 }}", "true false"},
		{"{{ input.int * 2 }} {{ 10 / 4 }} {{ 10 / 5 }} {{ 0.1 + 0.2 }}", "4 2.5 2 0.30000000000000004"},
		{"{{ [1, 'a', true, None] }}", `[1,"a",true,null]`},
		{"{{ {'b': 1, 'a': [2.0]} }}", `{"a":[2],"b":1}`},
		{"{{ input.list | reverse | list }}", `["b","a"]`},
		{"{{ input.yes if input.no else input.int }}", "2"},
		// Filters and tests see the real values.
		{"{{ input.list | length }}", "2"},
		{"{{ input.list | join(' ') }}", "a b"},
		{"{{ input.name | upper }} {{ input.name | lower }}", "WORLD world"},
		{"{{ input.missing | default('fallback') }}", "fallback"},
		{"{{ input.missing is defined }} {{ input.name is defined }}", "false true"},
		{"{{ input.name ~ '!' }}", "World!"},
		{"{{ input.map.k }} {{ input.map['a'] }} {{ input.list[1] }}", "v 1 b"},
		// Control structures.
		{"{% if input.no %}yes{% else %}no{% endif %}", "no"},
		{"{% if input.yes %}yes{% else %}no{% endif %}", "yes"},
		{"{% if not input.no %}negated{% endif %}", "negated"},
		{"{% if input.null %}x{% else %}null is falsy{% endif %}", "null is falsy"},
		{"{% for x in input.list %}<{{ x }}>{% endfor %}", "<a><b>"},
		{"{% for x in input.numbers %}{{ x }};{% endfor %}", "1;2.5;3;"},
		{"{% for k, v in input.map | dictsort %}{{ k }}={{ v }};{% endfor %}", `a=1;k=v;nested=[true,null];`},
		{"{% for i in range(3) %}{{ i }}{% if not loop.last %},{% endif %}{% endfor %}", "0,1,2"},
		{"{% set b = input.yes %}{{ b }}", "true"},
		{"{% with v = input.no %}{{ v }}{% endwith %}", "false"},
		{"{% filter upper %}{{ input.yes }}{% endfilter %}", "TRUE"},
		{"{% set s %}{{ input.yes }}{% endset %}{{ s }}", "true"},
		{"{% autoescape true %}{{ input.no }}{% endautoescape %}", "false"},
		{"{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"},
		{"{% for x in [1,2,3] %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}", "1"},
		// Whitespace and newlines are kept.
		{"{{ input.name }}\n", "World\n"},
		{"a\n{{ input.int }}\n\n", "a\n2\n\n"},
		{"{{- '  x  ' -}}\n", "  x  "},
		{"plain\n", "plain\n"},
		{"{# comment #}x", "x"},
	}
	ctx := testContext()
	runRenderCases(t, ctx, tests)
}

func TestRenderContext(t *testing.T) {
	t.Parallel()
	ctx := testContext()
	tests := []renderCase{
		// Hyphenated step names are reached with underscores.
		{"{{ say_hello.output.greeting }}", "Hello World"},
		{"{{ say_hello.output.x.y }}", "deep"},
		{"{{ say_hello.output.x.n }}", "3"},
		{"{{ say_hello.output['x']['y'] }}", "deep"},
		{"{{ empty_out.output }}", "{}"},
		{"{{ secret.db.password }} {{ secret.token }}", "hunter22 t0k"},
		{"{{ job.id }} {{ job.task }} {{ job.workspace }}", "0b8f5e0e-0000-4000-8000-000000000001 hello-world default"},
	}
	requireRenders(t, ctx, tests)
}

func TestTemplateName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "say_hello", TemplateName("say-hello"))
	require.Equal(t, "a_b_c", TemplateName("a-b-c"))
	require.Equal(t, "plain", TemplateName("plain"))
}

func TestTemplateContextMap(t *testing.T) {
	t.Parallel()
	m := TemplateContext{Steps: map[string]any{"input": map[string]any{"x": 1}, "a-b": map[string]any{"y": 2}}}.Map()
	require.Equal(t, map[string]any{
		"input":  map[string]any{}, // the job's input wins over a step named "input"
		"secret": map[string]any{},
		"job":    map[string]any{"id": "", "task": "", "workspace": ""},
		"a_b":    map[string]any{"output": map[string]any{"y": 2}},
	}, m)
}

func TestRenderUndefined(t *testing.T) {
	t.Parallel()
	tests := []renderCase{
		{"{{ nope }}", `undefined variable "nope"`},
		{"{{ input.nam }}", `undefined variable "input.nam"`},
		{"echo {{ input.nam | upper }}", `undefined variable "input.nam"`},
		{"{{ say_hello.output.greting }}", `undefined variable "say_hello.output.greting"`},
		{"{{ say_hello.output.x.z }}", `undefined variable "say_hello.output.x.z"`},
		{"{{ say_hello.output.x.y.z }}", `undefined variable "say_hello.output.x.y.z"`},
		{"{{ say_hello.outptu.greeting }}", `undefined variable "say_hello.outptu"`},
		// A step that is not upstream (or misspelt) is named.
		{"{{ shout_it.output.greeting }}", `undefined variable "shout_it"`},
		{"{{ say-hello.output.greeting }}", `undefined variable "say"`},
		{"{{ input['nam'] }}", `undefined variable "input['nam']"`},
		{"{{ input.list[5] }}", `undefined variable "input.list[5]"`},
		{"{{ input.null.x }}", `undefined variable "input.null.x"`},
		{"{{ input.null['x'] }}", `undefined variable "input.null['x']"`},
		// (A bare undefined path in {% if %} is false, as in Tera; see
		// TestRenderTeraIfUndefined.)
		{"{% if input.nam == 'x' %}x{% endif %}", `undefined variable "input.nam"`},
		{"{% for x in input.nope %}{% endfor %}", `undefined variable "input.nope"`},
		{"{{ input.name if input.nope else 'x' }}", `undefined variable "input.nope"`},
		{"{{ input.nope ~ 'x' }}", `undefined variable "input.nope"`},
		{"line 1\nline 2 {{ input.nope }}\n", `undefined variable "input.nope" (line 2)`},
		// Other render errors keep a clean message.
		{"{{ input.list | join(1, 2, 3) }}", `invalid call to filter 'join': join: takes at most 1 arguments (sep), got 3`},
	}
	runRenderErrors(t, testContext(), tests, func(t *testing.T, want, out string, err error) {
		require.Empty(t, out)
		require.EqualError(t, err, want)
		var te *TemplateError
		require.ErrorAs(t, err, &te)
	})
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src, want string
		line      int
	}{
		{"{{ input.name ", "template syntax error: '}}' expected here at line 1, column 15", 1},
		{"ok\n{% if x %}", "template syntax error: Unexpected EOF, expected tag elif or else or endif at line 2, column 11", 2},
		{"{{ input.name | uper }}", `template error: unknown filter "uper" at line 1, column 17`, 1},
		{"{% if x %}\n{% filter shell_qoute %}x{% endfilter %}{% endif %}", `unknown filter "shell_qoute" at line 2, column 11`, 2},
		{"{% for x in l %}{{ x is nmber }}{% endfor %}", `template error: unknown test "nmber" at line 1, column 25`, 1},
		{"{% bogus %}", `template syntax error: unknown statement "bogus" at line 1, column 4 near "bogus"`, 1},
		{`{% include "/etc/passwd" %}`, `template syntax error: statement "include" is not supported (a template cannot load other templates or define macros) at line 1, column 4 near "include"`, 1},
		{`{% import "/etc/passwd" as x %}`, `statement "import" is not supported`, 1},
		{`{% from "/etc/passwd" import x %}`, `statement "from" is not supported`, 1},
		{`{% extends "/etc/passwd" %}`, `statement "extends" is not supported`, 1},
		{`{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}`, `statement "macro" is not supported`, 1},
		{`{% block b %}{{ self.b() }}{% endblock %}`, `statement "block" is not supported`, 1},
		{`{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}`, "recursive for-loops are not supported", 0},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			t.Parallel()
			tpl, err := CompileTemplate(tt.src)
			require.Nil(t, tpl)
			require.ErrorContains(t, err, tt.want)
			var te *TemplateError
			require.ErrorAs(t, err, &te)
			require.Equal(t, tt.line, te.Line)
		})
	}
}

// Nothing on the filesystem is reachable, however the path is written.
func TestTemplateNoFileAccess(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		`{% include "/etc/passwd" %}`,
		`{% include "../../../../etc/passwd" ignore missing %}`,
		`{% include "/template" %}`, // the template itself
		`{% extends "/template" %}`,
		`{% import "/template" as t %}`,
	} {
		tpl, err := CompileTemplate(src)
		require.Error(t, err, src)
		require.Nil(t, tpl)
	}
}

func TestRenderDoesNotModifyContext(t *testing.T) {
	t.Parallel()
	ctx := testContext()
	before := fmt.Sprint(ctx)
	out := render(t, "{% set input.name = 'changed' %}{% set ns = namespace(x=1) %}{% set ns.x = 2 %}"+
		"{% do input.list.reverse() %}{{ input.name }} {{ ns.x }}", ctx)
	require.Equal(t, "changed 2", out)
	require.Equal(t, before, fmt.Sprint(ctx))
}

func TestRangeIsBounded(t *testing.T) {
	t.Parallel()
	tpl, err := CompileTemplate("{% for i in range(100000) %}{{ i }}{% endfor %}")
	require.NoError(t, err)
	_, err = tpl.Render(nil)
	require.ErrorContains(t, err, "range of 100000 numbers is too long (at most 10000)")
	require.Equal(t, "10,8,6,", render(t, "{% for i in range(10, 5, -2) %}{{ i }},{% endfor %}", nil))
	require.Equal(t, "", render(t, "{% for i in range(5, 10, -1) %}{{ i }}{% endfor %}", nil))
	require.Equal(t, "3,4,", render(t, "{% for i in range(3, 5) %}{{ i }},{% endfor %}", nil))
	require.Equal(t, "0,3,6,9,", render(t, "{% for i in range(0, 10, 3) %}{{ i }},{% endfor %}", nil))
	require.Equal(t, "9223372036854775806,", render(t, "{% for i in range(9223372036854775806, 9223372036854775807, 5) %}{{ i }},{% endfor %}", nil))
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", "''"},
		{"plain", "'plain'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{`a "b" c`, `'a "b" c'`},
		{"$(rm -rf /)", "'$(rm -rf /)'"},
		{"`id`", "'`id`'"},
		{"a\nb", "'a\nb'"},
		{`back\slash`, `'back\slash'`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ShellQuote(tt.in))
	}
	ctx := map[string]any{"input": map[string]any{"s": "it's $(x)", "n": 2.0, "b": false, "l": []any{"a b"}, "z": nil}}
	require.Equal(t, `'it'\''s $(x)' '2' 'false' '["a b"]' ''`,
		render(t, "{{ input.s | shell_quote }} {{ input.n | shell_quote }} {{ input.b | shell_quote }} {{ input.l | shell_quote }} {{ input.z | shell_quote }}", ctx))
}

// TestShellQuoteWithShell checks with a real /bin/sh that a quoted value is
// read back exactly, for nasty fixed inputs and for random strings.
func TestShellQuoteWithShell(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	tpl, err := CompileTemplate("printf %s {{ input.x | shell_quote }}")
	require.NoError(t, err)
	inputs := []string{
		"", " ", "'", "''", `"`, "it's", "$(echo pwned)", "`echo pwned`", "${HOME}", "$HOME",
		"a\nb", "trailing newline\n", "\n", "\t tab", `back\slash\`, "glob * ? [a]", "semi; colon && or || pipe |",
		"<redirect >out 2>&1", "#comment", "~", "-n", "--", "%s %d", "ünïcödé ✓", "\x01\x7f",
		"'\"'\"'", "!history", "a'b\"c`d$e\\f",
	}
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("ab '\"`$(){}[]\\\n\t;&|<>*?~#!%-=ü✓\x01")
	for range 150 {
		n := r.IntN(20)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		inputs = append(inputs, b.String())
	}
	for _, in := range inputs {
		cmd, err := tpl.Render(map[string]any{"input": map[string]any{"x": in}})
		require.NoError(t, err)
		out, err := exec.Command("sh", "-c", cmd).Output()
		require.NoError(t, err, "sh -c %q", cmd)
		require.Equal(t, in, string(out), "sh -c %q", cmd)
	}
}

func TestCompatTemplates(t *testing.T) {
	t.Parallel()
	// The upstream-mvp workflow templates render as the original did.
	greet := `echo Hello {{ input.name }} && echo 'OUTPUT: {"greeting": "Hello {{ input.name }}"}'`
	require.Equal(t, `echo Hello E2E Test && echo 'OUTPUT: {"greeting": "Hello E2E Test"}'`,
		render(t, greet, TemplateContext{Input: map[string]any{"name": "E2E Test"}}.Map()))

	// hello-world, step shout-it: its input from say-hello's output, then its cmd.
	stepInput, err := CompileValue(map[string]any{"message": "{{ say_hello.output.greeting }}"})
	require.NoError(t, err)
	in, err := stepInput.Render(TemplateContext{
		Input: map[string]any{"name": "E2E Test"},
		Steps: map[string]any{"say-hello": map[string]any{"greeting": "Hello E2E Test"}},
	}.Map())
	require.NoError(t, err)
	require.Equal(t, map[string]any{"message": "Hello E2E Test"}, in)
	require.Equal(t, `echo Hello E2E Test | tr '[:lower:]' '[:upper:]'`,
		render(t, `echo {{ input.message }} | tr '[:lower:]' '[:upper:]'`, TemplateContext{Input: in.(map[string]any)}.Map()))

	notify := `echo 'Notification: Deployment to {{ input.env }} completed with status={{ input.status }}' && echo 'OUTPUT: {"notified": true}'`
	require.Equal(t, `echo 'Notification: Deployment to staging completed with status=success' && echo 'OUTPUT: {"notified": true}'`,
		render(t, notify, TemplateContext{Input: map[string]any{"env": "staging", "status": "success"}}.Map()))
}

func TestValueTemplate(t *testing.T) {
	t.Parallel()
	vt, err := CompileValue(map[string]any{
		"name":     "{{ input.name }}",
		"greeting": "Hello {{ input.name }}!",
		"count":    "{{ input.int }}",
		"spaced":   "  {{ input.float2 }}\n",
		"ratio":    "{{ input.float }}",
		"flag":     "{{ input.no }}",
		"list":     "{{ input.list }}",
		"obj":      "{{ say_hello.output.x }}",
		"null":     "{{ input.null }}",
		"computed": "{{ input.int * 3 }}",
		"literal":  "{{ {'a': [1, 'x']} }}",
		"ternary":  "{{ input.name if input.yes else 0 }}",
		"two":      "{{ input.int }}{{ input.int }}",
		"text":     "{{ input.int }} items",
		"plain":    "no template",
		"number":   42,
		"bool":     true,
		"nil":      nil,
		"nested":   []any{"{{ input.yes }}", map[string]any{"deep": "{{ job.task }}"}, 7},
	})
	require.NoError(t, err)
	ctx := testContext()
	got, err := vt.Render(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"name":     "World",
		"greeting": "Hello World!",
		"count":    2,
		"spaced":   2.0,
		"ratio":    2.5,
		"flag":     false,
		"list":     []any{"a", "b"},
		"obj":      map[string]any{"y": "deep", "n": 3.0},
		"null":     nil,
		"computed": 6,
		"literal":  map[string]any{"a": []any{1, "x"}},
		"ternary":  "World",
		"two":      "22",
		"text":     "2 items",
		"plain":    "no template",
		"number":   42,
		"bool":     true,
		"nil":      nil,
		"nested":   []any{true, map[string]any{"deep": "hello-world"}, 7},
	}, got)

	// The result is a copy: changing it leaves the context alone.
	got.(map[string]any)["obj"].(map[string]any)["y"] = "changed"
	require.Equal(t, "deep", ctx["say_hello"].(map[string]any)["output"].(map[string]any)["x"].(map[string]any)["y"])

	// A non-map value works too.
	single, err := CompileValue("{{ input.numbers }}")
	require.NoError(t, err)
	v, err := single.Render(ctx)
	require.NoError(t, err)
	require.Equal(t, []any{1.0, 2.5, 3}, v)
}

func TestValueTemplateErrorsNameThePath(t *testing.T) {
	t.Parallel()
	_, err := CompileValue(map[string]any{"a": map[string]any{"b": []any{"ok", "{{ broken"}}})
	require.ErrorContains(t, err, "a.b[1]: template syntax error")

	vt, err := CompileValue(map[string]any{"message": "{{ say_hello.output.nope }}"})
	require.NoError(t, err)
	_, err = vt.Render(testContext())
	require.EqualError(t, err, `message: undefined variable "say_hello.output.nope"`)

	vt, err = CompileValue(map[string]any{"list": []any{"x {{ input.nope }}"}})
	require.NoError(t, err)
	_, err = vt.Render(testContext())
	require.EqualError(t, err, `list[0]: undefined variable "input.nope"`)
}

func TestRenderConcurrent(t *testing.T) {
	t.Parallel()
	tpl, err := CompileTemplate(`{% for x in input.list %}{{ x }}{% endfor %} {{ input.name | shell_quote }} {{ say_hello.output.x }}`)
	require.NoError(t, err)
	vt, err := CompileValue(map[string]any{"v": "{{ input.map }}", "s": "{% set input.name = 'x' %}{{ input.name }}"})
	require.NoError(t, err)
	ctx := testContext() // shared by every goroutine
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := TemplateContext{Input: map[string]any{"name": fmt.Sprint("n", i), "list": []any{i}}}.Map()
			for range 200 {
				out, err := tpl.Render(ctx)
				require.NoError(t, err)
				require.Equal(t, `ab 'World' {"n":3,"y":"deep"}`, out)
				_, err = tpl.Render(own)
				require.ErrorContains(t, err, `undefined variable "say_hello"`)
				v, err := vt.Render(ctx)
				require.NoError(t, err)
				require.Equal(t, "x", v.(map[string]any)["s"])
			}
		}()
	}
	wg.Wait()
}

func TestStaticTemplate(t *testing.T) {
	t.Parallel()
	// Strings without template syntax are returned untouched, byte for byte.
	for _, s := range []string{"", "plain", "a\r\nb\n", "{ not a template }", "100% } {", "\x00\xff"} {
		tpl, err := CompileTemplate(s)
		require.NoError(t, err)
		out, err := tpl.Render(nil)
		require.NoError(t, err)
		require.Equal(t, s, out)
		require.Equal(t, s, tpl.Source())
	}
}

func BenchmarkRender(b *testing.B) {
	tpl, err := CompileTemplate(`echo Hello {{ input.name }} && echo 'OUTPUT: {"greeting": "Hello {{ input.name }}", "count": {{ input.count }}, "tags": {{ input.tags }}}' && echo {{ say_hello.output.greeting | shell_quote }}`)
	require.NoError(b, err)
	ctx := TemplateContext{
		Input:   map[string]any{"name": "World", "count": 3.0, "tags": []any{"a", "b"}},
		Steps:   map[string]any{"say-hello": map[string]any{"greeting": "Hello World"}},
		Secrets: map[string]any{"token": "t0k3n"},
		Job:     JobInfo{ID: "id", Task: "hello-world", Workspace: "default"},
	}.Map()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tpl.Render(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileTemplate(b *testing.B) {
	src := `echo Hello {{ input.name }} && echo 'OUTPUT: {"greeting": "Hello {{ input.name }}"}'`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CompileTemplate(src); err != nil {
			b.Fatal(err)
		}
	}
}

// Inputs on which gonja v2.9.1 panics (found by FuzzRender): each must come
// back as an error, never as a panic.
func TestGonjaPanicsBecomeErrors(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"{{0 is ",       // parser: nil token stream at EOF
		"{{a if in t}}", // a test expression without its operand
		"{{ 1 % 0 }}",   // integer modulo by zero
		"{% set a = 0 % 0 %}",
		"{%raw=%}{% endraw %}", // raw statement with arguments: index out of range
	} {
		tpl, err := CompileTemplate(src)
		if err == nil {
			_, err = tpl.Render(testContext())
		}
		require.Error(t, err, src)
	}
	tpl, err := CompileTemplate("{{ 1 % 0 }}")
	require.NoError(t, err)
	_, err = tpl.Render(nil)
	require.ErrorContains(t, err, "internal error in the template engine: runtime error: integer divide by zero")
}
