package runner

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// A step's environment is built fresh: nothing of the worker's own
// environment reaches it but the documented base and what PassEnv names.
func TestEnvironmentIsBuiltFresh(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	r.Environ = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=/home/worker", "LANG=de_DE.UTF-8",
		"STROEM__WORKER_TOKEN=tok-123", "STROEM_CONFIG=/etc/stroem/worker.yaml",
		"AWS_SECRET_ACCESS_KEY=aws-456", "HTTPS_PROXY=http://proxy:3128",
		"STROEM_JOB_ID=forged",
	}
	r.PassEnv = []string{"HTTPS_PROXY", "NOT_SET_ANYWHERE"}
	step := Step{
		JobID: "job-1", Name: "env", Attempt: 2,
		Spec:  stroem.StepSpec{Cmd: "env", Env: map[string]string{"API_TOKEN": "declared"}},
		Input: map[string]any{"name": "x"},
	}
	res, c := run(t, r, step)
	require.True(t, res.Succeeded(), res.Error)
	got := c.texts(stroem.Stdout)
	var names []string
	for _, kv := range got {
		k, _, _ := strings.Cut(kv, "=")
		names = append(names, k)
	}
	sort.Strings(names)
	// sh itself adds PWD (and some shells SHLVL, _); nothing else appears.
	var unexpected []string
	for _, n := range names {
		switch n {
		case "PATH", "HOME", "LANG", "TMPDIR", "HTTPS_PROXY", "INPUT_NAME", "API_TOKEN",
			"STROEM_JOB_ID", "STROEM_STEP", "STROEM_ATTEMPT", "PWD", "SHLVL", "_", "OLDPWD":
		default:
			unexpected = append(unexpected, n)
		}
	}
	require.Empty(t, unexpected, "variables the step should not see: %v", got)
	require.Contains(t, got, "HOME=/home/worker")
	require.Contains(t, got, "LANG=de_DE.UTF-8")
	require.Contains(t, got, "HTTPS_PROXY=http://proxy:3128")
	require.Contains(t, got, "API_TOKEN=declared")
	require.Contains(t, got, "STROEM_JOB_ID=job-1", "the worker's STROEM_* never override the step's own")
	for _, kv := range got {
		require.NotContains(t, kv, "tok-123")
		require.NotContains(t, kv, "aws-456")
		require.NotContains(t, kv, "/etc/stroem")
	}
}

func TestEnvironmentDefaults(t *testing.T) {
	t.Parallel()
	r := &ShellRunner{WorkDir: t.TempDir(), Environ: []string{}}
	env := r.environment(Step{JobID: "j", Name: "s", Attempt: 1})
	require.Contains(t, env, "PATH="+DefaultPath)
	require.Contains(t, env, "LANG=C.UTF-8")
	require.Contains(t, env, "TMPDIR="+os.TempDir())
	for _, kv := range env {
		require.False(t, strings.HasPrefix(kv, "HOME="), "no HOME is invented: %v", env)
	}
}

func TestCheckPassEnv(t *testing.T) {
	t.Parallel()
	require.NoError(t, CheckPassEnv([]string{"HTTP_PROXY", "no_proxy"}))
	for _, bad := range []string{"STROEM__WORKER_TOKEN", "stroem_config", "", "A=B"} {
		err := CheckPassEnv([]string{bad})
		require.Error(t, err, bad)
		var pe *PassEnvError
		require.ErrorAs(t, err, &pe)
	}
	// A refused list passes nothing at all, not even its good names.
	r := &ShellRunner{WorkDir: t.TempDir(), Environ: []string{"X=1", "STROEM__WORKER_TOKEN=t"},
		PassEnv: []string{"X", "STROEM__WORKER_TOKEN"}}
	env := r.environment(Step{})
	require.NotContains(t, env, "X=1")
	require.NotContains(t, env, "STROEM__WORKER_TOKEN=t")
}
