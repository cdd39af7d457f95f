package e2e

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// A connection name given to a connection-typed input of an action — in
// the step's input, or as the field's default — is resolved when the step
// becomes ready, as the upstream's connections guide says ("Action-level").
// A cross-workspace action resolves it among its owner's connections, with
// the owner's secrets: the cross-workspace guide's "after" example, where
// the caller has no ClickHouse connection, type or secret of its own. The
// secret property is masked in the log and the job; an unknown name fails
// the step naming the connections that fit.
func TestUpstreamActionConnections(t *testing.T) {
	t.Parallel()
	owner := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(owner, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(owner, ".workflows", "jobs.yaml"), []byte(`
connection_types:
  clickhouse:
    host: { type: string, required: true }
    port: { type: integer, default: 9000 }
    password: { type: string, required: true, secret: true }
connections:
  clickhouse-prod:
    type: clickhouse
    host: ch.jobs.internal
    password: "{{ 'ref+env://E2E_CH_PASSWORD' | vals }}"
actions:
  recalc-agg-sessions:
    type: script
    input:
      clickhouse: { type: clickhouse, default: clickhouse-prod }
      dataset: { type: string }
      date: { type: string }
    script: |
      echo "recalc {{ input.dataset }} {{ input.date }} on {{ input.clickhouse.host }}:{{ input.clickhouse.port }} pw {{ input.clickhouse.password }}"
`), 0o644))
	caller := workspaceDir(t, `
connection_types:
  postgres:
    host: { type: string, required: true }
    password: { type: string, secret: true }
connections:
  prod_db:
    type: postgres
    host: db.example.com
    password: "{{ 'ref+env://E2E_PG_PASSWORD' | vals }}"
actions:
  score-all:
    type: script
    script: |
      echo 'OUTPUT: {"dataset": "sessions", "periods": [{"date": "2026-01-01"}, {"date": "2026-01-02"}]}'
  migrate:
    type: script
    input:
      db: { type: postgres }
    script: 'echo "migrate on {{ input.db.host }} pw {{ input.db.password }}"'
tasks:
  daily:
    input:
      day: { type: date, required: false }
    flow:
      run:
        action: score-all
      recalc:
        depends_on: [run]
        action: jobs.recalc-agg-sessions
        for_each: "{{ run.output.periods | json_encode() }}"
        input:
          clickhouse: "clickhouse-prod"
          dataset: "{{ run.output.dataset }}"
          date: "{{ each.item.date }}"
  by-default:
    flow:
      recalc:
        action: jobs.recalc-agg-sessions
        input: { dataset: d, date: x }
  local:
    flow:
      m:
        action: migrate
        input: { db: prod_db }
  unknown:
    flow:
      m:
        action: migrate
        input: { db: nope }
`)
	s := startStack(t, stackOpts{
		workspace:      caller,
		moreWorkspaces: map[string]string{"jobs": owner},
		serverEnv:      []string{"E2E_CH_PASSWORD=ch-Pw-77x-secret", "E2E_PG_PASSWORD=pg-Pw-81q-secret"},
	})
	runs := map[string][]string{
		"daily":      {"recalc sessions 2026-01-01 on ch.jobs.internal:9000 pw ***", "recalc sessions 2026-01-02 on ch.jobs.internal:9000 pw ***"},
		"by-default": {"recalc d x on ch.jobs.internal:9000 pw ***"},
		"local":      {"migrate on db.example.com pw ***"},
	}
	jobs, logs := s.runCompleted(runs)
	for task, j := range jobs {
		code, body := s.do("GET", "/api/jobs/"+j.ID, nil)
		require.Equal(t, 200, code)
		require.NotContains(t, string(body), "ch-Pw-77x-secret", task)
		require.NotContains(t, string(body), "pg-Pw-81q-secret", task)
		require.NotContains(t, logs[task], "ch-Pw-77x-secret", task)
	}
	j := s.waitJob(s.execute("unknown", nil))
	require.Equal(t, stroem.JobFailed, j.Status, describeJob(j))
	require.Contains(t, stepOf(t, j, "m").ErrorMessage, `input "db": no connection "nope" of type postgres (have: prod_db)`)
}

// The CI pipeline example's manual run passes a webhook's body by hand
// ({"body": {"ref": "refs/heads/main"}}) to a task that declares
// body: { type: string }, and reads input.body.ref: a field named like a
// webhook request key (body, headers, method, query) takes its value as
// given in any job, as in a webhook's. Its steps here are the example's
// notify step, without the Docker ones.
func TestUpstreamCIPipelineManualRun(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, `
actions:
  notify-ci:
    type: script
    script: |
      echo "CI result: {{ input.status }} for {{ input.ref }}"
    input:
      status: { type: string }
      ref: { type: string }
tasks:
  ci-pipeline:
    mode: distributed
    input:
      body: { type: string }
    flow:
      notify:
        action: notify-ci
        continue_on_failure: true
        input:
          status: "success"
          ref: "{{ input.body.ref }}"
`)})
	j := s.waitJob(s.execute("ci-pipeline", map[string]any{"body": map[string]any{"ref": "refs/heads/main"}}))
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	require.Contains(t, s.logs(j.ID), "CI result: success for refs/heads/main")
	require.Equal(t, map[string]any{"ref": "refs/heads/main"}, j.Input["body"])
	// A declared field of another name is still checked.
	code, body := s.do("POST", "/api/workspaces/default/tasks/ci-pipeline/execute", map[string]any{"input": map[string]any{"body": "x", "extra": 1}})
	require.Equal(t, 400, code, string(body))
	require.Contains(t, string(body), `input \"extra\": unknown field`)
}

// The artifacts guide's hook: hook.artifacts lists the job's artifacts
// ({name, content_type, size_bytes, url, step_name, created_at}, url the
// path of the download route), and its Slack example renders over it.
func TestUpstreamHookArtifacts(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, `
actions:
  build:
    type: script
    script: |
      mkdir -p "$ARTIFACTS_DIR/reports"
      printf '<h1>q1</h1>' > "$ARTIFACTS_DIR/reports/q1.html"
      printf 'hello' > "$ARTIFACTS_DIR/notes.txt"
      printf 'x' > "$ARTIFACTS_DIR/q2 #final.txt"
  slack-notify:
    type: script
    input:
      text: { type: string }
    script: |
      cat <<'EOF'
      {{ input.text }}
      EOF
tasks:
  nightly-report:
    flow:
      build:
        action: build
    on_success:
      - action: slack-notify
        input:
          text: |
            Job done. Outputs:
            {% for a in hook.artifacts %}- <{{ a.url }}|{{ a.name }}> ({{ a.size_bytes }} B) {{ a.content_type }} from {{ a.step_name }}\n{% endfor %}
`)})
	id := s.execute("nightly-report", nil)
	j := s.waitJob(id)
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	h := s.waitHook(id, "on_success")
	require.Equal(t, stroem.JobCompleted, h.Status, describeJob(h))
	hookID := h.ID
	logs := s.logs(hookID)
	require.Contains(t, logs, "- </api/jobs/"+id+"/artifacts/notes.txt|notes.txt> (5 B) text/plain")
	require.Contains(t, logs, "from build")
	require.Contains(t, logs, "- </api/jobs/"+id+"/artifacts/reports/q1.html|reports/q1.html> (11 B) text/html")
	// A name's spaces and # are escaped in its url, as the API's list does.
	require.Contains(t, logs, "- </api/jobs/"+id+"/artifacts/q2%20%23final.txt|q2 #final.txt> (1 B)")
	var list []struct{ URL string }
	require.Equal(t, 200, s.getJSON("/api/jobs/"+id+"/artifacts", &list))
	for _, a := range list {
		require.Contains(t, logs, "<"+a.URL+"|", "the hook's url is the API's")
	}
}
