package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

const unresolvedHookWorkflow = noopTaskWorkflow + `triggers:
  unresolved:
    type: webhook
    task: t
    secret: "ref+env://STROEM_TEST_HOOK_SECRET_NEVER_SET"
  literal:
    type: webhook
    task: t
    secret: "s3cret"
`

// A webhook whose secret does not resolve is reported when the workspace is
// validated or loaded, and a call gets a clear 503, not a 500.
func TestWebhookUnresolvedSecret(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "hooks.yaml"), []byte(unresolvedHookWorkflow), 0o644))

	r := runCLI(t, t.Context(), "validate", dir)
	require.Equal(t, 0, r.code, "a warning, not a problem: %s", r.out)
	require.Contains(t, r.out, `hooks.yaml:9:3: warning: webhook "unresolved": its secret does not resolve (environment variable "STROEM_TEST_HOOK_SECRET_NEVER_SET" is not set)`)
	require.Contains(t, r.out, "STROEM_TEST_HOOK_SECRET_NEVER_SET")
	require.Contains(t, r.out, "calls of /hooks/unresolved are refused with 503")
	require.NotContains(t, r.out, `webhook "literal"`)

	e := newTriggerEnv(t, map[string]string{"default": unresolvedHookWorkflow})
	e.start()
	code, body := e.do("POST", "/hooks/unresolved", "", "anything")
	require.Equal(t, http.StatusServiceUnavailable, code, string(body))
	require.Contains(t, string(body), `webhook \"unresolved\" of workspace \"default\" is not available: its secret does not resolve on the server`)
	require.NotContains(t, string(body), "STROEM_TEST_HOOK_SECRET_NEVER_SET", "the caller is not told the server's variable names")
	code, body = e.do("POST", "/hooks/literal", "", "s3cret")
	require.Equal(t, http.StatusAccepted, code, string(body))
}
