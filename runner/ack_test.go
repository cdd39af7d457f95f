package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

func TestWorkerAcknowledgesBeforeTheStepRuns(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.startAnswers["s"] = []int{503, 503} })
	startWorker(t, f, nil)
	f.enqueue(shellAssignment("j", "s", "echo ran"))
	c := f.waitCompletion("s")
	require.True(t, c.Succeeded(), c.Error)
	f.with(func(f *fakeServer) {
		require.Equal(t, 3, f.startCalls["s"], "start is retried while the server is unavailable")
		require.Equal(t, 0, f.linesAtStart["s"], "nothing of the step ran before its start was acknowledged")
	})
	require.Equal(t, []string{"ran"}, f.texts("j", "s"))
}

func TestWorkerDropsAStepGivenBackBeforeItStarted(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.startAnswers["given-back"] = []int{409} })
	startWorker(t, f, nil)
	ran := filepath.Join(t.TempDir(), "ran")
	f.enqueue(shellAssignment("j", "given-back", "touch "+ran))
	f.enqueue(shellAssignment("j", "next", "echo ok"))
	f.waitCompletion("next") // one slot: the given-back step is over
	_, err := os.Stat(ran)
	require.ErrorIs(t, err, os.ErrNotExist, "a step refused at start never runs")
	require.Equal(t, 0, f.calls("given-back"), "nor is it reported")
	require.Empty(t, f.texts("j", "given-back"))
	f.with(func(f *fakeServer) { require.Equal(t, 1, f.startCalls["given-back"], "409 ends the retries") })
}

// The same attempt handed to the worker twice (given back while its start
// was on its way, then claimed again by another slot) runs once.
func TestWorkerRunsTheSameAttemptOnce(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.startAnswers["s"] = []int{503, 503, 503} }) // the first start is held up
	startWorker(t, f, func(c *WorkerConfig) { c.MaxConcurrent = 2 })
	ran := filepath.Join(t.TempDir(), "ran")
	a := shellAssignment("j", "s", "echo x >> "+ran)
	f.enqueue(a)
	f.enqueue(a)
	c := f.waitCompletion("s")
	require.True(t, c.Succeeded(), c.Error)
	f.enqueue(shellAssignment("j", "next", "echo ok")) // both slots are free again once it is done
	f.waitCompletion("next")
	b, err := os.ReadFile(ran)
	require.NoError(t, err)
	require.Equal(t, "x\n", string(b), "the step ran once")
}

// gateSpy is a runner wrapper (as the worker's metrics and tracing are)
// that tells when the step reached its gate, prepared, and whether the
// server had accepted the start when the gate let the step run.
type gateSpy struct {
	Runner
	f        *fakeServer
	step     string // the step watched
	atGate   chan struct{}
	accepted atomic.Bool // the server had accepted the start when the gate returned
	refused  atomic.Bool // the gate returned an error
	noGate   atomic.Bool
}

func (g *gateSpy) Run(ctx context.Context, step Step, sink func(stroem.PushLine)) Result {
	inner := step.Gate
	if step.Name != g.step {
		return g.Runner.Run(ctx, step, sink)
	}
	if inner == nil {
		g.noGate.Store(true)
		return g.Runner.Run(ctx, step, sink)
	}
	step.Gate = func() error {
		close(g.atGate)
		err := inner()
		g.refused.Store(err != nil)
		g.f.with(func(f *fakeServer) { g.accepted.Store(f.startAccepted[step.Name]) })
		return err
	}
	return g.Runner.Run(ctx, step, sink)
}

// holdStarts makes f hold every start acknowledgement until the returned
// function is called, and returns the channel naming each held step.
func holdStarts(t *testing.T, f *fakeServer) (held <-chan string, release func()) {
	gate, h := make(chan struct{}), make(chan string, 10)
	f.with(func(f *fakeServer) { f.startGate, f.startHeld = gate, h })
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return h, release
}

// noState says the server has no state for a: nothing to download (a state
// download, fenced by the attempt, waits for the acknowledgement).
func noState(a stroem.Assignment) stroem.Assignment {
	a.State = &stroem.AssignmentState{}
	return a
}

func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// The step is prepared while its start acknowledgement is on its way, and
// its process starts only once the server accepted it.
func TestWorkerPreparesTheStepWhileItsStartIsAcknowledged(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	held, release := holdStarts(t, f)
	spy := &gateSpy{f: f, step: "s", atGate: make(chan struct{})}
	startWorker(t, f, func(c *WorkerConfig) { c.WrapRunner = func(r Runner) Runner { spy.Runner = r; return spy } })
	ran := filepath.Join(t.TempDir(), "ran")
	f.enqueue(noState(shellAssignment("j", "s", "touch "+ran)))

	require.Equal(t, "s", receive(t, held, "the start acknowledgement"))
	receive(t, spy.atGate, "the step to be prepared while its start is held")
	_, err := os.Stat(ran)
	require.ErrorIs(t, err, os.ErrNotExist, "the step waits for its acknowledgement")
	f.with(func(f *fakeServer) { require.False(t, f.startAccepted["s"]) })

	release()
	c := f.waitCompletion("s")
	require.True(t, c.Succeeded(), c.Error)
	require.True(t, spy.accepted.Load(), "the gate opened only once the server had accepted the start")
	require.False(t, spy.refused.Load())
	require.False(t, spy.noGate.Load())
	_, err = os.Stat(ran)
	require.NoError(t, err)
}

// A start refused while the step was being prepared: nothing of it runs,
// nothing is reported, and what was prepared goes back to the pools.
func TestWorkerUndoesThePreparationOfARefusedStart(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.startAnswers["given-back"] = []int{409} })
	held, release := holdStarts(t, f)
	spy := &gateSpy{f: f, step: "given-back", atGate: make(chan struct{})}
	w, _ := startWorker(t, f, func(c *WorkerConfig) { c.WrapRunner = func(r Runner) Runner { spy.Runner = r; return spy } })
	ran := filepath.Join(t.TempDir(), "ran")
	f.enqueue(noState(shellAssignment("j", "given-back", "touch "+ran)))

	require.Equal(t, "given-back", receive(t, held, "the start acknowledgement"))
	receive(t, spy.atGate, "the step to be prepared while its start is held")
	release()
	f.enqueue(shellAssignment("j", "next", "echo ok"))
	f.waitCompletion("next") // one slot: the given-back step is over

	_, err := os.Stat(ran)
	require.ErrorIs(t, err, os.ErrNotExist, "a step refused at start never runs")
	require.Equal(t, 0, f.calls("given-back"), "nor is it reported")
	require.Empty(t, f.texts("j", "given-back"))
	require.False(t, spy.accepted.Load())
	require.True(t, spy.refused.Load(), "the runner was told not to start the step")
	shell := w.cfg.Runner.(*ShellRunner)
	require.Eventually(t, func() bool { return poolsHoldEveryDirectory(t, w, shell) }, 10*time.Second, 10*time.Millisecond,
		"every step and state directory is idle in its pool")
}

// poolsHoldEveryDirectory reports whether the worker's step and state
// directories on disk are exactly those idle in its pools (none leaked).
func poolsHoldEveryDirectory(t *testing.T, w *Worker, shell *ShellRunner) bool {
	t.Helper()
	list := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var paths []string
		for _, e := range entries {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
		return paths
	}
	var pooled []string
	shell.dirs.mu.Lock()
	for _, d := range shell.dirs.idle {
		pooled = append(pooled, d.path)
	}
	shell.dirs.mu.Unlock()
	w.files.mu.Lock()
	for _, r := range w.files.roots {
		pooled = append(pooled, r.root)
	}
	w.files.mu.Unlock()
	onDisk := append(list(shell.WorkDir), list(filepath.Join(w.cfg.WorkDir, "files"))...)
	return len(pooled) == 2 && assert.ElementsMatch(&quietT{}, onDisk, pooled)
}

// quietT lets assert compare without failing the test (polled).
type quietT struct{}

func (quietT) Errorf(string, ...any) {}

// ShellRunner: a refusing gate starts nothing and gives the prepared
// directory back; an accepting one is passed right before the process.
func TestShellRunnerGate(t *testing.T) {
	t.Parallel()
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		r := newShell(t)
		ran := filepath.Join(t.TempDir(), "ran")
		step := cmdStep("touch " + ran)
		calls := 0
		step.Gate = func() error { calls++; return errors.New("refused") }
		res, c := run(t, r, step)
		require.True(t, res.NotStarted)
		require.Equal(t, -1, res.ExitCode)
		require.Equal(t, "refused", res.Error)
		require.Equal(t, 1, calls)
		// Run returns once every process of the step is gone: one started
		// before its gate would have left the file.
		_, err := os.Stat(ran)
		require.ErrorIs(t, err, os.ErrNotExist)
		require.Empty(t, c.texts(stroem.Stdout))
		require.Empty(t, c.texts(stroem.Stderr))
		require.Len(t, r.dirs.idle, 1, "the prepared directory is idle again, as handed out")
		entries, err := os.ReadDir(r.WorkDir)
		require.NoError(t, err)
		require.Len(t, entries, 1)
	})
	t.Run("accepted", func(t *testing.T) {
		t.Parallel()
		r := newShell(t)
		ran := filepath.Join(t.TempDir(), "ran")
		step := cmdStep("touch " + ran + "; echo ok")
		calls := 0
		step.Gate = func() error {
			calls++
			_, err := os.Stat(ran)
			require.ErrorIs(t, err, os.ErrNotExist)
			return nil
		}
		res, c := run(t, r, step)
		require.True(t, res.Succeeded(), res.Error)
		require.False(t, res.NotStarted)
		require.Equal(t, 1, calls)
		require.Equal(t, []string{"ok"}, c.texts(stroem.Stdout))
		_, err := os.Stat(ran)
		require.NoError(t, err)
	})
}
