package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// WorkerRegister records a new worker process under a fresh id. A worker
// that restarts registers again and gets a new id; its old row turns stale.
func (s *Store) WorkerRegister(ctx context.Context, reg stroem.WorkerRegistration) (stroem.Worker, error) {
	w := persistence.NewWorker(reg)
	err := s.pool.QueryRow(ctx, `INSERT INTO workers (id, name, capabilities, tags, max_concurrent, exclusive)
		VALUES ($1, $2, $3, $4, NULLIF($5, 0), $6) RETURNING registered_at, last_heartbeat_at`,
		w.ID, w.Name, w.Capabilities, w.Tags, w.MaxConcurrent, w.Exclusive).Scan(&w.RegisteredAt, &w.LastHeartbeatAt)
	if err != nil {
		return stroem.Worker{}, fmt.Errorf("register worker %s: %w", w.Name, interpretError(err))
	}
	w.RegisteredAt, w.LastHeartbeatAt = w.RegisteredAt.UTC(), w.LastHeartbeatAt.UTC()
	return w, nil
}

// workersSeenSQL records a heartbeat of each worker listed. The rows are
// locked in id order first, so two servers recording overlapping lists
// never deadlock.
const workersSeenSQL = `
WITH l AS MATERIALIZED (
	SELECT id FROM workers WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
)
UPDATE workers w SET last_heartbeat_at = now() FROM l WHERE w.id = l.id
RETURNING w.id::text`

// WorkersSeen records a heartbeat of each listed worker in one statement
// and returns the ids, as given, that name no worker.
func (s *Store) WorkersSeen(ctx context.Context, workerIDs []string) ([]string, error) {
	ids := make([]string, 0, len(workerIDs))
	for _, id := range workerIDs {
		if c, ok := persistence.CanonicalUUID(id); ok {
			ids = append(ids, c)
		}
	}
	known := map[string]bool{}
	if len(ids) > 0 {
		err := s.retry(ctx, func() error {
			clear(known)
			rows, err := s.pool.Query(ctx, workersSeenSQL, ids)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				known[id] = true
			}
			return rows.Err()
		})
		if err != nil {
			return nil, fmt.Errorf("record heartbeats of %d workers: %w", len(ids), interpretError(err))
		}
	}
	return persistence.UnknownWorkers(workerIDs, known), nil
}

// WorkerList returns every registered worker, most recently seen first, as
// active, or stale when it sent no heartbeat for WorkerStaleAfter.
func (s *Store) WorkerList(ctx context.Context) ([]stroem.Worker, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text, name, capabilities, tags, registered_at, last_heartbeat_at,
			coalesce(max_concurrent, 0), exclusive,
			CASE WHEN last_heartbeat_at > now() - $1 * interval '1 millisecond' THEN 'active' ELSE 'stale' END
		FROM workers ORDER BY last_heartbeat_at DESC, id`, persistence.WorkerStaleAfter.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", interpretError(err))
	}
	workers, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (stroem.Worker, error) {
		var w stroem.Worker
		err := row.Scan(&w.ID, &w.Name, &w.Capabilities, &w.Tags, &w.RegisteredAt, &w.LastHeartbeatAt, &w.MaxConcurrent, &w.Exclusive, &w.Status)
		w.RegisteredAt, w.LastHeartbeatAt = w.RegisteredAt.UTC(), w.LastHeartbeatAt.UTC()
		return w, err
	})
	return workers, errs.Wrap(err, "list workers")
}

// WorkspaceArchivePut stores the files of a workspace revision (a tar.gz).
// A revision is immutable, so storing it again is a no-op.
func (s *Store) WorkspaceArchivePut(ctx context.Context, revision string, tarball []byte) error {
	tarball, err := persistence.ArchiveToStore(revision, tarball)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO workspace_archives (revision, tarball) VALUES ($1, $2)
		ON CONFLICT (revision) DO NOTHING`, revision, tarball)
	return errs.Wrap(err, "store workspace archive %s", revision)
}

// WorkspaceArchiveGet returns the tar.gz of a workspace revision, so a
// worker gets the files a job was created from even after the workspace
// changed. An unknown revision is CodeNotFound.
func (s *Store) WorkspaceArchiveGet(ctx context.Context, revision string) ([]byte, error) {
	var tarball []byte
	err := s.pool.QueryRow(ctx, `SELECT tarball FROM workspace_archives WHERE revision = $1`, revision).Scan(&tarball)
	if err != nil {
		return nil, errs.Row(err, notFound("workspace archive %s not found", revision), "read workspace archive %s", revision)
	}
	return tarball, nil
}
