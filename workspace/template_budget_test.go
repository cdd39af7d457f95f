package workspace

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// hostileTemplates each try to make the server allocate without bound or
// work forever. Each must fail with ErrRenderBudget, quickly and within a
// bounded amount of memory.
var hostileTemplates = []struct {
	name, src string
	// want matches the expected message (a regular expression).
	want string
}{
	{"string repeat", `{{ ('x' * 100000000) | length }}`, "string repetition"},
	{"string repeat negative count is empty, repeat huge is refused", `{{ 'x' * -1 }}{{ 'ab' * 9000000 }}`, "string repetition"},
	{"doubling with ~ in a namespace", `{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}`, "string concatenation"},
	{"doubling with + in set_global", `{% set_global s = 'x' %}{% for i in range(40) %}{% set_global s = s + s %}{% endfor %}{{ s | length }}`, "string concatenation"},
	{"doubling a list", `{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}`, "list of more than"},
	{"nested range loops", `{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}`, "loop iterations|rendering took longer"},
	{"huge join separator", `{{ range(10000) | join(sep='x' * 10000000) }}`, "filter join"},
	{"printing one long string many times", `{% set s = 'x' * 10000000 %}{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + [s] %}{% endfor %}{{ ns.l }}`, "printing a value"},
	{"json of one long string many times", `{% set s = 'x' * 10000000 %}{% set ns = namespace(l=[]) %}{% for i in range(1000) %}{% set ns.l = ns.l + [s] %}{% endfor %}{{ ns.l | tojson | length }}`, "filter tojson"},
	{"many values just under the limit", `{% set ns = namespace(l=[]) %}{% for i in range(100) %}{% set ns.l = ns.l + [('x' * 10000000) ~ i] %}{% endfor %}{{ ns.l | length }}`, "add up to more than"},
	{"output larger than the limit", `{% for i in range(10000) %}{{ 'x' * 10000 }}{% endfor %}`, "rendered text"},
	{"center filter", `{{ 'x' | center(1000000000) }}`, "filter center"},
	{"center method", `{{ 'x'.center(1000000000) }}`, "method center"},
	{"ljust method", `{{ 'x'.ljust(1000000000) }}`, "method ljust"},
	{"format width", `{{ '%0999999999d' | format(1) }}`, "filter format"},
	{"format star width", `{{ '%*d' | format(999999999, 1) }}`, "filter format"},
	{"replace", `{{ ('x' * 1000000) | replace('x', 'y' * 1000) }}`, "filter replace"},
	{"replace method", `{% set s = 'x' * 1000000 %}{{ s.replace('x', 'y' * 1000, -1) }}`, "method replace"},
	{"indent", `{{ ('a\n' * 1000000) | indent(prefix='x' * 1000) }}`, "filter indent"},
	{"join method", `{% set s = 'x' * 10000000 %}{{ s.join(range(10000)) }}`, "method join"},
	{"list of a long string", `{{ ('x' * 10000000) | list | length }}`, "filter list"},
	{"batch padding", `{{ [1] | batch(1000000000, fill_with=0) | length }}`, "filter batch"},
	{"lipsum", `{{ lipsum(n=100000000) | length }}`, "lipsum"},
	{"appending in nested loops", `{% set l = [] %}{% for i in range(10000) %}{% for j in range(10000) %}{% do l.append(j) %}{% endfor %}{% endfor %}{{ l | length }}`, "loop iterations|rendering took longer|add up to"},
	{"error swallowed by default", `{{ ('x' * 100000000) | default('y') }}{{ 'z' }}`, "string repetition"},
}

func TestRenderBudgetHostileTemplates(t *testing.T) {
	// Not parallel: it measures the memory each render allocates.
	wait := 20 * time.Second
	if raceEnabled {
		// The race detector makes gonja ten times slower: the time limit
		// would stop some of these before the limit they are about.
		old := renderTimeLimit
		renderTimeLimit, wait = time.Minute, 2*time.Minute
		t.Cleanup(func() { renderTimeLimit = old })
	}
	for _, tc := range hostileTemplates {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := CompileTemplate(tc.src)
			require.NoError(t, err)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			err = renderWithin(t, wait, func() error { _, err := tpl.Render(nil); return err })
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %v, %d MiB allocated: %v", tc.name, elapsed.Round(time.Millisecond), alloc>>20, err)
			require.ErrorIs(t, err, ErrRenderBudget)
			var te *TemplateError
			require.ErrorAs(t, err, &te)
			require.Regexp(t, tc.want, te.Message)
			require.NotContains(t, te.Message, "xxxxxxxx", "the message names the limit, not the value")
			// Everything a render makes is charged to 128 MiB; what is
			// checked only after it is made (a filter's result) adds at
			// most a few times the 16 MiB value limit; and gonja's own
			// garbage, about 3 KiB per loop iteration, at most 100,000
			// times. Without the budget, each of these allocates
			// gigabytes or never ends.
			require.Less(t, alloc, uint64(MaxTemplateRenderBytes+8*MaxTemplateValueBytes+MaxTemplateLoopIterations*3<<10))

			// The same template as a ValueTemplate (a step's input).
			vt, err := CompileValue(map[string]any{"x": tc.src})
			require.NoError(t, err)
			err = renderWithin(t, wait, func() error { _, err := vt.Render(nil); return err })
			require.ErrorIs(t, err, ErrRenderBudget)
			require.ErrorContains(t, err, "x: ")
		})
	}
}

// renderWithin runs render and fails the test if it has not returned
// within d (the render is left running: without a budget it may never end).
func renderWithin(t *testing.T, d time.Duration, render func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- render() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("render still running after %s", d)
		return nil
	}
}

// Templates nested deep enough to overflow gonja's recursive parser or
// evaluator (a fatal error that no recover catches: the server would die)
// are refused when they are compiled.
func TestCompileRefusesDeepNesting(t *testing.T) {
	t.Parallel()
	const n = 200000
	for name, src := range map[string]string{
		"parentheses":  "{{ " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) + " }}",
		"lists":        "{{ " + strings.Repeat("[", n) + "1" + strings.Repeat("]", n) + " }}",
		"ifs":          strings.Repeat("{% if true %}", n) + "x" + strings.Repeat("{% endif %}", n),
		"fors":         strings.Repeat("{% for i in [1] %}", n) + "x" + strings.Repeat("{% endfor %}", n),
		"set blocks":   strings.Repeat("{% set x %}", n) + "x" + strings.Repeat("{% endset %}", n),
		"not chain":    "{{ " + strings.Repeat("not ", n) + "true }}",
		"~ chain":      "{{ 1" + strings.Repeat(" ~ 1", n) + " }}",
		"filter chain": "{{ 1" + strings.Repeat(" | string", n) + " }}",
		"attributes":   "{{ input" + strings.Repeat(".x", n) + " }}",
	} {
		_, err := CompileTemplate(src)
		require.ErrorIs(t, err, ErrRenderBudget, name)
		var te *TemplateError
		require.ErrorAs(t, err, &te, name)
		require.Regexp(t, `more than \d+ (deep|operators)`, te.Message, name)
	}
	// Up to the limits, the same shapes compile and render.
	for _, src := range []string{
		"{{ " + strings.Repeat("(", 90) + "1" + strings.Repeat(")", 90) + " }}",
		strings.Repeat("{% if true %}", 90) + "x" + strings.Repeat("{% endif %}", 90),
		"{{ 1" + strings.Repeat(" ~ 1", 900) + " }}",
		strings.Repeat("{% set x = 1 %}", 1000) + "{{ x }}",
		strings.Repeat("{% set x %}", 90) + "x" + strings.Repeat("{% endset %}", 90),
	} {
		tpl, err := CompileTemplate(src)
		require.NoError(t, err)
		_, err = tpl.Render(nil)
		require.NoError(t, err)
	}
}

// What legitimate templates do with large data keeps working: a 5 MB JSON
// input passed whole, printed, encoded, looped over and joined.
func TestRenderBudgetAllowsLargeInputs(t *testing.T) {
	// Not parallel: the race detector makes gonja ten times slower, so the
	// time limit (meant for the server, where this renders in well under a
	// second) is lifted here; the other limits stay.
	if raceEnabled {
		old := renderTimeLimit
		renderTimeLimit = time.Minute
		t.Cleanup(func() { renderTimeLimit = old })
	}
	items := make([]any, 50000)
	for i := range items {
		items[i] = map[string]any{"id": i, "name": fmt.Sprintf("item-%06d", i), "pad": strings.Repeat("p", 60)}
	}
	blob := strings.Repeat("0123456789abcdef", 5<<20/16) // 5 MiB
	ctx := TemplateContext{Input: map[string]any{"items": items, "blob": blob}}.Map()
	raw, err := json.Marshal(items)
	require.NoError(t, err)
	require.Greater(t, len(raw), 4<<20)

	vt, err := CompileValue(map[string]any{
		"items": "{{ input.items }}",
		"blob":  "{{ input.blob }}",
		"text":  "{{ input.blob ~ '!' }}",
		"json":  "{{ input.items | tojson }}",
		"names": "{{ input.items | map(attribute='name') | join(sep=',') }}",
		"loop":  "{% for x in input.items %}{{ x.id }};{% endfor %}",
		"count": "{{ input.items | length }}",
		"lines": "{{ input.blob | replace('f', 'ff') | length }}",
	})
	require.NoError(t, err)
	start := time.Now()
	out, err := vt.Render(ctx)
	require.NoError(t, err)
	t.Logf("rendered in %s", time.Since(start).Round(time.Millisecond))
	m := out.(map[string]any)
	require.Len(t, m["items"], 50000)
	require.Len(t, m["blob"], len(blob))
	require.Len(t, m["text"], len(blob)+1)
	require.JSONEq(t, string(raw), m["json"].(string))
	require.EqualValues(t, 50000, m["count"])
	require.Equal(t, "item-000000", strings.Split(m["names"].(string), ",")[0])
	require.True(t, strings.HasSuffix(m["loop"].(string), "49999;"))
	require.EqualValues(t, len(blob)+len(blob)/16, m["lines"])
}

// A render that runs past its time limit stops at the next loop iteration.
func TestRenderBudgetTimeLimit(t *testing.T) {
	// Not parallel: it shortens the package's time limit.
	old := renderTimeLimit
	renderTimeLimit = 200 * time.Millisecond
	t.Cleanup(func() { renderTimeLimit = old })
	// 10,000 × 10,000 membership tests: not many iterations, much work.
	tpl, err := CompileTemplate(`{% set l = range(10000) %}{% for i in range(10000) %}{% if -1 in l %}x{% endif %}{% endfor %}`)
	require.NoError(t, err)
	start := time.Now()
	err = renderWithin(t, 20*time.Second, func() error { _, err := tpl.Render(nil); return err })
	require.ErrorIs(t, err, ErrRenderBudget)
	require.ErrorContains(t, err, "rendering took longer than 200ms")
	require.Less(t, time.Since(start), 10*time.Second)
}

// BenchmarkRenderHostile measures what a budget-breaking template costs
// before it is stopped.
func BenchmarkRenderHostile(b *testing.B) {
	for _, tc := range hostileTemplates[:6] {
		tpl, err := CompileTemplate(tc.src)
		require.NoError(b, err)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tpl.Render(nil); !errors.Is(err, ErrRenderBudget) {
					b.Fatal(err)
				}
			}
		})
	}
}

// A workspace with a template nested deep enough to crash the parser loads
// with a problem naming the file and the limit (what `stroem validate`
// prints); the process survives.
func TestLoadReportsDeepTemplate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	deep := "{{ " + strings.Repeat("(", 500000) + "1" + strings.Repeat(")", 500000) + " }}"
	writeFile(t, dir, ".workflows/deep.yaml", "actions:\n  a:\n    type: shell\n    cmd: \"echo "+deep+"\"\ntasks:\n  t:\n    flow:\n      s: { action: a }\n")
	ws, err := Load(dir)
	require.NoError(t, err)
	require.NotEmpty(t, ws.Problems)
	require.Contains(t, fmt.Sprint(ws.Problems), "more than 100 deep")
	require.Contains(t, fmt.Sprint(ws.Problems), "deep.yaml")
}
