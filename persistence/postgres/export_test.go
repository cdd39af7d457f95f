package postgres

import "github.com/stroem/stroem/persistence"

// JobListQuery exposes JobList's statement to the plan tests.
var JobListQuery = jobListQuery

// The statements whose cost and plans tests check.
const (
	StartSQL           = startSQL
	StartByPositionSQL = startByPositionSQL
	GiveBackSQL        = giveBackSQL
	ReadStepsSQL       = readStepsSQL
	ReadStepsSinceSQL  = readStepsSinceSQL
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
