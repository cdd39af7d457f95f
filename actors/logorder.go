package actors

import (
	"context"
	"sync"
	"time"

	"github.com/stroem/stroem/persistence"
)

// A worker keeps up to two pushes of a step's log in flight, sent Ordered
// (runner/logship.go): the store keeps only a push whose earlier lines are
// all stored, and answers one that overtook its predecessor "ahead",
// storing nothing. Under load that happens often — the later push is
// decoded, or gets a connection, before the earlier one — and the worker
// then sends its lines a second time. So the server holds such a push back
// instead: an Ordered push waits for the pushes of the same attempt with
// smaller offsets that this server is handling, and one the store answers
// ahead waits for the next push of the step to end here, or polls the store
// (its predecessor may have gone to another server), before it is tried
// again, up to logOrderWait. Only then is it answered ahead, and resent. The
// store's per-step next offset stays the only judge of what is stored: the
// wait only picks the moment a push is tried, so exactly-once-in-order,
// fencing (every try is fenced) and the size cap are the store's as before.

// Bounds of holding back an Ordered push that came early.
const (
	// defaultLogOrderWait bounds the wait of one push for those before
	// it: past it, the push is answered ahead and the worker resends it
	// after its predecessor is answered (its predecessor is then being
	// retried by the worker, and nothing is lost by the resend).
	defaultLogOrderWait = 2 * time.Second
	// logOrderPollFirst and logOrderPollMax space the store retries of a
	// push whose predecessor is not being handled by this server.
	logOrderPollFirst = 2 * time.Millisecond
	logOrderPollMax   = 50 * time.Millisecond
	// maxHeldLogPushes bounds the pushes of one step attempt handled here
	// at once that may be held back (a worker sends two at a time): every
	// end of one wakes the others, which scan them all under the one lock
	// of logOrder, so a worker sending many at once must not be able to
	// make that quadratic. Past it a push is tried once, as without the
	// holding.
	maxHeldLogPushes = 8
)

// logOrder knows the Ordered pushes this server is handling, per step
// attempt. Its zero value is ready.
type logOrder struct {
	mu    sync.Mutex
	steps map[logOrderKey]*logPushes
}

type logOrderKey struct {
	job, step string
	attempt   int
}

// logPushes are the pushes of one step attempt being handled.
type logPushes struct {
	offsets map[int64]int // offset → pushes with it (a retried push may come twice)
	n       int           // pushes in offsets
	ended   chan struct{} // closed when one of them ends: the waiting look again
}

// enter records a push of key at offset, and then leave must follow; false
// when maxHeldLogPushes of key are recorded already (nothing recorded).
func (o *logOrder) enter(key logOrderKey, offset int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.steps == nil {
		o.steps = map[logOrderKey]*logPushes{}
	}
	p := o.steps[key]
	if p == nil {
		p = &logPushes{offsets: map[int64]int{}, ended: make(chan struct{})}
		o.steps[key] = p
	}
	if p.n >= maxHeldLogPushes {
		return false
	}
	p.offsets[offset]++
	p.n++
	return true
}

// leave ends a push entered at offset and wakes the pushes waiting.
func (o *logOrder) leave(key logOrderKey, offset int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.steps[key]
	if p.offsets[offset]--; p.offsets[offset] == 0 {
		delete(p.offsets, offset)
	}
	p.n--
	close(p.ended)
	p.ended = make(chan struct{})
	if len(p.offsets) == 0 {
		delete(o.steps, key)
	}
}

// state answers whether a push of key before offset is being handled, and
// the channel closed when the next push of key ends. Called between enter
// and leave.
func (o *logOrder) state(key logOrderKey, offset int64) (earlier bool, ended <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.steps[key]
	for off := range p.offsets {
		if off < offset {
			earlier = true
			break
		}
	}
	return earlier, p.ended
}

// appendOrdered stores a through the store, holding back an Ordered push
// that came before the lines ahead of it (see logOrder). done ends the push
// here; call it once the stored lines are published, so the push behind it
// is stored, and published, after them.
func (w *Workers) appendOrdered(ctx context.Context, a persistence.LogAppend) (stored persistence.LogAppended, done func(), err error) {
	key := logOrderKey{job: a.JobID, step: a.Step, attempt: a.Attempt}
	if !a.Ordered || len(a.Lines) == 0 || !w.order.enter(key, a.Offset) {
		// Nothing to order, or as many pushes of the attempt held as
		// allowed: tried once, as it comes.
		stored, err = w.logs.LogAppend(ctx, a)
		return stored, func() {}, err
	}
	done = func() { w.order.leave(key, a.Offset) }
	defer func() {
		if v := recover(); v != nil {
			done() // the caller never gets done: leave here, so no push waits for this one
			panic(v)
		}
	}()
	wait := w.orderWait
	if wait <= 0 {
		wait = defaultLogOrderWait
	}
	deadline := time.Now().Add(wait)
	poll := logOrderPollFirst
	for {
		earlier, ended := w.order.state(key, a.Offset)
		if earlier && time.Now().Before(deadline) {
			// The push before this one is being handled here: trying
			// now could only find it missing.
			if err := waitUntil(ctx, ended, deadline); err != nil {
				return stored, done, err
			}
			continue
		}
		stored, err = w.logs.LogAppend(ctx, a)
		if err != nil || !stored.Ahead || !time.Now().Before(deadline) {
			return stored, done, err
		}
		// The lines before it are on their way: to this server (ended
		// wakes it when they are stored) or to another one (the poll).
		next := time.Now().Add(poll)
		if next.After(deadline) {
			next = deadline
		}
		if err := waitUntil(ctx, ended, next); err != nil {
			return stored, done, err
		}
		poll = min(2*poll, logOrderPollMax)
	}
}

// waitUntil waits for ch to be closed or until the deadline passes; it
// fails only when ctx ends.
func waitUntil(ctx context.Context, ch <-chan struct{}, deadline time.Time) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}
