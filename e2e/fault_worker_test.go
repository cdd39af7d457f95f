package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// The first attempt of `hang` prints its process group and hangs; any later
// attempt finishes at once. `tick` is the same, but its first attempt keeps
// printing, so a worker that comes back has late log lines to push.
const faultWorkerWorkflow = `
actions:
  hang:
    type: shell
    cmd: |
      echo "pgid $$ attempt $STROEM_ATTEMPT"
      if [ "$STROEM_ATTEMPT" = 1 ]; then sleep 120; fi
      echo "finished attempt $STROEM_ATTEMPT"
  tick:
    type: shell
    cmd: |
      echo "pgid $$ attempt $STROEM_ATTEMPT"
      if [ "$STROEM_ATTEMPT" = 1 ]; then
        i=0
        while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done
      fi
      echo "finished attempt $STROEM_ATTEMPT"
  slow:
    type: shell
    cmd: |
      i=0
      while [ $i -lt 9 ]; do i=$((i+1)); echo "still working $i"; sleep 1; done
  sleep:
    type: shell
    cmd: |
      echo "pgid $$"
      sleep 120
  after:
    type: shell
    cmd: 'echo "after ran"'

tasks:
  no-retry:
    flow:
      s: { action: hang }
      next: { action: after, depends_on: [s] }
  with-retry:
    flow:
      s: { action: hang, retry: { max_attempts: 3, backoff: 100ms } }
      next: { action: after, depends_on: [s] }
  cut-off:
    flow:
      s: { action: tick, retry: { max_attempts: 2, backoff: 100ms } }
  slow:
    flow:
      s: { action: slow }
  long:
    flow:
      s: { action: sleep }
      next: { action: after, depends_on: [s] }
`

// A worker killed with SIGKILL mid-step: its lease expires and the step
// fails with "worker lost" (no retry policy), or runs again on the other
// worker (retry policy), within lease + margin. No step has two attempts
// running at once.
func TestFaultWorkerKilled(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, faultOpts{workflow: faultWorkerWorkflow})
	w1 := s.startWorker("w1", 2, 3*time.Second)
	lost := s.execute("no-retry", nil)
	retried := s.execute("with-retry", nil)
	w1ID := s.workerID("w1")
	require.Equal(t, w1ID, s.waitRunningOn(lost, "s"))
	require.Equal(t, w1ID, s.waitRunningOn(retried, "s"))
	pgids := []int{s.stepPGID(lost), s.stepPGID(retried)}
	s.startWorker("w2", 2, 3*time.Second) // only now: the steps are w1's
	w2ID := s.workerID("w2")

	fault := time.Now()
	kill9(w1)
	// The steps die with their worker: their supervisors kill them.
	require.Eventually(t, func() bool { return !groupAlive(pgids[0]) && !groupAlive(pgids[1]) },
		time.Second, 5*time.Millisecond, "a step's process group outlived its worker")

	jl := s.waitJobWithin(lost, faultLease+faultMargin)
	jr := s.waitJobWithin(retried, faultLease+faultMargin)

	j, d := s.requireJob(lost, stroem.JobFailed)
	require.Equal(t, "worker lost (lease expired)", stepOf(t, j, "s").ErrorMessage)
	require.Equal(t, stroem.StepSkipped, stepOf(t, j, "next").Status)
	require.Equal(t, 1, stepOf(t, j, "s").Attempt)
	require.Equal(t, "lost", d.Attempts["s"][0].Status)
	require.Equal(t, w1ID, d.Attempts["s"][0].WorkerID)
	figure(t, "worker SIGKILL → step failed \"worker lost\" (job failed)", jl.CompletedAt.Sub(fault))

	j, d = s.requireJob(retried, stroem.JobCompleted)
	st := stepOf(t, j, "s")
	require.Equal(t, 2, st.Attempt, describeJob(j))
	require.Equal(t, stroem.AttemptLost, st.Attempts[0].Status)
	require.Equal(t, "worker lost (lease expired)", st.Attempts[0].ErrorMessage)
	require.Equal(t, stroem.AttemptCompleted, st.Attempts[1].Status)
	require.Equal(t, w1ID, d.Attempts["s"][0].WorkerID)
	require.Equal(t, w2ID, d.Attempts["s"][1].WorkerID, "the retry ran on the surviving worker")
	logs := s.logs(retried)
	require.Contains(t, logs, "finished attempt 2")
	require.NotContains(t, logs, "finished attempt 1")
	lostAt := *d.Attempts["s"][0].CompletedAt
	figure(t, "worker SIGKILL → attempt declared lost", lostAt.Sub(fault))
	figure(t, "worker SIGKILL → retried on the other worker, job completed", jr.CompletedAt.Sub(fault))
	require.Less(t, lostAt.Sub(fault), faultLease+faultMargin)
}

// A slow worker is not a dead one: a step running for more than four leases,
// with heartbeats arriving, completes in its first attempt.
func TestFaultSlowWorkerIsNotDead(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, faultOpts{workflow: faultWorkerWorkflow})
	s.startWorker("w1", 1, 3*time.Second)
	id := s.execute("slow", nil)
	s.waitRunningOn(id, "s")

	// The lease keeps moving forward while the step runs.
	first := s.dbState(id).Steps["s"].Lease
	require.NotNil(t, first)
	require.Eventually(t, func() bool {
		l := s.dbState(id).Steps["s"].Lease
		return l != nil && l.After(first.Add(faultLease))
	}, waitFor, 100*time.Millisecond, "the lease was never renewed")

	j, d := s.requireJob(id, stroem.JobCompleted)
	st := stepOf(t, j, "s")
	require.Equal(t, 1, st.Attempt, describeJob(j))
	require.Equal(t, "completed", d.Attempts["s"][0].Status)
	run := st.CompletedAt.Sub(*st.StartedAt)
	require.Greater(t, run, 4*faultLease, "the step ran longer than four leases")
	require.Contains(t, s.logs(id), "still working 9")
	figure(t, "slow step ran (one attempt, never declared lost)", run)
}

// A worker cut off from the server (SIGSTOP) loses its lease; the step is
// retried elsewhere. When it comes back (SIGCONT) its late reports are
// refused with 409, it stops the step's processes, and the job's end state
// does not change.
func TestFaultWorkerCutOff(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, faultOpts{workflow: faultWorkerWorkflow})
	// One slot: a stopped worker with an idle slot would keep a long poll
	// open, and a step handed to it would be lost a second time.
	w1 := s.startWorker("w1", 1, 3*time.Second)
	id := s.execute("cut-off", nil)
	w1ID := s.workerID("w1")
	require.Equal(t, w1ID, s.waitRunningOn(id, "s"))
	pgid := s.stepPGID(id)
	s.waitLog(id, "tick 2")
	s.startWorker("w2", 1, 3*time.Second)

	fault := time.Now()
	signalGroup(t, w1, syscall.SIGSTOP)
	j := s.waitJobWithin(id, faultLease+faultMargin)
	figure(t, "worker SIGSTOP → retried on the other worker, job completed", j.CompletedAt.Sub(fault))
	j, d := s.requireJob(id, stroem.JobCompleted)
	require.Equal(t, 2, stepOf(t, j, "s").Attempt, describeJob(j))
	require.Equal(t, "lost", d.Attempts["s"][0].Status)
	require.True(t, groupAlive(pgid), "the cut-off worker's step is still running")

	// A report for w1 made with the shared token is refused: that token
	// only registers, and w1's own credential is w1's alone. (w1's own late
	// report, below, is refused as stale.)
	code, body := s.workerPost("/worker/jobs/"+id+"/steps/s/complete",
		stroem.Completion{WorkerID: w1ID, Attempt: 1, ExitCode: 0})
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, body = s.workerPost("/worker/jobs/"+id+"/steps/s/logs",
		stroem.LogPush{WorkerID: w1ID, Attempt: 1, Offset: 1000, Lines: []stroem.PushLine{{TS: time.Now(), Text: "late"}}})
	require.Equal(t, http.StatusUnauthorized, code, body)

	resumed := time.Now()
	signalGroup(t, w1, syscall.SIGCONT)
	require.Eventually(t, func() bool { return !groupAlive(pgid) }, waitFor, 50*time.Millisecond,
		"the resumed worker never stopped the lost attempt's processes (group %d)", pgid)
	figure(t, "worker SIGCONT → it stopped the lost attempt's processes", time.Since(resumed))
	require.Eventually(t, func() bool {
		out := w1.out.String()
		return strings.Contains(out, "step abandoned: the server gave it to another attempt") ||
			strings.Contains(out, "completion refused as stale")
	}, waitFor, 50*time.Millisecond, "the resumed worker never noticed its attempt was stale")

	// The end state is what it was before the late worker came back.
	j2, d2 := s.requireJob(id, stroem.JobCompleted)
	require.Equal(t, j.CompletedAt, j2.CompletedAt)
	require.Equal(t, d.Attempts, d2.Attempts)
	require.Equal(t, d.Steps, d2.Steps)
	// Every stored line of attempt 1 came before the attempt was declared
	// lost: none of the late worker's lines got in.
	var last1, first2 int64 = 0, -1
	for _, l := range s.logLines(id, "s") {
		switch {
		case l.Attempt == 1:
			last1 = l.Seq
		case l.Attempt == 2 && first2 < 0:
			first2 = l.Seq
		}
		require.NotEqual(t, "late", l.Text)
	}
	require.Greater(t, first2, last1, "attempt 1 stored a line after attempt 2 began")
}

// SIGTERM a worker while a long step runs, then cancel the job during the
// worker's shutdown grace: the step is stopped, the job ends cancelled, and
// the worker exits 0 long before its grace is over.
func TestFaultCancelDuringWorkerGrace(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, faultOpts{workflow: faultWorkerWorkflow})
	const grace = 60 * time.Second
	w := s.startWorker("w1", 2, grace)
	id := s.execute("long", nil)
	s.waitRunningOn(id, "s")
	pgid := s.stepPGID(id)

	term := time.Now()
	signalGroup(t, w, syscall.SIGTERM)
	require.Eventually(t, func() bool {
		return strings.Contains(w.out.String(), "worker stopping: waiting for running steps")
	}, waitFor, 20*time.Millisecond)
	require.False(t, w.exited())

	fault := time.Now()
	code, body := s.do("POST", "/api/jobs/"+id+"/cancel", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	j := s.waitJobWithin(id, faultLease+faultMargin)
	figure(t, "cancel during worker grace → job cancelled", j.CompletedAt.Sub(fault))
	waitExit(t, w, grace/2)
	figure(t, "worker SIGTERM → worker exited (grace 60s)", time.Since(term))
	require.NoError(t, w.err, "the worker exits 0")
	require.False(t, groupAlive(pgid), "the step's processes are gone")

	j, d := s.requireJob(id, stroem.JobCancelled)
	require.Equal(t, stroem.StepCancelled, stepOf(t, j, "s").Status)
	require.Equal(t, stroem.StepCancelled, stepOf(t, j, "next").Status)
	require.Equal(t, "cancelled", d.Attempts["s"][0].Status)
	require.Len(t, d.Attempts["s"], 1, "a cancelled job never starts another attempt")
	require.Contains(t, w.out.String(), "cancelled by the server")
}

// workerPost sends a worker-protocol request with the worker token.
func (s *faultStack) workerPost(path string, body any) (int, string) {
	s.t.Helper()
	b, err := jsonBody(body)
	require.NoError(s.t, err)
	return s.post(path, s.token, b)
}
