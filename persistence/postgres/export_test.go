package postgres

import (
	"time"

	"github.com/stroem/stroem/persistence"
)

// JobListQuery exposes JobList's statement to the plan tests.
var JobListQuery = jobListQuery

// The statements whose cost and plans tests check.
const (
	StartSQL           = startSQL
	StartByPositionSQL = startByPositionSQL
	GiveBackSQL        = giveBackSQL
	ReadStepsSQL       = readStepsSQL
	ReadStepsSinceSQL  = readStepsSinceSQL
	UnreadCheckSQL     = unreadCheckSQL
	WriteStepsSQL      = writeStepsSQL
	KeyedPlans         = keyedPlans
	ClaimSQL           = claimSQL
	HandedForSQL       = handedForSQL
)

// CachedSteps is the steps s keeps for a job from its last transition (nil
// when none), themselves: never change them.
func CachedSteps(s *Store, jobID string) []*persistence.StepState {
	if e := s.steps.Get(jobID); e != nil {
		return e.Steps
	}
	return nil
}

// UnreadStats says how many of s's JobUpdates ran without reading the job
// first (hits), and how many found the kept job out of date and read it.
func UnreadStats(s *Store) (hits, stale int64) { return s.JobUpdateReads() }

// WidenClockSlack lets s's updates that do not read use an estimate of the
// database's clock up to d behind it: on a loaded machine the default
// slack sends some to a read, and a test counting them would be flaky.
func WidenClockSlack(s *Store, d time.Duration) { s.clock.slack = d }

// SkewClock moves s's estimate of the database's clock by d (a test of
// the database's refusal of a wrong estimate).
func SkewClock(s *Store, d time.Duration) {
	s.clock.mu.Lock()
	defer s.clock.mu.Unlock()
	s.clock.offset += d
}
