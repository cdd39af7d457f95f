package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// insertTick runs first in JobInsert's transaction when the job has a tick,
// with the PostgreSQL store's rules: a tick not later than the trigger's
// latest is persistence.ErrTickFired (ticks of a trigger fire in order, and
// once); with SkipIfUnfinished, an unfinished earlier job of the trigger is
// persistence.ErrTriggerBusy; otherwise the tick is recorded. The write
// transaction excludes every other writer, so no lock per trigger is
// needed.
func insertTick(ctx context.Context, tx *txn, workspace, jobID string, t *persistence.TriggerTick, now time.Time) error {
	err := persistence.CheckTick(jobID, t, func() (bool, error) {
		var fired bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM trigger_ticks
			WHERE workspace = ? AND trigger_name = ? AND tick >= ?)`,
			workspace, t.Trigger, nanos(t.At)).Scan(&fired)
		return fired, err
	}, func() (bool, error) {
		var busy bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM jobs
			WHERE workspace = ? AND source_type = 'trigger' AND source_id = ? AND status IN ('pending', 'running'))`,
			workspace, stroem.TriggerSourceID(workspace, t.Trigger)).Scan(&busy)
		return busy, err
	})
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO trigger_ticks (workspace, trigger_name, tick, job_id, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, workspace, t.Trigger, nanos(t.At), jobID, nanos(now))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return persistence.ErrTickFired
	}
	return nil
}

// TriggerLastTick returns the latest tick fired for a trigger of a
// workspace, or the zero time when it never fired. A starting scheduler
// compares it with the cron to find missed ticks.
func (s *Store) TriggerLastTick(ctx context.Context, workspace, trigger string) (time.Time, error) {
	var t time.Time
	err := s.queryRow(ctx, `SELECT tick FROM trigger_ticks WHERE workspace = ? AND trigger_name = ?
		ORDER BY tick DESC LIMIT 1`, workspace, trigger).Scan(timeVal{&t})
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("last tick of trigger %s/%s: %w", workspace, trigger, interpretError(err))
	}
	return t, nil
}

// TriggerJobsUnfinished returns the ids of the pending or running jobs a
// trigger fired for ticks before the given one, oldest first: the jobs
// concurrency: cancel_previous cancels.
func (s *Store) TriggerJobsUnfinished(ctx context.Context, workspace, trigger string, before time.Time) ([]string, error) {
	ids, err := column(s.query(ctx, `SELECT j.id FROM jobs j JOIN trigger_ticks t ON t.job_id = j.id
		WHERE j.workspace = ?1 AND j.source_type = 'trigger' AND j.source_id = ?4 AND j.status IN ('pending', 'running')
			AND t.workspace = ?1 AND t.trigger_name = ?2 AND t.tick < ?3
		ORDER BY t.tick`, workspace, trigger, nanos(before), stroem.TriggerSourceID(workspace, trigger)))
	if err != nil {
		return nil, fmt.Errorf("unfinished jobs of trigger %s/%s: %w", workspace, trigger, interpretError(err))
	}
	return ids, nil
}
