package main

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const redactWorkflow = `
actions:
  use:
    type: shell
    cmd: "true"
    input:
      t: { type: string }
tasks:
  deploy:
    input:
      token: { type: string, secret: true }
      env: { type: string }
    flow:
      run:
        action: use
        input:
          t: "{{ input.token }}"
triggers:
  deploy-hook:
    type: webhook
    task: deploy
    mode: sync
    timeout_secs: 30
`

// A value given to a secret: true input is never served in clear: not by
// the job (its input, the webhook's input.body, the step's input and
// output), the job list, the step's log, nor the sync webhook's reply (and
// so not by the CLI, which shows what the API serves). The step gets it.
func TestSecretInputRedactedByTheAPI(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": redactWorkflow})
	e.start()
	const token = "tok-41c7-do-not-show"

	var wg sync.WaitGroup
	var code int
	var reply []byte
	wg.Go(func() {
		code, reply = e.do("POST", "/hooks/deploy-hook", map[string]any{"token": token, "env": "prod"}, "")
	})
	w := e.worker()
	a := w.mustClaim("run")
	require.Equal(t, token, a.Input["t"], "the step gets the secret")
	pushed, _ := w.pushLogs(a, 0, "using "+token)
	require.Equal(t, http.StatusOK, pushed)
	require.Equal(t, http.StatusOK, w.complete(a, 0, map[string]any{"echo": "got " + token}, ""))
	wg.Wait()
	require.Equal(t, http.StatusOK, code, string(reply))
	require.NotContains(t, string(reply), token)
	ans := decodeAnswer(t, reply)
	require.Equal(t, map[string]any{"run": map[string]any{"echo": "got ***"}}, ans.Output)

	code, body := e.do("GET", "/api/jobs/"+ans.JobID, nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NotContains(t, string(body), token)
	var j stroem.Job
	require.NoError(t, json.Unmarshal(body, &j))
	require.Equal(t, "***", j.Input["token"])
	require.Equal(t, "prod", j.Input["env"])
	require.Equal(t, map[string]any{"token": "***", "env": "prod"}, j.Input["body"])
	require.Equal(t, map[string]any{"t": "***"}, j.Steps[0].Input)

	code, body = e.do("GET", "/api/jobs?task=deploy", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NotContains(t, string(body), token)
	require.Contains(t, string(body), ans.JobID)

	// The cancel answer (a finished job: 409) and a running job's.
	code, body = e.do("POST", "/api/jobs/"+ans.JobID+"/cancel", nil, "")
	require.Equal(t, http.StatusConflict, code, string(body))
	require.NotContains(t, string(body), token)

	require.Eventually(t, func() bool {
		code, body = e.do("GET", "/api/jobs/"+ans.JobID+"/logs", nil, "")
		return code == http.StatusOK && len(body) > 0
	}, 10*time.Second, 20*time.Millisecond)
	require.NotContains(t, string(body), token)
	require.Contains(t, string(body), "using ***")

	id := e.execute("deploy", map[string]any{"token": token, "env": "dev"})
	code, body = e.do("POST", "/api/jobs/"+id+"/cancel", nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	require.NotContains(t, string(body), token)
	require.NoError(t, json.Unmarshal(body, &j))
	require.Equal(t, "***", j.Input["token"])
}

const redactApprovalWorkflow = `
actions:
  gate: { type: approval }
tasks:
  release:
    input:
      pin: { type: string, secret: true }
      env: { type: string }
    flow:
      wait:
        action: gate
`

// The approve answer is the job, redacted like GET /api/jobs/{id}: a
// secret: true input (here too short to be masked as a substring) is not
// shown.
func TestSecretInputRedactedByApprove(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": redactApprovalWorkflow})
	e.start()
	const pin = "47" // shorter than stroem.MaskMinLen
	id := e.execute("release", map[string]any{"pin": pin, "env": "prod"})
	var code int
	var body []byte
	require.Eventually(t, func() bool {
		code, body = e.do("POST", "/api/jobs/"+id+"/steps/wait/approve", map[string]any{"approved": true}, "")
		return code == http.StatusOK
	}, 10*time.Second, 20*time.Millisecond, "%d %s", code, body)
	var j stroem.Job
	require.NoError(t, json.Unmarshal(body, &j))
	require.Equal(t, "***", j.Input["pin"])
	require.Equal(t, "prod", j.Input["env"])
}

const redactHookBodyWorkflow = `
actions:
  use:
    type: shell
    cmd: "true"
tasks:
  deploy:
    input:
      pin: { type: string, secret: true }
      env: { type: string }
    flow:
      run: { action: use }
triggers:
  deploy-hook:
    type: webhook
    task: deploy
`

// A secret: true input a webhook's body gives is redacted in input.body
// too (the request's body as received), whatever its length.
func TestSecretInputRedactedInWebhookBody(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": redactHookBodyWorkflow})
	e.start()
	code, reply := e.do("POST", "/hooks/deploy-hook", map[string]any{"pin": "47", "env": "prod"}, "")
	require.Equal(t, http.StatusAccepted, code, string(reply))
	var ans struct {
		JobID string `json:"job_id"`
	}
	require.NoError(t, json.Unmarshal(reply, &ans))
	code, body := e.do("GET", "/api/jobs/"+ans.JobID, nil, "")
	require.Equal(t, http.StatusOK, code, string(body))
	var j stroem.Job
	require.NoError(t, json.Unmarshal(body, &j))
	require.Equal(t, "***", j.Input["pin"])
	require.Equal(t, map[string]any{"pin": "***", "env": "prod"}, j.Input["body"])
}
