package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	hello  = ".workflows/hello.yaml"
	deploy = ".workflows/deploy.yaml"
)

// fault changes a copy of the compatibility workspace.
type fault func(t *testing.T, dir string)

func edit(rel, old, new string) fault {
	return func(t *testing.T, dir string) { editFile(t, dir, rel, old, new) }
}

func add(rel, content string) fault {
	return func(t *testing.T, dir string) { writeFile(t, dir, rel, content) }
}

func faults(fs ...fault) fault {
	return func(t *testing.T, dir string) {
		for _, f := range fs {
			f(t, dir)
		}
	}
}

// TestValidateRules injects one fault per case into a copy of the
// compatibility workspace and checks the problem: its file, line and
// column, and the words naming the culprit. Definitions that are not
// affected must still be served.
func TestValidateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault fault
		// want is "FILE:LINE:COL: message fragment", FILE relative to the
		// workspace; every want must match a problem.
		want []string
		// gone are definitions ("action x", "task y", "trigger z") that
		// must be left out; kept must still be there.
		gone, kept []string
	}{
		{
			name:  "unknown key with suggestion",
			fault: edit(hello, `    cmd: "echo {{ input.message }}`, `    cmnd: "echo {{ input.message }}`),
			want: []string{
				hello + `:10:5: action shout: unknown key "cmnd" (did you mean "cmd"?)`,
				hello + `:8:3: action shout needs cmd (an inline command) or script`,
				hello + `:25:17: task hello-world, step shout-it: action shout has problems and is left out, so task hello-world is left out too`,
			},
			gone: []string{"action shout", "task hello-world"},
			kept: []string{"action greet", "task deploy-pipeline"},
		},
		{
			name:  "unknown top-level key",
			fault: edit(hello, "tasks:\n", "task:\n"),
			want:  []string{hello + `:14:1: workflow file: unknown key "task" (did you mean "tasks"?)`},
			gone:  []string{"task hello-world"},
			kept:  []string{"action greet"},
		},
		{
			name:  "unknown step key",
			fault: edit(hello, "        depends_on: [say-hello]", "        depend_on: [say-hello]"),
			want:  []string{hello + `:26:9: task hello-world, step shout-it: unknown key "depend_on" (did you mean "depends_on"?)`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "unknown field key",
			fault: edit(hello, "{ type: string, required: true }\n\n  shout", "{ type: string, requird: true }\n\n  shout"),
			want:  []string{hello + `:6:29: action greet: input: name: unknown key "requird" (did you mean "required"?)`},
			gone:  []string{"action greet"},
		},
		{
			name:  "wrong type: depends_on is a number",
			fault: edit(hello, "depends_on: [say-hello]", "depends_on: 3"),
			want:  []string{hello + `:26:21: task hello-world, step shout-it: depends_on must be a list of names, not an integer (3)`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "wrong type: continue_on_failure",
			fault: edit(hello, "        depends_on: [say-hello]", "        depends_on: [say-hello]\n        continue_on_failure: maybe"),
			want:  []string{hello + `:27:30: task hello-world, step shout-it: continue_on_failure must be true or false, not a string ("maybe")`},
		},
		{
			name:  "wrong type: flow is a list",
			fault: edit(deploy, "    flow:\n      health-check:\n        action: check-status\n", "    flow:\n      - health-check\n    description:\n"),
			want:  []string{deploy + `:31:7: task deploy-pipeline: flow must be a mapping, not a list`},
			gone:  []string{"task deploy-pipeline"},
			kept:  []string{"task hello-world"},
		},
		{
			name:  "both cmd and script",
			fault: edit(deploy, "    script: actions/deploy.sh\n", "    script: actions/deploy.sh\n    cmd: echo\n"),
			want:  []string{deploy + `:8:5: action deploy has both cmd and script; keep one`},
			gone:  []string{"action deploy", "task deploy-pipeline"},
			kept:  []string{"action notify", "task hello-world"},
		},
		{
			name:  "neither cmd nor script",
			fault: edit(deploy, "    script: actions/deploy.sh\n", ""),
			want:  []string{deploy + `:6:3: action deploy needs cmd (an inline command) or script (a file in the workspace)`},
			gone:  []string{"action deploy"},
		},
		{
			name:  "script leaves the workspace with ..",
			fault: edit(deploy, "script: actions/deploy.sh", "script: actions/../../deploy.sh"),
			want:  []string{deploy + `:8:13: action deploy: script "actions/../../deploy.sh" leaves the workspace`},
			gone:  []string{"action deploy"},
		},
		{
			name:  "script is an absolute path",
			fault: edit(deploy, "script: actions/deploy.sh", "script: /bin/sh"),
			want:  []string{deploy + `:8:13: action deploy: script "/bin/sh" must be a path relative to the workspace root`},
		},
		{
			name: "script is a symlink leaving the workspace",
			fault: func(t *testing.T, dir string) {
				outside := filepath.Join(dir+".outside", "deploy.sh")
				require.NoError(t, os.MkdirAll(filepath.Dir(outside), 0o755))
				t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(outside)) })
				require.NoError(t, os.WriteFile(outside, []byte("echo out\n"), 0o755))
				require.NoError(t, os.Symlink(outside, filepath.Join(dir, "actions", "out.sh")))
				editFile(t, dir, deploy, "script: actions/deploy.sh", "script: actions/out.sh")
			},
			want: []string{
				deploy + `:8:13: action deploy: script "actions/out.sh" is a symlink that leaves the workspace`,
				`actions/out.sh:0:0: symlink to "{dir}.outside/deploy.sh" leaves the workspace; left out of the revision and the archive`,
			},
			gone: []string{"action deploy"},
		},
		{
			name:  "script missing",
			fault: edit(deploy, "script: actions/deploy.sh", "script: actions/deploy.bash"),
			want:  []string{deploy + `:8:13: action deploy: script "actions/deploy.bash" not found in the workspace`},
		},
		{
			name:  "script is a folder",
			fault: edit(deploy, "script: actions/deploy.sh", "script: actions"),
			want:  []string{deploy + `:8:13: action deploy: script "actions" is not a regular file`},
		},
		{
			name:  "unknown action in a step",
			fault: edit(hello, "action: greet", "action: gret"),
			want:  []string{hello + `:21:17: task hello-world, step say-hello: unknown action "gret" (did you mean "greet"?)`},
			gone:  []string{"task hello-world"},
			kept:  []string{"action greet", "task deploy-pipeline"},
		},
		{
			name:  "unknown step in depends_on",
			fault: edit(hello, "depends_on: [say-hello]", "depends_on: [say-helo]"),
			want:  []string{hello + `:26:22: task hello-world, step shout-it: depends_on names unknown step "say-helo" (did you mean "say-hello"?)`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "cycle of length 1",
			fault: edit(hello, "depends_on: [say-hello]", "depends_on: [shout-it]"),
			want:  []string{hello + `:26:21: task hello-world: dependency cycle: shout-it -> shout-it`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "cycle of length 2",
			fault: edit(hello, "        action: greet\n", "        action: greet\n        depends_on: [shout-it]\n"),
			want:  []string{hello + `:22:21: task hello-world: dependency cycle: say-hello -> shout-it -> say-hello`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "cycle of length 3",
			fault: edit(deploy, "        action: check-status\n", "        action: check-status\n        depends_on: [send-notification]\n"),
			want:  []string{deploy + `:36:21: task deploy-pipeline: dependency cycle: deploy-app -> health-check -> send-notification -> deploy-app`},
			gone:  []string{"task deploy-pipeline"},
		},
		{
			name:  "duplicate action across files",
			fault: add(".workflows/more.yaml", "actions:\n  greet:\n    cmd: echo again\n"),
			want:  []string{".workflows/more.yaml:2:3: action greet is defined twice: here and at {dir}/" + hello + ":2:3; every definition is left out"},
			gone:  []string{"action greet", "task hello-world"},
			kept:  []string{"action shout", "task deploy-pipeline"},
		},
		{
			name:  "duplicate task across files",
			fault: add(".workflows/more.yaml", "tasks:\n  hello-world:\n    flow:\n      x: { action: shout, input: { message: hi } }\n"),
			want:  []string{".workflows/more.yaml:2:3: task hello-world is defined twice: here and at {dir}/" + hello + ":15:3"},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "duplicate key in one mapping",
			fault: edit(hello, "    type: shell\n    cmd: \"echo Hello", "    type: shell\n    type: shell\n    cmd: \"echo Hello"),
			want:  []string{hello + `:4:5: action greet: duplicate key "type" (first at line 3)`},
			gone:  []string{"action greet"},
		},
		{
			name:  "trigger naming an unknown task",
			fault: add(".workflows/triggers.yaml", "triggers:\n  nightly:\n    type: scheduler\n    cron: \"0 3 * * *\"\n    task: hello-wrld\n"),
			want:  []string{`.workflows/triggers.yaml:5:11: trigger nightly: unknown task "hello-wrld" (did you mean "hello-world"?)`},
			gone:  []string{"trigger nightly"},
		},
		{
			name:  "trigger naming a task left out",
			fault: faults(edit(hello, "action: greet", "action: gret"), add(".workflows/triggers.yaml", "triggers:\n  nightly:\n    type: scheduler\n    cron: \"0 3 * * *\"\n    task: hello-world\n")),
			want:  []string{`.workflows/triggers.yaml:5:11: trigger nightly: task hello-world has problems and is left out, so this trigger is left out too`},
			gone:  []string{"trigger nightly"},
		},
		{
			name:  "invalid cron: wrong field count",
			fault: add(".workflows/triggers.yaml", "triggers:\n  nightly:\n    type: scheduler\n    cron: \"0 3 * *\"\n    task: hello-world\n"),
			want:  []string{`.workflows/triggers.yaml:4:11: trigger nightly: invalid cron expression "0 3 * *": it has 4 fields`},
			gone:  []string{"trigger nightly"},
		},
		{
			name:  "invalid cron: value out of range",
			fault: add(".workflows/triggers.yaml", "triggers:\n  nightly:\n    type: scheduler\n    cron: \"0 61 3 * * *\"\n    task: hello-world\n"),
			want:  []string{`.workflows/triggers.yaml:4:11: trigger nightly: invalid cron expression "0 61 3 * * *": end of range (61) above maximum (59)`},
		},
		{
			name:  "invalid cron: time zone inside",
			fault: add(".workflows/triggers.yaml", "triggers:\n  nightly:\n    type: scheduler\n    cron: \"TZ=UTC\"\n    task: hello-world\n"),
			want:  []string{`.workflows/triggers.yaml:4:11: trigger nightly: invalid cron expression "TZ=UTC": set the time zone with the trigger's timezone key`},
		},
		{
			name:  "scheduler without cron",
			fault: add(".workflows/triggers.yaml", "triggers:\n  nightly:\n    type: scheduler\n    task: hello-world\n"),
			want:  []string{`.workflows/triggers.yaml:2:3: trigger nightly: a scheduler trigger needs cron`},
		},
		{
			name:  "invalid timezone",
			fault: add(".workflows/triggers.yaml", "triggers:\n  nightly:\n    type: scheduler\n    cron: \"0 3 * * *\"\n    timezone: Europe/Olso\n    task: hello-world\n"),
			want:  []string{`.workflows/triggers.yaml:5:15: trigger nightly: unknown timezone "Europe/Olso"`},
			gone:  []string{"trigger nightly"},
		},
		{
			name:  "trigger input unknown to the task",
			fault: add(".workflows/triggers.yaml", "triggers:\n  nightly:\n    type: scheduler\n    cron: \"0 3 * * *\"\n    task: hello-world\n    input: { nme: x }\n"),
			want:  []string{`.workflows/triggers.yaml:6:12: trigger nightly: input "nme": unknown field (did you mean "name"?) (task hello-world)`},
			gone:  []string{"trigger nightly"},
		},
		{
			name:  "trigger key of the other type",
			fault: add(".workflows/triggers.yaml", "triggers:\n  hook:\n    type: webhook\n    cron: \"0 3 * * *\"\n    task: hello-world\n"),
			want:  []string{`.workflows/triggers.yaml:4:5: trigger hook: cron does not apply to webhook triggers`},
		},
		{
			name:  "webhook name not URL-safe",
			fault: add(".workflows/triggers.yaml", "triggers:\n  \"deploy now\":\n    type: webhook\n    task: hello-world\n"),
			want:  []string{`.workflows/triggers.yaml:2:3: trigger deploy now: a webhook's name is part of its URL`},
			gone:  []string{"trigger deploy now"},
		},
		{
			name:  "webhook timeout out of range",
			fault: add(".workflows/triggers.yaml", "triggers:\n  hook:\n    type: webhook\n    mode: sync\n    timeout_secs: 301\n    task: hello-world\n"),
			want:  []string{`.workflows/triggers.yaml:5:19: trigger hook: timeout_secs must be between 1 and 300, got 301`},
		},
		{
			name:  "template does not parse in cmd",
			fault: edit(hello, `"echo {{ input.message }} |`, `"echo {{ input.message } |`),
			want:  []string{hello + `:10:10: action shout: cmd: template does not parse`},
			gone:  []string{"action shout"},
		},
		{
			name:  "template does not parse in a step input",
			fault: edit(hello, `name: "{{ input.name }}"`, `name: "{% if input.name %}"`),
			want:  []string{hello + `:23:17: task hello-world, step say-hello: input: name: template does not parse`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "template does not parse in a nested step input",
			fault: edit(deploy, `status: "success"`, `status: { list: ["{{ x"] }`),
			want:  []string{deploy + `:43:28: task deploy-pipeline, step send-notification: input: status.list[0]: template does not parse`},
		},
		{
			name:  "template does not parse in env",
			fault: edit(deploy, "    script: actions/deploy.sh\n", "    script: actions/deploy.sh\n    env:\n      DEPLOY_ENV: \"{{ input.env \"\n"),
			want:  []string{deploy + `:10:19: action deploy: env: DEPLOY_ENV: template does not parse`},
		},
		{
			name:  "invalid environment variable name",
			fault: edit(deploy, "    script: actions/deploy.sh\n", "    script: actions/deploy.sh\n    env:\n      DEPLOY-ENV: x\n"),
			want:  []string{deploy + `:10:7: action deploy: env: "DEPLOY-ENV" is not a valid environment variable name`},
		},
		{
			name:  "step input the action does not declare",
			fault: edit(hello, `          name: "{{ input.name }}"`, `          name: "{{ input.name }}"`+"\n          nme: x"),
			want:  []string{hello + `:24:11: task hello-world, step say-hello: action greet has no input "nme" (did you mean "name"?)`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "required action input not provided",
			fault: edit(hello, "        input:\n          name: \"{{ input.name }}\"\n", ""),
			want:  []string{hello + `:20:7: task hello-world, step say-hello: missing required input "name" of action greet`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "invalid duration",
			fault: edit(deploy, "    script: actions/deploy.sh\n", "    script: actions/deploy.sh\n    timeout: 30x\n"),
			want:  []string{deploy + `:9:14: action deploy: timeout: invalid duration "30x"; use a number of seconds or a duration like "30s", "5m", "1h30m" or "7d"`},
			gone:  []string{"action deploy"},
		},
		{
			name:  "negative duration",
			fault: edit(hello, "        depends_on: [say-hello]", "        depends_on: [say-hello]\n        timeout: -5s"),
			want:  []string{hello + `:27:18: task hello-world, step shout-it: timeout: duration must not be negative, got -5s`},
		},
		{
			name:  "max_attempts below 1",
			fault: edit(deploy, "    script: actions/deploy.sh\n", "    script: actions/deploy.sh\n    retry: { max_attempts: 0 }\n"),
			want:  []string{deploy + `:9:28: action deploy: retry: max_attempts must be between 1 and 10`},
		},
		{
			name:  "retry details",
			fault: edit(deploy, "    script: actions/deploy.sh\n", "    script: actions/deploy.sh\n    retry: { backoff: 10s, max_backoff: 1s, backoff_strategy: linear, jitter: 1.5 }\n"),
			want: []string{
				deploy + `:9:41: action deploy: retry: max_backoff (1s) is shorter than delay (10s)`,
				deploy + `:9:63: action deploy: retry: backoff_strategy: unknown value "linear"; want one of fixed, exponential`,
				deploy + `:9:79: action deploy: retry: jitter must be between 0 and 1, got 1.5`,
			},
		},
		{
			name:  "field type not in the list",
			fault: edit(hello, "message: { type: string, required: true }", "message: { type: str, required: true }"),
			want:  []string{hello + `:12:24: action shout: input: message: type: unknown value "str"`},
		},
		{
			name:  "default not matching the type",
			fault: edit(hello, `default: "World"`, `default: [World]`),
			want:  []string{hello + `:18:38: task hello-world: input: name: default: expected string, got array ["World"]`},
			gone:  []string{"task hello-world"},
		},
		{
			name:  "enum not matching the type",
			fault: edit(hello, `default: "World"`, `default: "World", enum: [World, 3]`),
			want:  []string{hello + `:18:61: task hello-world: input: name: enum: expected string, got integer 3`},
		},
		{
			name:  "default not in the enum",
			fault: edit(hello, `default: "World"`, `default: "World", enum: [Moon]`),
			want:  []string{hello + `:18:38: task hello-world: input: name: default: "World" is not one of "Moon"`},
		},
		{
			name:  "invalid enum value for action type",
			fault: edit(hello, "    type: shell\n    cmd: \"echo {{", "    type: bash\n    cmd: \"echo {{"),
			want:  []string{hello + `:9:11: action shout: type: unknown value "bash" (did you mean "task"?); want one of script, shell, docker, pod, task, agent, approval`},
		},
		{
			name:  "docker without an image",
			fault: edit(hello, "    type: shell\n    cmd: \"echo {{", "    type: docker\n    cmd: \"echo {{"),
			want:  []string{hello + `:8:3: action shout: type docker needs an image`},
		},
		{
			name:  "task without flow",
			fault: add(".workflows/more.yaml", "tasks:\n  empty:\n    description: nothing\n  hollow:\n    flow: {}\n"),
			want: []string{
				".workflows/more.yaml:2:3: task empty has no flow",
				".workflows/more.yaml:5:11: task hollow: flow has no steps",
			},
			gone: []string{"task empty", "task hollow"},
		},
		{
			name:  "steps with the same template name",
			fault: edit(hello, "      shout-it:\n", "      say_hello:\n        action: shout\n        input: { message: x }\n      shout-it:\n"),
			want:  []string{hello + `:24:7: task hello-world: steps "say-hello" and "say_hello" are both "say_hello" in templates`},
		},
		{
			name:  "reserved step name",
			fault: edit(hello, "      shout-it:\n", "      input:\n        action: shout\n        input: { message: x }\n      shout-it:\n"),
			want:  []string{hello + `:24:7: task hello-world: step name "input" is reserved`},
		},
		{
			name:  "step named like the webhook context",
			fault: edit(hello, "      shout-it:\n", "      webhook:\n        action: shout\n        input: { message: x }\n      shout-it:\n"),
			want:  []string{hello + `:24:7: task hello-world: step name "webhook" is reserved`},
		},
		{
			name:  "unsupported secret reference",
			fault: add(".workflows/secrets.yaml", "secrets:\n  db:\n    password: \"ref+vault://db/pw\"\n"),
			want:  []string{`.workflows/secrets.yaml:3:15: secret db.password: unsupported secret reference "ref+vault://db/pw"`},
		},
		{
			name:  "invalid YAML",
			fault: add(".workflows/broken.yaml", "actions:\n  a:\n    cmd: [unclosed\n"),
			want:  []string{`.workflows/broken.yaml:2:1: invalid YAML: did not find expected ',' or ']'`},
			kept:  []string{"task hello-world", "task deploy-pipeline"},
		},
		{
			name:  "a file that is not a mapping",
			fault: add(".workflows/list.yaml", "- a\n- b\n"),
			want:  []string{`.workflows/list.yaml:1:1: a workflow file must be a mapping with the keys secrets, actions, tasks, triggers, on_success, on_error, on_cancel, not a list`},
		},
		{
			name:  "two documents in a file",
			fault: add(".workflows/two.yaml", "actions:\n  a: { cmd: echo }\n---\nactions:\n  b: { cmd: echo }\n"),
			want:  []string{`.workflows/two.yaml:4:1: a workflow file holds one YAML document`},
			kept:  []string{"action a"},
			gone:  []string{"action b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyCompat(t)
			tt.fault(t, dir)
			ws, err := Load(dir)
			require.NoError(t, err)
			got := problemStrings(ws)
			require.NotEmpty(t, got)
			for _, w := range tt.want {
				want := dir + "/" + strings.ReplaceAll(w, "{dir}", dir)
				require.True(t, hasProblem(got, want), "want a problem starting %q in:\n%s", want, strings.Join(got, "\n"))
			}
			for _, g := range tt.gone {
				require.False(t, defined(ws, g), "%s must be left out", g)
			}
			for _, k := range tt.kept {
				require.True(t, defined(ws, k), "%s must be kept", k)
			}
		})
	}
}

// hasProblem reports whether a problem starts with want, a
// "file:line:col: message" prefix.
func hasProblem(got []string, want string) bool {
	for _, g := range got {
		if strings.HasPrefix(g, want) {
			return true
		}
	}
	return false
}

// defined reports whether "action x", "task y", "trigger z" is served.
func defined(ws *Workspace, what string) bool {
	kind, name, _ := strings.Cut(what, " ")
	switch kind {
	case "action":
		return ws.Actions[name] != nil
	case "task":
		return ws.Tasks[name] != nil
	case "trigger":
		return ws.Triggers[name] != nil
	}
	panic("bad kind " + kind)
}

func TestValidateCompatIsValid(t *testing.T) {
	t.Parallel()
	ws, err := Load(copyCompat(t))
	require.NoError(t, err)
	require.Empty(t, problemStrings(ws))
	require.Len(t, ws.Actions, 5)
	require.Len(t, ws.Tasks, 2)
}

// TestValidateAllProblemsAtOnce: many faults in one workspace are all
// reported in one load, in file order.
func TestValidateAllProblemsAtOnce(t *testing.T) {
	t.Parallel()
	dir := copyCompat(t)
	editFile(t, dir, hello, "action: greet", "action: gret")
	editFile(t, dir, hello, "depends_on: [say-hello]", "depends_on: [shout-it]")
	editFile(t, dir, deploy, "script: actions/deploy.sh", "script: /etc/passwd")
	editFile(t, dir, deploy, "        type: string\n        default: \"staging\"\n\n  notify", "        type: strin\n        default: \"staging\"\n\n  notify")
	ws := loaded(t, dir)
	got := problemStrings(ws)
	d, h := filepath.Join(dir, deploy), filepath.Join(dir, hello)
	require.Equal(t, []string{
		d + `:8:13: action deploy: script "/etc/passwd" must be a path relative to the workspace root, not an absolute path`,
		d + `:11:15: action deploy: input: env: type: unknown value "strin" (did you mean "string"?); want one of string, text, integer, number, boolean, bool, date, datetime, array, object`,
		d + `:34:17: task deploy-pipeline, step deploy-app: action deploy has problems and is left out, so task deploy-pipeline is left out too`,
		h + `:21:17: task hello-world, step say-hello: unknown action "gret" (did you mean "greet"?)`,
		h + `:26:21: task hello-world: dependency cycle: shout-it -> shout-it`,
		h + `:28:11: task hello-world, step shout-it: input message uses say_hello.output, but step say-hello is not upstream of this step: add it to depends_on`,
	}, got)
	require.Empty(t, ws.Tasks)
	require.Len(t, ws.Actions, 4)
}

// An action that declares no input takes the step's input as given, as
// upstream (the loops guide's first example uses input.item in such an
// action): neither the step's keys nor the action's input.x references are
// problems. One that declares inputs is still checked.
func TestActionWithoutInputTakesTheStepsInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "w.yaml"), []byte(`
actions:
  process-item:
    type: script
    script: echo "Processing {{ input.item }} at {{ input.index }}"
  typed:
    type: script
    input:
      item: { type: string }
    script: echo "{{ input.item }} {{ input.itme }}"
tasks:
  main:
    flow:
      process:
        action: process-item
        input: { item: a, index: 0 }
`), 0o644))
	ws, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(dir, ".workflows", "w.yaml") + `:6:3: action typed: script uses input.itme, which is not an input of the action (did you mean "item"?)`}, problemStrings(ws))
	require.Contains(t, ws.Tasks, "main")
}
