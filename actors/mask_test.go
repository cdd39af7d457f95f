package actors

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// A claimed step is told to mask only the secrets it already holds: none
// when its action references none, never another action's.
func TestStepMaskOnlyTheStepsOwnSecrets(t *testing.T) {
	t.Parallel()
	p := &plan{masker: stroem.NewMasker([]string{"api-secret-1", "other-secret-2", "input-secret-3"})}
	require.Empty(t, stepMask(p, stroem.StepSpec{Cmd: "echo hello"}, map[string]any{"n": 1}))
	require.Equal(t, []string{"api-secret-1"},
		stepMask(p, stroem.StepSpec{Cmd: "curl", Env: map[string]string{"TOKEN": "api-secret-1"}}, nil))
	require.Equal(t, []string{"api-secret-1", "input-secret-3"}, stepMask(p,
		stroem.StepSpec{Cmd: "echo " + base64.StdEncoding.EncodeToString([]byte("api-secret-1"))},
		map[string]any{"nested": map[string]any{"v": "x input-secret-3"}}))
	require.Empty(t, stepMask(&plan{}, stroem.StepSpec{Cmd: "api-secret-1"}, nil))
}

func TestMaskCompletion(t *testing.T) {
	t.Parallel()
	m := stroem.NewMasker([]string{"api-secret-1"})
	c := maskCompletion(m, stroem.Completion{
		ExitCode: 1, Error: "exit code 1: API-SECRET-1",
		Output: map[string]any{"leak": "api-secret-1", "ok": 2},
	})
	require.Equal(t, "exit code 1: ***", c.Error)
	require.Equal(t, map[string]any{"leak": "***", "ok": 2}, c.Output)
}
