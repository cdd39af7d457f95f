package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// Task state in `when` and step input, as upstream's task-state guide
// shows: a first run (no state) takes the `not state` branch; the next run
// sees what the first wrote and takes the other; after an operator's
// upload, the uploaded values decide. A job's input and when see the state
// of when the job started, even after one of its own steps wrote new state.
// Secrets stay masked.
func TestStateInInputAndWhen(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{serverEnv: []string{"E2E_STATE_TOKEN=tok-Qw93-secret"}, workspace: workspaceDir(t, `
secrets:
  token: "ref+env://E2E_STATE_TOKEN"
actions:
  check:
    type: script
    script: |
      echo "CHECK_CMD {{ state.days_remaining | default(value='none') }}"
      echo "STATE: {\"days_remaining\": 90, \"domain\": \"written.example\"}"
      echo "GLOBAL_STATE: {\"region\": \"eu\"}"
  renew:
    type: shell
    cmd: "echo RENEW {{ input.domain }} {{ input.note }}"
    input:
      domain: { type: string }
      note: { type: string }
  keep:
    type: shell
    cmd: "echo KEEP {{ input.domain }} {{ input.days }} {{ input.region }} {{ input.token }}"
    input:
      domain: { type: string }
      days: { type: string }
      region: { type: string }
      token: { type: string }
tasks:
  maintain:
    flow:
      check:
        action: check
      renew:
        action: renew
        depends_on: [check]
        when: "{{ not state or state.days_remaining | int < 30 }}"
        input:
          domain: "{{ state.domain | default(value='example.com') }}"
          note: "{{ state.note | default(value='-') }}"
      keep:
        action: keep
        depends_on: [check]
        when: "{{ state and state.days_remaining | int >= 30 }}"
        input:
          domain: "{{ state.domain }}"
          days: "{{ state.days_remaining }}"
          region: "{{ global_state.region | default(value='none') }}"
          token: "{{ secret.token }}"
`)})
	run := func() (stroem.Job, string) {
		t.Helper()
		j := s.waitJob(s.execute("maintain", nil))
		require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
		return j, s.logs(j.ID)
	}
	stepStatus := func(j stroem.Job, name string) stroem.StepStatus {
		for _, st := range j.Steps {
			if st.StepName == name {
				return st.Status
			}
		}
		t.Fatalf("no step %s in %s", name, describeJob(j))
		return ""
	}

	// First run: no state, so `not state` holds, although check wrote
	// state before renew's condition was decided (the job-start snapshot).
	j, logs := run()
	require.Contains(t, logs, "CHECK_CMD none")
	require.Contains(t, logs, "RENEW example.com -")
	require.Equal(t, stroem.StepCompleted, stepStatus(j, "renew"))
	require.Equal(t, stroem.StepSkipped, stepStatus(j, "keep"))

	// Second run: the state the first wrote (90 days) takes the other
	// branch, and its values arrive in the step's input.
	j, logs = run()
	require.Equal(t, stroem.StepSkipped, stepStatus(j, "renew"))
	require.Equal(t, stroem.StepCompleted, stepStatus(j, "keep"))
	require.Contains(t, logs, "KEEP written.example 90 eu ***")
	require.NotContains(t, logs, "tok-Qw93-secret")
	code, body := s.do("GET", "/api/jobs/"+j.ID, nil)
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, string(body), "tok-Qw93-secret")

	// An operator's upload (values are strings) decides the next run.
	code, out, errOut := s.cli(nil, "state", "upload", "--task", "maintain",
		"--state", "days_remaining=5", "--state", "domain=uploaded.example", "--state", "note=from-upload")
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", out, errOut)
	j, logs = run()
	require.Equal(t, stroem.StepCompleted, stepStatus(j, "renew"))
	require.Equal(t, stroem.StepSkipped, stepStatus(j, "keep"))
	require.Contains(t, logs, "CHECK_CMD 5")
	require.Contains(t, logs, "RENEW uploaded.example from-upload")
	require.False(t, strings.Contains(logs, "KEEP"), logs)
}
