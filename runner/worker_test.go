package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func newClient(t *testing.T, url, token string) *client.Client {
	t.Helper()
	c, err := client.New(url, client.WithToken(token), client.WithTimeout(5*time.Second))
	require.NoError(t, err)
	return c
}

// testLogger writes the worker's log into the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func shellAssignment(job, step, cmd string) stroem.Assignment {
	return stroem.Assignment{JobID: job, StepName: step, ActionName: "a", Spec: stroem.StepSpec{Cmd: cmd}}
}

// flag returns a path a step can wait for (`until [ -f X ]`) and a function
// that creates it.
func flag(t *testing.T) (string, func()) {
	p := filepath.Join(t.TempDir(), "go")
	return p, func() { require.NoError(t, os.WriteFile(p, nil, 0o644)) }
}

func waitFor(path string) string {
	return fmt.Sprintf("until [ -f %s ]; do sleep 0.02; done", path)
}

func TestWorkerRunsStepsAndKeepsClaimsOutstanding(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	startWorker(t, f, func(c *WorkerConfig) { c.MaxConcurrent = 3 })

	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.outstanding == 3
	}, 10*time.Second, 5*time.Millisecond, "an idle worker keeps one long poll per slot")

	for i := range 4 {
		f.enqueue(shellAssignment("job-"+strconv.Itoa(i), "step "+strconv.Itoa(i),
			fmt.Sprintf(`echo "hello $STROEM_STEP"; echo 'OUTPUT: {"n": %d}'`, i)))
	}
	for i := range 4 {
		step := "step " + strconv.Itoa(i)
		c := f.waitCompletion(step)
		require.True(t, c.Succeeded(), c.Error)
		require.Equal(t, map[string]any{"n": float64(i)}, c.Output)
		require.Equal(t, "w1", c.WorkerID)
		require.Equal(t, 1, c.Attempt)
		require.Equal(t, []string{"hello " + step, fmt.Sprintf(`OUTPUT: {"n": %d}`, i)}, f.texts("job-"+strconv.Itoa(i), step))
	}
	f.with(func(f *fakeServer) {
		require.LessOrEqual(t, f.maxOutstanding, 3, "never more polls than slots")
		require.Empty(t, f.logAnomalies)
	})
}

func TestWorkerShipsLinesWhileTheStepRuns(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	startWorker(t, f, nil)
	gate, open := flag(t)
	f.enqueue(shellAssignment("j", "s", "echo first; "+waitFor(gate)+"; echo second"))

	require.Eventually(t, func() bool {
		return len(f.texts("j", "s")) == 1
	}, 5*time.Second, 5*time.Millisecond, "a printed line reaches the server while the step still runs")
	_, done := f.completion("s")
	require.False(t, done)
	open()
	c := f.waitCompletion("s")
	require.True(t, c.Succeeded(), c.Error)
	require.Equal(t, []string{"first", "second"}, f.texts("j", "s"))
}

func TestWorkerRetriesCompletionUntilAcknowledged(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.completeAnswers["s"] = []int{503, 503, 500} })
	startWorker(t, f, nil)
	f.enqueue(shellAssignment("j", "s", "echo ok"))
	c := f.waitCompletion("s")
	require.True(t, c.Succeeded())
	require.Equal(t, 4, f.calls("s"))
}

// A state download that meets a server being restarted is retried: the
// step runs once the server answers, instead of failing without running.
func TestWorkerRetriesStateDownloadWhileTheServerIsDown(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.stateAnswers = []int{503, 503} })
	startWorker(t, f, nil)
	f.enqueue(shellAssignment("j", "s", "echo ran"))
	c := f.waitCompletion("s")
	require.True(t, c.Succeeded(), "%+v", c)
	f.with(func(f *fakeServer) {
		require.Equal(t, 4, f.stateCalls, "two refused, then the task and the global state")
	})
}

// A server that says which state scopes have a snapshot spares the
// worker the downloads of the others; STATE_DIR is then empty and
// read-only, as when a download finds none.
func TestWorkerDownloadsOnlyTheStateTheAssignmentNames(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	startWorker(t, f, nil)
	none := shellAssignment("j", "none", `test "$(stat -c %a "$STATE_DIR")" = 555 && test -z "$(ls -A "$STATE_DIR")" && test -z "$(ls -A "$GLOBAL_STATE_DIR")"`)
	none.State = &stroem.AssignmentState{}
	f.enqueue(none)
	c := f.waitCompletion("none")
	require.True(t, c.Succeeded(), "%+v", c)
	f.with(func(f *fakeServer) { require.Equal(t, 0, f.stateCalls, "no snapshot of either scope: nothing asked") })

	global := shellAssignment("j", "global", "true")
	global.State = &stroem.AssignmentState{Global: true}
	f.enqueue(global)
	c = f.waitCompletion("global")
	require.True(t, c.Succeeded(), "%+v", c)
	f.with(func(f *fakeServer) { require.Equal(t, 1, f.stateCalls, "only the global state is asked for") })
}

func TestWorkerStopsRetryingOnConflict(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.completeAnswers["stale"] = []int{409, 409, 409, 409} })
	startWorker(t, f, nil)
	f.enqueue(shellAssignment("j", "stale", "echo ok"))
	f.enqueue(shellAssignment("j", "next", "echo ok"))
	f.waitCompletion("next") // one slot: the stale step's report is over
	require.Equal(t, 1, f.calls("stale"), "409 ends the retries")
}

func TestWorkerCancelFromHeartbeatKillsTheProcessGroup(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.heartbeatMS = 50 })
	startWorker(t, f, nil)
	f.enqueue(shellAssignment("j", "s", "echo $$; sleep 100 & sleep 100 & wait"))
	var pgid int
	require.Eventually(t, func() bool {
		if l := f.texts("j", "s"); len(l) > 0 {
			pgid, _ = strconv.Atoi(l[0])
			return true
		}
		return false
	}, 5*time.Second, 5*time.Millisecond)
	f.with(func(f *fakeServer) { f.cancel[stroem.StepRef{JobID: "j", Step: "s", Attempt: 1}] = true })
	c := f.waitCompletion("s")
	require.Equal(t, "cancelled: cancelled by the server", c.Error)
	requireGroupGone(t, pgid)
}

func TestWorkerCancelFromLogPush(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.heartbeatMS = 60_000 }) // only a push can tell
	startWorker(t, f, nil)
	f.with(func(f *fakeServer) { f.cancel[stroem.StepRef{JobID: "j", Step: "s", Attempt: 1}] = true })
	f.enqueue(shellAssignment("j", "s", "while true; do echo tick; sleep 0.05; done"))
	c := f.waitCompletion("s")
	require.Equal(t, "cancelled: cancelled by the server", c.Error)
}

func TestWorkerDropsAStaleAttempt(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.pushConflict["s"] = true })
	startWorker(t, f, nil)
	f.enqueue(shellAssignment("j", "s", "echo $$; sleep 100"))
	f.enqueue(shellAssignment("j", "after", "echo next"))
	f.waitCompletion("after")
	require.Equal(t, 0, f.calls("s"), "a step whose logs got 409 is stopped and not reported")
}

func TestWorkerSurvivesServerOutage(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	startWorker(t, f, nil)
	gate, open := flag(t)
	finished := filepath.Join(t.TempDir(), "finished")
	f.enqueue(shellAssignment("j", "s", "echo before; "+waitFor(gate)+
		`; for i in $(seq 1 300); do echo "line $i"; done; echo 'OUTPUT: {"ok": true}'; touch `+finished))
	require.Eventually(t, func() bool { return len(f.texts("j", "s")) == 1 }, 5*time.Second, 5*time.Millisecond)

	f.stop()
	open()
	require.Eventually(t, func() bool {
		_, err := os.Stat(finished)
		return err == nil
	}, 10*time.Second, 10*time.Millisecond, "the step keeps running while the server is down")
	time.Sleep(300 * time.Millisecond) // let a few pushes and reports fail
	f.start()

	c := f.waitCompletion("s")
	require.True(t, c.Succeeded(), c.Error)
	require.Equal(t, map[string]any{"ok": true}, c.Output)
	want := []string{"before"}
	for i := 1; i <= 300; i++ {
		want = append(want, "line "+strconv.Itoa(i))
	}
	want = append(want, `OUTPUT: {"ok": true}`)
	require.Equal(t, want, f.texts("j", "s"), "every line delivered once, in order")
	f.with(func(f *fakeServer) { require.Empty(t, f.logAnomalies) })
}

func TestWorkerRetriedPushIsDeduplicated(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.loseAckOnce["s"] = true })
	startWorker(t, f, nil)
	f.enqueue(shellAssignment("j", "s", "echo a; echo b; sleep 0.2; echo c"))
	f.waitCompletion("s")
	require.Equal(t, []string{"a", "b", "c"}, f.texts("j", "s"))
}

// seqLines is the expected log of `seq 1 n` with a "line " prefix.
func seqLines(from, to int) []string {
	var want []string
	for i := from; i <= to; i++ {
		want = append(want, "line "+strconv.Itoa(i))
	}
	return want
}

func TestWorkerBackpressureLosesNothingWhileTheServerIsSlow(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.pushDelay = 5 * time.Millisecond })
	w, _ := startWorker(t, f, func(c *WorkerConfig) {
		c.LogBatchLines = 10
		c.LogBufferLines = 20 // far fewer than the step prints
	})
	f.enqueue(shellAssignment("j", "s", `for i in $(seq 1 3000); do echo "line $i"; done`))
	c := f.waitCompletion("s")
	require.True(t, c.Succeeded(), c.Error)
	require.Equal(t, seqLines(1, 3000), f.texts("j", "s"), "the step waited for its log: every line stored once, in order")
	f.with(func(f *fakeServer) { require.Empty(t, f.logAnomalies, "offsets stay contiguous") })
	entries, err := os.ReadDir(filepath.Join(w.cfg.WorkDir, "spool"))
	if err == nil {
		require.Empty(t, entries, "a reachable server needs no spool")
	}
}

// The shipper's memory holds at most LogBufferLines lines counting the
// pushes in flight, so a worker does not read a flooding step's output far
// ahead of what the server has stored (each line read is a line waiting).
func TestShipperBufferCountsThePushesInFlight(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	gate := make(chan struct{})
	f.with(func(f *fakeServer) { f.pushGate = gate })
	w, err := NewWorker(newClient(t, f.url(), "cred-w1"), WorkerConfig{ // as if registered as w1
		WorkDir: t.TempDir(), LogBatchLines: 10, LogBufferLines: 30, LogBatchDelay: time.Millisecond,
	}, testLogger(t))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newShipper(w, ctx, "w1", stroem.StepRef{JobID: "j", Step: "s", Attempt: 1}, func(error) {})
	loopDone := make(chan struct{})
	var added atomic.Int64
	go func() {
		defer close(loopDone)
		for i := 1; i <= 100; i++ {
			s.add(stroem.PushLine{TS: time.Now(), Stream: stroem.Stdout, Text: "line " + strconv.Itoa(i)})
			added.Add(1)
		}
		s.close()
		s.wait() // the loop the first line started
	}()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.inFlight > 0 && len(s.pending)+s.flyLines == 30
	}, 10*time.Second, time.Millisecond, "the buffer fills while the server holds the push")
	time.Sleep(50 * time.Millisecond) // add would take more lines now if it could
	s.mu.Lock()
	inFlight, fly, pending := s.inFlight, s.flyLines, len(s.pending)
	s.mu.Unlock()
	require.Positive(t, fly, "lines are in flight")
	require.Equal(t, 30, fly+pending, "waiting and in-flight lines together fill LogBufferLines (%d pushes in flight)", inFlight)
	require.EqualValues(t, 30, added.Load(), "add blocks at LogBufferLines, in flight included")
	close(gate)
	select {
	case <-loopDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the shipper did not finish once the server answered")
	}
	require.Equal(t, seqLines(1, 100), f.texts("j", "s"), "every line stored once, in order")
}

func TestWorkerPushesInFlightAreStoredInOrder(t *testing.T) {
	t.Parallel()
	for _, old := range []bool{false, true} {
		t.Run(map[bool]string{false: "Server", true: "OlderServer"}[old], func(t *testing.T) {
			t.Parallel()
			f := newFakeServer(t)
			f.with(func(f *fakeServer) { f.slowPush, f.slowPushNo, f.oldServer = 300*time.Millisecond, 2, old })
			startWorker(t, f, func(c *WorkerConfig) {
				c.LogBatchLines = 10
				c.LogBatchDelay = time.Millisecond
			})
			f.enqueue(shellAssignment("j", "s", `for i in $(seq 1 500); do echo "line $i"; done`))
			c := f.waitCompletion("s")
			require.True(t, c.Succeeded(), c.Error)
			require.Equal(t, seqLines(1, 500), f.texts("j", "s"), "every line stored once, in order")
			f.with(func(f *fakeServer) {
				require.Empty(t, f.logAnomalies, "offsets stay contiguous")
				if old {
					require.Zero(t, f.aheads, "a server that does not echo Ordered gets one push at a time")
				} else {
					require.Positive(t, f.aheads, "a push overtook the slow one and was sent again")
				}
			})
		})
	}
}

// outageRun runs a step that prints n lines while the server is down, then
// brings the server back and returns the stored log.
func outageRun(t *testing.T, n int, mutate func(*WorkerConfig)) []string {
	f := newFakeServer(t)
	startWorker(t, f, mutate)
	gate, open := flag(t)
	finished := filepath.Join(t.TempDir(), "finished")
	started := filepath.Join(t.TempDir(), "started")
	f.enqueue(shellAssignment("j", "s", "touch "+started+"; "+waitFor(gate)+
		`; for i in $(seq 1 `+strconv.Itoa(n)+`); do echo "line $i"; done; touch `+finished))
	require.Eventually(t, func() bool {
		_, err := os.Stat(started)
		return err == nil
	}, 60*time.Second, 5*time.Millisecond, "the step was claimed")
	f.stop()
	open()
	require.Eventually(t, func() bool {
		_, err := os.Stat(finished)
		return err == nil
	}, 3*time.Minute, 10*time.Millisecond, "the step does not block while the server is down") // a blocked step would never finish: the bound only ends a failing run
	f.start()
	c := f.waitCompletion("s")
	require.True(t, c.Succeeded(), c.Error)
	f.with(func(f *fakeServer) { require.Empty(t, f.logAnomalies, "offsets stay contiguous") })
	return f.texts("j", "s")
}

func TestWorkerSpoolsWhileTheServerIsDown(t *testing.T) {
	t.Parallel()
	lines := outageRun(t, 2000, func(c *WorkerConfig) {
		c.LogBatchLines = 10
		c.LogBufferLines = 50 // most lines go through the spool file
	})
	require.Equal(t, seqLines(1, 2000), lines, "spooled lines are shipped in order once the server is back")
}

func TestWorkerDropsOnlyWhenTheSpoolIsFullWithAnExactMarker(t *testing.T) {
	t.Parallel()
	// 30,000 lines of ~11 bytes: far more than the pipe holds (4 KiB, see
	// stepPipeBytes), so the step can only finish once the worker has read
	// most of them while the server is down; what is still in the pipe, if
	// anything, is read after it is back.
	const n = 30000
	lines := outageRun(t, n, func(c *WorkerConfig) {
		c.LogBatchLines = 10
		c.LogBufferLines = 50
		c.LogSpoolBytes = 8 << 10 // about 100 spooled lines
	})
	marker := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "[stroem] ") {
			require.Equal(t, -1, marker, "one marker: %q", l)
			marker = i
		}
	}
	require.NotEqual(t, -1, marker, "lines were dropped, and a marker says so")
	require.Contains(t, lines[marker], "log spool (8192 bytes) was full")
	dropped, err := strconv.Atoi(strings.Fields(lines[marker])[1])
	require.NoError(t, err)
	before, after := lines[:marker], lines[marker+1:]
	require.Less(t, len(before), 400, "memory and spool are bounded")
	require.Equal(t, seqLines(1, len(before)), before, "the oldest lines are kept, in order")
	if len(after) == 0 {
		after = nil // the pipe was read out while the server was down: the marker is last
	}
	require.Equal(t, seqLines(len(before)+dropped+1, n), after, "the marker stands exactly where the dropped lines were")
}

func TestWorkerReregistersWhenForgotten(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	w, _ := startWorker(t, f, func(c *WorkerConfig) { c.MaxConcurrent = 2 })
	require.Eventually(t, func() bool { return w.ID() == "w1" }, 5*time.Second, 5*time.Millisecond)
	f.with(func(f *fakeServer) { f.workers = map[string]bool{} }) // a server that lost its memory
	require.Eventually(t, func() bool { return w.ID() == "w2" }, 10*time.Second, 5*time.Millisecond)
	f.enqueue(shellAssignment("j", "s", "echo ok"))
	c := f.waitCompletion("s")
	require.Equal(t, "w2", c.WorkerID)
	f.with(func(f *fakeServer) {
		require.Equal(t, 2, f.registers, "one re-registration, however many slots noticed")
	})
}

func TestWorkerRegistersOnceTheServerIsUp(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.stop()
	w, _ := startWorker(t, f, nil)
	require.Never(t, func() bool { return w.ID() != "" }, 300*time.Millisecond, 10*time.Millisecond, "no server, no registration")
	f.start()
	require.Eventually(t, func() bool { return w.ID() != "" }, 10*time.Second, 5*time.Millisecond)
}

func TestWorkerRefusedTokenIsAnError(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	w, err := NewWorker(newClient(t, f.url(), "wrong"), WorkerConfig{Name: "x", WorkDir: t.TempDir()}, testLogger(t))
	require.NoError(t, err)
	err = w.Run(t.Context())
	require.ErrorIs(t, err, stroem.ErrUnauthorized)
	require.ErrorContains(t, err, "register with http://")
}

func TestWorkerGracefulShutdownLetsStepsFinish(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	_, stop := startWorker(t, f, func(c *WorkerConfig) { c.MaxConcurrent = 2 })
	f.enqueue(shellAssignment("j", "s", "echo started; sleep 0.5; echo finished"))
	require.Eventually(t, func() bool { return len(f.texts("j", "s")) == 1 }, 5*time.Second, 5*time.Millisecond)
	start := time.Now()
	stop() // returns once Run has returned nil
	require.Less(t, time.Since(start), 5*time.Second)
	c, ok := f.completion("s")
	require.True(t, ok, "the running step was reported before Run returned")
	require.True(t, c.Succeeded(), c.Error)
	require.Equal(t, []string{"started", "finished"}, f.texts("j", "s"))
	f.with(func(f *fakeServer) { require.Zero(t, f.outstanding, "long polls were aborted") })
}

func TestWorkerGracefulShutdownCancelsAfterGrace(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	_, stop := startWorker(t, f, func(c *WorkerConfig) { c.ShutdownGrace = 200 * time.Millisecond })
	f.enqueue(shellAssignment("j", "s", "echo $$; sleep 100"))
	require.Eventually(t, func() bool { return len(f.texts("j", "s")) == 1 }, 5*time.Second, 5*time.Millisecond)
	pgid, err := strconv.Atoi(f.texts("j", "s")[0])
	require.NoError(t, err)
	start := time.Now()
	stop()
	require.Less(t, time.Since(start), 5*time.Second)
	c, ok := f.completion("s")
	require.True(t, ok)
	require.Equal(t, "cancelled: worker shutting down", c.Error)
	requireGroupGone(t, pgid)
}

func TestWorkerDownloadsTheWorkspaceOncePerRevision(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	deploy, err := os.ReadFile("/work/shared/compat/upstream-mvp/actions/deploy.sh")
	if err != nil {
		deploy = []byte("#!/bin/sh\necho \"OUTPUT: {\\\"status\\\": \\\"deployed\\\", \\\"env\\\": \\\"${DEPLOY_ENV:-staging}\\\"}\"\n")
	}
	f.with(func(f *fakeServer) {
		f.archives["rev1"] = tgz(t, tarEntry{name: "actions/deploy.sh", body: string(deploy), typ: '0', mode: 0o755})
	})
	startWorker(t, f, func(c *WorkerConfig) { c.MaxConcurrent = 2 })
	var wg sync.WaitGroup
	for _, env := range []string{"prod", "qa"} {
		a := stroem.Assignment{JobID: "j", StepName: "deploy-" + env, Revision: "rev1",
			Spec: stroem.StepSpec{Script: "actions/deploy.sh", Env: map[string]string{"DEPLOY_ENV": env}}}
		f.enqueue(a)
		wg.Go(func() {
			c := f.waitCompletion("deploy-" + env)
			require.True(t, c.Succeeded(), c.Error)
			require.Equal(t, map[string]any{"status": "deployed", "env": env}, c.Output)
		})
	}
	wg.Wait()
	f.with(func(f *fakeServer) { require.Equal(t, 1, f.archiveFetches) })

	f.enqueue(stroem.Assignment{JobID: "j", StepName: "gone", Revision: "nope", Spec: stroem.StepSpec{Cmd: "true"}})
	c := f.waitCompletion("gone")
	require.Contains(t, c.Error, "get the workspace files")
	require.Contains(t, c.Error, "unknown revision")
}

// A step that prints nothing costs no shipping loop; its first line starts
// one, which delivers it.
func TestShipperStartsAtTheFirstLine(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	w, err := NewWorker(newClient(t, f.url(), "cred-w1"), WorkerConfig{WorkDir: t.TempDir()}, testLogger(t))
	require.NoError(t, err)
	quiet := newShipper(w, context.Background(), "w1", stroem.StepRef{JobID: "j", Step: "quiet", Attempt: 1}, func(error) {})
	quiet.close()
	quiet.wait()
	require.False(t, quiet.started, "no line, no loop")
	require.Empty(t, f.texts("j", "quiet"))

	s := newShipper(w, context.Background(), "w1", stroem.StepRef{JobID: "j", Step: "s", Attempt: 1}, func(error) {})
	s.add(stroem.PushLine{TS: time.Now(), Stream: stroem.Stdout, Text: "line 1"})
	s.close()
	s.wait()
	require.True(t, s.started)
	require.Equal(t, seqLines(1, 1), f.texts("j", "s"))
}

// An idle worker heartbeats every idle period the server gave it, not every
// heartbeat period; the first step it starts brings the next heartbeat
// forward (its lease wants renewals), and while steps run it heartbeats
// every heartbeat period. Idle again, it heartbeats sooner only while the
// server asks for it.
func TestWorkerHeartbeatsIdleAtTheIdlePeriod(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.heartbeatMS, f.idleHeartbeatMS = 50, 60_000 })
	startWorker(t, f, nil)
	beats := func() []int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return slices.Clone(f.beats)
	}
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.registers > 0
	}, 10*time.Second, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // six heartbeat periods
	require.Empty(t, beats(), "idle: nothing before the idle period")

	gate, open := flag(t)
	f.enqueue(shellAssignment("j", "s", waitFor(gate)))
	require.Eventually(t, func() bool {
		n := 0
		for _, running := range beats() {
			if running == 1 {
				n++
			}
		}
		return n >= 3
	}, 10*time.Second, 5*time.Millisecond, "a running step's lease renewed every heartbeat period, from its start")

	f.with(func(f *fakeServer) { f.soonMS = 50 })
	open()
	f.waitCompletion("s")
	idleSince := len(beats())
	require.Eventually(t, func() bool {
		b := beats()
		return len(b) >= idleSince+3 && b[len(b)-1] == 0
	}, 10*time.Second, 5*time.Millisecond, "idle, but the server asks for heartbeats sooner")

	f.with(func(f *fakeServer) { f.soonMS = 0 })
	// The answer in flight may still ask; once one has not, the next
	// heartbeat is an idle period away (heartbeats go one at a time).
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.beatsSoon[len(f.beatsSoon)-1] == 0
	}, 10*time.Second, 5*time.Millisecond)
	n := len(beats())
	time.Sleep(300 * time.Millisecond)
	require.Len(t, beats(), n, "no more heartbeats before the idle period")
}

// A worker starts a step supervisor for each of its slots once it has
// registered, so that its first steps do not pay for starting one; a step
// then takes one of those. Not parallel: it counts the process-wide pool.
func TestWorkerStartsASupervisorPerSlotAhead(t *testing.T) {
	emptyPool(t)
	pool := func() (live, idle, want int) {
		supervisors.mu.Lock()
		defer supervisors.mu.Unlock()
		return supervisors.live, len(supervisors.idle), supervisors.want
	}

	f := newFakeServer(t)
	_, stop := startWorker(t, f, func(c *WorkerConfig) {
		c.MaxConcurrent = 3
		c.Runner = nil // the worker's own ShellRunner, as stroem worker runs
	})
	require.Eventually(t, func() bool {
		live, idle, want := pool()
		return live == 3 && idle == 3 && want == 3
	}, 30*time.Second, 10*time.Millisecond, "three supervisors started, idle, before any step")

	f.enqueue(shellAssignment("j", "s", "echo ran"))
	require.True(t, f.waitCompletion("s").Succeeded())
	live, idle, _ := pool()
	require.Equal(t, 3, live, "the step took a started supervisor: none was started for it")
	require.Equal(t, 3, idle)

	stop()
	live, idle, want := pool()
	require.Equal(t, [3]int{3, 3, 0}, [3]int{live, idle, want}, "a stopped worker asks for none, and the started ones stay pooled")
	drainSupervisors()
	live, _, _ = pool()
	require.Zero(t, live)
}

// Workers of one process (stroem dev runs two) share the pool: together
// they start as many supervisors as their slots, not more. Not parallel:
// it counts the process-wide pool.
func TestPrestartedSupervisorsAreTheWorkersSlots(t *testing.T) {
	emptyPool(t)
	t.Cleanup(drainSupervisors)
	log := testLogger(t)
	for round := range 5 {
		var stops [3]func()
		for i := range stops {
			stops[i] = prestartSupervisors(2, log)
		}
		most := 0
		require.Eventually(t, func() bool {
			supervisors.mu.Lock()
			defer supervisors.mu.Unlock()
			most = max(most, supervisors.live)
			return supervisors.live >= 6 && supervisors.starting == 0
		}, 30*time.Second, time.Millisecond, "round %d", round)
		require.Equal(t, 6, most, "round %d: never more than the slots", round)
		for _, stop := range stops {
			stop()
		}
		supervisors.mu.Lock()
		live, want := supervisors.live, supervisors.want
		supervisors.mu.Unlock()
		require.Equal(t, [2]int{6, 0}, [2]int{live, want}, "round %d", round)
		drainSupervisors()
	}
}

// emptyPool waits until no supervisor is left (idle ones are ended; one an
// earlier test killed may still be on its way out) and none is asked for.
func emptyPool(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		drainSupervisors()
		supervisors.mu.Lock()
		defer supervisors.mu.Unlock()
		return supervisors.live == 0 && supervisors.want == 0 && supervisors.starting == 0
	}, 10*time.Second, 10*time.Millisecond, "nothing runs, and the pool is empty")
}

// drainSupervisors ends the pool's idle supervisors.
func drainSupervisors() {
	supervisors.mu.Lock()
	idle := supervisors.idle
	supervisors.idle = nil
	supervisors.mu.Unlock()
	for _, s := range idle {
		s.discard()
	}
}
