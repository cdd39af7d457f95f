package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// A hook's input may render secrets (the upstream's Slack example passes
// `{{ secret.SLACK_WEBHOOK_URL }}`): the hook job stores them in its input,
// so every view of that job — the job list as well as the job — masks them.
func TestHookSecretInputIsMasked(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{serverEnv: []string{"E2E_HOOK_URL=https://hooks.example/Xq7-secret"}, workspace: workspaceDir(t, `
secrets:
  HOOK_URL: "ref+env://E2E_HOOK_URL"
actions:
  hi:
    type: script
    script: echo hi
  notify:
    type: script
    script: echo "notify {{ input.url }}"
    input:
      url: { type: string }
tasks:
  work:
    flow:
      a: { action: hi }
    on_success:
      - action: notify
        input: { url: "{{ secret.HOOK_URL }}" }
`)})
	id := s.execute("work", nil)
	hook := s.waitHook(id, "on_success")
	require.Equal(t, stroem.JobCompleted, hook.Status, describeJob(hook))
	require.NotContains(t, s.logs(hook.ID), "Xq7-secret")
	code, body := s.do("GET", "/api/jobs/"+hook.ID, nil)
	require.Equal(t, 200, code)
	require.NotContains(t, string(body), "Xq7-secret", "the hook job is masked")
	code, body = s.do("GET", "/api/jobs", nil)
	require.Equal(t, 200, code)
	require.Contains(t, string(body), hook.ID)
	require.NotContains(t, string(body), "Xq7-secret", "the job list is masked too")
}
