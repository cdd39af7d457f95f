package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

const semanticsWorkflow = `
secrets:
  missing: "ref+env://STROEM_E2E_NEVER_SET"

actions:
  ok:
    type: shell
    input: { name: { type: string, required: true } }
    cmd: 'echo "ran $INPUT_NAME"'
  fail:
    type: shell
    cmd: 'echo "failing" >&2; exit 7'
  use-missing-secret:
    type: shell
    env: { TOKEN: "{{ secret.missing }}" }
    cmd: 'echo "never runs"'

tasks:
  # a fails: b and c (transitively) are skipped; d is independent and runs.
  skip-chain:
    flow:
      a: { action: fail }
      b: { action: ok, depends_on: [a], input: { name: b } }
      c: { action: ok, depends_on: [b], input: { name: c } }
      d: { action: ok, input: { name: d } }
      e: { action: ok, depends_on: [c, d], input: { name: e } }

  # x fails with continue_on_failure: its dependents run as if it completed.
  tolerated:
    flow:
      x: { action: fail, continue_on_failure: true }
      y: { action: ok, depends_on: [x], input: { name: y } }
      z: { action: ok, depends_on: [y], input: { name: z } }

  secret-unset:
    flow:
      s: { action: use-missing-secret }
`

func TestFailureSemantics(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, semanticsWorkflow)})
	chain := s.execute("skip-chain", nil)
	tolerated := s.execute("tolerated", nil)
	secret := s.execute("secret-unset", nil)

	t.Run("dependents of a failure are skipped", func(t *testing.T) {
		j := s.waitJob(chain)
		requireEnded(t, j, stroem.JobFailed, map[string]stroem.StepStatus{
			"a": stroem.StepFailed, "b": stroem.StepSkipped, "c": stroem.StepSkipped,
			"d": stroem.StepCompleted, "e": stroem.StepSkipped,
		})
		require.Equal(t, "exit code 7: failing", stepOf(t, j, "a").ErrorMessage)
		require.Equal(t, `skipped: dependency "a" failed`, stepOf(t, j, "b").ErrorMessage)
		logs := s.logs(chain)
		require.Contains(t, logs, "ran d")
		require.NotContains(t, logs, "ran b")
		require.NotContains(t, logs, "ran e")
	})

	t.Run("continue_on_failure", func(t *testing.T) {
		j := s.waitJob(tolerated)
		requireEnded(t, j, stroem.JobCompleted, map[string]stroem.StepStatus{
			"x": stroem.StepFailed, "y": stroem.StepCompleted, "z": stroem.StepCompleted,
		})
		require.Contains(t, s.logs(tolerated), "ran z")
	})

	t.Run("an unresolved secret fails the step that uses it", func(t *testing.T) {
		j := s.waitJob(secret)
		require.Equal(t, stroem.JobFailed, j.Status, describeJob(j))
		msg := stepOf(t, j, "s").ErrorMessage
		require.Contains(t, msg, "STROEM_E2E_NEVER_SET")
		require.NotContains(t, s.logs(secret), "never runs")
	})
}

const cancelWorkflow = `
actions:
  long:
    type: shell
    # The step's shell starts a grandchild; cancelling must end both.
    cmd: |
      sleep 300 &
      echo "shell $$ child $!"
      wait
  after:
    type: shell
    cmd: 'echo "after ran"'
tasks:
  sleeper:
    flow:
      sleep: { action: long }
      next: { action: after, depends_on: [sleep] }
`

// Cancelling a job stops its running step's whole process group on the
// worker, cancels the steps that did not start, and ends the job cancelled.
func TestCancelRunningStep(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, cancelWorkflow)})
	id := s.execute("sleeper", nil)
	logs := s.waitLog(id, "child ")

	var shellPID, childPID int
	_, err := fmt.Sscanf(logs[strings.Index(logs, "shell "):], "shell %d child %d", &shellPID, &childPID)
	require.NoError(t, err, logs)
	require.True(t, alive(shellPID), "the step's shell runs")
	require.True(t, alive(childPID), "the step's grandchild runs")

	code, body := s.do("POST", "/api/jobs/"+id+"/cancel", nil)
	require.Equal(t, 200, code, string(body))

	j := s.waitJob(id)
	requireEnded(t, j, stroem.JobCancelled, map[string]stroem.StepStatus{"sleep": stroem.StepCancelled, "next": stroem.StepCancelled})
	require.Eventually(t, func() bool { return !alive(shellPID) && !alive(childPID) }, waitFor, 20*time.Millisecond,
		"the step's processes outlived the cancel")
	require.NotContains(t, s.logs(id), "after ran")

	// Cancelling again is a conflict, not a change.
	code, body = s.do("POST", "/api/jobs/"+id+"/cancel", nil)
	require.Equal(t, 409, code, string(body))
}

const sseWorkflow = `
actions:
  gated:
    type: shell
    input: { gate: { type: string, required: true } }
    # Three lines, then wait for the test to create the gate file, then three more.
    cmd: |
      for i in 1 2 3; do echo "line $i"; done
      while [ ! -e "$INPUT_GATE" ]; do sleep 0.05; done
      for i in 4 5 6; do echo "line $i"; done
tasks:
  gated:
    input: { gate: { type: string, required: true } }
    flow:
      run: { action: gated, input: { gate: "{{ input.gate }}" } }
`

// The log stream through the real server: replay of stored lines, then live
// lines, then `event: done`; Last-Event-ID resumes exactly after a line.
func TestLogStreamSSE(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, sseWorkflow)})
	gate := filepath.Join(t.TempDir(), "gate")
	id := s.execute("gated", map[string]any{"gate": gate})
	s.waitLog(id, "line 3")

	expect := func(c *sseConn, from, to int) {
		t.Helper()
		for i := from; i <= to; i++ {
			l := logLine(t, c.next(t))
			require.Equal(t, int64(i), l.Seq, "want line %d next, got %q", i, l.Text)
			require.Equal(t, "line "+strconv.Itoa(i), l.Text)
			require.Equal(t, "run", l.Step)
			require.Equal(t, stroem.Stdout, l.Stream)
		}
	}
	done := func(c *sseConn, status stroem.JobStatus) {
		t.Helper()
		ev := c.next(t)
		require.Equal(t, "done", ev.event, "%+v", ev)
		require.JSONEq(t, `{"status": "`+string(status)+`"}`, ev.data)
		c.ended(t)
	}

	// Replay: the three stored lines; then the client goes away.
	first := s.openSSE(id, "")
	expect(first, 1, 3)
	first.close()

	// Resume after line 2 while the job still runs: line 3 is replayed,
	// lines 4-6 arrive live once the gate opens, then done.
	second := s.openSSE(id, "2")
	expect(second, 3, 3)
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	expect(second, 4, 6)
	done(second, stroem.JobCompleted)

	// After the job ended: resume after line 5 gives exactly line 6 and done.
	third := s.openSSE(id, "5")
	expect(third, 6, 6)
	done(third, stroem.JobCompleted)

	// A finished job replays in full.
	require.Equal(t, stroem.JobCompleted, s.job(id).Status)
	fourth := s.openSSE(id, "")
	expect(fourth, 1, 6)
	done(fourth, stroem.JobCompleted)
}
