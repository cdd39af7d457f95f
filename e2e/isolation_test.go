package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// hostileScript is what an attacker who can edit a workflow runs on a
// worker. It writes what it finds to $INPUT_RESULTS (a folder of the test,
// read back raw: nothing there is masked) and prints the secret it was
// given in every form it can think of.
const hostileScript = `#!/bin/sh
R="$INPUT_RESULTS"
S="$API_TOKEN"

# 1. Its environment, and what the processes around it hold.
env > "$R/env.txt"
cat /proc/$PPID/environ > "$R/worker_environ.txt" 2>&1
cfg=$(tr '\0' '\n' < /proc/$PPID/cmdline | sed -n '/^--config$/{n;p;}')
echo "worker config: $cfg" > "$R/worker_config.txt"
cat "$cfg" >> "$R/worker_config.txt" 2>&1
: > "$R/server_config.txt"; : > "$R/server_environ.txt"
for p in /proc/[0-9]*; do
  if tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q "$INPUT_MARKER/server.yaml"; then
    cat "$p/environ" >> "$R/server_environ.txt" 2>&1
    cat "$INPUT_MARKER/server.yaml" >> "$R/server_config.txt" 2>&1
  fi
done
# The workspace files it was given: no .env, no workflow files, nothing
# .stroemignore names.
find . -type f | sort > "$R/files.txt"
grep -rl --exclude=hostile.sh -e dotenv- -e hook-literal -e ignored-file . > "$R/found.txt" 2>/dev/null

# 2. Every token-like thing it found, tried on the worker API.
tokens=$(cat "$R"/*.txt | tr '\0' '\n' | sed -n 's/.*worker_token["]*[:=] *["]*\([A-Za-z0-9_.-]*\).*/\1/p; s/^STROEM__WORKER_TOKEN=\(.*\)/\1/p' | sort -u)
tokens="$tokens $S guess"
victim=$(curl -s "$INPUT_SERVER/api/jobs/$INPUT_VICTIM")
wid=$(printf '%s' "$victim" | sed -n 's/.*"worker_id":"\([0-9a-f-]*\)".*/\1/p' | head -n1)
rev=$(curl -s "$INPUT_SERVER/api/workspaces/default" | sed -n 's/.*"revision":"\([0-9a-f]*\)".*/\1/p')
echo "victim worker: $wid" > "$R/victim.txt"
call() { # name token method path body
  code=$(curl -s -o /dev/null -w '%{http_code}' -X "$3" -H "Authorization: Bearer $2" -H 'Content-Type: application/json' --data "$5" "$INPUT_SERVER$4")
  echo "$1 $code" >> "$R/calls.txt"
}
call "none-register" "" POST /worker/register '{"name":"rogue","capabilities":["shell"]}'
for t in $tokens; do
  call register "$t" POST /worker/register '{"name":"rogue","capabilities":["shell"]}'
  call heartbeat "$t" POST /worker/heartbeat "{\"worker_id\":\"$wid\",\"running\":[]}"
  call claim "$t" POST /worker/jobs/claim "{\"worker_id\":\"$wid\",\"capabilities\":[\"shell\"],\"wait_ms\":0}"
  call start "$t" POST "/worker/jobs/$INPUT_VICTIM/steps/hold/start" "{\"worker_id\":\"$wid\",\"attempt\":1}"
  call logs "$t" POST "/worker/jobs/$INPUT_VICTIM/steps/hold/logs" "{\"worker_id\":\"$wid\",\"attempt\":1,\"offset\":0,\"lines\":[{\"text\":\"forged\"}]}"
  call complete "$t" POST "/worker/jobs/$INPUT_VICTIM/steps/hold/complete" "{\"worker_id\":\"$wid\",\"attempt\":1,\"exit_code\":0,\"output\":{\"forged\":true}}"
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$INPUT_SERVER/worker/workspaces/default/$rev.tar.gz")
  echo "archive $code" >> "$R/calls.txt"
done

# 3. The secret in every form.
urlenc() {
  printf '%s' "$1" | od -An -v -tx1 | tr -s ' \n' '\n\n' | grep . | while read -r h; do
    c=$(printf "\\$(printf %o "0x$h")")
    case "$c" in [A-Za-z0-9._~-]) printf '%s' "$c" ;; *) printf '%%%s' "$(echo "$h" | tr a-f A-F)" ;; esac
  done
}
echo "raw: $S"
echo "b64: $(printf '%s' "$S" | base64 | tr -d '\n')"
echo "b64url: $(printf '%s' "$S" | base64 | tr -d '\n' | tr '+/' '-_')"
echo "b64 of a line: $(echo "token=$S" | base64 | tr -d '\n')"
echo "hex: $(printf '%s' "$S" | od -An -v -tx1 | tr -d ' \n')"
echo "url: $(urlenc "$S")"
echo "upper: $(printf '%s' "$S" | tr a-z A-Z)"
head -c $((65536 - 9)) /dev/zero | tr '\0' x; printf '%s\n' "$S"
echo "OUTPUT: {\"leaked\": \"$S\"}"
echo "failing with $S" >&2
exit 1
`

const isolationWorkflow = `
secrets:
  api_token: "ref+env://E2E_API_TOKEN"
  other_token: "ref+env://E2E_OTHER_TOKEN"
actions:
  hostile:
    type: shell
    script: actions/hostile.sh
    env:
      API_TOKEN: "{{ secret.api_token }}"
    input:
      results: { type: string }
      server: { type: string }
      victim: { type: string }
      marker: { type: string }
  hold:
    type: shell
    cmd: 'while [ ! -e "$INPUT_GATE" ]; do sleep 0.1; done; echo "OUTPUT: {\"ok\": true}"'
    env:
      OTHER: "{{ secret.other_token }}"
    input:
      gate: { type: string }
  emit:
    type: shell
    cmd: 'echo "OUTPUT: {\"leaked\": \"$TOKEN\"}"'
    env:
      TOKEN: "{{ secret.api_token }}"
  consume:
    type: shell
    cmd: 'echo "got $INPUT_VALUE"; echo "OUTPUT: {\"passed\": \"$INPUT_VALUE\"}"'
    input:
      value: { type: string }
tasks:
  attack:
    input:
      results: { type: string, required: true }
      server: { type: string, required: true }
      victim: { type: string, required: true }
      marker: { type: string, required: true }
      count: { type: integer }
    flow:
      hostile:
        action: hostile
        input:
          results: "{{ input.results }}"
          server: "{{ input.server }}"
          victim: "{{ input.victim }}"
          marker: "{{ input.marker }}"
  victim:
    input:
      gate: { type: string, required: true }
    flow:
      hold:
        action: hold
        input: { gate: "{{ input.gate }}" }
  leak:
    flow:
      emit: { action: emit }
      consume:
        action: consume
        depends_on: [emit]
        input: { value: "{{ emit.output.leaked }}" }
triggers:
  leak-hook:
    type: webhook
    task: leak
    secret: "hook-literal-%s"
    mode: sync
    timeout_secs: 60
`

// A step is untrusted code. This one looks for the worker's credentials
// and the server's configuration, calls the worker API with whatever it
// finds, and prints its secret in every encoding; another job's output
// carries the secret to the next step and a sync webhook's reply. No stored
// or served byte may hold the secret or a worker credential, and every
// forged worker call must be refused.
func TestHostileStepLeaksNothing(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the hostile step needs curl")
	}
	secret := "e2e-Secret/" + randomHex(6) + "+x&y=z<q>"
	other := "other-" + randomHex(12)
	dotenv := "dotenv-" + randomHex(8)
	hookSecret := randomHex(8)
	ws := workspaceDir(t, fmt.Sprintf(isolationWorkflow, hookSecret))
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "actions"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "actions", "hostile.sh"), []byte(hostileScript), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, ".env"), []byte("DB_PASSWORD="+dotenv+"\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "private"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "private", "key.txt"), []byte("ignored-file\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ws, ".stroemignore"), []byte("private/\n"), 0o644))

	// The least-privilege deployment of docs/security.md: the worker token
	// only in the processes' environment (never in a file a step can read)
	// and, when the test can arrange it (it runs as root, which no
	// isolation between uids survives), the worker under a user of its
	// own, apart from the server's.
	opts := stackOpts{
		workspace: ws, tokenInEnv: true,
		serverEnv: []string{"E2E_API_TOKEN=" + secret, "E2E_OTHER_TOKEN=" + other},
	}
	if os.Getuid() == 0 {
		opts.workerUser = &syscall.Credential{Uid: 65534, Gid: 65534} // nobody
	}
	s := startStack(t, opts)
	results := t.TempDir()
	gate := filepath.Join(t.TempDir(), "gate")
	// The steps (the worker's user) write results and look for the gate.
	for _, d := range []string{results, filepath.Dir(results), filepath.Dir(gate), filepath.Dir(filepath.Dir(gate))} {
		require.NoError(t, os.Chmod(d, 0o777))
	}

	// A victim step runs on the worker, holding a lease the attacker
	// would like to complete with forged output.
	victim := s.execute("victim", map[string]any{"gate": gate})
	s.waitStep(victim, "hold", stroem.StepRunning)
	attack := s.execute("attack", map[string]any{
		"results": results, "server": s.url, "victim": victim, "marker": s.dir,
	})
	aj := s.waitJob(attack)
	require.Equal(t, stroem.JobFailed, aj.Status)

	// The victim is untouched: it completes with its own output.
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	vj := s.waitJob(victim)
	require.Equal(t, stroem.JobCompleted, vj.Status)
	require.Equal(t, map[string]any{"ok": true}, vj.Steps[0].Output)
	require.NotContains(t, s.logs(victim), "forged")

	// The output path: a step's output, the next step's input, the job's
	// output and a sync webhook's reply.
	code, reply := s.post("/hooks/leak-hook", "hook-literal-"+hookSecret, "")
	require.Equal(t, http.StatusOK, code, reply)
	var hook struct {
		JobID  string         `json:"job_id"`
		Status string         `json:"status"`
		Output map[string]any `json:"output"`
	}
	require.NoError(t, json.Unmarshal([]byte(reply), &hook))
	require.Equal(t, "completed", hook.Status, reply)
	require.Equal(t, map[string]any{"consume": map[string]any{"passed": "***"}}, hook.Output)

	// An input-validation error never quotes a secret.
	code, invalid := s.do("POST", "/api/workspaces/default/tasks/attack/execute", map[string]any{"input": map[string]any{
		"results": results, "server": s.url, "victim": victim, "marker": s.dir, "count": secret,
	}})
	require.Equal(t, http.StatusBadRequest, code, string(invalid))
	require.Contains(t, string(invalid), "***")

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(results, name))
		require.NoError(t, err, name)
		return string(b)
	}
	// The step got its own secret, and nothing else: not the other
	// action's secret, not the worker's token or configuration.
	env := read("env.txt")
	require.Contains(t, env, "API_TOKEN="+secret+"\n")
	for _, bad := range []string{other, s.token, "STROEM__", "STROEM_CONFIG", "E2E_API_TOKEN", dotenv} {
		require.NotContains(t, env, bad)
	}
	require.Empty(t, strings.TrimSpace(read("found.txt")), "the archive shipped .env, a workflow file or an ignored file")
	require.NotContains(t, read("files.txt"), ".workflows")
	require.Contains(t, read("files.txt"), "./actions/hostile.sh")
	for _, f := range []string{"worker_environ.txt", "worker_config.txt", "server_environ.txt", "server_config.txt"} {
		require.NotContains(t, read(f), s.token, "%s: the worker token was readable", f)
		require.NotContains(t, read(f), other, f)
	}
	require.NotNil(t, vj.Steps[0].WorkerID)
	require.Contains(t, read("victim.txt"), "victim worker: "+*vj.Steps[0].WorkerID, "the attacker used the victim's worker id")

	// Every forged worker call was refused.
	calls := strings.Split(strings.TrimSpace(read("calls.txt")), "\n")
	seen := map[string]bool{}
	for _, c := range calls {
		name, status, _ := strings.Cut(c, " ")
		seen[name] = true
		require.Equal(t, "401", status, "forged call %q was not refused", c)
	}
	for _, name := range []string{"register", "heartbeat", "claim", "start", "logs", "complete", "archive"} {
		require.True(t, seen[name], "the step never tried %s: %v", name, calls)
	}

	// What the server stores and serves, what both processes logged.
	var blobs []string
	for _, id := range []string{attack, victim, hook.JobID} {
		_, b := s.do("GET", "/api/jobs/"+id, nil)
		blobs = append(blobs, string(b))
		_, b = s.do("GET", "/api/jobs/"+id+"/logs", nil)
		blobs = append(blobs, string(b))
		lines := s.logLinesRaw(id)
		blobs = append(blobs, lines)
	}
	for _, p := range []string{"/api/jobs", "/api/workers", "/api/workspaces/default"} {
		_, b := s.do("GET", p, nil)
		blobs = append(blobs, string(b))
	}
	blobs = append(blobs, reply, string(invalid), s.server.out.String())
	for _, w := range s.workers {
		blobs = append(blobs, w.out.String())
	}
	blobs = append(blobs, dumpTables(t, s.dbURL)...)
	_ = filepath.WalkDir(filepath.Join(s.dir, "logs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, rerr := os.ReadFile(p)
			require.NoError(t, rerr)
			blobs = append(blobs, string(b))
		}
		return nil
	})

	forms := secretForms(secret)
	forms = append(forms, secretForms(other)...)
	forms = append(forms, s.token, strings.ToUpper(s.token))
	all := strings.Join(blobs, "\n")
	for _, f := range forms {
		require.NotContains(t, all, f, "a stored or served byte holds a secret")
	}
	// The secret the step printed reached the logs masked, in every form.
	logs := s.logs(attack)
	for _, want := range []string{"raw: ***", "b64: ***", "b64url: ***", "hex: ***", "url: ***", "upper: ***", "OUTPUT: {\"leaked\": \"***\"}", "failing with ***"} {
		require.Contains(t, logs, want)
	}
	require.Contains(t, aj.Steps[0].ErrorMessage, "failing with ***")
}

// secretForms are the forms a secret must never be found in.
func secretForms(s string) []string {
	j, _ := json.Marshal(s)
	return []string{
		s, strings.ToUpper(s), string(j[1 : len(j)-1]),
		base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)),
		hex.EncodeToString([]byte(s)), strings.ToUpper(hex.EncodeToString([]byte(s))),
		url.QueryEscape(s), url.PathEscape(s),
	}
}

// logLinesRaw returns the job's stored lines as one text with the lines
// joined without a separator, so a secret cut in two lines shows whole.
func (s *stack) logLinesRaw(id string) string {
	s.t.Helper()
	code, body := s.do("GET", "/api/jobs/"+id+"/logs?format=jsonl", nil)
	require.Equal(s.t, http.StatusOK, code, string(body))
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if line == "" {
			continue
		}
		var l stroem.LogLine
		require.NoError(s.t, json.Unmarshal([]byte(line), &l))
		b.WriteString(l.Text)
	}
	return b.String() + "\n" + string(body)
}

// dumpTables returns every row of every table of the database as text.
func dumpTables(t *testing.T, dbURL string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Contains(t, tables, "job_steps")
	var out []string
	for _, tb := range tables {
		rows, err := conn.Query(ctx, "SELECT t::text FROM "+pgx.Identifier{tb}.Sanitize()+" t")
		require.NoError(t, err)
		texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err, tb)
		out = append(out, texts...)
	}
	return out
}
