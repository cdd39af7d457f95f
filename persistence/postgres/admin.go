package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Administration of a PostgreSQL server and raw measurements, for the
// bench harness (package bench) and test helpers: creating and dropping
// whole databases, the commit floor, bulk rows. The server itself never
// calls these.

// ConnectError is a failure to connect to the server (as opposed to a
// statement that failed once connected).
type ConnectError struct {
	// Refused is set when the server answered and refused (bad role,
	// unknown database); otherwise it could not be reached.
	Refused bool
	Err     error
}

func (e *ConnectError) Error() string {
	// pgx tries every address and TLS mode and repeats the cause for each:
	// report the cause once.
	var pgErr *pgconn.PgError
	var opErr *net.OpError
	switch {
	case errors.As(e.Err, &pgErr):
		return pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	case errors.As(e.Err, &opErr):
		return opErr.Error()
	}
	return strings.Join(strings.Fields(e.Err.Error()), " ")
}

func (e *ConnectError) Unwrap() error { return e.Err }

// admin runs fn on a connection of its own to the server at url.
func admin(ctx context.Context, url string, fn func(conn *pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		var pgErr *pgconn.PgError
		return &ConnectError{Refused: errors.As(err, &pgErr), Err: err}
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

// CreateDatabase creates database name on the server at adminURL, as a copy
// of template when it is not empty.
func CreateDatabase(ctx context.Context, adminURL, name, template string) error {
	stmt := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	return admin(ctx, adminURL, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, stmt)
		return err
	})
}

// DropDatabase drops database name on the server at adminURL, even with
// connections left; a database that does not exist is no error.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	return admin(ctx, adminURL, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		return err
	})
}

// CommitFloor is what one durable commit costs on a server.
type CommitFloor struct {
	SynchronousCommit, Fsync, Version string
	// Commits are the durations of the single-row autocommitted INSERTs.
	Commits []time.Duration
}

// MeasureCommits times n single-row commits into a scratch table of the
// database at url (a regular table: a temporary one is not WAL-logged, and
// a transaction that wrote no WAL commits without flushing it), together
// with the settings that decide what a commit costs. The table is dropped.
func MeasureCommits(ctx context.Context, url string, n int) (CommitFloor, error) {
	var f CommitFloor
	err := admin(ctx, url, func(conn *pgx.Conn) error {
		for _, q := range []struct {
			sql string
			dst *string
		}{
			{"SHOW synchronous_commit", &f.SynchronousCommit},
			{"SHOW fsync", &f.Fsync},
			{"SHOW server_version", &f.Version},
		} {
			if err := conn.QueryRow(ctx, q.sql).Scan(q.dst); err != nil {
				return fmt.Errorf("%s: %w", q.sql, err)
			}
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE stroem_bench_commit (id bigserial PRIMARY KEY, v integer NOT NULL)`); err != nil {
			return fmt.Errorf("create the commit-floor table: %w", err)
		}
		for i := range n {
			t := time.Now()
			// Autocommit: the INSERT is its own transaction, committed in
			// the same round trip.
			if _, err := conn.Exec(ctx, `INSERT INTO stroem_bench_commit (v) VALUES ($1)`, i); err != nil {
				return fmt.Errorf("commit floor: %w", err)
			}
			f.Commits = append(f.Commits, time.Since(t))
		}
		if _, err := conn.Exec(ctx, `DROP TABLE stroem_bench_commit`); err != nil {
			return fmt.Errorf("drop the commit-floor table: %w", err)
		}
		return nil
	})
	return f, err
}

// FillFinishedJobs inserts finished jobs into the database at url until its
// jobs table holds total rows, for measuring the job list at scale: 90 %
// completed, 5 % failed, 5 % cancelled, a fifth from the cron trigger
// "nightly", one step each, with task names taken in turn from tasks,
// created every 26 s going back from the oldest job already there. The
// inserted jobs take the task snapshot of the newest job already there (the
// API serves a job only with its snapshot, which says what to mask), so the
// table must hold a job created through the API first. It then ANALYZEs as
// autovacuum would. It returns how many jobs were there before and how many
// are there after.
func FillFinishedJobs(ctx context.Context, url string, total int, tasks []string) (before, after int, err error) {
	err = admin(ctx, url, func(conn *pgx.Conn) error {
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&before); err != nil {
			return err
		}
		if missing := total - before; missing > 0 {
			var snapshots int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE snapshot_id IS NOT NULL`).Scan(&snapshots); err != nil {
				return err
			}
			if snapshots == 0 {
				return errors.New("fill jobs: no job with a task snapshot to copy; create one through the API first")
			}
			if _, err := conn.Exec(ctx, fillJobsSQL, missing, tasks); err != nil {
				return fmt.Errorf("insert %d jobs with SQL: %w", missing, err)
			}
			if _, err := conn.Exec(ctx, `ANALYZE jobs; ANALYZE job_steps`); err != nil {
				return fmt.Errorf("analyze: %w", err)
			}
		}
		return conn.QueryRow(ctx, `SELECT count(*) FROM jobs`).Scan(&after)
	})
	return before, after, err
}

const fillJobsSQL = `
WITH g AS (
	SELECT gen_random_uuid() AS id, i,
		($2::text[])[1 + i % cardinality($2::text[])] AS task,
		CASE WHEN i % 20 = 7 THEN 'failed' WHEN i % 20 = 13 THEN 'cancelled' ELSE 'completed' END AS st,
		i % 5 = 0 AS cron,
		coalesce((SELECT min(created_at) FROM jobs), now()) - make_interval(secs => i * 26) AS created,
		make_interval(secs => 0.05 + (i % 97) * 0.31) AS took
	FROM generate_series(1, $1) AS i
), j AS (
	INSERT INTO jobs (id, workspace, task_name, input, output, status, source_type, source_id,
		created_at, started_at, completed_at, snapshot_id)
	SELECT id, 'default', task, '{"name": "World"}',
		CASE WHEN st = 'completed' THEN '{"run": {"ok": true}}'::jsonb END,
		st, CASE WHEN cron THEN 'trigger' ELSE 'api' END, CASE WHEN cron THEN 'nightly' ELSE '' END,
		created, created + interval '4 ms', created + took,
		(SELECT snapshot_id FROM jobs WHERE snapshot_id IS NOT NULL ORDER BY created_at DESC LIMIT 1)
	FROM g
	RETURNING id, status, started_at, completed_at
)
INSERT INTO job_steps (job_id, step_name, position, action_name, action_type, status, input, output,
	error_message, worker_id, attempt, attempt_status, exit_code, ready_at, started_at, completed_at)
SELECT id, 'run', 0, 'noop', 'shell', status, '{}',
	CASE WHEN status = 'completed' THEN '{"ok": true}'::jsonb END,
	CASE status WHEN 'failed' THEN 'exit code 1: boom' WHEN 'cancelled' THEN 'cancelled' ELSE '' END,
	'00000000-0000-4000-8000-000000000001', 1, status, CASE status WHEN 'completed' THEN 0 WHEN 'failed' THEN 1 END,
	started_at - interval '1 ms', started_at, completed_at
FROM j`
