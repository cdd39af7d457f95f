package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// The upstream example workspace's failing.yaml, plus script actions in the
// upstream form.
const upstreamWorkflow = `
actions:
  always-fail:
    type: script
    script: "echo 'About to fail' && echo 'Error details' >&2 && exit 1"
  simple-greet:
    type: script
    script: "echo Hello {{ input.name }} && echo 'OUTPUT: {\"greeting\": \"Hello {{ input.name }}\"}'"
    input:
      name: { type: string, required: true }
  py:
    type: script
    language: python
    interpreter: python3
    dependencies: [requests]
    args: ["{{ input.name }}", "--flag"]
    env:
      TOKEN: "{{ 'ref+env://STROEM_ACTORS_TEST_VALS' | vals }}"
    script: |
      import sys
      print(f'OUTPUT: {{"n": {len(sys.argv)}}}')
    input:
      name: { type: string }
  from-file:
    type: script
    source: bin/run.sh
    args: ["{{ input.name | upper }}"]
    workdir: bin
    input:
      name: { type: string }
tasks:
  fail-in-chain:
    input:
      name: { type: string, default: "test" }
    flow:
      step-fail: { action: always-fail }
      step-after: { action: simple-greet, depends_on: [step-fail], input: { name: "{{ input.name }}" } }
  fail-continue:
    input:
      name: { type: string, default: "test" }
    flow:
      step-fail: { action: always-fail }
      step-after:
        action: simple-greet
        depends_on: [step-fail]
        continue_on_failure: true
        input: { name: "{{ input.name }}" }
  langs:
    flow:
      p: { action: py, input: { name: ada } }
      f: { action: from-file, input: { name: ada } }
`

func setupUpstream(t *testing.T) *transitionBundle {
	t.Helper()
	return newBundle(t, upstreamWorkflow, map[string]string{"bin/run.sh": "echo \"$1\"\n"})
}

func TestUpstreamFailInChainSkips(t *testing.T) {
	t.Parallel()
	p, s := setupUpstream(t).newJob(t, "fail-in-chain", nil)
	report(t, p, s, "step-fail", stroem.Completion{ExitCode: 1, Error: "exit code 1: Error details"})
	require.Equal(t, stroem.StepSkipped, s.Find("step-after").Status)
	require.Equal(t, stroem.JobFailed, s.Job.Status)
}

// Upstream's fail-continue: continue_on_failure on the dependent makes it
// run although its dependency failed.
func TestUpstreamContinueOnFailureOnTheDependent(t *testing.T) {
	t.Parallel()
	p, s := setupUpstream(t).newJob(t, "fail-continue", map[string]any{"name": "x"})
	report(t, p, s, "step-fail", stroem.Completion{ExitCode: 1})
	require.Equal(t, stroem.StepReady, s.Find("step-after").Status)
	require.Equal(t, map[string]any{"name": "x"}, s.Find("step-after").Input)
	report(t, p, s, "step-after", stroem.Completion{Output: map[string]any{"greeting": "Hello x"}})
	require.Equal(t, stroem.StepCompleted, s.Find("step-after").Status)
	// step-fail has no continue_on_failure of its own: the job failed.
	require.Equal(t, stroem.JobFailed, s.Job.Status)
}

// No OUTPUT line: the step's output is null, also after an earlier attempt
// printed one.
func TestNoOutputIsNull(t *testing.T) {
	t.Parallel()
	p, s := setupUpstream(t).newJob(t, "fail-in-chain", nil)
	st := claim(s, "step-fail", "w")
	st.Output = map[string]any{"stale": true}
	require.NoError(t, evComplete{step: "step-fail", c: stroem.Completion{WorkerID: "w", Attempt: 1}}.apply(p, s))
	require.Nil(t, s.Find("step-fail").Output)
}

func TestRenderSpecScriptLanguage(t *testing.T) {
	t.Setenv("STROEM_ACTORS_TEST_VALS", "vals-secret-123")
	p, s := setupUpstream(t).newJob(t, "langs", nil)

	spec, err := renderSpec(p, persistence.ClaimedStep{JobID: s.Job.ID, StepName: "p", Input: s.Find("p").Input})
	require.NoError(t, err)
	require.Equal(t, "python", spec.Language)
	require.Equal(t, "python3", spec.Interpreter)
	require.Equal(t, []string{"requests"}, spec.Dependencies)
	require.Equal(t, []string{"ada", "--flag"}, spec.ArgList)
	// Python's own braces are not a template: the code runs as written.
	require.Equal(t, "import sys\nprint(f'OUTPUT: {{\"n\": {len(sys.argv)}}}')\n", spec.Code)
	require.Equal(t, "vals-secret-123", spec.Env["TOKEN"])
	require.Empty(t, spec.Cmd)
	// The value resolved with | vals is masked in logs.
	require.Equal(t, "token=***", p.masker.Mask("token=vals-secret-123"))

	spec, err = renderSpec(p, persistence.ClaimedStep{JobID: s.Job.ID, StepName: "f", Input: s.Find("f").Input})
	require.NoError(t, err)
	require.Equal(t, "shell", spec.Language)
	require.Equal(t, "bin/run.sh", spec.Script)
	require.Equal(t, []string{"ADA"}, spec.ArgList)
	require.Equal(t, "bin", spec.Workdir)
	require.Empty(t, spec.Code)
}

func TestRenderTemplateDefaults(t *testing.T) {
	t.Setenv("STROEM_ACTORS_TEST_KEY", "k3y-from-env")
	ws := loadWorkspace(t, `
secrets:
  DEPLOY_KEY: "ref+env://STROEM_ACTORS_TEST_KEY"
  PORT: 8443
actions:
  a: { type: script, script: echo }
tasks:
  t:
    input:
      api_key: { type: string, default: "{{ secret.DEPLOY_KEY }}", secret: true }
      port: { type: integer, default: "{{ secret.PORT }}" }
      plain: { type: string, default: "x" }
    flow:
      s: { action: a }
  bad:
    input:
      k: { type: string, default: "{{ secret.NOPE }}" }
    flow:
      s: { action: a }
`)

	tk := ws.Tasks["t"]
	p := testPlan(t, ws, "t")
	in, problems := workspace.CheckInput(tk.Input, nil)
	require.Empty(t, problems)
	require.NoError(t, renderDefaults(p, tk.Input, nil, in))
	require.Equal(t, map[string]any{"api_key": "k3y-from-env", "port": int64(8443), "plain": "x"}, in)

	// A value the caller gives is kept as given.
	in, _ = workspace.CheckInput(tk.Input, map[string]any{"api_key": "mine"})
	require.NoError(t, renderDefaults(p, tk.Input, map[string]any{"api_key": "mine"}, in))
	require.Equal(t, "mine", in["api_key"])

	bad := ws.Tasks["bad"]
	p = testPlan(t, ws, "bad")
	in, _ = workspace.CheckInput(bad.Input, nil)
	err := renderDefaults(p, bad.Input, nil, in)
	require.Error(t, err)
	require.Contains(t, err.Error(), "default")
}

func TestDefaultStepTimeout(t *testing.T) {
	t.Parallel()
	o := &Orchestrator{cfg: Config{DefaultStepTimeout: 5 * time.Minute}}
	require.Equal(t, stroem.Duration(5*time.Minute), o.stepTimeout(0), "no timeout of its own: the server's default")
	require.Equal(t, stroem.Duration(time.Second), o.stepTimeout(stroem.Duration(time.Second)), "the step's own wins")
	require.Equal(t, stroem.Duration(0), (&Orchestrator{}).stepTimeout(0), "no default: none")
}
