package workspace

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// FuzzRender compiles and renders arbitrary template source against a fixed
// context. Whatever the source, CompileTemplate and Render must return (an
// error is fine) without panicking or hanging, and must leave the context
// unchanged. Run: go test -run xxx -fuzz FuzzRender -fuzztime 2m ./workspace/
func FuzzRender(f *testing.F) {
	for _, seed := range []string{
		"",
		"plain text",
		"{{ input.name }}",
		"{{ input.count }} {{ input.ratio }} {{ input.flag }} {{ input.list }} {{ input.map }}",
		`echo Hello {{ input.name }} && echo 'OUTPUT: {"greeting": "Hello {{ input.name }}"}'`,
		"{{ say_hello.output.greeting | upper | shell_quote }}",
		"{{ say_hello.output.x.y }}",
		"{% if input.flag %}a{% elif input.count > 1 %}b{% else %}c{% endif %}",
		"{% for x in input.list %}{{ loop.index }}:{{ x }}{% else %}none{% endfor %}",
		"{% for k, v in input.map.items() %}{{ k }}={{ v }}{% endfor %}",
		"{% set x = input.count * 2 %}{{ x }}",
		"{% set ns = namespace(a=1) %}{% set ns.a = ns.a + 1 %}{{ ns.a }}",
		"{% for x in input.list %}{% set_global n = x %}{% endfor %}{{ n }}",
		"{% with a = 1 %}{{ a }}{% endwith %}",
		"{% filter upper %}x{% endfilter %}",
		"{% raw %}{{ x }}{% endraw %}",
		"{{ input.nope | default('d') }} {{ input.nope is defined }}",
		"{{ input.list | join(',') }} {{ input.list | length }} {{ input.list | first }}",
		"{{ input.map | json_encode }} {{ input.map | tojson }} {{ input.map | dictsort }}",
		"{{ 'a' ~ 1 ~ true }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 8 }} {{ -input.ratio }}",
		"{{ input.name[1:3] }} {{ input.list[::-1] }}",
		"{{ input.name if input.flag else input.count }}",
		"{%- if true -%}  x  {%- endif -%}",
		"{# comment #}{{ secret.db.password }}{{ job.id }}",
		"{% for i in range(3) %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}",
		"{{ input.name | replace('o', '0') | title | center(20) }}",
		"{{ '%s-%d' | format('a', 1) }}",
		"{{ undefined_thing }}",
		"{{ input. }}",
		"{% if %}",
		"{% endfor %}",
		"{{ {'a': [1, 2.5, none, True]} }}",
	} {
		f.Add(seed)
	}
	base := fuzzContext()
	want := fmt.Sprint(base)
	// With STROEM_FUZZ_PANICS=FILE, every panic inside gonja that Render or
	// CompileTemplate turned into an error is appended to FILE (the input,
	// the panic and gonja's frame that raised it), to list such inputs.
	panicLog := os.Getenv("STROEM_FUZZ_PANICS")
	check := func(src string, err error) {
		if panicLog == "" || err == nil || !strings.Contains(err.Error(), "internal error in the template engine") {
			return
		}
		frame := ""
		if cause := errors.Unwrap(err); cause != nil {
			lines := strings.Split(cause.Error(), "\n")
			for i, l := range lines {
				if strings.HasPrefix(l, "panic(") {
					for _, l2 := range lines[i+1:] {
						if strings.Contains(l2, "gonja/v2") && !strings.HasPrefix(l2, "\t") {
							frame = l2
							break
						}
					}
					break
				}
			}
		}
		fh, ferr := os.OpenFile(panicLog, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if ferr != nil {
			return
		}
		defer fh.Close()
		fmt.Fprintf(fh, "%q\t%s\t%s\n", src, strings.SplitN(err.Error(), ": internal error in the template engine: ", 2)[1], frame)
	}
	f.Fuzz(func(t *testing.T, src string) {
		ctx := fuzzContext()
		tpl, err := CompileTemplate(src)
		check(src, err)
		if err != nil {
			return
		}
		_, err = tpl.Render(ctx)
		check(src, err)
		vt, err := CompileValue(map[string]any{"v": src})
		if err != nil {
			t.Fatalf("CompileTemplate accepted %q but CompileValue did not: %v", src, err)
		}
		_, err = vt.Render(ctx)
		check(src, err)
		if got := fmt.Sprint(ctx); got != want {
			t.Fatalf("rendering %q changed the context:\n%s\nwas\n%s", src, got, want)
		}
	})
}

func fuzzContext() map[string]any {
	return TemplateContext{
		Input: map[string]any{
			"name": "World", "count": 2.0, "ratio": 0.5, "flag": true, "null": nil,
			"list": []any{"a", "b", 3.0}, "map": map[string]any{"k": "v", "n": []any{1.0}},
		},
		Steps:   map[string]any{"say-hello": map[string]any{"greeting": "Hello", "x": map[string]any{"y": "z"}}},
		Secrets: map[string]any{"db": map[string]any{"password": "hunter22"}},
		Job:     JobInfo{ID: "id", Task: "task", Workspace: "ws"},
	}.Map()
}
