package actors

import (
	"context"
	"sync"
	"time"

	"github.com/stroem/stroem"
)

// Idle heartbeats are recorded in groups.
//
// An idle worker's heartbeat (no step listed) renews no lease: it only
// says the worker is alive, which last_heartbeat_at keeps for `stroem
// workers` and the active-worker count. idleBeats already writes such a
// heartbeat at most once per idleBeatEvery per worker, but a fleet still
// costs one durable commit per worker every idleBeatEvery (100 workers: 10
// a second). So the heartbeats due within defaultSeenWindow of each other
// go to the store in one write (WorkersSeen), and each request waits for
// that write: its answer still says what the store did (the worker is
// unknown and must register again, or the store is unreachable), nothing
// is acknowledged before it is durable. The first request of a group waits
// up to the window; a heartbeat listing steps never waits (it renews
// leases and learns of cancellations at once).

// defaultSeenWindow is how long the first idle heartbeat of a group waits
// for others before the group is written. A heartbeat answer can wait that
// long: the worker sends its next one a heartbeat period after the answer.
const defaultSeenWindow = time.Second

// seenWriteTimeout bounds one group write: it runs on behalf of several
// requests, so it has its own deadline rather than any one's context.
const seenWriteTimeout = 30 * time.Second

// seenGroups gathers idle heartbeats into groups and writes each group once.
type seenGroups struct {
	mu      sync.Mutex
	pending *seenGroup
}

// seenGroup is one write: the workers in it, and once done is closed, its
// outcome.
type seenGroup struct {
	ids     []string
	in      map[string]bool
	done    chan struct{}
	unknown map[string]bool
	err     error
}

// record adds workerID to the group being gathered (starting one, written
// window later, if none is) and waits for that group's write. The worker is
// CodeNotFound when the store has no such worker.
func (g *seenGroups) record(ctx context.Context, store WorkerStore, workerID string, window time.Duration) error {
	g.mu.Lock()
	grp := g.pending
	if grp == nil {
		grp = &seenGroup{in: map[string]bool{}, done: make(chan struct{})}
		g.pending = grp
		time.AfterFunc(window, func() { g.write(store, grp) })
	}
	if !grp.in[workerID] {
		grp.in[workerID] = true
		grp.ids = append(grp.ids, workerID)
	}
	g.mu.Unlock()
	select {
	case <-grp.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if grp.err != nil {
		return grp.err
	}
	if grp.unknown[workerID] {
		return stroem.Errorf(stroem.CodeNotFound, "worker %s not found", workerID)
	}
	return nil
}

// write closes grp to newcomers, writes it and wakes its requests, unless
// it was written already.
func (g *seenGroups) write(store WorkerStore, grp *seenGroup) {
	g.mu.Lock()
	if g.pending != grp {
		g.mu.Unlock()
		return
	}
	g.pending = nil
	g.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), seenWriteTimeout)
	defer cancel()
	unknown, err := store.WorkersSeen(ctx, grp.ids)
	grp.err = err
	grp.unknown = make(map[string]bool, len(unknown))
	for _, id := range unknown {
		grp.unknown[id] = true
	}
	close(grp.done)
}
