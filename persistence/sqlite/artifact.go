package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Blobs, artifacts and state snapshots (issue 22): the same behaviour as
// the PostgreSQL store (persistence.StateArtifactStore). Each chunk is its
// own short write transaction, so an upload never holds the single
// writer for longer than one chunk.

func (s *Store) BlobChunkPut(ctx context.Context, blobID string, n int, data []byte) error {
	id, ok := canonicalUUID(blobID)
	if !ok {
		return stroem.Errorf(stroem.CodeInvalid, "blob id %q is not a UUID", blobID)
	}
	if data == nil {
		data = []byte{}
	}
	err := s.writeTx(ctx, func(tx *txn, now time.Time) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO blob_chunks (blob_id, n, data, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (blob_id, n) DO UPDATE SET data = excluded.data`, id, n, data, nanos(now))
		return err
	})
	return errs.Wrap(err, "store chunk %d of blob %s", n, blobID)
}

func (s *Store) BlobChunkGet(ctx context.Context, blobID string, n int) ([]byte, error) {
	id, ok := canonicalUUID(blobID)
	if !ok {
		return nil, notFound("blob %s not found", blobID)
	}
	var data []byte
	err := s.queryRow(ctx, `SELECT data FROM blob_chunks WHERE blob_id = ? AND n = ?`, id, n).Scan(&data)
	if err != nil {
		return nil, errs.Row(err, notFound("chunk %d of blob %s not found", n, blobID), "read chunk %d of blob %s", n, blobID)
	}
	if data == nil {
		data = []byte{}
	}
	return data, nil
}

const blobOrphans = `SELECT c.blob_id FROM blob_chunks c
	WHERE c.n = 0 AND c.created_at < ?
	AND NOT EXISTS (SELECT 1 FROM job_artifacts a WHERE a.blob_id = c.blob_id)
	AND NOT EXISTS (SELECT 1 FROM state_snapshots t WHERE t.blob_id = c.blob_id)
	ORDER BY c.created_at LIMIT ?`

func (s *Store) BlobsPrune(ctx context.Context, before time.Time, limit int, dryRun bool) (int64, error) {
	if limit <= 0 {
		limit = 100
	}
	var n int64
	err := s.writeTx(ctx, func(tx *txn, _ time.Time) error {
		ids, err := column(tx.QueryContext(ctx, blobOrphans, nanos(before), limit))
		if err != nil {
			return err
		}
		n = int64(len(ids))
		if dryRun {
			return nil
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM blob_chunks WHERE blob_id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune blobs: %w", interpretError(err))
	}
	return n, nil
}

func fenceAttempt(ctx context.Context, tx *txn, f persistence.AttemptFence, what string) error {
	jobID, ok := canonicalUUID(f.JobID)
	if !ok {
		return notFound("job %s not found", f.JobID)
	}
	var h persistence.StepHolder
	err := tx.QueryRowContext(ctx, `SELECT status, attempt, coalesce(worker_id, ''), started_attempt FROM job_steps
		WHERE job_id = ? AND step_name = ?`, jobID, f.Step).Scan(&h.Status, &h.Attempt, &h.WorkerID, &h.Started)
	return errs.Fence(err, h, f, what)
}

func (s *Store) ArtifactCommit(ctx context.Context, a persistence.Artifact, f persistence.AttemptFence, maxJobBytes int64) error {
	jobID, blobID, err := persistence.PrepareArtifact(a, f)
	if err != nil {
		return err
	}
	err = s.writeTx(ctx, func(tx *txn, now time.Time) error {
		if err := fenceAttempt(ctx, tx, f, "artifact"); err != nil {
			return err
		}
		var total int64
		if maxJobBytes > 0 {
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(sum(size_bytes), 0) FROM job_artifacts
				WHERE job_id = ? AND name <> ?`, jobID, a.Name).Scan(&total); err != nil {
				return err
			}
		}
		if err := persistence.CheckJobBytes(a, f, total, maxJobBytes); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO job_artifacts
			(job_id, name, step_name, attempt, content_type, size_bytes, sha256, blob_id, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (job_id, name) DO UPDATE SET step_name = excluded.step_name, attempt = excluded.attempt,
				content_type = excluded.content_type, size_bytes = excluded.size_bytes, sha256 = excluded.sha256,
				blob_id = excluded.blob_id, created_at = excluded.created_at`,
			jobID, a.Name, f.Step, f.Attempt, a.ContentType, a.SizeBytes, a.SHA256, blobID, nanos(now))
		return err
	})
	return errs.Wrap(err, "store artifact %q of job %s", a.Name, f.JobID)
}

const artifactCols = `a.job_id, a.name, a.step_name, a.attempt, a.content_type, a.size_bytes, a.sha256, a.blob_id, a.created_at`

const artifactVisible = `FROM job_artifacts a JOIN job_steps s ON s.job_id = a.job_id AND s.step_name = a.step_name
	WHERE a.job_id = ? AND s.status = 'completed' AND s.attempt = a.attempt`

func scanArtifact(row rowScanner) (persistence.Artifact, error) {
	var (
		a  persistence.Artifact
		at int64
	)
	err := row.Scan(&a.JobID, &a.Name, &a.StepName, &a.Attempt, &a.ContentType, &a.SizeBytes, &a.SHA256, &a.BlobID, &at)
	a.CreatedAt = fromNanos(at)
	return a, err
}

func (s *Store) ArtifactList(ctx context.Context, jobID string) ([]persistence.Artifact, error) {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return []persistence.Artifact{}, nil
	}
	rows, err := s.query(ctx, `SELECT `+artifactCols+` `+artifactVisible+` ORDER BY a.name`, id)
	out, err := collect(rows, err, scanArtifact)
	if err != nil {
		return nil, fmt.Errorf("list artifacts of job %s: %w", jobID, interpretError(err))
	}
	return out, nil
}

func (s *Store) ArtifactGet(ctx context.Context, jobID, name string) (persistence.Artifact, error) {
	id, ok := canonicalUUID(jobID)
	if !ok {
		return persistence.Artifact{}, notFound("job %s not found", jobID)
	}
	a, err := scanArtifact(s.queryRow(ctx, `SELECT `+artifactCols+` `+artifactVisible+` AND a.name = ?`, id, name))
	return a, errs.Row(err, notFound("job %s has no artifact %q", jobID, name), "read artifact %q of job %s", name, jobID)
}

func (s *Store) StateSnapshotPut(ctx context.Context, sn persistence.StateSnapshot, f *persistence.AttemptFence, keep int) error {
	sn, st, keep, err := persistence.PrepareStateSnapshot(sn, keep)
	if err != nil {
		return err
	}
	err = s.writeTx(ctx, func(tx *txn, now time.Time) error {
		if f != nil {
			if err := fenceAttempt(ctx, tx, *f, "state"); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO state_snapshots
			(id, workspace, task_name, job_id, step_name, source, uploaded_by, state, blob_id, size_bytes, sha256, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sn.ID, sn.Workspace, sn.Task, nullIfEmpty(sn.JobID), sn.StepName, sn.Source, sn.UploadedBy, string(st),
			sn.BlobID, sn.SizeBytes, sn.SHA256, nanos(now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM state_snapshots WHERE workspace = ? AND task_name = ? AND seq NOT IN
			(SELECT seq FROM state_snapshots WHERE workspace = ? AND task_name = ? ORDER BY seq DESC LIMIT ?)`,
			sn.Workspace, sn.Task, sn.Workspace, sn.Task, keep)
		return err
	})
	return errs.Wrap(err, "store state of %s/%s", sn.Workspace, sn.Task)
}

const snapshotCols = `id, workspace, task_name, coalesce(job_id, ''), step_name, source, uploaded_by, state, blob_id, size_bytes, sha256, created_at`

func scanSnapshot(row rowScanner) (persistence.StateSnapshot, error) {
	var (
		sn persistence.StateSnapshot
		st string
		at int64
	)
	if err := row.Scan(&sn.ID, &sn.Workspace, &sn.Task, &sn.JobID, &sn.StepName, &sn.Source, &sn.UploadedBy, &st,
		&sn.BlobID, &sn.SizeBytes, &sn.SHA256, &at); err != nil {
		return sn, err
	}
	sn.CreatedAt = fromNanos(at)
	sn.State = map[string]any{}
	if err := json.Unmarshal([]byte(st), &sn.State); err != nil {
		return sn, fmt.Errorf("decode state of snapshot %s: %w", sn.ID, err)
	}
	return sn, nil
}

func (s *Store) snapshotQuery(ctx context.Context, what, where string, args ...any) (persistence.StateSnapshot, error) {
	sn, err := scanSnapshot(s.queryRow(ctx, `SELECT `+snapshotCols+` FROM state_snapshots WHERE `+where, args...))
	if err != nil {
		return sn, errs.Row(err, notFound("%s", what), "read %s", strings.TrimPrefix(what, "no "))
	}
	return sn, nil
}

func (s *Store) StateSnapshotLatest(ctx context.Context, workspace, task string) (persistence.StateSnapshot, error) {
	return s.snapshotQuery(ctx, "no state stored for "+persistence.StateName(workspace, task),
		`workspace = ? AND task_name = ? ORDER BY seq DESC LIMIT 1`, workspace, task)
}

func (s *Store) StateScopes(ctx context.Context, workspace, task string) (hasTask, hasGlobal bool, err error) {
	db, err := s.reader()
	if err != nil {
		return false, false, err
	}
	err = db.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM state_snapshots WHERE workspace = ? AND task_name = ?),
		EXISTS (SELECT 1 FROM state_snapshots WHERE workspace = ? AND task_name = '')`,
		workspace, task, workspace).Scan(&hasTask, &hasGlobal)
	if err != nil {
		return false, false, fmt.Errorf("read state scopes of task %s of workspace %s: %w", task, workspace, interpretError(err))
	}
	return hasTask, hasGlobal, nil
}

func (s *Store) StateSnapshotGet(ctx context.Context, workspace, task, id string) (persistence.StateSnapshot, error) {
	what := "no state snapshot " + id + " for " + persistence.StateName(workspace, task)
	cid, ok := canonicalUUID(id)
	if !ok {
		return persistence.StateSnapshot{}, notFound("%s", what)
	}
	return s.snapshotQuery(ctx, what, `workspace = ? AND task_name = ? AND id = ?`, workspace, task, cid)
}

func (s *Store) StateSnapshotList(ctx context.Context, workspace, task string, limit int) ([]persistence.StateSnapshot, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, `SELECT `+snapshotCols+` FROM state_snapshots
		WHERE workspace = ? AND task_name = ? ORDER BY seq DESC LIMIT ?`, workspace, task, limit)
	out, err := collect(rows, err, scanSnapshot)
	if err != nil {
		return nil, fmt.Errorf("list state of %s: %w", persistence.StateName(workspace, task), interpretError(err))
	}
	return out, nil
}
