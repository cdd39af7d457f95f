package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// Garbage collection of the long-running processes (docs/operations.md, "Go
// runtime"). Their heaps are small (a server's RSS is ~37 MB at start) and
// Go's default GOGC=100 collects every time the heap doubles: in the
// bench's fan-out that was ~15% of the server's and the workers' CPU per step
// (issue 23; GOGC=400 for the whole bench: server 0.73 → 0.63, workers
// 1.11 → 0.93 ms per step). So a small heap may grow to 5× its live size
// between collections (GOGC=400), but by at most the process kind's headroom
// beyond the live heap: the percent falls as the live heap grows, down to
// Go's default of 100 once the live heap reaches the headroom. A big heap
// therefore never grows 5×, and never less than Go's default lets it. No
// memory limit is set: one below the live heap makes the collector run
// without pause. A user's GOGC in the environment (GOGC=off included) turns
// this off; GOMEMLIMIT works as usual alongside (the runtime collects at
// whichever target comes first).

// GC headroom of each process kind: the most a heap may grow beyond its
// live size between collections while the percent is above Go's default.
// The step supervisor has none: its heap stays under the runtime's 4 MB
// minimum (it collected nothing over the bench's 300-step chain).
//
// The server's live heap was ~7 MB in the bench's chain and fan-out (GOGC
// 400 there) and ~35 MB with 10,000 queued jobs (Go's default there: RSS
// unchanged); a worker's was ~1 MB.
const (
	serverGCHeadroom = 32 << 20 // stroem server and stroem dev
	workerGCHeadroom = 16 << 20 // stroem worker, beside the steps it runs
)

// GC percent bounds: Go's default, and the percent of a small heap.
const (
	gcPercentMin = 100
	gcPercentMax = 400
)

// processGC is the process's GC tuning, started once (dev and the
// scenario tests start several services in one process).
var processGC = gcControl{set: debug.SetGCPercent, live: liveHeap}

// tuneGC starts the process's GC tuning unless the environment sets GOGC.
// It reports whether it did.
func tuneGC(headroom uint64) bool { return processGC.start(os.Getenv, headroom) }

// gcControl starts a gcTuner once.
type gcControl struct {
	once  sync.Once
	set   func(int) int // debug.SetGCPercent
	live  func() uint64 // liveHeap
	tuner *gcTuner
}

func (g *gcControl) start(getenv func(string) string, headroom uint64) bool {
	if getenv("GOGC") != "" {
		return false
	}
	g.once.Do(func() {
		g.tuner = &gcTuner{headroom: headroom, live: g.live, set: g.set}
		g.tuner.adjust()
		g.tuner.arm()
	})
	return true
}

// gcPercent is the GOGC for a live heap of live bytes: headroom/live as a
// percent, between gcPercentMin and gcPercentMax.
func gcPercent(live, headroom uint64) int {
	if live == 0 {
		return gcPercentMax
	}
	p := headroom * 100 / live
	return int(min(max(p, gcPercentMin), gcPercentMax))
}

// gcTuner sets the GC percent after every collection from the live heap the
// collection found. A finalizer, re-armed each time, is how it learns that a
// collection ended (finalizers run after the collection that found their
// object unreachable).
type gcTuner struct {
	headroom uint64
	live     func() uint64
	set      func(int) int // debug.SetGCPercent
	percent  int           // the percent last set
	stopped  atomic.Bool
	adjusted atomic.Int64 // collections seen (for tests)
}

// gcSentinel is an unreachable object whose finalizer runs after each GC.
type gcSentinel struct{ t *gcTuner }

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{t: t}, func(s *gcSentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.adjust()
		s.t.arm()
	})
}

// adjust sets the percent for the current live heap, when it changed.
func (t *gcTuner) adjust() {
	t.adjusted.Add(1)
	if p := gcPercent(t.live(), t.headroom); p != t.percent {
		t.set(p)
		t.percent = p
	}
}

// liveHeap is the heap the latest collection marked live.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
