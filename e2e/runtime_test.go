package e2e

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// procGODEBUG is the GODEBUG a running process was (re-)executed with, as
// the kernel keeps its environment, and whether it has one.
func procGODEBUG(t *testing.T, p *proc) (string, bool) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/environ")
	require.NoError(t, err)
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			return v, true
		}
	}
	return "", false
}

// The server and the workers re-execute themselves with schedtrace in
// GODEBUG (cmd/stroem/sysmon.go), keeping the rest of a user's GODEBUG and
// their pid; the steps never see it; a GODEBUG that names schedtrace is
// left alone.
func TestDaemonsRunWithSysmonSetting(t *testing.T) {
	t.Parallel()
	const workflow = `
actions:
  env:
    type: shell
    cmd: 'echo "godebug=[${GODEBUG:-none}]"'
tasks:
  env:
    flow:
      env:
        action: env
`
	s := startStack(t, stackOpts{workspace: workspaceDir(t, workflow), workers: 2,
		serverEnv: []string{"GODEBUG=madvdontneed=1"}})
	got, ok := procGODEBUG(t, s.server)
	require.True(t, ok)
	require.Equal(t, "madvdontneed=1,schedtrace=2147483647", got, "the user's setting kept, schedtrace added")
	for _, w := range s.workers {
		got, ok := procGODEBUG(t, w)
		require.True(t, ok, w.name)
		require.Equal(t, "schedtrace=2147483647", got, w.name)
	}
	id := s.execute("env", nil)
	j := s.waitJob(id)
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	require.Contains(t, s.logs(id), "godebug=[none]", "a step's environment is built from scratch")

	// The user's own schedtrace wins, even Go's default (0).
	s = startStack(t, stackOpts{workspace: workspaceDir(t, workflow), workerEnv: []string{"GODEBUG=schedtrace=0"}})
	got, ok = procGODEBUG(t, s.workers[0])
	require.True(t, ok)
	require.Equal(t, "schedtrace=0", got)
}
