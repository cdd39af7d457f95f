package postgres

// JobListQuery exposes JobList's statement to the plan tests.
var JobListQuery = jobListQuery
