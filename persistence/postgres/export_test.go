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

// Xids is the one-pass xid[] parameter, for its tests.
type Xids = xids
