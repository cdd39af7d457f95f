package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// fillChunk is how many jobs one fill transaction inserts: a running dev
// process keeps working (worker heartbeats write) between chunks.
const fillChunk = 10_000

// FillFinishedJobs is postgres.FillFinishedJobs for the SQLite file at path,
// for the bench harness: it writes the same rows (finished jobs, one step
// each, 26 s apart going back from the oldest job, task names in turn from
// tasks) until the jobs table holds total rows, in chunks, so the dev
// process using the file (WAL mode) keeps reading and takes its turn
// writing. Like it, the inserted jobs take the task snapshot of the newest
// job already there, which must exist. Unlike it, it does not ANALYZE:
// nothing in a dev installation would. It returns how many jobs were there before and after.
func FillFinishedJobs(ctx context.Context, path string, total int, tasks []string) (before, after int, err error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(30000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", OmitHost: true, Path: path, RawQuery: q.Encode()}).String())
	if err != nil {
		return 0, 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	var oldest sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM jobs`).Scan(&before, &oldest); err != nil {
		return 0, 0, fmt.Errorf("count jobs in %s: %w", path, err)
	}
	if !oldest.Valid {
		oldest.Int64 = time.Now().UnixNano()
	}
	var snapshot sql.NullString
	err = db.QueryRowContext(ctx, `SELECT snapshot_id FROM jobs WHERE snapshot_id IS NOT NULL ORDER BY created_at DESC LIMIT 1`).Scan(&snapshot)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("read a task snapshot in %s: %w", path, err)
	}
	if missing := total - before; missing > 0 && !snapshot.Valid {
		return before, 0, errors.New("fill jobs: no job with a task snapshot to copy; create one through the API first")
	}
	names, _ := json.Marshal(tasks) // a []string always encodes
	missing := total - before
	for lo := 1; lo <= missing; lo += fillChunk {
		hi := min(lo+fillChunk-1, missing)
		if err := fillInsert(ctx, db, lo, hi, oldest.Int64, string(names), snapshot.String); err != nil {
			return before, 0, fmt.Errorf("insert jobs %d–%d into %s: %w", lo, hi, path, err)
		}
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM jobs`).Scan(&after); err != nil {
		return before, 0, err
	}
	return before, after, nil
}

// fillInsert inserts fill jobs lo..hi and their steps in one
// transaction. Ids are v4-shaped UUIDs that carry the row number, so the
// steps can find their jobs; times are Unix nanoseconds, as the store keeps
// them.
func fillInsert(ctx context.Context, db *sql.DB, lo, hi int, oldest int64, tasks, snapshot string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	_, err = tx.ExecContext(ctx, `
WITH RECURSIVE s(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM s WHERE i < ?2),
g AS (
	SELECT printf('be0c0000-0000-4000-8000-%012x', i) AS id, i,
		json_extract(?4, '$[' || (i % json_array_length(?4)) || ']') AS task,
		CASE WHEN i % 20 = 7 THEN 'failed' WHEN i % 20 = 13 THEN 'cancelled' ELSE 'completed' END AS st,
		i % 5 = 0 AS cron,
		?3 - i * 26000000000 AS created,
		(50 + (i % 97) * 310) * 1000000 AS took
	FROM s
)
INSERT INTO jobs (id, workspace, task_name, input, output, status, source_type, source_id,
	created_at, started_at, completed_at, snapshot_id)
SELECT id, 'default', task, '{"name":"World"}', CASE WHEN st = 'completed' THEN '{"run":{"ok":true}}' END,
	st, CASE WHEN cron THEN 'trigger' ELSE 'api' END, CASE WHEN cron THEN 'nightly' ELSE '' END,
	created, created + 4000000, created + took, ?5
FROM g`, lo, hi, oldest, tasks, snapshot)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
INSERT INTO job_steps (job_id, step_name, position, action_name, action_type, status, input, output,
	error_message, worker_id, attempt, attempt_status, exit_code, ready_at, started_at, completed_at)
SELECT id, 'run', 0, 'noop', 'shell', status, '{}', CASE WHEN status = 'completed' THEN '{"ok":true}' END,
	CASE status WHEN 'failed' THEN 'exit code 1: boom' WHEN 'cancelled' THEN 'cancelled' ELSE '' END,
	'00000000-0000-4000-8000-000000000001', 1, status, CASE status WHEN 'completed' THEN 0 WHEN 'failed' THEN 1 END,
	started_at - 1000000, started_at, completed_at
FROM jobs WHERE id BETWEEN printf('be0c0000-0000-4000-8000-%012x', ?1) AND printf('be0c0000-0000-4000-8000-%012x', ?2)`, lo, hi)
	if err != nil {
		return err
	}
	return tx.Commit()
}
