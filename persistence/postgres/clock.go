package postgres

import (
	"sync"
	"sync/atomic"
	"time"
)

// dbClock estimates the database's clock from this process's, for the
// updates that do not read the job first (jobUpdateUnread): their now() is
// only known once their one round trip is back. Each transaction whose
// now() comes back gives a sample: now() minus the local time its answer
// came, a lower bound of the offset between the clocks (now() is the
// transaction's start, before the answer). The estimate adds the greatest
// sample to the local time: never ahead of the database while the offset
// holds, and behind it by about a round trip. The database refuses an
// estimate ahead of it or too far behind (unreadLockSQL); then forget
// starts again from the next sample, which follows a clock step either
// way.
type dbClock struct {
	mu     sync.Mutex
	offset time.Duration
	ok     bool
	slack  time.Duration // unreadClockSlack; tests widen it
}

func (c *dbClock) sample(db, local time.Time) {
	off := db.Sub(local)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ok || off > c.offset {
		c.offset, c.ok = off, true
	}
}

func (c *dbClock) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok = false
}

// now is the estimate, in PostgreSQL's precision; ok is false before any
// sample.
func (c *dbClock) now() (time.Time, bool) {
	c.mu.Lock()
	off, ok := c.offset, c.ok
	c.mu.Unlock()
	if !ok {
		return time.Time{}, false
	}
	// Truncated: a timestamptz holds microseconds, and a later read must
	// find the time written as it was used.
	return time.Now().Add(off).UTC().Truncate(time.Microsecond), true
}

// unreadStats counts the updates run without a read (hits) and those that
// tried and then read the job (stale; see JobUpdateReads).
type unreadStats struct {
	hits, stale atomic.Int64
}

// JobUpdateReads says how many of this store's job transitions ran
// without reading the job first (unread), and how many tried and ran again
// after reading it (stale): the job had changed since it was kept, the
// estimate of the database's clock was off (or there was none yet), or
// the transition refused the kept job. Metrics report them.
func (s *Store) JobUpdateReads() (unread, stale int64) {
	return s.unread.hits.Load(), s.unread.stale.Load()
}
