package workspace

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFalsy(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"", "  ", "false", "False", "FALSE", "0", "null", "Null", "NULL", "none", "None", "NONE", " false\n", "[]", "{}", " [] "} {
		require.True(t, Falsy(v), "%q", v)
	}
	for _, v := range []string{"true", "1", "yes", "no", "00", "0.0", "f", "nil", "[1]", `{"a":1}`} {
		require.False(t, Falsy(v), "%q", v)
	}
}

func TestLoopAndWhenParse(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
actions:
  a: { type: script, script: "echo {{ each.item | default(value='') }}" }
  b:
    type: script
    script: "echo {{ input.x }} {{ input.i }}"
    input: { x: { type: string }, i: { type: integer } }
tasks:
  t:
    flow:
      fetch: { action: a }
      each-one:
        action: b
        depends_on: [fetch]
        when: "{{ fetch.output.go }}"
        for_each: "{{ fetch.output.items }}"
        sequential: true
        input: { x: "{{ each.item }}", i: "{{ each.index }}" }
      literal: { action: a, for_each: [1, "b", { c: 3 }] }
      inline:
        type: script
        script: "echo {{ input.region }}"
        for_each: ["us", "eu"]
        input: { region: "{{ each.item }}" }
`)
	require.Empty(t, ws.Problems)
	flow := ws.Tasks["t"].Flow
	require.Equal(t, "{{ fetch.output.go }}", flow["each-one"].When)
	require.Equal(t, "{{ fetch.output.items }}", flow["each-one"].LoopTemplate())
	require.True(t, flow["each-one"].Sequential)
	require.Equal(t, []any{1, "b", map[string]any{"c": 3}}, flow["literal"].LoopList())
	require.True(t, flow["inline"].IsLoop())
	require.NotNil(t, ws.Actions[flow["inline"].Action], "an inline action is a named action")
}

func TestLoopAndWhenProblems(t *testing.T) {
	t.Parallel()
	many := make([]string, MaxLoopItems+1)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	ws := loadOne(t, `
actions:
  a: { type: script, script: echo }
tasks:
  t:
    flow:
      plain-string: { action: a, for_each: "a,b" }
      number: { action: a, for_each: 3 }
      map: { action: a, for_each: { a: 1 } }
      "bad[1]": { action: a }
      seq-only: { action: a, sequential: true }
      seq-type: { action: a, for_each: [1], sequential: "yes" }
      when-list: { action: a, when: [1] }
      when-syntax: { action: a, when: "{{ nope " }
      too-many: { action: a, for_each: [`+strings.Join(many, ",")+`] }
      each: { action: a }
`)
	got := strings.Join(problemTexts(ws), "\n")
	for _, want := range []string{
		`step plain-string: for_each must be a list or a template that renders to one ({{ … }}), not the plain string "a,b"`,
		"step number: for_each must be a list or a template, not",
		"step map: for_each must be a list or a template, not",
		"step bad[1]: a step name must not contain [ or ]",
		"step seq-only: sequential applies to for_each steps only",
		"step seq-type: sequential must be true or false",
		"step when-list: when must be a template (a string)",
		"step when-syntax: when: template does not parse",
		"step too-many: for_each has 10001 items; at most 10000 are allowed",
		`step name "each" is reserved`,
	} {
		require.Contains(t, got, want)
	}
}

// Every action key works on a step with an inline action: the step's keys
// other than its own go to an action parsed like a named one (an unknown
// key is that action's problem).
func TestInlineActionTakesEveryActionKey(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
tasks:
  t:
    flow:
      a:
        name: Say
        type: script
        language: python
        interpreter: python3
        script: "print('{{ input.x }}')"
        env: { A: "1" }
        tags: [x]
        workdir: sub
        timeout: 30s
        input: { x: hi }
      b:
        type: docker
        image: alpine
        command: [echo, hi]
        entrypoint: [sh, -c]
        depends_on: [a]
`)
	require.Empty(t, ws.Problems)
	a := ws.Actions[InlineActionName("t", "a")]
	require.Equal(t, LangPython, a.Language)
	require.Equal(t, "python3", a.Interpreter)
	require.Equal(t, map[string]string{"A": "1"}, a.Env)
	require.Equal(t, []string{"x"}, a.Tags)
	require.Equal(t, "sub", a.Workdir)
	require.Equal(t, "Say", ws.Tasks["t"].Flow["a"].Label, "name stays the step's")
	b := ws.Actions[InlineActionName("t", "b")]
	require.Equal(t, ActionDocker, b.Type)
	require.Equal(t, []string{"echo", "hi"}, b.Command)

	bad := loadOne(t, `
tasks:
  t:
    flow:
      a: { type: script, script: echo, bogus: 1 }
`)
	require.Contains(t, strings.Join(problemTexts(bad), "\n"), `action t/a: unknown key "bogus"`)
}
