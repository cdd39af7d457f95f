package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// The upstream's webhook input shape: a task written for it
// (reference/examples/ci-pipeline.md declares `body: { type: string }` and
// reads `{{ input.body.ref }}`) gets the request's body, headers, method
// and query, whatever its declared `body` field says.
const hookInputWorkflow = `
actions:
  notify:
    type: script
    script: "true"
    input:
      ref: { type: string }
      event: { type: string }
      how: { type: string }
      env: { type: string }
tasks:
  ci-pipeline:
    input:
      body: { type: string }
    flow:
      notify:
        action: notify
        input:
          ref: "{{ input.body.ref }}"
          event: "{{ input.headers['x-github-event'] }}"
          how: "{{ input.method }}"
          env: "{{ input.query.env }}"
triggers:
  github-push:
    type: webhook
    name: github-ci
    task: ci-pipeline
    input: { body: "a default never replaces the request's body" }
`

func TestWebhookUpstreamInputShape(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": hookInputWorkflow})
	e.start()
	req, err := http.NewRequest("POST", e.url+"/hooks/github-ci?env=production",
		strings.NewReader(`{"ref": "refs/heads/main", "commits": []}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	resp, err := e.client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	w := e.worker()
	a := w.claim(10 * time.Second)
	require.NotNil(t, a)
	require.Equal(t, map[string]any{"ref": "refs/heads/main", "event": "push", "how": "POST", "env": "production"}, a.Input)
}

// A body that is not JSON, sent with another content type, is kept as text
// in input.body (as upstream); JSON sent as a form (curl -d) is still JSON;
// a body sent as JSON must still be a JSON object.
func TestWebhookBodyContentTypes(t *testing.T) {
	t.Parallel()
	e := newTriggerEnv(t, map[string]string{"default": hookInputWorkflow})
	e.start()
	post := func(contentType, body string) (int, stroem.Job) {
		t.Helper()
		req, err := http.NewRequest("POST", e.url+"/hooks/github-ci", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		resp, err := e.client.Do(req)
		require.NoError(t, err)
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		if resp.StatusCode != http.StatusAccepted {
			return resp.StatusCode, stroem.Job{}
		}
		return resp.StatusCode, e.job(decodeAnswer(t, out).JobID)
	}
	code, j := post("text/plain; charset=utf-8", "deploy please")
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, "deploy please", j.Input["body"])
	code, j = post("application/x-www-form-urlencoded", `{"ref": "refs/tags/v1"}`)
	require.Equal(t, http.StatusAccepted, code)
	require.Equal(t, map[string]any{"ref": "refs/tags/v1"}, j.Input["body"])
	code, _ = post("application/json", "deploy please")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = post("application/vnd.api+json", `["a"]`)
	require.Equal(t, http.StatusBadRequest, code)
}
