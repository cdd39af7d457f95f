package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// The upstream's server-wide job timeout and unmatched-step grace load
// under their upstream names, and out-of-range values are refused.
func TestJobLimitsConfig(t *testing.T) {
	t.Parallel()
	p := configFile(t, "s.yaml", `worker_token: x
listen: 127.0.0.1:8080
default_job_timeout: 4h
recovery:
  heartbeat_timeout_secs: 120
  sweep_interval_secs: 60
  unmatched_step_timeout_secs: 45
`)
	cfg := loadServerConfig(t, p)
	require.Equal(t, 4*time.Hour, cfg.DefaultJobTimeout)
	require.Equal(t, 45*time.Second, cfg.Recovery.unmatchedStepTimeout())
	require.NoError(t, cfg.validate())

	cfg.DefaultJobTimeout = 8 * 24 * time.Hour
	require.EqualError(t, cfg.validate(), "key default_job_timeout: 192h0m0s is out of range (0 to 7d)")
	cfg.DefaultJobTimeout = 0
	cfg.Recovery.UnmatchedStepTimeoutSecs = -1
	require.ErrorContains(t, cfg.validate(), "key recovery.unmatched_step_timeout_secs: -1 is out of range")
}

const limitsServerWorkflow = `
actions:
  work: { type: shell, cmd: "true" }
tasks:
  one:
    flow:
      only: { action: work }
      after: { action: work, depends_on: [only] }
`

// The server wires default_job_timeout and
// recovery.unmatched_step_timeout_secs into the engine: with no worker
// registered a step fails after the grace, saying why; a job of a task
// without a timeout is cancelled at the server's default.
func TestJobLimitsServer(t *testing.T) {
	t.Parallel()
	t.Run("no worker can run", func(t *testing.T) {
		t.Parallel()
		e := newTriggerEnv(t, map[string]string{"default": limitsServerWorkflow})
		e.cfg.Recovery.UnmatchedStepTimeoutSecs = 1
		e.start()
		id := e.execute("one", nil)
		j := e.waitJob(id, stroem.JobFailed)
		require.Equal(t, `no worker can run this step: no active worker has the "shell" capability (waited 1s)`, j.Steps[0].ErrorMessage)
		require.Equal(t, stroem.StepSkipped, j.Steps[1].Status)
	})
	t.Run("default job timeout", func(t *testing.T) {
		t.Parallel()
		e := newTriggerEnv(t, map[string]string{"default": limitsServerWorkflow})
		e.cfg.DefaultJobTimeout = time.Second
		e.start()
		w := e.worker() // a capable worker: the step waits for it, not failing
		id := e.execute("one", nil)
		a := w.mustClaim("only")
		require.Eventually(t, func() bool { return len(w.heartbeat(a).Cancel) > 0 }, 10*time.Second, 50*time.Millisecond,
			"the running step is stopped on its worker")
		require.Equal(t, http.StatusOK, w.complete(a, -1, nil, "cancelled"))
		j := e.waitJob(id, stroem.JobCancelled)
		require.Equal(t, stroem.StepCancelled, j.Steps[0].Status)
		require.Equal(t, "cancelled: the job timed out (task timeout 1s)", j.Steps[1].ErrorMessage)
	})
}
