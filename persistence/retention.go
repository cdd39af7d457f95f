package persistence

import "time"

// PruneParams selects what one JobsPrune call deletes: terminal jobs
// (completed, failed, cancelled) that ended before Before, oldest first, at
// most Limit of them. Pending and running jobs are never touched.
type PruneParams struct {
	Before time.Time
	// Limit bounds one batch (one short transaction), so a prune of a large
	// backlog never holds locks long enough to delay claims. 0 means 500.
	Limit int
	// DryRun deletes nothing: the result counts every matching row (not
	// only one batch) so an operator sees what a prune would remove.
	DryRun bool
}

// PruneResult says what a prune call removed (or would remove).
type PruneResult struct {
	// JobIDs are the jobs deleted by this batch, so their logs and
	// artifacts kept outside the database can be removed too. Empty for a
	// dry run.
	JobIDs []string
	// Jobs and Steps count the rows deleted (or, for a dry run, matching).
	// Steps include their attempts (they cascade with their job).
	Jobs  int64
	Steps int64
}

// MetricsSample is what /metrics reads from the store at scrape time: the
// current state shared by every server, as opposed to the counters each
// server process keeps of what it did itself.
type MetricsSample struct {
	// JobsInFlight counts pending and running jobs by status (both keys
	// always present).
	JobsInFlight map[string]int64
	// StepsReady counts claimable ready steps (ready_at not in the future)
	// by action type: the capability a worker needs to claim them.
	StepsReady map[string]int64
	// StepsRunning counts running steps (each holds one worker slot).
	StepsRunning int64
	// WorkersActive counts workers seen within WorkerStaleAfter.
	WorkersActive int64
}

// DefaultPruneLimit is the batch size of JobsPrune when Limit is 0.
const DefaultPruneLimit = 500

// BatchSize returns the batch size to use.
func (p PruneParams) BatchSize() int {
	if p.Limit <= 0 {
		return DefaultPruneLimit
	}
	return p.Limit
}

// Prune is the frame of a store's prune methods (JobsPrune,
// TriggerTicksPrune, WorkersPrune): a dry run counts every matching row
// and deletes nothing, else del deletes one batch. what names the rows in
// the error, which is interpreted and wrapped with e; on error the result
// is T's zero value.
func Prune[T any](e Errors, what string, dryRun bool, count, del func() (T, error)) (T, error) {
	var zero T
	if dryRun {
		n, err := count()
		if err != nil {
			return zero, e.Wrap(err, "count %s to prune", what)
		}
		return n, nil
	}
	n, err := del()
	if err != nil {
		return zero, e.Wrap(err, "prune %s", what)
	}
	return n, nil
}
