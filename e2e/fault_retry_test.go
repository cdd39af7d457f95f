package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const faultRetryWorkflow = `
actions:
  flaky:
    type: shell
    cmd: |
      echo "attempt $STROEM_ATTEMPT"
      if [ "$STROEM_ATTEMPT" -lt 3 ]; then echo "failing $STROEM_ATTEMPT" >&2; exit 3; fi
    retry: { max_attempts: 5, backoff: 300ms, backoff_strategy: exponential, max_backoff: 1s }
  broken:
    type: shell
    cmd: 'echo "broken attempt $STROEM_ATTEMPT"; exit 1'
    retry: { max_attempts: 4, backoff: 100ms }

tasks:
  flaky:
    flow:
      f: { action: flaky }
  override:
    flow:
      b: { action: broken, retry: { max_attempts: 2, backoff: 100ms } }
  no-retry:
    flow:
      b: { action: broken, retry: { max_attempts: 1 } }
  backoff-cancel:
    flow:
      b: { action: broken, retry: { max_attempts: 3, backoff: 1m } }
`

// Retries end to end: max_attempts counts executions (1 = no retry), a
// step's policy wins over its action's, every attempt is kept with its own
// error, timing and logs, backoff waits between attempts, and a job
// cancelled while a step backs off never starts another attempt.
func TestFaultRetries(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, faultOpts{workflow: faultRetryWorkflow})
	s.startWorker("w1", 4, 3*time.Second)
	flaky := s.execute("flaky", nil)
	override := s.execute("override", nil)
	noRetry := s.execute("no-retry", nil)
	backoff := s.execute("backoff-cancel", nil)

	{ // flaky step succeeds on its third attempt
		j, d := s.requireJob(flaky, stroem.JobCompleted)
		st := stepOf(t, j, "f")
		require.Equal(t, 3, st.Attempt)
		require.Equal(t, 5, st.MaxAttempts)
		for i, a := range st.Attempts {
			require.Equal(t, i+1, a.Attempt)
			require.NotNil(t, a.CompletedAt)
			if i < 2 {
				require.Equal(t, stroem.AttemptFailed, a.Status)
				require.Equal(t, fmt.Sprintf("exit code 3: failing %d", i+1), a.ErrorMessage)
				require.NotNil(t, a.ExitCode)
				require.Equal(t, 3, *a.ExitCode)
			}
		}
		require.Equal(t, stroem.AttemptCompleted, st.Attempts[2].Status)
		// Exponential backoff: at least 300 ms, then 600 ms between attempts.
		for i, want := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond} {
			gap := d.Attempts["f"][i+1].StartedAt.Sub(*d.Attempts["f"][i].CompletedAt)
			require.GreaterOrEqual(t, gap, want, "backoff before attempt %d", i+2)
			figure(t, fmt.Sprintf("backoff before attempt %d (policy %s)", i+2, want), gap)
		}
		// Each attempt's lines are stored under its number.
		for _, l := range s.logLines(flaky, "f") {
			if l.Stream == stroem.Stdout {
				require.Equal(t, fmt.Sprintf("attempt %d", l.Attempt), l.Text)
			} else {
				require.Equal(t, fmt.Sprintf("failing %d", l.Attempt), l.Text)
			}
		}
	}

	{ // a step's policy wins over its action's
		j, _ := s.requireJob(override, stroem.JobFailed)
		st := stepOf(t, j, "b")
		require.Equal(t, 2, st.MaxAttempts)
		require.Equal(t, 2, st.Attempt, "max_attempts counts executions")
		require.Equal(t, "exit code 1", st.ErrorMessage)
	}

	{ // max_attempts 1 is no retry
		j, _ := s.requireJob(noRetry, stroem.JobFailed)
		require.Equal(t, 1, stepOf(t, j, "b").Attempt)
	}

	{ // a job cancelled during a backoff never retries
		// Attempt 1 failed; the step waits a minute for attempt 2.
		require.Eventually(t, func() bool {
			d := s.dbState(backoff)
			st := d.Steps["b"]
			return st.Status == "ready" && st.Attempt == 1 && st.AttemptStatus == "failed"
		}, waitFor, 20*time.Millisecond)
		code, body := s.do("POST", "/api/jobs/"+backoff+"/cancel", nil)
		require.Equal(t, http.StatusOK, code, string(body))
		j, d := s.requireJob(backoff, stroem.JobCancelled)
		require.Equal(t, stroem.StepCancelled, stepOf(t, j, "b").Status)
		require.Len(t, d.Attempts["b"], 1, "no attempt after the cancel")
		require.Equal(t, "failed", d.Attempts["b"][0].Status)
	}
}
