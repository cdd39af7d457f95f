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

// goroutineID is the number runtime.Stack prints for the calling goroutine.
func goroutineID(t *testing.T) int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf) // "goroutine 17 [running]:"
	require.GreaterOrEqual(t, len(f), 2)
	id, err := strconv.Atoi(string(f[1]))
	require.NoError(t, err)
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
		p.Go(func() { got <- goroutineID(t) })
		ids[<-got] = true
		time.Sleep(2 * time.Millisecond) // it returns to the pool
	}
	// Usually one goroutine ran them all; a machine busy enough to keep it
	// from its receive for 2 ms makes the next call start another.
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
