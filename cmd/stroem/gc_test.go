package main

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGCPercent(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, 32 * mib, 400},         // nothing live yet
		{1 * mib, 32 * mib, 400},   // a small heap: 5× its live size
		{8 * mib, 32 * mib, 400},   // headroom exactly 4× the live heap
		{16 * mib, 32 * mib, 200},  // the heap grows by the headroom
		{30 * mib, 32 * mib, 106},  //
		{32 * mib, 32 * mib, 100},  // Go's default from here on
		{500 * mib, 32 * mib, 100}, // a big heap: never less than Go's default
		{4 * mib, 16 * mib, 400},
		{10 * mib, 16 * mib, 160},
	} {
		require.Equal(t, c.want, gcPercent(c.live, c.headroom), "live %d MiB, headroom %d MiB", c.live/mib, c.headroom/mib)
	}
}

// The tuner sets the percent for the live heap after every collection, and
// only when it changed.
func TestGCTunerFollowsTheLiveHeap(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	live := uint64(2 * mib)
	var set []int
	tu := &gcTuner{headroom: 32 * mib, live: func() uint64 { return live }, set: func(p int) int { set = append(set, p); return 0 }}
	tu.adjust()
	tu.adjust()
	live = 16 * mib
	tu.adjust()
	live = 64 * mib
	tu.adjust()
	live = 1 * mib
	tu.adjust()
	require.Equal(t, []int{400, 200, 100, 400}, set)
}

// recordedPercents is a fake debug.SetGCPercent.
type recordedPercents struct {
	mu  sync.Mutex
	set []int
}

func (r *recordedPercents) record(p int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.set = append(r.set, p)
	return 0
}

func (r *recordedPercents) get() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.set...)
}

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// A GOGC in the environment wins (GOGC=off included): the percent is left
// alone. GOMEMLIMIT does not stop the tuning: the runtime applies both.
func TestGCControlEnvironment(t *testing.T) {
	t.Parallel()
	for _, gogc := range []string{"150", "off"} {
		var r recordedPercents
		g := &gcControl{set: r.record, live: func() uint64 { return 1 << 20 }}
		require.False(t, g.start(env(map[string]string{"GOGC": gogc}), serverGCHeadroom), "GOGC=%s", gogc)
		require.Nil(t, g.tuner)
		require.Empty(t, r.get())
	}

	var r recordedPercents
	g := &gcControl{set: r.record, live: func() uint64 { return 1 << 20 }}
	require.True(t, g.start(env(map[string]string{"GOMEMLIMIT": "1GiB"}), serverGCHeadroom))
	t.Cleanup(func() { g.tuner.stopped.Store(true) })
	require.Equal(t, []int{400}, r.get())
	// Started once per process.
	require.True(t, g.start(env(nil), workerGCHeadroom))
	require.Equal(t, []int{400}, r.get())
	require.Equal(t, uint64(serverGCHeadroom), g.tuner.headroom)
}

// Re-armed after each collection: the tuner sees every one.
func TestGCTunerRunsAfterEachCollection(t *testing.T) {
	t.Parallel()
	var r recordedPercents
	g := &gcControl{set: r.record, live: liveHeap}
	require.True(t, g.start(env(nil), serverGCHeadroom))
	t.Cleanup(func() { g.tuner.stopped.Store(true) })
	for want := int64(2); want <= 4; want++ {
		require.Eventually(t, func() bool {
			runtime.GC()
			return g.tuner.adjusted.Load() >= want
		}, 10*time.Second, 10*time.Millisecond)
	}
}
