package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/stroem/stroem"
)

// WorkerCredentialSet binds a credential (its sha256) to a registered
// worker, replacing any earlier one.
func (s *Store) WorkerCredentialSet(ctx context.Context, workerID string, hash []byte) error {
	if len(hash) == 0 {
		return stroem.Invalid("worker credential: empty hash")
	}
	n, err := s.writeCount(ctx, func(tx *txn, _ time.Time) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE workers SET credential_hash = ? WHERE id = ?`, hash, workerID)
	})
	if err != nil {
		return fmt.Errorf("set worker credential: %w", interpretError(err))
	}
	if n == 0 {
		return stroem.Errorf(stroem.CodeNotFound, "worker %s not found", workerID)
	}
	return nil
}

// WorkerByCredential returns the id of the worker a credential (its
// sha256) is bound to; CodeNotFound when none is.
func (s *Store) WorkerByCredential(ctx context.Context, hash []byte) (string, error) {
	var id string
	err := s.readTx(ctx, func(tx *txn) error {
		return tx.QueryRowContext(ctx, `SELECT id FROM workers WHERE credential_hash = ?`, hash).Scan(&id)
	})
	if err != nil {
		return "", errs.Row(err, stroem.Errorf(stroem.CodeNotFound, "no worker holds this credential"), "look up worker credential")
	}
	return id, nil
}

// WorkerHoldsRevision reports whether the worker holds a running step of
// a job at the workspace revision: what entitles it to that revision's
// archive.
func (s *Store) WorkerHoldsRevision(ctx context.Context, workerID, revision string) (bool, error) {
	var ok bool
	err := s.readTx(ctx, func(tx *txn) error {
		return tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM job_steps s JOIN jobs j ON j.id = s.job_id
			WHERE s.status = 'running' AND s.worker_id = ? AND coalesce(s.revision, j.revision) = ?)`, workerID, revision).Scan(&ok)
	})
	if err != nil {
		return false, fmt.Errorf("check worker revision: %w", interpretError(err))
	}
	return ok, nil
}
