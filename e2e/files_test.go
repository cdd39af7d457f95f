package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/blob"
)

// A step's artifacts are listed and downloaded byte-identical (API and
// CLI); state a step writes (files and STATE: lines) is what the next run
// reads; a failed step's artifacts are not listed; names cannot escape.
func TestStateAndArtifacts(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, `
actions:
  produce:
    type: script
    script: |
      mkdir -p "$ARTIFACTS_DIR/reports"
      head -c 2500000 /dev/urandom > "$ARTIFACTS_DIR/reports/blob.bin"
      printf 'hello artifact\n' > "$ARTIFACTS_DIR/note.txt"
      echo "SHA $(sha256sum "$ARTIFACTS_DIR/reports/blob.bin" | cut -d' ' -f1)"
  counter:
    type: script
    script: |
      PREV=$(cat "$STATE_DIR/count.txt" 2>/dev/null || echo 0)
      echo "PREV_FILE $PREV"
      echo "PREV_TEMPLATE {{ state.count | default(value='none') }}"
      echo "GLOBAL_TEMPLATE {{ global_state.seen | default(value='none') }}"
      echo $((PREV + 1)) > "$STATE_OUT_DIR/count.txt"
      echo "STATE: {\"count\": $((PREV + 1))}"
      echo "GLOBAL_STATE: {\"seen\": \"yes\"}"
      touch "$STATE_DIR/x" 2>/dev/null && echo "STATE_DIR WRITABLE" || echo "STATE_DIR READ-ONLY"
  fail-after-artifact:
    type: script
    script: |
      echo partial > "$ARTIFACTS_DIR/partial.txt"
      exit 3
tasks:
  produce:
    flow:
      make:
        action: produce
  counter:
    flow:
      count:
        action: counter
  failing:
    flow:
      broken:
        action: fail-after-artifact
`)})

	t.Run("artifacts listed and downloaded byte-identical", func(t *testing.T) {
		j := s.waitJob(s.execute("produce", nil))
		require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
		logs := s.logs(j.ID)
		i := strings.Index(logs, "SHA ")
		require.GreaterOrEqual(t, i, 0, logs)
		want := logs[i+4 : i+4+64]

		var list []struct {
			Name        string `json:"name"`
			StepName    string `json:"step_name"`
			SizeBytes   int64  `json:"size_bytes"`
			ContentType string `json:"content_type"`
			SHA256      string `json:"sha256"`
			URL         string `json:"url"`
		}
		require.Equal(t, 200, s.getJSON("/api/jobs/"+j.ID+"/artifacts", &list))
		require.Len(t, list, 2)
		require.Equal(t, "note.txt", list[0].Name)
		require.Equal(t, "reports/blob.bin", list[1].Name)
		require.Equal(t, "make", list[1].StepName)
		require.Equal(t, int64(2500000), list[1].SizeBytes)
		require.Equal(t, want, list[1].SHA256)
		require.True(t, strings.HasPrefix(list[0].ContentType, "text/plain"), list[0].ContentType)

		// Over HTTP, streamed.
		req, err := http.NewRequest("GET", s.url+list[1].URL, nil)
		require.NoError(t, err)
		resp, err := s.http.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)
		require.Equal(t, "2500000", resp.Header.Get("Content-Length"))
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		require.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		require.NoError(t, err)
		require.Equal(t, int64(2500000), n)
		require.Equal(t, want, hex.EncodeToString(h.Sum(nil)))

		// With the CLI.
		out := filepath.Join(t.TempDir(), "blob.bin")
		code, stdout, stderr := s.cli(nil, "artifacts", "download", j.ID, "reports/blob.bin", "-o", out)
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		require.Equal(t, want, hex.EncodeToString(sum[:]))
		code, stdout, stderr = s.cli(nil, "artifacts", "list", j.ID)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stdout, "reports/blob.bin")
		require.Contains(t, stdout, "2500000")

		// Names that would leave the directory, and unknown ones.
		for _, bad := range []string{"..%2Fx", "reports/..%2F..%2Fetc", "nope.txt"} {
			code, body := s.do("GET", "/api/jobs/"+j.ID+"/artifacts/"+bad, nil)
			require.Contains(t, []int{400, 404}, code, "%s: %s", bad, body)
		}
	})

	t.Run("a failed step's artifacts are not listed", func(t *testing.T) {
		j := s.waitJob(s.execute("failing", nil))
		require.Equal(t, stroem.JobFailed, j.Status, describeJob(j))
		code, body := s.do("GET", "/api/jobs/"+j.ID+"/artifacts", nil)
		require.Equal(t, 200, code)
		require.JSONEq(t, "[]", string(body))
	})

	t.Run("state a step writes is what the next run reads", func(t *testing.T) {
		first := s.waitJob(s.execute("counter", nil))
		require.Equal(t, stroem.JobCompleted, first.Status, describeJob(first))
		logs := s.logs(first.ID)
		require.Contains(t, logs, "PREV_FILE 0")
		require.Contains(t, logs, "PREV_TEMPLATE none")
		require.Contains(t, logs, "GLOBAL_TEMPLATE none")
		if os.Geteuid() != 0 { // root writes whatever the mode says
			require.Contains(t, logs, "STATE_DIR READ-ONLY")
		}

		second := s.waitJob(s.execute("counter", nil))
		require.Equal(t, stroem.JobCompleted, second.Status, describeJob(second))
		logs = s.logs(second.ID)
		require.Contains(t, logs, "PREV_FILE 1")
		require.Contains(t, logs, "PREV_TEMPLATE 1")
		require.Contains(t, logs, "GLOBAL_TEMPLATE yes")

		// History, newest first, and the newest snapshot's tarball.
		var hist struct {
			Items []struct {
				ID       string         `json:"id"`
				JobID    string         `json:"job_id"`
				Source   string         `json:"source"`
				State    map[string]any `json:"state"`
				StepName string         `json:"step_name"`
			} `json:"items"`
		}
		require.Equal(t, 200, s.getJSON("/api/workspaces/default/tasks/counter/state", &hist))
		require.Len(t, hist.Items, 2)
		require.Equal(t, second.ID, hist.Items[0].JobID)
		require.Equal(t, "step", hist.Items[0].Source)
		require.EqualValues(t, 2, hist.Items[0].State["count"])
		require.Equal(t, first.ID, hist.Items[1].JobID)

		out := filepath.Join(t.TempDir(), "state.tar.gz")
		code, stdout, stderr := s.cli(nil, "state", "download", "--task", "counter", "-o", out)
		require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
		f, err := os.Open(out)
		require.NoError(t, err)
		defer f.Close()
		files := map[string]string{}
		require.NoError(t, blob.Walk(f, func(name string, _ int64, r io.Reader) error {
			b, err := io.ReadAll(r)
			files[name] = string(b)
			return err
		}))
		require.Equal(t, map[string]string{"count.txt": "2\n", "state.json": `{"count":2}`}, files)
	})
}

// A connection-typed input takes a connection's name; the step sees its
// values and the secret property is masked in the log and the job.
func TestConnectionInputs(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{serverEnv: []string{"E2E_DB_PASSWORD=pw-Zq81-secret"}, workspace: workspaceDir(t, `
connection_types:
  postgres:
    host: { type: string, required: true }
    port: { type: integer, default: 5432 }
    password: { type: string, required: true, secret: true }
connections:
  prod_db:
    type: postgres
    host: db.example.com
    password: "{{ 'ref+env://E2E_DB_PASSWORD' | vals }}"
actions:
  connect:
    type: script
    script: |
      echo "HOST {{ input.db.host }}:{{ input.db.port }}"
      echo "PW {{ input.db.password }}"
    input:
      db: { type: postgres }
tasks:
  migrate:
    input:
      db: { type: postgres }
    flow:
      m:
        action: connect
        input:
          db: "{{ input.db }}"
`)})
	j := s.waitJob(s.execute("migrate", map[string]any{"db": "prod_db"}))
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	logs := s.logs(j.ID)
	require.Contains(t, logs, "HOST db.example.com:5432")
	require.Contains(t, logs, "PW ***")
	require.NotContains(t, logs, "pw-Zq81-secret")
	code, body := s.do("GET", "/api/jobs/"+j.ID, nil)
	require.Equal(t, 200, code)
	require.NotContains(t, string(body), "pw-Zq81-secret")
	code, body = s.do("GET", "/api/jobs", nil)
	require.Equal(t, 200, code)
	require.Contains(t, string(body), j.ID)
	require.NotContains(t, string(body), "pw-Zq81-secret", "the job list is masked too")

	code, body = s.do("POST", "/api/workspaces/default/tasks/migrate/execute", map[string]any{"input": map[string]any{"db": "nope"}})
	require.Equal(t, 400, code, string(body))
	require.Contains(t, string(body), `no connection \"nope\" of type postgres`)
}

// An artifact over the limit fails its step with the reason; nothing of it
// is listed.
func TestArtifactTooLarge(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{
		serverKeys: map[string]any{"artifact_storage": map[string]any{"max_file_bytes": 1000}},
		workspace: workspaceDir(t, `
actions:
  big:
    type: script
    script: |
      head -c 999 /dev/zero > "$ARTIFACTS_DIR/small.bin"
      head -c 1001 /dev/zero > "$ARTIFACTS_DIR/too-big.bin"
tasks:
  big:
    flow:
      make:
        action: big
`)})
	j := s.waitJob(s.execute("big", nil))
	require.Equal(t, stroem.JobFailed, j.Status, describeJob(j))
	msg := stepOf(t, j, "make").ErrorMessage
	require.Contains(t, msg, `artifact "too-big.bin"`)
	require.Contains(t, msg, "larger than the limit of 1000 bytes")
	code, body := s.do("GET", "/api/jobs/"+j.ID+"/artifacts", nil)
	require.Equal(t, 200, code)
	require.JSONEq(t, "[]", string(body), "a failed step's artifacts are not listed, the small one neither")
}
