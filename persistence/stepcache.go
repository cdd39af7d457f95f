package persistence

import "sync"

// StepCache keeps the steps of recently updated jobs as a store's
// JobUpdate wrote them, with the horizon of the read they came from, so
// that the next update of a job reads only the step rows written since
// (each store stamps every step row it writes with a version it can
// compare with a horizon: PostgreSQL a transaction id, SQLite a counter).
// A job's steps are its bulk: for a 100-step job they are most of a
// transition's reading. Bounded; least recently used first out. Safe for
// concurrent use.
type StepCache struct {
	mu   sync.Mutex
	max  int
	jobs map[string]*CachedSteps
	tick uint64
}

// CachedSteps is an immutable entry: never modify its steps.
type CachedSteps struct {
	Steps []*StepState
	Since int64 // the horizon of the read: rows written since have a version at least this
	Index *StepIndex
	// Head, when a store keeps it, is the rest of the job as the update
	// wrote it: enough for the next update to run without reading first
	// (PostgreSQL checks, in the writing transaction, that nothing changed).
	Head *CachedHead
	used uint64
}

// CachedHead is the job beside its steps, as a JobUpdate left it, and how
// a store tells that it is still so.
type CachedHead struct {
	// State holds the job's fields (Job, SnapshotID, CancelRequested,
	// Context, StateScopes and the update's Now); no steps. Never modified.
	State *JobState
	// Version is the job row's version (PostgreSQL: its xmin).
	Version int64
	// Known are the steps whose row version is at least Since, with that
	// version: rows the store has seen, which a row written since by
	// anyone else is not among.
	Known []RowVersion
}

// RowVersion is the version of the step row at a position.
type RowVersion struct {
	Position int
	Version  int64
}

// NewStepCache returns a cache of the steps of at most max jobs.
func NewStepCache(max int) *StepCache {
	return &StepCache{max: max, jobs: map[string]*CachedSteps{}}
}

// Get returns the entry of a job, or nil.
func (c *StepCache) Get(id string) *CachedSteps {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.jobs[id]
	if e != nil {
		c.tick++
		e.used = c.tick
	}
	return e
}

// Position finds the position of a job's step among the steps kept from
// the job's last transition (a step's position never changes once it is
// stored); ok is false when the job's steps are not kept or the step is
// not among them.
func (c *StepCache) Position(jobID, step string) (pos int, ok bool) {
	e := c.Get(jobID)
	if e == nil {
		return 0, false
	}
	from := 0
	if e.Index != nil {
		if pos, ok := e.Index.Position(step); ok {
			return pos, true
		}
		from = e.Index.Len()
	}
	for _, st := range e.Steps[min(from, len(e.Steps)):] {
		if st.Name == step {
			return st.Position, true
		}
	}
	return 0, false
}

// Keep records what a JobUpdate that committed st leaves for the job's
// next one: steps (which nobody may modify from now on), read at horizon
// since, for an unfinished job; nothing for a finished one, which is not
// updated again. A full cache first forgets its least recently used entry.
func (c *StepCache) Keep(id string, st *JobState, steps []*StepState, since int64) {
	c.KeepHead(id, st, steps, since, nil)
}

// KeepHead is Keep that also keeps the job's head (nil for none).
func (c *StepCache) KeepHead(id string, st *JobState, steps []*StepState, since int64, head *CachedHead) {
	if st.Job.Status.Terminal() {
		c.Drop(id)
		return
	}
	index := st.StepIndex()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	c.jobs[id] = &CachedSteps{Steps: steps, Since: since, Index: index, Head: head, used: c.tick}
	if len(c.jobs) <= c.max {
		return
	}
	var oldest string
	min := ^uint64(0)
	for k, e := range c.jobs {
		if e.used < min {
			oldest, min = k, e.used
		}
	}
	delete(c.jobs, oldest)
}

// StaleCacheError says a job's step rows do not match the steps kept from
// its last JobUpdate (never expected: steps are not removed, and only a
// JobUpdate appends them); a store runs the update again with a full read.
type StaleCacheError struct{ Job string }

func (e StaleCacheError) Error() string { return "job " + e.Job + ": cached steps do not match" }

// Drop forgets a job's entry.
func (c *StepCache) Drop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.jobs, id)
}
