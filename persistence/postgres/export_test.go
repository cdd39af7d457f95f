package postgres

// JobListQuery exposes JobList's statement to the plan tests.
var JobListQuery = jobListQuery

// The statements whose cost and plans tests check.
const (
	StartSQL           = startSQL
	StartByPositionSQL = startByPositionSQL
	GiveBackSQL        = giveBackSQL
	ReadStepsSQL       = readStepsSQL
	WriteStepsSQL      = writeStepsSQL
	KeyedPlans         = keyedPlans
	ClaimSQL           = claimSQL
	HandedForSQL       = handedForSQL
)

// Int8s is the one-pass bigint[] parameter, for its tests.
type Int8s = int8s
