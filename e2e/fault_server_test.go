package e2e

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// faultCountLines is how many numbered lines each `count` step prints.
const faultCountLines = 25

// countWorkflow: each `count` step prints numbered lines for about 2.5 s,
// so a server or database can be stopped while steps run, print and finish;
// at its end it leaves a file <marks>/<job>-<step>, so a test can tell that
// a step's process finished even while no server runs. `chain` is a → b,
// `chain3` is a → b → c, `long` one step printing 100 lines (10 s).
func countWorkflow(marks string) string {
	return fmt.Sprintf(`
actions:
  count:
    type: shell
    cmd: |
      i=0
      while [ $i -lt %d ]; do i=$((i+1)); echo "$STROEM_STEP line $i"; sleep 0.1; done
      touch "%s/$STROEM_JOB_ID-$STROEM_STEP"
  count-long:
    type: shell
    cmd: |
      i=0
      while [ $i -lt 100 ]; do i=$((i+1)); echo "$STROEM_STEP line $i"; sleep 0.1; done
tasks:
  chain:
    flow:
      a: { action: count }
      b: { action: count, depends_on: [a] }
  chain3:
    flow:
      a: { action: count }
      b: { action: count, depends_on: [a] }
      c: { action: count, depends_on: [b] }
  long:
    flow:
      a: { action: count-long }
`, faultCountLines, marks)
}

// kill -9 the server while steps run and print; the steps finish while it is
// down. Restarted on the same database and log directory, it gets every
// report the workers made meanwhile: every job completes, each step ran
// once, and every line each step printed is stored once, in order.
func TestFaultServerKilled(t *testing.T) {
	t.Parallel()
	marks := t.TempDir()
	s := startFaultStack(t, faultOpts{workflow: countWorkflow(marks)})
	s.startWorker("w1", 2, 3*time.Second)
	s.startWorker("w2", 2, 3*time.Second)
	const jobs = 3
	var ids []string
	for range jobs {
		ids = append(ids, s.execute("chain", nil))
	}
	for _, id := range ids {
		s.waitLog(id, "a line 3")
	}

	fault := time.Now()
	kill9(s.server)
	// Stay down until every step `a` has finished: its last lines and its
	// completion are made while no server runs (a worker sends the
	// completion once the step's lines are delivered).
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if !fileExists(filepath.Join(marks, id+"-a")) {
				return false
			}
		}
		return true
	}, waitFor, 20*time.Millisecond, "the steps never finished while the server was down")
	restart := time.Now()
	figure(t, "server down (SIGKILL → restart)", restart.Sub(fault))
	s.startServer()
	figure(t, "server restart → ready", time.Since(restart))

	var slowest time.Duration
	for _, id := range ids {
		j := s.waitJobWithin(id, waitFor)
		slowest = max(slowest, j.CompletedAt.Sub(restart))
		j, d := s.requireJob(id, stroem.JobCompleted)
		for _, st := range j.Steps {
			require.Equal(t, 1, st.Attempt, "step %s ran once\n%s", st.StepName, describeJob(j))
		}
		require.True(t, d.Attempts["a"][0].CompletedAt.After(restart),
			"job %s: step a ended while the server was down; its completion was accepted after the restart", id)
		s.requireAllLines(id, []string{"a", "b"}, faultCountLines)
		// Lines printed while no server ran were delivered after the restart.
		printedWhileDown := 0
		for _, l := range s.logLines(id, "a") {
			if l.TS.After(fault) && l.TS.Before(restart) {
				printedWhileDown++
			}
		}
		require.Positive(t, printedWhileDown, "job %s: no line printed while the server was down was delivered", id)
	}
	figure(t, "server restart → last job completed", slowest)
}

// SIGTERM the server while steps run: it exits 0 within its shutdown grace;
// the workers ride through, and once a server runs again every job
// completes with each step run once and every line stored once.
func TestFaultServerGracefulRestart(t *testing.T) {
	t.Parallel()
	const grace = 5 * time.Second
	s := startFaultStack(t, faultOpts{workflow: countWorkflow(t.TempDir()), serverGrace: grace})
	s.startWorker("w1", 2, 3*time.Second)
	s.startWorker("w2", 2, 3*time.Second)
	var ids []string
	for range 3 {
		ids = append(ids, s.execute("chain", nil))
	}
	for _, id := range ids {
		s.waitLog(id, "a line 3")
	}

	fault := time.Now()
	old := s.server
	signalGroup(t, old, syscall.SIGTERM)
	took := waitExit(t, old, grace+faultMargin)
	require.NoError(t, old.err, "the server exits 0 on SIGTERM")
	require.Contains(t, old.out.String(), "shutting down")
	figure(t, "server SIGTERM → exited 0 (shutdown_grace 5s)", took)

	restart := time.Now()
	s.startServer()
	var slowest time.Duration
	for _, id := range ids {
		j := s.waitJobWithin(id, waitFor)
		slowest = max(slowest, j.CompletedAt.Sub(restart))
		j, _ = s.requireJob(id, stroem.JobCompleted)
		for _, st := range j.Steps {
			require.Equal(t, 1, st.Attempt, "step %s ran once\n%s", st.StepName, describeJob(j))
		}
		s.requireAllLines(id, []string{"a", "b"}, faultCountLines)
	}
	figure(t, "server SIGTERM → restarted → last job completed", time.Since(fault))
	figure(t, "server SIGTERM, restart → last job completed", slowest)
}

// requireAllLines asserts that each step's stored lines are exactly
// "<step> line 1" … "<step> line n": none lost, none twice, in order.
func (s *faultStack) requireAllLines(id string, steps []string, n int) {
	s.t.Helper()
	for _, step := range steps {
		var want, got []string
		for i := 1; i <= n; i++ {
			want = append(want, fmt.Sprintf("%s line %d", step, i))
		}
		var prev int64
		for _, l := range s.logLines(id, step) {
			got = append(got, l.Text)
			require.Greater(s.t, l.Seq, prev, "sequence numbers grow")
			prev = l.Seq
		}
		require.Equal(s.t, want, got, "job %s step %s: every printed line stored once, in order", id, step)
	}
}
