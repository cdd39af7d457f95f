package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const credentialWorkflow = `
actions:
  wait:
    type: shell
    cmd: 'while [ ! -e "$INPUT_GATE" ]; do sleep 0.1; done; echo "OUTPUT: {\"mine\": true}"'
    input:
      gate: { type: string }
  quick:
    type: shell
    cmd: 'echo quick'
tasks:
  slow:
    input:
      gate: { type: string, required: true }
    flow:
      s:
        action: wait
        input: { gate: "{{ input.gate }}" }
  quick:
    flow:
      q: { action: quick }
`

// The shared worker token only registers. Each worker gets a credential
// bound to its id: a rogue worker registered with a leaked shared token
// cannot renew, start, log to, complete or claim as another worker, nor
// download a revision it runs no step of; and rotating the shared token
// leaves running workers working.
func TestWorkerCredentialsBindAndSurviveRotation(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, faultOpts{workflow: credentialWorkflow})
	s.startWorker("w1", 2, 3*time.Second)
	gateDir := t.TempDir()
	require.NoError(t, os.Chmod(gateDir, 0o777))
	gate := filepath.Join(gateDir, "gate")
	id := s.execute("slow", map[string]any{"gate": gate})
	w1 := s.workerID("w1")
	require.Equal(t, w1, s.waitRunningOn(id, "s"))

	// A rogue worker with the (leaked) shared token.
	code, body := s.post("/worker/register", s.token, `{"name":"rogue","capabilities":["shell"]}`)
	require.Equal(t, http.StatusOK, code, body)
	var rogue stroem.WorkerRegistered
	require.NoError(t, json.Unmarshal([]byte(body), &rogue))
	require.True(t, strings.HasPrefix(rogue.Credential, "stroem_wc_"), body)

	asRogue := func(method, path, body string) int {
		req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+rogue.Credential)
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.http.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	step := "/worker/jobs/" + id + "/steps/s/"
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		// Acting as w1: refused before anything is touched.
		{"POST", "/worker/heartbeat", `{"worker_id":"` + w1 + `","running":[{"job_id":"` + id + `","step":"s","attempt":1}]}`, http.StatusForbidden},
		{"POST", "/worker/jobs/claim", `{"worker_id":"` + w1 + `","capabilities":["shell"],"wait_ms":0}`, http.StatusForbidden},
		{"POST", step + "start", `{"worker_id":"` + w1 + `","attempt":1}`, http.StatusForbidden},
		{"POST", step + "logs", `{"worker_id":"` + w1 + `","attempt":1,"lines":[{"text":"forged"}]}`, http.StatusForbidden},
		{"POST", step + "complete", `{"worker_id":"` + w1 + `","attempt":1,"exit_code":0,"output":{"forged":true}}`, http.StatusForbidden},
		// As itself: the step is not its own.
		{"POST", step + "logs", `{"worker_id":"` + rogue.WorkerID + `","attempt":1,"lines":[{"text":"forged"}]}`, http.StatusConflict},
		{"POST", step + "complete", `{"exit_code":0,"attempt":1,"output":{"forged":true}}`, http.StatusConflict},
		// The workspace files of a revision it runs no step of.
		{"GET", "/worker/workspaces/default/" + s.job(id).Revision + ".tar.gz", "", http.StatusForbidden},
		// The shared token is no worker's credential.
	} {
		require.Equal(t, c.want, asRogue(c.method, c.path, c.body), "%s %s %s", c.method, c.path, c.body)
	}
	code, _ = s.post(step+"complete", s.token, `{"worker_id":"`+w1+`","attempt":1,"exit_code":0}`)
	require.Equal(t, http.StatusUnauthorized, code)

	// Rotate the shared token: restart the server with a new one.
	var cfg map[string]any
	b, err := os.ReadFile(s.serverCfg)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	oldToken := s.token
	s.token = randomHex(16)
	cfg["worker_token"] = s.token
	writeConfig(t, filepath.Dir(s.serverCfg), filepath.Base(s.serverCfg), cfg)
	s.server.stop(15 * time.Second)
	s.startServer()

	// w1 keeps working with its own credential: it finishes the step it
	// held and claims new work.
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	j := s.waitJob(id)
	require.Equal(t, stroem.JobCompleted, j.Status)
	require.Equal(t, map[string]any{"mine": true}, j.Steps[0].Output)
	require.NotContains(t, s.logs(id), "forged")
	q := s.waitJob(s.execute("quick", nil))
	require.Equal(t, stroem.JobCompleted, q.Status)
	require.Equal(t, w1, *q.Steps[0].WorkerID)

	// The old shared token registers nothing any more.
	code, _ = s.post("/worker/register", oldToken, `{"name":"late","capabilities":["shell"]}`)
	require.Equal(t, http.StatusUnauthorized, code)
}
