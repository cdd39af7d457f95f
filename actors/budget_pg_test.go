package actors

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// Templates that would take the server's memory or time are stopped by the
// render budget (workspace/template_budget.go): the step fails through the
// usual render-error path, with a message naming the limit and never the
// secret the template touched, and the server goes on serving other jobs.
const budgetWorkflow = `
actions:
  emit:
    type: shell
    cmd: "echo {{ input.value }}"
    input:
      value: { type: string, required: true }
  huge_cmd:
    type: shell
    cmd: "echo {{ input.value * 100000000 }}"
    input:
      value: { type: string, required: true }
secrets:
  token: "s3cret-value"
tasks:
  hostile_root:
    flow:
      blow: { action: emit, input: { value: "{{ secret.token ~ ('x' * 100000000) }}" } }
      fine: { action: emit, input: { value: ok } }
  hostile_child:
    flow:
      first: { action: emit, input: { value: a } }
      second:
        action: emit
        depends_on: [first]
        input:
          value: "{% set_global s = secret.token %}{% for i in range(40) %}{% set_global s = s ~ s %}{% endfor %}{{ s }}"
  hostile_when:
    flow:
      gated:
        action: emit
        when: "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length > 0 }}"
        input: { value: a }
  hostile_loops:
    flow:
      spin:
        action: emit
        input:
          value: "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
  hostile_cmd:
    flow:
      run: { action: huge_cmd, input: { value: "{{ secret.token }}" } }
  normal:
    flow:
      only: { action: emit, input: { value: fine } }
`

func TestRenderBudgetFailsStepsNotTheServer(t *testing.T) {
	t.Parallel()
	e := newPGEngine(t, budgetWorkflow, Config{}, nil)
	w := uuid.NewString()

	requireBudgetFailure := func(t *testing.T, id, step string) {
		t.Helper()
		s := e.state(t, id).Find(step)
		require.NotNil(t, s)
		require.Equal(t, stroem.StepFailed, s.Status, "step %s", step)
		require.Contains(t, s.ErrorMessage, "template render budget exceeded")
		require.NotContains(t, s.ErrorMessage, "s3cret-value")
		require.NotContains(t, s.ErrorMessage, "xxxxxxxx")
		require.Less(t, len(s.ErrorMessage), 500)
	}

	start := time.Now()
	// A root's input is rendered when the job is created.
	root := e.create(t, "hostile_root", nil)
	requireBudgetFailure(t, root, "blow")
	require.Contains(t, e.state(t, root).Find("blow").ErrorMessage, "string repetition")
	a := e.claimed(t, w)
	require.Equal(t, "fine", a.StepName)
	e.complete(t, a, w, stroem.Completion{})
	e.waitStatus(t, root, stroem.JobFailed)

	// A dependent's input is rendered when it is promoted.
	child := e.create(t, "hostile_child", nil)
	a = e.claimed(t, w)
	require.Equal(t, "first", a.StepName)
	e.complete(t, a, w, stroem.Completion{})
	e.waitStatus(t, child, stroem.JobFailed)
	requireBudgetFailure(t, child, "second")
	require.Contains(t, e.state(t, child).Find("second").ErrorMessage, "value: ")

	// A when: condition fails its step as any render error does.
	when := e.create(t, "hostile_when", nil)
	e.waitStatus(t, when, stroem.JobFailed)
	requireBudgetFailure(t, when, "gated")
	require.Contains(t, e.state(t, when).Find("gated").ErrorMessage, "when")

	// Nested loops stop at the iteration limit (or, on a slow machine,
	// at the time limit first).
	loops := e.create(t, "hostile_loops", nil)
	e.waitStatus(t, loops, stroem.JobFailed)
	requireBudgetFailure(t, loops, "spin")
	require.Regexp(t, "loop iterations|rendering took longer", e.state(t, loops).Find("spin").ErrorMessage)

	// The action's command is rendered when the step is claimed.
	cmd := e.create(t, "hostile_cmd", nil)
	require.Nil(t, e.claim(t, w, time.Second), "a step whose command does not render is not handed out")
	e.waitStatus(t, cmd, stroem.JobFailed)
	requireBudgetFailure(t, cmd, "run")
	require.True(t, strings.HasPrefix(e.state(t, cmd).Find("run").ErrorMessage, "cmd: "), e.state(t, cmd).Find("run").ErrorMessage)
	t.Logf("five hostile jobs failed in %s", time.Since(start).Round(time.Millisecond))

	// The server still runs ordinary jobs.
	ok := e.create(t, "normal", nil)
	a = e.claimed(t, w)
	require.Equal(t, "echo fine", a.Spec.Cmd)
	e.complete(t, a, w, stroem.Completion{})
	e.waitStatus(t, ok, stroem.JobCompleted)
}
