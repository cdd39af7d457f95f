package actors

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// goroutineID is the number runtime.Stack prints for the calling goroutine
// ("goroutine 17 [running]:"), or -1. It runs on the pool's goroutines, so
// it reports rather than fails.
func goroutineID() int {
	buf := make([]byte, 64)
	f := bytes.Fields(buf[:runtime.Stack(buf, false)])
	if len(f) < 2 {
		return -1
	}
	id, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return -1
	}
	return id
}

// goroutineStacks maps each live goroutine's id to its stack, as
// runtime.Stack prints them all.
func goroutineStacks() map[int]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[int]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		var id int
		if _, err := fmt.Sscanf(g, "goroutine %d ", &id); err == nil {
			stacks[id] = g
		}
	}
	return stacks
}

// idleInPool reports whether goroutine id waits in a pool for work.
func idleInPool(id int) bool {
	g, ok := goroutineStacks()[id]
	return ok && strings.HasPrefix(g, fmt.Sprintf("goroutine %d [select", id)) &&
		strings.Contains(g, "actors.(*goPool).run")
}

// requireGoroutinesGone waits until none of the goroutines ids is alive
// (goroutine ids are never reused). Only the pool's own goroutines are
// checked: goleak.VerifyNone(t, goleak.IgnoreCurrent()) also caught
// goroutines of earlier tests that end by themselves (a step actor's timer
// firing into a stopped actor system, protoactor's dead-letter throttle),
// which failed these tests on a busy machine.
func requireGoroutinesGone(t *testing.T, ids ...int) {
	t.Helper()
	require.Eventually(t, func() bool {
		stacks := goroutineStacks()
		for _, id := range ids {
			if _, ok := stacks[id]; ok {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "a goroutine of the closed pool is still alive")
}

// Functions run one after another reuse the pool's goroutine instead of
// each starting one (the point of the pool: a grown stack is kept). Each
// is handed over once the goroutine waits in the pool again (a fixed 5 ms
// pause was not always long enough on a busy machine); once closed, the
// pool keeps no goroutine.
func TestGoPoolReusesItsGoroutines(t *testing.T) {
	p := newGoPool()
	const n = 20
	first := -1
	for i := range n {
		got := make(chan int)
		p.Go(func() { got <- goroutineID() })
		id := <-got
		require.GreaterOrEqual(t, id, 0, "a goroutine id from runtime.Stack")
		if i == 0 {
			first = id
		}
		require.Equal(t, first, id, "function %d ran on another goroutine than the first", i)
		require.Eventually(t, func() bool { return idleInPool(id) }, 10*time.Second, time.Millisecond,
			"the goroutine returns to the pool")
	}
	p.close()
	requireGoroutinesGone(t, first)
}

// Go never waits for a goroutine to become idle: functions that block run
// side by side; and once closed, the pool keeps no goroutine.
func TestGoPoolNeverWaitsAndStops(t *testing.T) {
	p := newGoPool()
	const n = 5
	release := make(chan struct{})
	var started, done sync.WaitGroup
	var mu sync.Mutex
	var ids []int
	ran := func() {
		mu.Lock()
		ids = append(ids, goroutineID())
		mu.Unlock()
	}
	started.Add(n)
	done.Add(n)
	for range n {
		p.Go(func() {
			ran()
			started.Done()
			<-release
			done.Done()
		})
	}
	started.Wait() // all five are running at once
	close(release)
	done.Wait()
	p.close()
	after := make(chan struct{})
	p.Go(func() { ran(); close(after) }) // after close: still run
	<-after
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, ids, n+1)
	requireGoroutinesGone(t, ids...)
}
