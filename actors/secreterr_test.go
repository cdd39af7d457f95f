package actors

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/workspace"
)

// The error of a step whose secret did not resolve names the secret once.
func TestRenderErrorSaysSecretOnce(t *testing.T) {
	t.Parallel()
	_, bad := resolveSecrets(map[string]any{"api_token": "ref+env://STROEM_TEST_SURELY_UNSET_VAR"})
	require.Contains(t, bad, "api_token")
	p := &plan{secretErrs: bad}
	tpl, err := workspace.CompileTemplate("echo {{ secret.api_token }}")
	require.NoError(t, err)
	_, err = tpl.Render(map[string]any{"secret": map[string]any{}, "input": map[string]any{}})
	require.Error(t, err)
	msg := p.renderError("cmd", err).Error()
	require.Contains(t, msg, `secret "api_token" did not resolve: `)
	require.Contains(t, msg, "STROEM_TEST_SURELY_UNSET_VAR")
	require.Equal(t, 1, strings.Count(msg, `secret "api_token"`), msg)
	t.Log(msg)
}
