package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/stroem/stroem/persistence"
)

// JobsPrune deletes one batch of terminal jobs that ended before p.Before,
// oldest first, with their steps and attempts, in one write transaction.
// Batches stay small because SQLite has one writer: a claim waits at most
// for one batch.
func (s *Store) JobsPrune(ctx context.Context, p persistence.PruneParams) (persistence.PruneResult, error) {
	const terminal = `completed_at < ? AND status IN ('completed', 'failed', 'cancelled', 'skipped')`
	return persistence.Prune(errs, "jobs", p.DryRun, func() (res persistence.PruneResult, err error) {
		err = s.queryRow(ctx, `SELECT count(*), (SELECT count(*) FROM job_steps
				WHERE job_id IN (SELECT id FROM jobs WHERE `+terminal+`))
			FROM jobs WHERE `+terminal, nanos(p.Before), nanos(p.Before)).Scan(&res.Jobs, &res.Steps)
		return res, err
	}, func() (res persistence.PruneResult, err error) {
		err = s.writeTx(ctx, func(tx *txn, _ time.Time) error {
			ids, err := column(tx.QueryContext(ctx, `SELECT id FROM jobs WHERE `+terminal+` ORDER BY completed_at LIMIT ?`,
				nanos(p.Before), p.BatchSize()))
			if err != nil || len(ids) == 0 {
				return err
			}
			args := make([]any, len(ids))
			for i, id := range ids {
				args[i] = id
			}
			in := "(" + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + ")"
			r, err := tx.ExecContext(ctx, `DELETE FROM job_steps WHERE job_id IN `+in, args...)
			if err != nil {
				return err
			}
			if res.Steps, err = r.RowsAffected(); err != nil {
				return err
			}
			if r, err = tx.ExecContext(ctx, `DELETE FROM jobs WHERE id IN `+in, args...); err != nil {
				return err
			}
			if res.Jobs, err = r.RowsAffected(); err != nil {
				return err
			}
			res.JobIDs = ids
			return nil
		})
		return res, err
	})
}

// TriggerTicksPrune deletes up to limit ticks older than before, never the
// latest tick of a trigger (a starting server compares the cron with it).
func (s *Store) TriggerTicksPrune(ctx context.Context, before time.Time, limit int, dryRun bool) (int64, error) {
	const old = `FROM trigger_ticks t WHERE t.tick < ? AND t.tick < (SELECT max(m.tick) FROM trigger_ticks m
		WHERE m.workspace = t.workspace AND m.trigger_name = t.trigger_name)`
	return persistence.Prune(errs, "trigger ticks", dryRun, func() (int64, error) {
		return s.count(ctx, `SELECT count(*) `+old, nanos(before))
	}, func() (int64, error) {
		return s.writeCount(ctx, func(tx *txn, _ time.Time) (sql.Result, error) {
			return tx.ExecContext(ctx, `DELETE FROM trigger_ticks WHERE rowid IN (
				SELECT t.rowid `+old+` ORDER BY t.tick LIMIT ?)`, nanos(before), persistence.PruneParams{Limit: limit}.BatchSize())
		})
	})
}

// WorkersPrune deletes workers whose last heartbeat is older than before
// and that hold no running step.
func (s *Store) WorkersPrune(ctx context.Context, before time.Time, dryRun bool) (int64, error) {
	const cond = `last_heartbeat_at < ? AND NOT EXISTS (SELECT 1 FROM job_steps
		WHERE status = 'running' AND worker_id = workers.id)`
	return persistence.Prune(errs, "workers", dryRun, func() (int64, error) {
		return s.count(ctx, `SELECT count(*) FROM workers WHERE `+cond, nanos(before))
	}, func() (int64, error) {
		return s.writeCount(ctx, func(tx *txn, _ time.Time) (sql.Result, error) {
			return tx.ExecContext(ctx, `DELETE FROM workers WHERE `+cond, nanos(before))
		})
	})
}

// MetricsSample reads the gauges of /metrics from one read snapshot.
func (s *Store) MetricsSample(ctx context.Context) (persistence.MetricsSample, error) {
	m := persistence.MetricsSample{
		JobsInFlight: map[string]int64{"pending": 0, "running": 0},
		StepsReady:   map[string]int64{},
	}
	now := s.now()
	err := s.readTx(ctx, func(tx *txn) error {
		if err := counts(ctx, tx, m.JobsInFlight, `SELECT status, count(*) FROM jobs
			WHERE status IN ('pending', 'running') GROUP BY status`); err != nil {
			return err
		}
		if err := counts(ctx, tx, m.StepsReady, `SELECT action_type, count(*) FROM job_steps
			WHERE status = 'ready' AND ready_at <= ? GROUP BY action_type`, nanos(now)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM job_steps WHERE status = 'running'),
			(SELECT count(*) FROM workers WHERE last_heartbeat_at > ?)`,
			nanos(now.Add(-persistence.WorkerStaleAfter))).Scan(&m.StepsRunning, &m.WorkersActive)
	})
	return m, errs.Wrap(err, "sample metrics")
}

func counts(ctx context.Context, tx *txn, into map[string]int64, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			return err
		}
		into[k] = n
	}
	return rows.Err()
}
