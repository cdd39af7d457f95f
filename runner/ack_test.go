package runner

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
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
