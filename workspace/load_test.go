package workspace

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const compatDir = "testdata/compat"

// copyCompat copies the compatibility workspace into a fresh folder and
// returns its path.
func copyCompat(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(compatDir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(compatDir, p)
		require.NoError(t, err)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		require.NoError(t, err)
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	require.NoError(t, err)
	return dst
}

// loaded is the workspace of dir, which must load (problems or not).
func loaded(t *testing.T, dir string) *Workspace {
	t.Helper()
	ws, err := Load(dir)
	require.NoError(t, err)
	return ws
}

// writeFile writes content to dir/rel, creating folders.
func writeFile(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

// editFile replaces old (which must occur exactly once) by new in dir/rel.
func editFile(t *testing.T, dir, rel, old, new string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(data), old), "%q must occur once in %s", old, rel)
	require.NoError(t, os.WriteFile(p, []byte(strings.Replace(string(data), old, new, 1)), 0o644))
}

// problemStrings formats problems as "file:line:col: message".
func problemStrings(ws *Workspace) []string {
	out := make([]string, len(ws.Problems))
	for i, p := range ws.Problems {
		out[i] = p.String()
	}
	return out
}

func TestLoadCompat(t *testing.T) {
	t.Parallel()
	ws, err := Load(compatDir)
	require.NoError(t, err)
	require.Empty(t, ws.Problems)
	require.Equal(t, "compat", ws.Name)
	abs, err := filepath.Abs(compatDir)
	require.NoError(t, err)
	require.Equal(t, abs, ws.Root)
	require.Len(t, ws.Revision, 64)

	require.Equal(t, []string{"check-status", "deploy", "greet", "notify", "shout"}, loadSortedKeys(ws.Actions))
	require.Equal(t, []string{"deploy-pipeline", "hello-world"}, loadSortedKeys(ws.Tasks))
	require.Empty(t, ws.Triggers)
	require.NotNil(t, ws.Secrets)

	greet := ws.Actions["greet"]
	require.Equal(t, ActionShell, greet.Type)
	require.Contains(t, greet.Cmd, "echo Hello {{ input.name }}")
	require.Equal(t, Pos{File: filepath.Join(compatDir, ".workflows", "hello.yaml"), Line: 2, Col: 3}, greet.Pos)
	require.Len(t, greet.Input, 1)
	require.Equal(t, &Field{Name: "name", Type: TypeString, Required: true, Pos: Pos{File: greet.Pos.File, Line: 6, Col: 7}}, greet.Input[0])

	deploy := ws.Actions["deploy"]
	require.Equal(t, "actions/deploy.sh", deploy.Script)
	require.Equal(t, "staging", deploy.Input.Lookup("env").Default)
	require.True(t, deploy.Input.Lookup("env").HasDefault)

	// An action without input: declares none (nil schema).
	require.Nil(t, ws.Actions["check-status"].Input)

	hw := ws.Tasks["hello-world"]
	require.Equal(t, ModeDistributed, hw.Mode)
	require.Equal(t, []string{"say-hello", "shout-it"}, hw.Order)
	require.Equal(t, "greet", hw.Flow["say-hello"].Action)
	require.Equal(t, map[string]any{"name": "{{ input.name }}"}, hw.Flow["say-hello"].Input)
	require.Equal(t, []string{"say-hello"}, hw.Flow["shout-it"].DependsOn)
	require.Equal(t, "World", hw.Input.Lookup("name").Default)

	dp := ws.Tasks["deploy-pipeline"]
	require.Equal(t, []string{"health-check", "deploy-app", "send-notification"}, dp.Order)
	require.Equal(t, map[string]any{"env": "{{ input.env }}", "status": "success"}, dp.Flow["send-notification"].Input)

	// The same files give the same revision.
	again, err := Load(compatDir)
	require.NoError(t, err)
	require.Equal(t, ws.Revision, again.Revision)

	// The workspace is JSON (job snapshots, the API).
	_, err = json.Marshal(ws)
	require.NoError(t, err)
}

func TestLoadSingleFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(compatDir, ".workflows", "hello.yaml")
	ws, err := Load(path)
	require.NoError(t, err)
	require.Empty(t, ws.Problems)
	require.Equal(t, "hello", ws.Name)
	abs, err := filepath.Abs(filepath.Dir(path))
	require.NoError(t, err)
	require.Equal(t, abs, ws.Root)
	require.Len(t, ws.Actions, 2)
	require.Len(t, ws.Tasks, 1)
	require.Equal(t, path, ws.Actions["greet"].Pos.File)
}

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	tests := []struct {
		name string
		path string
		want string
	}{
		{"no path", "", "no path given"},
		{"missing path", filepath.Join(empty, "nope"), "no such file or directory"},
		{"folder without .workflows", empty, "has no .workflows folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ws, err := Load(tt.path)
			require.Nil(t, ws)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestLoadEmptyWorkflows(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, ".workflows/empty.yaml", "# nothing yet\n")
	writeFile(t, dir, ".workflows/notes.txt", "not a workflow: ignored")
	ws := loaded(t, dir)
	require.Empty(t, ws.Problems)
	require.Empty(t, ws.Actions)
	require.Empty(t, ws.Tasks)
	require.Empty(t, ws.Triggers)
}

// TestLoadSpecExample loads every field SPEC §2 describes, including those
// later phases act on, and the defaults the loader applies.
func TestLoadSpecExample(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "actions/greet.sh", "#!/bin/sh\necho hi\n")
	writeFile(t, dir, ".workflows/spec.yml", `
secrets:
  db_password: "ref+env://DB_PASSWORD"
  db: { host: db.internal, password: "ref+file:///run/secrets/db", ports: [5432, 5433] }
actions:
  greet:
    type: shell
    cmd: "echo Hello {{ input.name }}"
    env:
      GREETING: "Hello"
      PORT: 8080
    input:
      name: { type: string, required: true, description: "who to greet" }
      count: { type: integer, default: 2, enum: [1, 2, 3] }
      ratio: { type: number, default: 0.5 }
      loud: { type: boolean, default: false }
      tags: { type: array, default: [a, b] }
      extra: { type: object, default: { k: v } }
      plain: {}
    output:
      properties:
        greeting: { type: string }
    timeout: 30s
    retry: { max_attempts: 5, backoff: 2s, backoff_strategy: exponential, max_backoff: 1m, jitter: true }
  scripted:
    type: script
    script: actions/greet.sh --name {{ input.name | shell_quote }}
    input:
      name: { type: string, default: x }
    output: { type: object, properties: { status: { type: string } }, required: [status] }
    retry: 4
  boxed:
    type: docker
    image: alpine:3.20
  podded:
    type: pod
    image: alpine:3.20
    cmd: echo
    retry: { jitter: 0.5 }
  flat-output:
    cmd: echo
    output:
      properties: { type: object }
tasks:
  hello-world:
    mode: local
    description: "Say hello"
    input:
      name: { type: string, default: "World" }
    flow:
      say-hello:
        action: greet
        input:
          name: "{{ input.name }}"
          count: 3
          tags: ["{{ input.name }}", b]
        timeout: 5m
        retry: { max_attempts: 2 }
      shout-it:
        action: scripted
        depends_on: say-hello
        continue_on_failure: true
  defaults:
    flow:
      only: { action: boxed }
triggers:
  every-minute:
    type: scheduler
    cron: "0 * * * * *"
    task: hello-world
    input: { name: "Cron" }
    enabled: false
    timezone: Europe/Oslo
    concurrency: skip
  five-fields:
    type: scheduler
    cron: "*/5 * * * *"
    task: defaults
  nightly:
    type: scheduler
    cron: "@daily"
    task: defaults
  hook.one:
    type: webhook
    task: hello-world
    secret: "ref+env://HOOK_SECRET"
    mode: sync
  hook-async:
    type: webhook
    task: defaults
    timeout_secs: 10
`)
	ws := loaded(t, dir)
	require.Empty(t, problemStrings(ws))

	g := ws.Actions["greet"]
	require.Equal(t, map[string]string{"GREETING": "Hello", "PORT": "8080"}, g.Env)
	require.Equal(t, stroem.Duration(30*time.Second), g.Timeout)
	require.Equal(t, &RetryPolicy{MaxAttempts: 5, Backoff: stroem.Duration(2 * time.Second), BackoffStrategy: BackoffExponential, MaxBackoff: stroem.Duration(time.Minute), Jitter: 0.25}, g.Retry)
	require.Equal(t, []string{"name", "count", "ratio", "loud", "tags", "extra", "plain"}, schemaNames(g.Input))
	require.Equal(t, "who to greet", g.Input.Lookup("name").Description)
	require.Equal(t, int64(2), g.Input.Lookup("count").Default)
	require.Equal(t, []any{int64(1), int64(2), int64(3)}, g.Input.Lookup("count").Enum)
	require.Equal(t, 0.5, g.Input.Lookup("ratio").Default)
	require.Equal(t, false, g.Input.Lookup("loud").Default)
	require.True(t, g.Input.Lookup("loud").HasDefault)
	require.Equal(t, []any{"a", "b"}, g.Input.Lookup("tags").Default)
	require.Equal(t, map[string]any{"k": "v"}, g.Input.Lookup("extra").Default)
	require.Equal(t, TypeString, g.Input.Lookup("plain").Type, "a field without a type is a string")
	require.Len(t, g.Output, 1)
	require.Equal(t, "greeting", g.Output[0].Name)

	s := ws.Actions["scripted"]
	require.Equal(t, ActionShell, s.Type, "script is an alias of shell")
	path, args := SplitScript(s.Script)
	require.Equal(t, "actions/greet.sh", path)
	require.Equal(t, "--name {{ input.name | shell_quote }}", args)
	require.Equal(t, &RetryPolicy{MaxAttempts: 4, Backoff: stroem.Duration(DefaultBackoff), BackoffStrategy: BackoffFixed}, s.Retry)
	require.Len(t, s.Output, 1)
	require.True(t, s.Output.Lookup("status").Required)

	require.Equal(t, ActionDocker, ws.Actions["boxed"].Type)
	require.Equal(t, "alpine:3.20", ws.Actions["boxed"].Image)
	require.Equal(t, ActionPod, ws.Actions["podded"].Type)
	require.Equal(t, &RetryPolicy{MaxAttempts: DefaultMaxAttempts, Backoff: stroem.Duration(DefaultBackoff), BackoffStrategy: BackoffFixed, Jitter: 0.5}, ws.Actions["podded"].Retry)
	// A field called "properties" is not the properties form.
	require.Equal(t, "properties", ws.Actions["flat-output"].Output[0].Name)
	require.Equal(t, TypeObject, ws.Actions["flat-output"].Output[0].Type)

	hw := ws.Tasks["hello-world"]
	require.Equal(t, ModeLocal, hw.Mode)
	require.Equal(t, "Say hello", hw.Description)
	sh := hw.Flow["say-hello"]
	require.Equal(t, map[string]any{"name": "{{ input.name }}", "count": 3, "tags": []any{"{{ input.name }}", "b"}}, sh.Input)
	require.Equal(t, stroem.Duration(5*time.Minute), sh.Timeout)
	require.Equal(t, 2, sh.Retry.MaxAttempts)
	require.Equal(t, []string{"say-hello"}, hw.Flow["shout-it"].DependsOn, "a single name is a list of one")
	require.True(t, hw.Flow["shout-it"].ContinueOnFailure)
	require.Equal(t, ModeDistributed, ws.Tasks["defaults"].Mode)

	em := ws.Triggers["every-minute"]
	require.Equal(t, &Trigger{Name: "every-minute", Type: TriggerScheduler, Task: "hello-world", Input: map[string]any{"name": "Cron"},
		Enabled: false, Cron: "0 * * * * *", Timezone: "Europe/Oslo", Concurrency: ConcurrencySkip, Pos: em.Pos}, em)
	ff := ws.Triggers["five-fields"]
	require.True(t, ff.Enabled)
	require.Equal(t, "UTC", ff.Timezone)
	require.Equal(t, ConcurrencyAllow, ff.Concurrency)
	require.Equal(t, "@daily", ws.Triggers["nightly"].Cron)
	h := ws.Triggers["hook.one"]
	require.Equal(t, &Trigger{Name: "hook.one", Path: "hook.one", Type: TriggerWebhook, Task: "hello-world", Enabled: true, Secret: "ref+env://HOOK_SECRET",
		Mode: WebhookSync, TimeoutSecs: DefaultWebhookTimeoutSecs, Pos: h.Pos}, h)
	require.Equal(t, WebhookAsync, ws.Triggers["hook-async"].Mode)
	require.Equal(t, 10, ws.Triggers["hook-async"].TimeoutSecs)

	require.Equal(t, "ref+env://DB_PASSWORD", ws.Secrets["db_password"])
	require.Equal(t, map[string]any{"host": "db.internal", "password": "ref+file:///run/secrets/db", "ports": []any{5432, 5433}}, ws.Secrets["db"])

	sched, err := CronSchedule(em.Cron, time.UTC)
	require.NoError(t, err)
	next := sched.Next(time.Date(2026, 1, 1, 10, 0, 30, 0, time.UTC))
	require.Equal(t, time.Date(2026, 1, 1, 10, 1, 0, 0, time.UTC), next)
}

// TestLoadAnchors checks YAML anchors, aliases and merge keys.
func TestLoadAnchors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, ".workflows/a.yaml", `
actions:
  base: &base
    cmd: "echo {{ input.x }}"
    input: { x: { type: string, default: a } }
    timeout: 10s
  derived:
    <<: *base
    timeout: 20s
tasks:
  t:
    flow:
      one: { action: base, input: &in { x: hi } }
      two: { action: derived, input: *in, depends_on: [one] }
`)
	ws := loaded(t, dir)
	require.Empty(t, problemStrings(ws))
	require.Equal(t, ws.Actions["base"].Cmd, ws.Actions["derived"].Cmd)
	require.Equal(t, stroem.Duration(20*time.Second), ws.Actions["derived"].Timeout, "explicit keys win over merged ones")
	require.Equal(t, map[string]any{"x": "hi"}, ws.Tasks["t"].Flow["two"].Input)
}

// TestLoadNeverHangs: aliases that contain themselves or expand
// exponentially are problems, not hangs or crashes.
// hangBound tells a hang from a slow load. It is no speed target: the
// long-names case takes about 5 s under -race on a busy 2-core machine, and
// took over 20 s beside a parallel test run.
const hangBound = 2 * time.Minute

func TestLoadNeverHangs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"self-containing alias", "secrets:\n  a: &a [1, *a]\n", "an alias refers to a value that contains it"},
		{"self-merging mapping", "actions:\n  a: &a\n    <<: *a\n    cmd: echo\n", "an alias refers to a value that contains it"},
		{"billion laughs", `secrets:
  a: &a [x, x, x, x, x, x, x, x, x, x]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
`, "expands too many aliases"},
		{"infinite number", "secrets:\n  a: .inf\n", "is not a finite number"},
		{"long names", "actions:\n  ? " + strings.Repeat("a", 1<<20) + "\n  : { cmd: echo }\n  ? " + strings.Repeat("b", 1<<20) + "\n  : { cmd: echo }\n" +
			"tasks:\n  t:\n    flow:\n      s: { action: " + strings.Repeat("c", 1<<20) + " }\n", "unknown action"},
		{"too many fields", "actions:\n  a:\n    cmd: echo\n    input:\n" + manyFields(MaxSchemaFields+1), "at most 1000 are allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, dir, "w.yaml", tt.yaml)
			done := make(chan *Workspace)
			go func() {
				ws, err := Load(filepath.Join(dir, "w.yaml"))
				require.NoError(t, err)
				done <- ws
			}()
			select {
			case ws := <-done:
				require.NotEmpty(t, ws.Problems)
				require.Contains(t, strings.Join(problemStrings(ws), "\n"), tt.want)
				_, err := json.Marshal(ws)
				require.NoError(t, err)
			case <-time.After(hangBound):
				t.Fatalf("Load did not return within %s", hangBound)
			}
		})
	}
}

func TestLoadProblemsSortedAcrossFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, ".workflows/b.yaml", "actions:\n  x:\n    cmnd: echo\n")
	writeFile(t, dir, ".workflows/a.yml", "tasks:\n  t:\n    flow:\n      s: { action: nope }\nfoo: 1\n")
	ws := loaded(t, dir)
	got := problemStrings(ws)
	a := filepath.Join(dir, ".workflows", "a.yml")
	b := filepath.Join(dir, ".workflows", "b.yaml")
	require.Equal(t, []string{
		a + `:4:20: task t, step s: unknown action "nope"`,
		a + `:5:1: workflow file: unknown key "foo"`,
		b + `:2:3: action x needs script (inline code) or source (a file of the workspace)`,
		b + `:3:5: action x: unknown key "cmnd" (did you mean "cmd"?)`,
	}, got)
}

// TestLoadRelativeDisplayPath: problems name files by the path the user
// gave, joined with the relative file name.
func TestLoadRelativeDisplayPath(t *testing.T) {
	t.Parallel()
	dir := copyCompat(t)
	editFile(t, dir, ".workflows/hello.yaml", "action: greet", "action: gret")
	rel, err := filepath.Rel(mustGetwd(t), dir)
	require.NoError(t, err)
	ws, err := Load(rel)
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(rel, ".workflows", "hello.yaml") + `:21:17: task hello-world, step say-hello: unknown action "gret" (did you mean "greet"?)`}, problemStrings(ws))
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	return wd
}

func manyFields(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      f%d: {}\n", i)
	}
	return b.String()
}
