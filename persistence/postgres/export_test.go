package postgres

// JobListQuery exposes JobList's statement to the plan tests.
var JobListQuery = jobListQuery

// StartSQL and GiveBackSQL expose the acknowledgement's and the give-back
// sweep's statements to the tests of their cost.
const (
	StartSQL    = startSQL
	GiveBackSQL = giveBackSQL
)
