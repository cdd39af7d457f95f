package actors

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
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

// Functions run one after another reuse the pool's goroutine instead of
// each starting one (the point of the pool: a grown stack is kept).
func TestGoPoolReusesItsGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := newGoPool()
	defer p.close()
	ids := map[int]bool{}
	const n = 20
	for range n {
		got := make(chan int)
		p.Go(func() { got <- goroutineID() })
		id := <-got
		require.GreaterOrEqual(t, id, 0, "a goroutine id from runtime.Stack")
		ids[id] = true
		time.Sleep(5 * time.Millisecond) // it returns to the pool
	}
	// Usually one goroutine ran them all; a machine busy enough to keep it
	// from its receive for 5 ms makes the next call start another.
	require.LessOrEqual(t, len(ids), n/2, "the functions ran on %d goroutines", len(ids))
}

// Go never waits for a goroutine to become idle: functions that block run
// side by side; and once closed, the pool keeps no goroutine.
func TestGoPoolNeverWaitsAndStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	p := newGoPool()
	const n = 5
	release := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for range n {
		p.Go(func() {
			started.Done()
			<-release
			done.Done()
		})
	}
	started.Wait() // all five are running at once
	close(release)
	done.Wait()
	p.close()
	ran := make(chan struct{})
	p.Go(func() { close(ran) }) // after close: still run
	<-ran
}
