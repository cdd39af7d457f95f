package actors

import (
	"time"

	"github.com/stroem/stroem/workspace"
)

// Messages of the scheduler actor. They live apart from messages.go because
// the scheduler is its own state machine: nothing else sends them.

// schedInit asks the scheduler to read the last fired tick of every enabled
// scheduler trigger (again, after a store failure) and then arm its timers.
type schedInit struct{}

// schedLoaded carries the last fired ticks, by entry key; zero means never.
type schedLoaded struct {
	last map[string]time.Time
	err  error
}

// schedReload re-reads the triggers of one workspace after a reload. done
// (may be nil) is closed once the timers match the new definitions.
type schedReload struct {
	ws   *workspace.Workspace
	done chan struct{}
}

// schedTimer is a trigger's timer going off. id and seq name the entry and
// the arming, so a timer of a replaced entry or an older arming is ignored.
type schedTimer struct {
	key string
	id  uint64
	seq uint64
}

// schedFired reports the outcome of firing a tick (off the actor's
// goroutine). prev is the entry's last handled tick before this one, so a
// tick that failed with the store down can be tried again.
type schedFired struct {
	key   string
	id    uint64
	tick  time.Time
	prev  time.Time
	jobID string
	err   error
}
