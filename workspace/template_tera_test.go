package workspace

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The Tera spellings the upstream documentation uses render as Tera does.
func TestRenderTeraFilters(t *testing.T) {
	t.Parallel()
	tests := []renderCase{
		// keyword arguments of filters Jinja also has
		{"{{ input.nope | default(value='World') }}", "World"},
		{"{{ input.name | default(value='x') }}", "World"},
		{"{{ state.greeting | default(value='(no greeting)') }}", "(no greeting)"},
		{"{{ input.list | join(sep=', ') }}", "a, b"},
		{"{{ input.list | join(', ') }}", "a, b"},
		{"{{ 'a-b-c' | replace(from='-', to='+') }}", "a+b+c"},
		{"{{ 'a-b-c' | replace('-', '+') }}", "a+b+c"},
		// Tera's truncate: exactly length characters, then "…"
		{"{{ 'Hello World' | truncate(length=5) }}", "Hello…"},
		{"{{ 'Hello World' | truncate(length=5, end='...') }}", "Hello..."},
		{"{{ 'Hello' | truncate(length=5) }}", "Hello"},
		// Tera-only filters
		{"{{ input.list | nth(n=1) }}", "b"},
		{"{{ input.map | get(key='k') }}", "v"},
		{"{{ input.map | get(key='zz', default='d') }}", "d"},
		{"{{ input.list | concat(with='c') | join(sep='') }}", "abc"},
		{"{{ input.list | concat(with=input.list) | length }}", "4"},
		{"{{ '  x  ' | trim_start }}|", "x  |"},
		{"{{ '  x  ' | trim_end }}|", "  x|"},
		{"{{ 'prefix-x' | trim_start_matches(pat='prefix-') }}", "x"},
		{"{{ 'x.yaml' | trim_end_matches(pat='.yaml') }}", "x"},
		{"{{ 'Hello, World & Co!' | slugify }}", "hello-world-co"},
		// As Tera's slug crate: transliterated, ASCII only, no dash at the ends.
		{"{{ 'Ærø Straße' | slugify }}", "aero-strasse"},
		{"{{ '--Strøm_v2.0--' | slugify }}", "strom-v2-0"},
		{"{{ '日本' | slugify }}", "ri-ben"},
		{"{{ \"it's\" | addslashes }}", `it\'s`},
		{"{{ 'a b c' | split(pat=' ') | length }}", "3"},
		{"{{ 'a,b' | split(pat=',') | last }}", "b"},
		{"{{ [1, 2, 3, 4] | slice(start=1, end=3) | join(sep=',') }}", "2,3"},
		{"{{ [1, 2, 3, 4] | slice(end=-1) | join(sep=',') }}", "1,2,3"},
		{"{{ 'a\nb' | indent(prefix='> ') }}", "a\n> b"},
		{"{{ 'a\nb' | indent(prefix='> ', first=true) }}", "> a\n> b"},
		{"{{ 1 | pluralize }}|{{ 2 | pluralize }}|{{ 2 | pluralize(plural='es') }}", "|s|es"},
		{"{{ 0 | date(format='%Y-%m-%d %H:%M') }}", "1970-01-01 00:00"},
		{"{{ '2026-03-21T10:30:00Z' | date(format='%d/%m/%Y') }}", "21/03/2026"},
		{"{{ '<a>' | escape_xml }}", "&lt;a&gt;"},
		{"{{ 'a b&c' | urlencode_strict }}", "a%20b%26c"},
		{"{{ 'a-b_c.d~e/f' | urlencode_strict }}", "a%2Db%5Fc%2Ed%7Ee%2Ff"},
		{"{{ 'a b/c?d=e&f-g_h.i~j%' | urlencode }}", "a%20b/c%3Fd%3De%26f-g_h.i~j%"},
		{"{{ 'ø' | urlencode }}", "%C3%B8"},
		{`{{ "<a href='/x'>&\"" | escape }}`, "&lt;a href=&#x27;&#x2F;x&#x27;&gt;&amp;&quot;"},
		// Tera's join prints numbers as {{ }} does (JSON makes 2 a float)
		{"{{ [input.float2, input.float, 3] | join(sep=',') }}", "2,2.5,3"},
		{"{{ input.list | join }}", "ab"},
		{"{{ 123456789 | filesizeformat }}", "117.74 MB"},
		{"{{ 123456789 | filesizeformat(binary=true) }}", "117.74 MiB"},
		{"{{ 1048576 | filesizeformat }}|{{ 1536 | filesizeformat }}|{{ 100 | filesizeformat }}", "1 MB|1.50 kB|100 B"},
		{"{{ 3 | as_str }}", "3"},
		{"{{ [{'k': 'x', 'v': 1}, {'k': 'y', 'v': 2}, {'k': 'x', 'v': 3}] | group_by(attribute='k') | get(key='x') | length }}", "2"},
		{"{{ [{'k': 'x'}, {'k': 'y'}] | filter(attribute='k', value='y') | length }}", "1"},
		{"{{ [3, 1, 2] | sort | join(sep=',') }}", "1,2,3"},
		{"{{ 'x' | upper }}", "X"},
		{"{{ 2.567 | round(precision=2) }}", "2.57"},
		{"{{ 2.5 | round(method='floor') }}", "2"},
		{"{{ input.list | json_encode() }}", `["a","b"]`},
		{"{{ 'plain' | vals }}", "plain"},
		// tests
		{"{% if 'abc' is starting_with('ab') %}y{% else %}n{% endif %}", "y"},
		{"{% if 'abc' is ending_with('bc') %}y{% else %}n{% endif %}", "y"},
		{"{% if 'abc' is containing('z') %}y{% else %}n{% endif %}", "n"},
		{"{% if input.list is containing('a') %}y{% else %}n{% endif %}", "y"},
		{"{% if 'v1.2' is matching('^v[0-9]') %}y{% else %}n{% endif %}", "y"},
		{"{% if input.map is object %}y{% else %}n{% endif %}", "y"},
		{"{% if 4 is divisibleby(2) %}y{% endif %}", "y"},
		{"{% if input.nope is undefined %}u{% endif %}", "u"},
		// functions
		{"{% for i in range(end=3) %}{{ i }}{% endfor %}", "012"},
		{"{% for i in range(start=1, end=7, step_by=2) %}{{ i }}{% endfor %}", "135"},
		{"{% for i in range(3) %}{{ i }}{% endfor %}", "012"},
		{"{{ get_random(start=5, end=6) }}", "5"},
	}
	ctx := testContext()
	ctx["state"] = map[string]any{}
	runRenderCases(t, ctx, tests)
}

func TestRenderTeraErrors(t *testing.T) {
	t.Parallel()
	tests := []renderCase{
		{"{{ 'x' | truncate(size=3) }}", `unknown argument "size"`},
		{"{{ input.list | nth }}", "nth: needs n"},
		{"{{ input.map | get(key='zz') }}", `the object has no key "zz"`},
		{"{{ throw(message='stop here') }}", "stop here"},
		{"{{ 'ref+awsssm:///prod/db' | vals }}", "unsupported secret reference"},
		{"{{ 'ref+env://STROEM_TEST_NEVER_SET_X' | vals }}", `environment variable "STROEM_TEST_NEVER_SET_X" is not set`},
	}
	runRenderErrors(t, testContext(), tests, func(t *testing.T, want, _ string, err error) {
		require.ErrorContains(t, err, want)
	})
}

func TestRenderVals(t *testing.T) {
	t.Setenv("STROEM_TEST_VALS", "s3cr3t-value")
	require.Equal(t, "s3cr3t-value", render(t, "{{ 'ref+env://STROEM_TEST_VALS' | vals }}", testContext()))
	require.Equal(t, []string{"ref+env://STROEM_TEST_VALS", "ref+file:///x/y"},
		ValsRefs(`a {{ 'ref+env://STROEM_TEST_VALS' | vals }} {{ "ref+file:///x/y"|vals }} {{ 'ref+env://NOT' }}`))
	require.Nil(t, ValsRefs(strings.Repeat("x", 10)))
}

// Tera truthiness: in {% if %}, and as an operand of not, and, or, an
// undefined variable or path is false; other expressions with an undefined
// variable are still errors.
func TestRenderTeraIfUndefined(t *testing.T) {
	t.Parallel()
	ctx := testContext()
	ok := []renderCase{
		{"{% if input.nam %}x{% else %}y{% endif %}", "y"},
		{"{% if nope %}x{% elif input.name %}n{% endif %}", "n"},
		{"{% if input.map.zz %}x{% endif %}|", "|"},
		{"{% if input.list[9] %}x{% else %}none{% endif %}", "none"},
		{"{% if input.name %}{{ input.name }}{% endif %}", "World"},
		{"{% if not input.nam is defined %}absent{% endif %}", "absent"},
		{"{% if '' %}x{% elif 0 %}y{% elif [] %}z{% else %}falsy{% endif %}", "falsy"},
		// not, and, or: an undefined variable or path operand is false
		// (the upstream conditionals guide's `{{ not input.use_fast_path }}`)
		{"{{ not input.nam }}", "true"},
		{"{{ not input.map.zz }}|{{ not input.name }}", "true|false"},
		{"{% if not input.nam %}absent{% endif %}", "absent"},
		{"{% if input.nam and input.name %}x{% else %}y{% endif %}", "y"},
		{"{% if input.nam or input.name %}x{% else %}y{% endif %}", "x"},
		{"{% if input.name and not input.nam %}x{% endif %}", "x"},
		{"{{ input.nam or input.yes }}", "true"},
	}
	requireRenders(t, ctx, ok)
	for _, src := range []string{"{% if input.nam == 'x' %}x{% endif %}", "{% if input.name %}{{ input.nam }}{% endif %}", "{{ not input.nam == 'x' }}", "{{ input.yes and input.nam ~ 'x' }}"} {
		tpl, err := CompileTemplate(src)
		require.NoError(t, err)
		_, err = tpl.Render(ctx)
		require.EqualError(t, err, `undefined variable "input.nam"`, src)
	}
}

// Tera's set_global assigns in the template's top-level scope: a loop can
// count or collect into a variable that outlives it, where set assigns in
// the loop's own scope. Outside loops the two are the same.
func TestRenderTeraSetGlobal(t *testing.T) {
	t.Parallel()
	ctx := testContext()
	requireRenders(t, ctx, []renderCase{
		{"{% set n = 0 %}{% for x in input.numbers %}{% set_global n = n + 1 %}{% endfor %}{{ n }}", "3"},
		{"{% set n = 0 %}{% for x in input.numbers %}{% set n = n + 1 %}{% endfor %}{{ n }}", "0"},
		{"{% set_global s = input.name %}{{ s }}", "World"},
		{"{% set acc = [] %}{% for x in input.list %}{% set_global acc = acc + [x ~ '!'] %}{% endfor %}{{ acc | join(sep=',') }}", "a!,b!"},
		// Each iteration sees the value the one before it set.
		{"{% set_global last = '-' %}{% for x in input.list %}{{ last }}{% set_global last = x %}{% endfor %}{{ last }}", "-ab"},
		// Nested loops and blocks reach the same top-level scope.
		{"{% set_global n = 0 %}{% for a in input.list %}{% for b in input.list %}{% if a != b %}{% set_global n = n + 1 %}{% endif %}{% endfor %}{% endfor %}{{ n }}", "2"},
		{"{% with %}{% set_global w = 1 %}{% endwith %}{{ w }}", "1"},
	})
	// A template that renders twice starts afresh each time.
	tpl, err := CompileTemplate("{% for x in input.list %}{% set_global seen = x %}{% endfor %}{{ seen }}")
	require.NoError(t, err)
	for range 2 {
		out, err := tpl.Render(ctx)
		require.NoError(t, err)
		require.Equal(t, "b", out)
	}
	for src, want := range map[string]string{
		"{% set_global %}":                     "set_global wants a variable name",
		"{% set_global x %}":                   "set_global wants '=' after the name",
		"{% set_global x.y = 1 %}":             "set_global wants '=' after the name",
		"{% set_global x = 1 y = 2 %}":         "set_global takes one assignment",
		"{% set_global x = nope + 1 %}{{ x }}": "nope",
	} {
		tpl, err := CompileTemplate(src)
		if err == nil {
			_, err = tpl.Render(ctx)
		}
		require.ErrorContains(t, err, want, src)
	}
}
