package postgres

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The group commit of acknowledgements: one writer at a time; when a write
// ends, the head of the queue writes next, with everything queued behind
// it; a request given up leaves the queue, and passes its turn on if it had
// been told to write.
func TestStartsQueueTurns(t *testing.T) {
	t.Parallel()
	req := func() *startReq { return &startReq{done: make(chan struct{}), lead: make(chan struct{}, 1)} }
	told := func(r *startReq) bool {
		select {
		case <-r.lead:
			return true
		default:
			return false
		}
	}
	var q starts
	a, b, c, d, e := req(), req(), req(), req(), req()

	require.True(t, q.enqueue(a), "nobody writes: a writes")
	require.Equal(t, []*startReq{a}, q.take())
	require.False(t, q.enqueue(b), "a is writing: b waits")
	require.False(t, q.enqueue(c))
	require.False(t, q.enqueue(d))
	q.next()
	require.True(t, told(b), "the head writes next")
	require.False(t, told(c))
	b.lead <- struct{}{} // put back: b gives up before it saw its turn

	require.False(t, q.abandon(b), "b had the turn: its caller writes for the others")
	require.True(t, q.abandon(c), "c was only waiting")
	require.Equal(t, []*startReq{d}, q.take(), "b and c left the queue")
	q.next()
	require.True(t, q.enqueue(e), "the queue was empty, nobody writes any more: e writes")
	require.Equal(t, []*startReq{e}, q.take())
	q.next()
	require.False(t, told(e))
}
