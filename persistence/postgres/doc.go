// Package postgres is Strøm's PostgreSQL store: the connection pool,
// the goose migration runner, every SQL statement of production, the claim
// path that hands each ready step to exactly one worker, leases, and
// LISTEN/NOTIFY wake-ups.
//
// The rest of the system reaches it through small interfaces declared where
// they are used; *Store is the concrete implementation. Methods are
// noun-first (JobInsert, StepsClaim, LeasesRenew) and speak the domain types
// of package stroem. Database errors become stroem error codes in one place
// (interpretError): missing rows are CodeNotFound, an unreachable or
// restarting PostgreSQL is CodeUnavailable, stale reports are CodeConflict.
//
// Every change of a job's state goes through Store.JobUpdate: one
// transaction that locks the job's steps (in position order) and then the
// job, hands the state to a pure function, and writes what it changed. The
// package knows nothing about HTTP or actors.
package postgres
