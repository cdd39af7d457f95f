package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem/persistence"
)

// JobsPrune deletes one batch of terminal jobs that ended before p.Before,
// oldest first, with their steps and attempts, in one short transaction.
// The batch is chosen with SKIP LOCKED, so a prune never waits for a row a
// transition holds, and it touches only terminal jobs' rows, which no claim
// reads: claims keep their latency while a backlog is pruned.
func (s *Store) JobsPrune(ctx context.Context, p persistence.PruneParams) (persistence.PruneResult, error) {
	return persistence.Prune(errs, "jobs", p.DryRun, func() (res persistence.PruneResult, err error) {
		err = s.pool.QueryRow(ctx, `SELECT count(*),
				(SELECT count(*) FROM job_steps st JOIN jobs j ON j.id = st.job_id
					WHERE j.completed_at < $1 AND j.status IN ('completed', 'failed', 'cancelled', 'skipped'))
			FROM jobs WHERE completed_at < $1 AND status IN ('completed', 'failed', 'cancelled', 'skipped')`,
			p.Before).Scan(&res.Jobs, &res.Steps)
		return res, err
	}, func() (res persistence.PruneResult, err error) {
		err = s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
			res = persistence.PruneResult{}
			rows, err := tx.Query(ctx, `SELECT id::text FROM jobs
				WHERE completed_at < $1 AND status IN ('completed', 'failed', 'cancelled', 'skipped')
				ORDER BY completed_at LIMIT $2 FOR UPDATE SKIP LOCKED`, p.Before, p.BatchSize())
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(ids) == 0 {
				return err
			}
			tag, err := tx.Exec(ctx, `DELETE FROM job_steps WHERE job_id = ANY($1::uuid[])`, ids)
			if err != nil {
				return err
			}
			res.Steps = tag.RowsAffected()
			if tag, err = tx.Exec(ctx, `DELETE FROM jobs WHERE id = ANY($1::uuid[])`, ids); err != nil {
				return err
			}
			res.Jobs, res.JobIDs = tag.RowsAffected(), ids
			return nil
		})
		return res, err
	})
}

// TriggerTicksPrune deletes up to limit ticks older than before, never the
// latest tick of a trigger (a starting server compares the cron with it).
func (s *Store) TriggerTicksPrune(ctx context.Context, before time.Time, limit int, dryRun bool) (int64, error) {
	const old = `FROM trigger_ticks t WHERE t.tick < $1 AND t.tick < (SELECT max(m.tick) FROM trigger_ticks m
		WHERE m.workspace = t.workspace AND m.trigger_name = t.trigger_name)`
	return persistence.Prune(errs, "trigger ticks", dryRun, func() (n int64, err error) {
		err = s.pool.QueryRow(ctx, `SELECT count(*) `+old, before).Scan(&n)
		return n, err
	}, func() (int64, error) {
		tag, err := s.pool.Exec(ctx, `DELETE FROM trigger_ticks WHERE (workspace, trigger_name, tick) IN (
			SELECT t.workspace, t.trigger_name, t.tick `+old+` ORDER BY t.tick LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			before, persistence.PruneParams{Limit: limit}.BatchSize())
		return tag.RowsAffected(), err
	})
}

// WorkersPrune deletes workers whose last heartbeat is older than before
// and that hold no running step. A worker that comes back registers again.
func (s *Store) WorkersPrune(ctx context.Context, before time.Time, dryRun bool) (int64, error) {
	const cond = `last_heartbeat_at < $1 AND NOT EXISTS (SELECT 1 FROM job_steps
		WHERE status = 'running' AND worker_id = workers.id::text)`
	return persistence.Prune(errs, "workers", dryRun, func() (n int64, err error) {
		err = s.pool.QueryRow(ctx, `SELECT count(*) FROM workers WHERE `+cond, before).Scan(&n)
		return n, err
	}, func() (int64, error) {
		tag, err := s.pool.Exec(ctx, `DELETE FROM workers WHERE `+cond, before)
		return tag.RowsAffected(), err
	})
}

// MetricsSample reads the gauges of /metrics; every count uses a partial
// index (unfinished jobs, ready steps, running steps) or a small table.
func (s *Store) MetricsSample(ctx context.Context) (persistence.MetricsSample, error) {
	m := persistence.MetricsSample{
		JobsInFlight: map[string]int64{"pending": 0, "running": 0},
		StepsReady:   map[string]int64{},
	}
	wrap := func(err error) error { return fmt.Errorf("sample metrics: %w", interpretError(err)) }
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM jobs WHERE status IN ('pending', 'running') GROUP BY status`)
	if err != nil {
		return m, wrap(err)
	}
	if err := collectCounts(rows, m.JobsInFlight); err != nil {
		return m, wrap(err)
	}
	rows, err = s.pool.Query(ctx, `SELECT action_type, count(*) FROM job_steps
		WHERE status = 'ready' AND ready_at <= now() GROUP BY action_type`)
	if err != nil {
		return m, wrap(err)
	}
	if err := collectCounts(rows, m.StepsReady); err != nil {
		return m, wrap(err)
	}
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM job_steps WHERE status = 'running'),
		(SELECT count(*) FROM workers WHERE last_heartbeat_at > now() - $1 * interval '1 millisecond')`,
		persistence.WorkerStaleAfter.Milliseconds()).Scan(&m.StepsRunning, &m.WorkersActive)
	if err != nil {
		return m, wrap(err)
	}
	return m, nil
}

func collectCounts(rows pgx.Rows, into map[string]int64) error {
	var (
		k string
		n int64
	)
	_, err := pgx.ForEachRow(rows, []any{&k, &n}, func() error {
		into[k] = n
		return nil
	})
	return err
}
