package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

func loadOne(t *testing.T, wf string) *Workspace {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin", "run.py"), []byte("print(1)\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "w.yaml"), []byte(wf), 0o644))
	ws := loaded(t, dir)
	return ws
}

func problemTexts(ws *Workspace) []string {
	var out []string
	for _, p := range ws.Problems {
		out = append(out, p.Message)
	}
	return out
}

func TestUpstreamActionForms(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
actions:
  py:
    type: script
    name: Python step
    description: runs python
    language: py
    script: "print(1)"
  js:
    type: script
    language: js
    dependencies: [left-pad]
    script: "console.log(1)"
  src:
    type: script
    language: python
    source: bin/run.py
    args: ["{{ input.x }}", "--flag"]
    interpreter: python3.11
    input: { x: { type: string } }
  dock:
    type: script
    runner: docker
    script: "echo in a container"
  pod:
    type: pod
    image: alpine
    command: [echo, hi]
    manifest: { spec: { serviceAccountName: sa } }
`)
	require.Equal(t, []string{`action py: unknown language "py"; use shell, python, javascript (js), typescript (ts) or go`}, problemTexts(ws))
	js := ws.Actions["js"]
	require.Equal(t, LangJavaScript, js.Language)
	require.Equal(t, []string{"left-pad"}, js.Dependencies)
	src := ws.Actions["src"]
	require.Equal(t, "bin/run.py", src.Source)
	require.Equal(t, []string{"{{ input.x }}", "--flag"}, src.Args)
	require.Equal(t, "python3.11", src.Interpreter)
	require.Equal(t, RunnerLocal, src.Runner)
	require.Equal(t, ActionDocker, ws.Actions["dock"].Type, "runner: docker needs a docker worker")
	require.Equal(t, RunnerDocker, ws.Actions["dock"].Runner)
	require.Equal(t, []string{"echo", "hi"}, ws.Actions["pod"].Command)
	require.Equal(t, map[string]any{"spec": map[string]any{"serviceAccountName": "sa"}}, ws.Actions["pod"].Manifest)
}

func TestUpstreamActionProblems(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, action, want string }{
		{"script and source", "type: script\n    script: echo\n    source: bin/run.py", "has more than one of script, source and cmd"},
		{"image on a script", "type: script\n    script: echo\n    image: alpine", "image does not apply to type script actions (use type: docker, or runner: docker)"},
		{"image on a docker-runner script", "type: script\n    runner: docker\n    image: myorg/kafka-consumer:1.0", "image does not apply to type script actions (runner: docker runs the script in the worker's runner image; to run an image as is, use type: docker without runner)"},
		{"script on docker", "type: docker\n    image: alpine\n    script: echo", "script does not apply to type docker actions"},
		{"deps on shell", "type: script\n    script: echo\n    dependencies: [x]", "dependencies need a language other than shell"},
		{"deps on go", "type: script\n    language: go\n    script: x\n    dependencies: [x]", "dependencies do not apply to go"},
		{"manifest on local", "type: script\n    script: echo\n    manifest: {a: 1}", "manifest applies only to pods"},
		{"missing source", "type: script\n    source: bin/nope.sh", `source "bin/nope.sh" not found in the workspace`},
		{"source leaves", "type: script\n    source: ../x.sh", `source "../x.sh" leaves the workspace`},
		{"templated source", "type: script\n    source: \"{{ input.f }}\"", "must be a plain path"},
		{"shell template error", "type: script\n    script: \"echo {{ input.x \"", "template does not parse"},
		{"interpreter with spaces", "type: script\n    language: python\n    interpreter: python3 -u\n    script: x", "interpreter must be one program name"},
		{"task type naming no task", "type: task\n    task: other", `action a: type task names unknown task "other"`},
		{"task type without task", "type: task", "type task needs task"},
		{"task type with a script", "type: task\n    task: other\n    script: echo", "script does not apply to type task actions"},
		{"approval with a cmd", "type: approval\n    cmd: echo", "cmd does not apply to type approval actions"},
		{"agent type", "type: agent\n    provider: p\n    prompt: hi", "type agent: LLM agent steps are not supported yet"},
		{"timeout too long", "type: script\n    script: echo\n    timeout: 25h", "timeout is 25h0m0s; at most 24h0m0s is allowed"},
		{"workdir leaves", "type: script\n    script: echo\n    workdir: ../up", `workdir "../up" must be a path relative to the workspace root`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ws := loadOne(t, "actions:\n  a:\n    "+tt.action+"\n")
			require.Contains(t, strings.Join(problemTexts(ws), "\n"), tt.want)
			require.NotContains(t, ws.Actions, "a")
		})
	}
}

func TestUpstreamInputFields(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
actions:
  a:
    type: script
    script: echo
tasks:
  t:
    input:
      env: { type: string, name: Environment, options: [dev, prod], default: dev, order: 2 }
      envs: { type: string, options: [dev, prod], multiple: true, default: [dev] }
      tags: { type: string, options: [a], multiple: true, allow_custom: true, default: [a, zz] }
      note: { type: text }
      day: { type: date, default: "2026-03-21" }
      at: { type: datetime, default: "2026-03-21T10:30:00Z" }
      flag: { type: bool, default: true }
      token: { type: string, secret: true, required: true }
    flow:
      s: { action: a }
`)
	require.Empty(t, ws.Problems)
	in := ws.Tasks["t"].Input
	env := in.Lookup("env")
	require.Equal(t, "Environment", env.Label)
	require.Equal(t, 2, *env.Order)
	require.Equal(t, TypeBoolean, in.Lookup("flag").Type)
	require.Equal(t, TypeDate, in.Lookup("day").Type)
	require.True(t, in.Lookup("token").Secret)

	out, problems := CheckInput(in, map[string]any{"token": "hunter2-secret", "envs": []any{"prod", "dev"}, "tags": []any{"mine"}, "day": "2026-02-30"})
	require.Equal(t, []string{`input "day": expected a date (YYYY-MM-DD), got "2026-02-30"`}, problems)
	require.Equal(t, []any{"prod", "dev"}, out["envs"])
	require.Equal(t, []any{"mine"}, out["tags"], "allow_custom takes values outside the options")

	_, problems = CheckInput(in, map[string]any{"token": 5, "envs": "dev", "env": "moon", "at": "yesterday"})
	require.Equal(t, []string{
		`input "at": expected a date and time (RFC 3339, like 2026-03-21T10:30:00Z), got "yesterday"`,
		`input "env": "moon" is not one of "dev", "prod"`,
		`input "envs": expected a list (multiple values), got string`,
		`input "token": expected string, got integer`,
	}, problems)

	// A secret field's value is never quoted.
	sec := &Field{Name: "pw", Type: TypeString, Secret: true, Enum: []any{"a"}}
	_, problem := CheckFieldValue(sec, "hunter2-secret")
	require.Equal(t, "the value is not one of \"a\"", problem)
	require.NotContains(t, problem, "hunter2")
}

func TestUpstreamInputFieldProblems(t *testing.T) {
	t.Parallel()
	tests := []struct{ field, want string }{
		{"{ type: string, multiple: true }", "multiple needs options"},
		{"{ type: string, options: [a], multiple: true, secret: true }", "multiple cannot be combined with secret"},
		{"{ type: string, options: [a, b], multiple: true, default: [c] }", `default: item 0: "c" is not one of "a", "b"`},
		{"{ type: string, options: [a], enum: [a] }", "has both options and enum; keep options"},
		{"{ type: date, default: tomorrow }", "expected a date (YYYY-MM-DD)"},
		{"{ type: string, order: first }", "order must be a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			t.Parallel()
			ws := loadOne(t, "actions:\n  a:\n    type: script\n    script: echo\n    input:\n      f: "+tt.field+"\n")
			require.Contains(t, strings.Join(problemTexts(ws), "\n"), tt.want)
		})
	}
}

func TestUpstreamRetryAndDurations(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
actions:
  a:
    type: script
    script: echo
    timeout: 300
    retry: { max_attempts: 4, delay: 10s, backoff: exponential, jitter: true }
  b:
    type: script
    script: echo
    retry: { delay: 90, max_delay: 5m }
tasks:
  t:
    folder: /ops/nightly/
    name: Nightly
    timeout: 7d
    retry: { max_attempts: 2, delay: 60s }
    flow:
      s: { action: a, timeout: 1h30m }
      u: { action: b, retry: 2 }
`)
	require.Empty(t, ws.Problems)
	a := ws.Actions["a"]
	require.Equal(t, stroem.Duration(300*time.Second), a.Timeout)
	require.Equal(t, &RetryPolicy{MaxAttempts: 4, Backoff: stroem.Duration(10 * time.Second), BackoffStrategy: BackoffExponential, MaxBackoff: stroem.Duration(640 * time.Second), Jitter: 0.25}, a.Retry)
	require.Equal(t, &RetryPolicy{MaxAttempts: 3, Backoff: stroem.Duration(90 * time.Second), BackoffStrategy: BackoffFixed, MaxBackoff: stroem.Duration(5 * time.Minute)}, ws.Actions["b"].Retry)
	task := ws.Tasks["t"]
	require.Equal(t, "ops/nightly", task.Folder)
	require.Equal(t, "Nightly", task.Label)
	require.Equal(t, stroem.Duration(7*24*time.Hour), task.Timeout)
	require.Equal(t, 2, task.Retry.MaxAttempts)
	require.Equal(t, stroem.Duration(90*time.Minute), task.Flow["s"].Timeout)
	require.Equal(t, 2, task.Flow["u"].Retry.MaxAttempts)
	require.Equal(t, stroem.Duration(DefaultBackoff), task.Flow["u"].Retry.Backoff, "default delay 30s")

	bad := []struct{ retry, want string }{
		{"{ max_attempts: 11 }", "max_attempts must be between 1 and 10"},
		{"{ delay: 2h }", "delay is 2h0m0s; at most 1h0m0s is allowed"},
		{"{ backoff: linear }", "backoff must be fixed or exponential"},
		{"{ delay: 5s, backoff: 5s }", "backoff must be fixed or exponential (the wait is delay)"},
		{"{ delay: 10s, max_delay: 1s }", "max_delay (1s) is shorter than delay (10s)"},
	}
	for _, b := range bad {
		ws := loadOne(t, "actions:\n  a:\n    type: script\n    script: echo\n    retry: "+b.retry+"\n")
		require.Contains(t, strings.Join(problemTexts(ws), "\n"), b.want, b.retry)
	}
	ws = loadOne(t, "tasks:\n  t:\n    timeout: 8d\n    flow:\n      s: { type: script, script: echo }\n")
	require.Contains(t, strings.Join(problemTexts(ws), "\n"), "timeout is 192h0m0s; at most 168h0m0s is allowed")
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	good := map[string]time.Duration{"30": 30 * time.Second, "0": 0, "30s": 30 * time.Second, "1h30m": 90 * time.Minute, "7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "0d": 0}
	for in, want := range good {
		d, err := ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, d, in)
	}
	for _, in := range []string{"", "d", "-5", "-1s", "5x", "1d-2h", "abc"} {
		_, err := ParseDuration(in)
		require.Error(t, err, in)
	}
}

func TestInlineStepActions(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
tasks:
  deploy:
    input:
      env: { type: string, default: staging }
    flow:
      build:
        type: docker
        image: node:20
        command: [npm, run, build]
      deploy:
        type: script
        script: "echo deploy {{ input.env }}"
        depends_on: [build]
        input:
          env: "{{ input.env }}"
      notify:
        name: Notify
        type: script
        language: python
        script: "print('done')"
        depends_on: [deploy]
        continue_on_failure: true
`)
	require.Empty(t, ws.Problems)
	task := ws.Tasks["deploy"]
	require.Equal(t, "deploy/deploy", task.Flow["deploy"].Action)
	a := ws.Actions["deploy/deploy"]
	require.Equal(t, "echo deploy {{ input.env }}", a.Inline)
	require.Equal(t, "env", a.Input[0].Name)
	require.Equal(t, ActionDocker, ws.Actions["deploy/build"].Type)
	require.Equal(t, LangPython, ws.Actions["deploy/notify"].Language)
	require.Equal(t, "Notify", task.Flow["notify"].Label)

	ws = loadOne(t, "tasks:\n  t:\n    flow:\n      s: { depends_on: [] }\n")
	require.Contains(t, strings.Join(problemTexts(ws), "\n"), "task t, step s has no action (name one, or define it inline with type and script)")
}

// An inline step's input entry that is a field definition (as upstream: a
// mapping whose `type` is a string, its other keys of their kinds) is a
// field of the inline action, not a value of the step.
func TestInlineStepInputFieldDefinitions(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
tasks:
  hello:
    flow:
      run:
        type: script
        script: "echo {{ input.count }} {{ input.name }}"
        input:
          count: { type: integer, default: 3, required: true, retries: 2 }
          name: world
          config: { type: 123 }
          flags: { type: string, required: maybe }
          nested: { inner: { type: string } }
`)
	require.Empty(t, ws.Problems)
	a := ws.Actions["hello/run"]
	count := a.Input.Lookup("count")
	require.NotNil(t, count)
	require.Equal(t, TypeInteger, count.Type)
	require.True(t, count.Required)
	require.EqualValues(t, 3, count.Default)
	for _, k := range []string{"name", "config", "flags", "nested"} {
		require.NotNil(t, a.Input.Lookup(k), k)
		require.Equal(t, FieldType(""), a.Input.Lookup(k).Type, "%s: a value's field takes any type", k)
	}
	in := ws.Tasks["hello"].Flow["run"].Input
	require.NotContains(t, in, "count", "a definition gives the step no value")
	require.Equal(t, "world", in["name"])
	require.Equal(t, map[string]any{"type": 123}, in["config"], "type not a string: a value")
	require.Equal(t, map[string]any{"type": "string", "required": "maybe"}, in["flags"], "required not a boolean: a value")
	require.Contains(t, in, "nested")
	var warnings []string
	for _, w := range ws.Warnings {
		warnings = append(warnings, w.Message)
	}
	require.Contains(t, strings.Join(warnings, "\n"), `task hello, step run, input count: "retries" is not a key of a field definition, so it is ignored (as upstream)`)
}

func TestWebhookName(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
actions:
  a: { type: script, script: echo }
tasks:
  t:
    flow:
      s: { action: a }
triggers:
  github-push:
    type: webhook
    name: github-ci
    task: t
  plain:
    type: webhook
    task: t
`)
	require.Empty(t, ws.Problems)
	require.Equal(t, "github-ci", ws.Triggers["github-push"].Path)
	require.Equal(t, "plain", ws.Triggers["plain"].Path)

	ws = loadOne(t, "actions:\n  a: { type: script, script: echo }\ntasks:\n  t:\n    flow:\n      s: { action: a }\ntriggers:\n  x:\n    type: webhook\n    name: \"has space\"\n    task: t\n")
	require.Contains(t, strings.Join(problemTexts(ws), "\n"), "a webhook's name is part of its URL")
}

func TestNotYetFeaturesAreNamed(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
libraries:
  common: { type: folder, path: ../common }
actions:
  a: { type: script, script: echo }
tasks:
  t:
    flow:
      s: { action: a }
`)
	msgs := strings.Join(problemTexts(ws), "\n")
	for _, want := range []string{"libraries are not supported yet"} {
		require.Contains(t, msgs, want)
	}
	require.NotContains(t, msgs, "unknown key")
}

// validate reports what templates refer to but cannot exist at run time.
func TestTemplateReferences(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
actions:
  a:
    type: script
    script: "echo {{ input.msg }} {{ input.nope }} {{ input.maybe | default('x') }} {% if input.opt is defined %}{{ input.opt }}{% endif %} '{{ \"input.quoted\" }}'"
    env: { X: "{{ input.mgs }}" }
    input:
      msg: { type: string }
  ok:
    type: script
    script: "{% for item in input.list %}{{ item.output }}{% endfor %}"
    input:
      list: { type: array }
tasks:
  t:
    input:
      name: { type: string }
    flow:
      first: { action: ok, input: { list: [] } }
      second:
        action: ok
        input:
          list: ["{{ input.name }}", "{{ input.nmae }}", "{{ first.output.x }}", "{{ thrid.output.x }}", "{{ third.output.x }}", "{{ second.output }}"]
      third: { action: ok, depends_on: [first], input: { list: ["{{ first.output.x }}", "{{ input.other | default('') }}"] } }
`)
	require.Equal(t, []string{
		`action a: env X uses input.mgs, which is not an input of the action (did you mean "msg"?)`,
		`action a: script uses input.nope, which is not an input of the action`,
		`task t, step second: input list uses first.output, but step first is not upstream of this step: add it to depends_on`,
		`task t, step second: input list uses input.nmae, which is not an input of task t (did you mean "name"?)`,
		`task t, step second: input list uses the step's own output (second.output)`,
		`task t, step second: input list uses third.output, but step third is not upstream of this step: add it to depends_on`,
		`task t, step second: input list uses thrid.output, but the task has no step thrid (did you mean "third"?)`,
	}, problemTexts(ws))
	require.Contains(t, ws.Actions, "ok")
	require.NotContains(t, ws.Actions, "a")
}

// Workflow files may sit in subfolders of .workflows; a SOPS configuration
// file (.sops.yaml) and hidden folders are not workflow files.
func TestWorkflowSubfolders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
	write(".workflows/actions.yaml", "actions:\n  a: { type: script, script: echo }\n")
	write(".workflows/team/ops/nightly.yml", "tasks:\n  nightly:\n    flow:\n      s: { action: a }\n")
	write(".workflows/.sops.yaml", "creation_rules:\n  - age: age1xyz\n")
	write(".workflows/.hidden/x.yaml", "not: [valid\n")
	ws := loaded(t, dir)
	require.Empty(t, ws.Problems)
	require.Contains(t, ws.Tasks, "nightly")
	require.Equal(t, filepath.Join(dir, ".workflows", "team", "ops", "nightly.yml"), ws.Tasks["nightly"].Pos.File)
}

// The runners guide puts tags on a flow step (train-model: {action:
// train-gpu, tags: ["gpu"]}). The upstream reads no tags there (its flow
// step has no such field, and unknown keys are ignored), so the step loads
// with a warning saying so; tags on an inline step are its action's.
func TestStepTagsAreAcceptedWithAWarning(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
actions:
  train-gpu:
    type: script
    script: echo train
tasks:
  train:
    flow:
      train-model:
        action: train-gpu
        tags: ["gpu"]
      inline:
        type: script
        script: echo inline
        tags: ["gpu"]
  bad:
    flow:
      s:
        action: train-gpu
        tags: gpu
`)
	require.Contains(t, ws.Tasks, "train")
	require.Equal(t, []string{"gpu"}, ws.Actions["train/inline"].Tags)
	var warnings []string
	for _, w := range ws.Warnings {
		warnings = append(warnings, w.Message)
	}
	require.Equal(t, []string{`task train, step train-model: tags on a step are not used (the upstream ignores them too); to route the step, put them on its action`}, warnings)
	require.NotContains(t, ws.Tasks, "bad")
	require.Len(t, ws.Problems, 1)
	require.Contains(t, ws.Problems[0].Message, "task bad, step s: tags")
}

// An action's tags route its steps to workers with all of them: a tag no
// worker could have (empty, over 256 bytes, more than 64) is a problem of
// the action, not a step that waits until it fails.
func TestActionTagsNoWorkerCouldHaveAreProblems(t *testing.T) {
	t.Parallel()
	ws := loadOne(t, `
actions:
  ok:
    type: script
    script: echo ok
    tags: [gpu, "gpu"]
  blank:
    type: script
    script: echo blank
    tags: ["gpu", " "]
  long:
    type: script
    script: echo long
    tags: ["`+strings.Repeat("x", 257)+`"]
tasks:
  t:
    flow:
      s: { action: ok }
`)
	require.Equal(t, []string{"gpu", "gpu"}, ws.Actions["ok"].Tags, "kept as written; a job's steps keep them as a set")
	var msgs []string
	for _, p := range ws.Problems {
		msgs = append(msgs, p.Message)
	}
	all := strings.Join(msgs, "\n")
	require.Contains(t, all, "action blank: tags[1] is empty")
	require.Contains(t, all, "action long: tags[0] is 257 bytes long")
	require.NotContains(t, all, "action ok")
}
