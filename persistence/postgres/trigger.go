package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// insertTick runs first in JobInsert's transaction when the job has a tick.
// It takes a transaction-scoped advisory lock on the trigger (two names
// hashing alike only serialise a little more), so every check below sees
// the jobs and ticks other servers committed for it, then
// refuses a tick that is not later than the trigger's latest (ErrTickFired:
// ticks of a trigger fire in order, and once), refuses a busy trigger when
// asked (ErrTriggerBusy), and records the tick.
func insertTick(ctx context.Context, tx pgx.Tx, workspace, jobID string, t *persistence.TriggerTick) error {
	err := persistence.CheckTick(jobID, t, func() (bool, error) {
		// The lock comes first, so the checks see what other servers
		// committed for the trigger.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('stroem.trigger/' || $1 || '/' || $2, 0))`,
			workspace, t.Trigger); err != nil {
			return false, err
		}
		var fired bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM trigger_ticks
			WHERE workspace = $1 AND trigger_name = $2 AND tick >= $3)`,
			workspace, t.Trigger, t.At).Scan(&fired)
		return fired, err
	}, func() (bool, error) {
		var busy bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM jobs
			WHERE workspace = $1 AND source_type = 'trigger' AND source_id = $2 AND status IN ('pending', 'running'))`,
			workspace, stroem.TriggerSourceID(workspace, t.Trigger)).Scan(&busy)
		return busy, err
	})
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO trigger_ticks (workspace, trigger_name, tick, job_id)
		VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, workspace, t.Trigger, t.At, jobID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return persistence.ErrTickFired
	}
	return nil
}

// TriggerLastTick returns the latest tick fired for a trigger of a
// workspace (by any server), or the zero time when it never fired. A
// starting scheduler compares it with the cron to find missed ticks.
func (s *Store) TriggerLastTick(ctx context.Context, workspace, trigger string) (time.Time, error) {
	var t time.Time
	err := s.pool.QueryRow(ctx, `SELECT tick FROM trigger_ticks WHERE workspace = $1 AND trigger_name = $2
		ORDER BY tick DESC LIMIT 1`, workspace, trigger).Scan(&t)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("last tick of trigger %s/%s: %w", workspace, trigger, interpretError(err))
	}
	return t.UTC(), nil
}

// TriggerJobsUnfinished returns the ids of the pending or running jobs a
// trigger fired for ticks before the given one, oldest first: the jobs
// concurrency: cancel_previous cancels. Jobs of later ticks (fired by a
// server that is ahead) are never among them.
func (s *Store) TriggerJobsUnfinished(ctx context.Context, workspace, trigger string, before time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT j.id::text FROM jobs j JOIN trigger_ticks t ON t.job_id = j.id
		WHERE j.workspace = $1 AND j.source_type = 'trigger' AND j.source_id = $4 AND j.status IN ('pending', 'running')
			AND t.workspace = $1 AND t.trigger_name = $2 AND t.tick < $3
		ORDER BY t.tick`, workspace, trigger, before, stroem.TriggerSourceID(workspace, trigger))
	if err != nil {
		return nil, fmt.Errorf("unfinished jobs of trigger %s/%s: %w", workspace, trigger, interpretError(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("unfinished jobs of trigger %s/%s: %w", workspace, trigger, interpretError(err))
	}
	return ids, nil
}
