package runner

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// A step's completion claims the slot's next step: the step queued behind
// it comes in the completion's answer, and is acknowledged and run like a
// claimed one, with no long poll in between.
func TestWorkerCompletionBringsTheNextStep(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.enqueue(shellAssignment("j", "a", "echo a"))
	f.enqueue(shellAssignment("j", "b", "echo b"))
	startWorker(t, f, nil) // one slot

	require.True(t, f.waitCompletion("a").Succeeded())
	c := f.waitCompletion("b")
	require.True(t, c.Succeeded(), c.Error)
	require.Equal(t, []string{"b"}, f.texts("j", "b"))
	require.Equal(t, "claim", f.handedOutBy("a"))
	require.Equal(t, "complete", f.handedOutBy("b"), "b came with a's completion")
	f.with(func(f *fakeServer) {
		require.Equal(t, 1, f.startCalls["b"], "acknowledged before it ran")
		require.Equal(t, 0, f.linesAtStart["b"])
		require.NotEmpty(t, f.nextAsked)
		require.Equal(t, stroem.NextClaim{WorkerID: "w1", Capabilities: []string{"shell"}}, f.nextAsked[0])
	})
}

// A step the completion's answer brings already started (the server
// recorded its start with the hand-over) runs without a `start` report.
func TestWorkerRunsAStartedHandOffWithoutAcknowledging(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.enqueue(shellAssignment("j", "a", "echo a"))
	b := shellAssignment("j", "b", "echo b")
	b.Started = true
	f.enqueue(b)
	startWorker(t, f, nil) // one slot: b comes with a's completion

	require.True(t, f.waitCompletion("a").Succeeded())
	c := f.waitCompletion("b")
	require.True(t, c.Succeeded(), c.Error)
	require.Equal(t, []string{"b"}, f.texts("j", "b"))
	require.Equal(t, "complete", f.handedOutBy("b"))
	f.with(func(f *fakeServer) {
		require.Equal(t, 1, f.startCalls["a"], "a was claimed: acknowledged")
		require.Zero(t, f.startCalls["b"], "b was started by the server")
	})
}

// A server older than the field never answers a step with a completion:
// the slot long-polls for the next one, as before.
func TestWorkerCompletionWithAnOlderServer(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.with(func(f *fakeServer) { f.noNext = true })
	f.enqueue(shellAssignment("j", "a", "echo a"))
	f.enqueue(shellAssignment("j", "b", "echo b"))
	startWorker(t, f, nil)

	require.True(t, f.waitCompletion("a").Succeeded())
	require.True(t, f.waitCompletion("b").Succeeded())
	require.Equal(t, "claim", f.handedOutBy("a"))
	require.Equal(t, "claim", f.handedOutBy("b"))
}

// A worker shutting down asks for no more work: the completion of a step
// that ends after the shutdown began carries no claim, and the step queued
// behind it is not handed to the worker.
func TestWorkerShuttingDownClaimsNothingWithItsCompletion(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	path, release := flag(t)
	_, stop := startWorker(t, f, func(c *WorkerConfig) {
		c.MaxConcurrent = 2
		c.ClaimWait = 30 * time.Second // the idle slot's long poll lasts until the shutdown aborts it
	})
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.outstanding == 2
	}, 10*time.Second, 5*time.Millisecond)
	f.enqueue(shellAssignment("j", "a", waitFor(path)))
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.startCalls["a"] == 1 && f.outstanding == 1
	}, 10*time.Second, 5*time.Millisecond)

	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.outstanding == 0
	}, 10*time.Second, 5*time.Millisecond, "the idle slot's long poll is aborted")
	f.enqueue(shellAssignment("j", "b", "echo b"))
	release()
	<-stopped

	c, ok := f.completion("a")
	require.True(t, ok)
	require.True(t, c.Succeeded(), c.Error)
	require.Nil(t, c.Next, "no claim while shutting down")
	require.Empty(t, f.handedOutBy("b"))
}
