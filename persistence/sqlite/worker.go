package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// WorkerRegister records a new worker process under a fresh id. A worker
// that restarts registers again and gets a new id; its old row turns stale.
func (s *Store) WorkerRegister(ctx context.Context, reg stroem.WorkerRegistration) (stroem.Worker, error) {
	w := persistence.NewWorker(reg)
	err := s.writeTx(ctx, func(tx *txn, now time.Time) error {
		w.RegisteredAt, w.LastHeartbeatAt = now, now
		_, err := tx.ExecContext(ctx, `INSERT INTO workers (id, name, capabilities, tags, registered_at, last_heartbeat_at,
				max_concurrent, exclusive)
			VALUES (?, ?, ?, ?, ?, ?, NULLIF(?, 0), ?)`, w.ID, w.Name, encodeStrings(w.Capabilities), encodeStrings(w.Tags),
			nanos(now), nanos(now), w.MaxConcurrent, w.Exclusive)
		return err
	})
	if err != nil {
		return stroem.Worker{}, fmt.Errorf("register worker %s: %w", w.Name, interpretError(err))
	}
	return w, nil
}

// WorkersSeen records a heartbeat of each listed worker in one
// transaction and returns the ids, as given, that name no worker.
func (s *Store) WorkersSeen(ctx context.Context, workerIDs []string) ([]string, error) {
	known := map[string]bool{}
	err := s.writeTx(ctx, func(tx *txn, now time.Time) error {
		clear(known)
		for _, id := range workerIDs {
			c, ok := persistence.CanonicalUUID(id)
			if !ok || known[c] {
				continue
			}
			res, err := tx.ExecContext(ctx, `UPDATE workers SET last_heartbeat_at = ? WHERE id = ?`, nanos(now), c)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				known[c] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record heartbeats of %d workers: %w", len(workerIDs), interpretError(err))
	}
	return persistence.UnknownWorkers(workerIDs, known), nil
}

// WorkerList returns every registered worker, most recently seen first, as
// active, or stale when it sent no heartbeat for persistence.WorkerStaleAfter.
func (s *Store) WorkerList(ctx context.Context) ([]stroem.Worker, error) {
	rows, err := s.query(ctx, `SELECT id, name, capabilities, tags, registered_at, last_heartbeat_at,
			coalesce(max_concurrent, 0), exclusive,
			CASE WHEN last_heartbeat_at > ? THEN 'active' ELSE 'stale' END
		FROM workers ORDER BY last_heartbeat_at DESC, id`, nanos(s.now().Add(-persistence.WorkerStaleAfter)))
	workers, err := collect(rows, err, scanWorker)
	if err != nil {
		return nil, fmt.Errorf("list workers: %w", interpretError(err))
	}
	return workers, nil
}

// scanWorker reads a row of WorkerList.
func scanWorker(row rowScanner) (stroem.Worker, error) {
	var (
		w          stroem.Worker
		caps, tags string
	)
	err := row.Scan(&w.ID, &w.Name, &caps, &tags, timeVal{&w.RegisteredAt}, timeVal{&w.LastHeartbeatAt}, &w.MaxConcurrent, &w.Exclusive, &w.Status)
	if err != nil {
		return w, err
	}
	if w.Capabilities, err = decodeStrings(caps); err != nil {
		return w, err
	}
	w.Tags, err = decodeStrings(tags)
	return w, err
}

// WorkspaceArchivePut stores the files of a workspace revision (a tar.gz).
// A revision is immutable, so storing it again is a no-op.
func (s *Store) WorkspaceArchivePut(ctx context.Context, revision string, tarball []byte) error {
	tarball, err := persistence.ArchiveToStore(revision, tarball)
	if err != nil {
		return err
	}
	err = s.writeTx(ctx, func(tx *txn, now time.Time) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO workspace_archives (revision, tarball, created_at) VALUES (?, ?, ?)
			ON CONFLICT (revision) DO NOTHING`, revision, tarball, nanos(now))
		return err
	})
	return errs.Wrap(err, "store workspace archive %s", revision)
}

// WorkspaceArchiveGet returns the tar.gz of a workspace revision, so a
// worker gets the files a job was created from even after the workspace
// changed. An unknown revision is CodeNotFound.
func (s *Store) WorkspaceArchiveGet(ctx context.Context, revision string) ([]byte, error) {
	var tarball []byte
	err := s.queryRow(ctx, `SELECT tarball FROM workspace_archives WHERE revision = ?`, revision).Scan(&tarball)
	if err != nil {
		return nil, errs.Row(err, notFound("workspace archive %s not found", revision), "read workspace archive %s", revision)
	}
	return tarball, nil
}
