package main

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWorkerProcs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ slots, procs, want int }{
		{1, 8, 1}, {4, 8, 1}, {16, 8, 1}, {17, 8, 2}, {64, 8, 4},
		{64, 2, 2}, // never more than Go would use
		{200, 8, 8},
		{0, 8, 1}, {1, 1, 1},
	} {
		require.Equal(t, c.want, workerProcs(c.slots, c.procs), "%d slots, %d procs", c.slots, c.procs)
	}
}

// Not parallel: it sets the process's GOMAXPROCS (and puts it back).
func TestTuneWorkerProcsLeavesTheEnvironmentsValue(t *testing.T) {
	prev := runtime.GOMAXPROCS(2) // as the environment's GOMAXPROCS=2 would, also on a 1-CPU machine
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })

	require.Equal(t, 2, tuneWorkerProcs(env(map[string]string{"GOMAXPROCS": "2"}), 4))
	require.Equal(t, 2, runtime.GOMAXPROCS(0), "the environment's GOMAXPROCS is left alone")

	require.Equal(t, 1, tuneWorkerProcs(env(nil), 4))
	require.Equal(t, 1, runtime.GOMAXPROCS(0))
}
