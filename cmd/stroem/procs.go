package main

import (
	"os"
	"runtime"
)

// The worker's GOMAXPROCS (docs/operations.md, "Go runtime"). A worker's own
// work is small and comes in many short bursts: a step's start, its output,
// its completion. With more than one P the Go scheduler wakes an idle thread
// to look for work at each burst, which finds none; on the bench's 2-CPU
// machine that made up about a sixth of a worker's own CPU per step (issue
// 23: fan-out, three pairs, 1.37 → 1.12 ms with GOMAXPROCS=1; the log bench
// stored as many lines per second). So a worker runs one P per 16 slots
// (rounded up), at most as many as Go would use. A user's GOMAXPROCS in the
// environment wins. The step supervisors run with GOMAXPROCS=1 anyway
// (runner/supervise.go), and the steps are programs of their own.

// workerSlotsPerProc is how many slots share one P of a worker.
const workerSlotsPerProc = 16

// workerProcs is the GOMAXPROCS of a worker with slots slots, where Go
// would use procs.
func workerProcs(slots, procs int) int {
	return max(1, min(procs, (slots+workerSlotsPerProc-1)/workerSlotsPerProc))
}

// tuneWorkerProcs sets the worker's GOMAXPROCS unless the environment does;
// it returns the GOMAXPROCS the worker runs with.
func tuneWorkerProcs(getenv func(string) string, slots int) int {
	if getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := workerProcs(slots, runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(n)
	return n
}

// tuneWorker is tuneWorkerProcs for this process.
func tuneWorker(slots int) int { return tuneWorkerProcs(os.Getenv, slots) }
