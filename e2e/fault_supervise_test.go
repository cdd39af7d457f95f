package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// markedWorkflow's step leaves a marker file run-<pid> holding "<pid>
// <attempt>" in the directory %[1]s while it runs (removed on exit, except
// when it is killed with SIGKILL) and appends "<attempt> <pid>" to a ledger
// when it starts, noting any other copy it finds alive. Its first attempt
// starts a grandchild that traps SIGTERM, then hangs.
const markedWorkflow = `
actions:
  marked:
    type: shell
    cmd: |
      d=%[1]s
      echo "$$ $STROEM_ATTEMPT" > "$d/tmp-$$"; mv "$d/tmp-$$" "$d/run-$$"
      trap 'rm -f "$d/run-$$"' EXIT
      echo "$STROEM_ATTEMPT $$" >> "$d/ledger"
      for f in "$d"/run-*; do
        p=${f##*-}
        if [ "$p" != "$$" ] && kill -0 "$p" 2>/dev/null; then echo "overlap $$ $p" >> "$d/ledger"; fi
      done
      echo "pgid $$ attempt $STROEM_ATTEMPT"
      if [ "$STROEM_ATTEMPT" = 1 ]; then
        sh -c 'trap "echo grandchild got TERM" TERM; echo $$ > '"$d"'/gc.tmp; mv '"$d"'/gc.tmp '"$d"'/grandchild; while :; do sleep 0.1; done' &
        sleep 120
      fi
      sleep 0.5
      echo "finished attempt $STROEM_ATTEMPT"

tasks:
  marked:
    flow:
      s: { action: marked, retry: { max_attempts: 3, backoff: 100ms } }
`

// markerWatch polls a marker directory and remembers the most copies of the
// step it saw alive at once, and every attempt it saw.
type markerWatch struct {
	stop func()
	done chan struct{}

	mu      sync.Mutex
	maxLive int
	polls   int
	seen    map[string]int // marker → attempt
}

func watchMarkers(t *testing.T, dir string) *markerWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &markerWatch{stop: cancel, done: make(chan struct{}), seen: map[string]int{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			w.poll(dir)
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

func (w *markerWatch) poll(dir string) {
	names, _ := filepath.Glob(filepath.Join(dir, "run-*"))
	live := 0
	w.mu.Lock()
	defer w.mu.Unlock()
	w.polls++
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			continue // removed meanwhile
		}
		var pid, attempt int
		if _, err := fmt.Sscan(string(b), &pid, &attempt); err != nil {
			continue
		}
		w.seen[filepath.Base(n)] = attempt
		if alive(pid) {
			live++
		}
	}
	w.maxLive = max(w.maxLive, live)
}

// result stops the watch and returns what it saw.
func (w *markerWatch) result() (maxLive, polls int, attempts []int) {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.seen {
		attempts = append(attempts, a)
	}
	return w.maxLive, w.polls, attempts
}

// readPIDFile waits for a pid file written by a step.
func readPIDFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, waitFor, 10*time.Millisecond, "%s never written", path)
	return pid
}

// Issue 26 (a): kill -9 of the worker during a step whose script started a
// grandchild that traps SIGTERM. Within 1 s no process of the step is left;
// the retry runs on the other worker exactly once; at no moment do two
// copies of the step run.
func TestFaultWorkerKilledTakesItsStepAlong(t *testing.T) {
	t.Parallel()
	markers := t.TempDir()
	s := startFaultStack(t, faultOpts{workflow: fmt.Sprintf(markedWorkflow, markers)})
	w1 := s.startWorker("w1", 1, 3*time.Second)
	id := s.execute("marked", nil)
	w1ID := s.workerID("w1")
	require.Equal(t, w1ID, s.waitRunningOn(id, "s"))
	pgid := s.stepPGID(id)
	grandchild := readPIDFile(t, filepath.Join(markers, "grandchild"))
	require.True(t, groupAlive(pgid))
	require.True(t, alive(grandchild))
	watch := watchMarkers(t, markers)
	s.startWorker("w2", 1, 3*time.Second) // only now: the step is w1's
	w2ID := s.workerID("w2")

	fault := time.Now()
	kill9(w1)
	require.Eventually(t, func() bool { return !groupAlive(pgid) && !alive(grandchild) },
		time.Second, 2*time.Millisecond, "a process of the step (group %d, grandchild %d) outlived its worker by 1 s", pgid, grandchild)
	figure(t, "worker SIGKILL → every process of its step gone", time.Since(fault))

	j := s.waitJobWithin(id, faultLease+faultMargin)
	figure(t, "worker SIGKILL → retried on the other worker, job completed", j.CompletedAt.Sub(fault))
	j, d := s.requireJob(id, stroem.JobCompleted)
	st := stepOf(t, j, "s")
	require.Equal(t, 2, st.Attempt, describeJob(j))
	require.Len(t, d.Attempts["s"], 2)
	require.Equal(t, "lost", d.Attempts["s"][0].Status)
	require.Equal(t, w1ID, d.Attempts["s"][0].WorkerID)
	require.Equal(t, "completed", d.Attempts["s"][1].Status)
	require.Equal(t, w2ID, d.Attempts["s"][1].WorkerID, "the retry ran on the other worker")

	maxLive, polls, attempts := watch.result()
	require.Equal(t, 1, maxLive, "two copies of the step ran at once (%d polls)", polls)
	require.ElementsMatch(t, []int{1, 2}, attempts, "every copy that ran, by attempt")
	ledger, err := os.ReadFile(filepath.Join(markers, "ledger"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(ledger)), "\n")
	require.Len(t, lines, 2, "the step started twice in all: %q", ledger)
	require.True(t, strings.HasPrefix(lines[0], "1 ") && strings.HasPrefix(lines[1], "2 "), "%q", ledger)
	logs := s.logs(id)
	require.Equal(t, 1, strings.Count(logs, "finished attempt 2"), "the retry ran exactly once")
	require.NotContains(t, logs, "finished attempt 1")
	t.Logf("marker directory polled %d times while the step was retried", polls)
}

// startAckWorkflow's step appends "<attempt> <pid>" to a ledger in %[1]s
// whenever it starts.
const startAckWorkflow = `
actions:
  once:
    type: shell
    cmd: |
      echo "$STROEM_ATTEMPT $$" >> %[1]s/ledger
      echo "ran attempt $STROEM_ATTEMPT"
      sleep 0.3

tasks:
  once:
    flow:
      s: { action: once }
`

// Issue 26 (b): a worker frozen with SIGSTOP while its idle long poll is
// open gets a step handed over and never acknowledges it. Within the start
// timeout the step is ready again and runs on the other worker, its attempt
// count unchanged (no retry policy: a lost attempt would have failed the
// job). The frozen worker, resumed, has its late acknowledgement refused and
// does not run the step.
func TestFaultUnacknowledgedHandOffRunsElsewhere(t *testing.T) {
	t.Parallel()
	const startTimeout = time.Second // the server's default with a 2 s lease
	dir := t.TempDir()
	s := startFaultStack(t, faultOpts{workflow: fmt.Sprintf(startAckWorkflow, dir)})
	w1 := s.startWorker("w1", 1, 3*time.Second)
	w1ID := s.workerID("w1")
	s.waitHeartbeat("w1") // its long poll is open: it polls right after registering

	signalGroup(t, w1, syscall.SIGSTOP)
	id := s.execute("once", nil)
	require.Equal(t, w1ID, s.waitRunningOn(id, "s"), "the step was handed to the frozen worker")
	var handed time.Time // the hand-off, on the database clock
	require.NoError(t, s.pool().QueryRow(context.Background(),
		`SELECT started_at FROM job_steps WHERE job_id = $1 AND step_name = 's' AND worker_id = $2`, id, w1ID).Scan(&handed))
	s.startWorker("w2", 1, 3*time.Second) // only now, so the step could only go to w1
	w2ID := s.workerID("w2")

	j := s.waitJobWithin(id, faultLease+faultMargin)
	j, d := s.requireJob(id, stroem.JobCompleted)
	st := stepOf(t, j, "s")
	require.Equal(t, 1, st.Attempt, "the unacknowledged hand-off used no attempt: %s", describeJob(j))
	require.Len(t, d.Attempts["s"], 1)
	require.Equal(t, w2ID, d.Attempts["s"][0].WorkerID)
	require.Equal(t, "completed", d.Attempts["s"][0].Status)
	givenBack := s.givenBackAt(id)
	figure(t, "hand-off to a frozen worker → given back (ready again)", givenBack.Sub(handed))
	require.Less(t, givenBack.Sub(handed), startTimeout+500*time.Millisecond, "not given back within the start timeout")
	require.GreaterOrEqual(t, givenBack.Sub(handed), startTimeout, "given back before the start timeout")
	figure(t, "hand-off to a frozen worker → running on the other worker (started after the hand-off)",
		d.Attempts["s"][0].StartedAt.Sub(handed))
	figure(t, "hand-off to a frozen worker → job completed", j.CompletedAt.Sub(handed))

	// The frozen worker comes back: its acknowledgement is refused, and it
	// runs nothing.
	// (Frozen for longer than its long poll's client timeout — a very loaded
	// machine — it finds its claim timed out instead, and never saw the step.)
	signalGroup(t, w1, syscall.SIGCONT)
	require.Eventually(t, func() bool {
		out := w1.out.String()
		return strings.Contains(out, "step not started: the server gave it back") ||
			strings.Contains(out, "server unavailable")
	}, waitFor, 20*time.Millisecond, "the resumed worker never tried to start the step")
	// A late acknowledgement with the shared token is refused outright
	// (only register takes it; every other worker call needs the worker's
	// own credential, docs/security.md); the worker's own one got 409 above.
	code, body := s.workerPost("/worker/jobs/"+id+"/steps/s/start", stroem.StepStart{WorkerID: w1ID, Attempt: 1})
	require.Equal(t, http.StatusUnauthorized, code, body)
	ledger, err := os.ReadFile(filepath.Join(dir, "ledger"))
	require.NoError(t, err)
	require.Len(t, strings.Split(strings.TrimSpace(string(ledger)), "\n"), 1, "the step ran once: %q", ledger)
	require.Equal(t, 1, strings.Count(s.logs(id), "ran attempt 1"))
	j2, d2 := s.requireJob(id, stroem.JobCompleted)
	require.Equal(t, j.CompletedAt, j2.CompletedAt)
	require.Equal(t, d.Attempts, d2.Attempts)
}

// givenBackAt is when the server logged that it gave back the job's
// unacknowledged step.
func (s *faultStack) givenBackAt(id string) time.Time {
	s.t.Helper()
	for _, line := range strings.Split(s.server.out.String(), "\n") {
		if !strings.Contains(line, "was not acknowledged in time") || !strings.Contains(line, id) {
			continue
		}
		ts, _, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		require.True(s.t, ok, line)
		at, err := time.Parse(time.RFC3339Nano, ts)
		require.NoError(s.t, err, line)
		return at
	}
	s.t.Fatalf("the server never logged giving back job %s's step", id)
	return time.Time{}
}

// waitHeartbeat waits until the named worker has heartbeated once.
func (s *faultStack) waitHeartbeat(name string) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		var ws struct{ Items []stroem.Worker }
		if s.getJSON("/api/workers", &ws) != http.StatusOK {
			return false
		}
		for _, w := range ws.Items {
			if w.Name == name && w.LastHeartbeatAt.After(w.RegisteredAt) {
				return true
			}
		}
		return false
	}, waitFor, 20*time.Millisecond, "worker %s never heartbeated", name)
}
