package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Blobs, artifacts and state snapshots (issue 22): see
// persistence.StateArtifactStore and migrations/00130_state_artifacts.sql.

func (s *Store) BlobChunkPut(ctx context.Context, blobID string, n int, data []byte) error {
	if !validUUID(blobID) {
		return stroem.Errorf(stroem.CodeInvalid, "blob id %q is not a UUID", blobID)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO blob_chunks (blob_id, n, data) VALUES ($1, $2, $3)
		ON CONFLICT (blob_id, n) DO UPDATE SET data = excluded.data`, blobID, n, data)
	return errs.Wrap(err, "store chunk %d of blob %s", n, blobID)
}

func (s *Store) BlobChunkGet(ctx context.Context, blobID string, n int) ([]byte, error) {
	if !validUUID(blobID) {
		return nil, notFound("blob %s not found", blobID)
	}
	var data []byte
	err := s.pool.QueryRow(ctx, `SELECT data FROM blob_chunks WHERE blob_id = $1 AND n = $2`, blobID, n).Scan(&data)
	if err != nil {
		return nil, errs.Row(err, notFound("chunk %d of blob %s not found", n, blobID), "read chunk %d of blob %s", n, blobID)
	}
	return data, nil
}

func (s *Store) BlobsPrune(ctx context.Context, before time.Time, limit int, dryRun bool) (int64, error) {
	if limit <= 0 {
		limit = 100
	}
	const orphans = `SELECT c.blob_id FROM blob_chunks c
		WHERE c.n = 0 AND c.created_at < $1
		AND NOT EXISTS (SELECT 1 FROM job_artifacts a WHERE a.blob_id = c.blob_id)
		AND NOT EXISTS (SELECT 1 FROM state_snapshots t WHERE t.blob_id = c.blob_id)
		ORDER BY c.created_at LIMIT $2`
	if dryRun {
		var n int64
		err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (`+orphans+`) o`, before, limit).Scan(&n)
		return n, interpretError(err)
	}
	var n int64
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, orphans, before, limit)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			n = 0
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM blob_chunks WHERE blob_id = ANY($1::uuid[])`, ids); err != nil {
			return err
		}
		n = int64(len(ids))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune blobs: %w", interpretError(err))
	}
	return n, nil
}

// fenceAttempt is the log push's fence: the worker must hold the step's
// running attempt; the share lock orders it with a transition that
// declares the attempt lost.
func fenceAttempt(ctx context.Context, tx pgx.Tx, f persistence.AttemptFence, what string) error {
	jobID, ok := persistence.CanonicalUUID(f.JobID)
	if !ok {
		return notFound("job %s not found", f.JobID)
	}
	var h persistence.StepHolder
	err := tx.QueryRow(ctx, `SELECT status, attempt, coalesce(worker_id, ''), started_attempt FROM job_steps
		WHERE job_id = $1 AND step_name = $2 FOR SHARE`, jobID, f.Step).Scan(&h.Status, &h.Attempt, &h.WorkerID, &h.Started)
	return errs.Fence(err, h, f, what)
}

func (s *Store) ArtifactCommit(ctx context.Context, a persistence.Artifact, f persistence.AttemptFence, maxJobBytes int64) error {
	jobID, blobID, err := persistence.PrepareArtifact(a, f)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := fenceAttempt(ctx, tx, f, "artifact"); err != nil {
			return err
		}
		if maxJobBytes > 0 {
			var total int64
			if err := tx.QueryRow(ctx, `SELECT coalesce(sum(size_bytes), 0) FROM job_artifacts
				WHERE job_id = $1 AND name <> $2`, jobID, a.Name).Scan(&total); err != nil {
				return err
			}
			if err := persistence.CheckJobBytes(a, f, total, maxJobBytes); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO job_artifacts
			(job_id, name, step_name, attempt, content_type, size_bytes, sha256, blob_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (job_id, name) DO UPDATE SET step_name = excluded.step_name, attempt = excluded.attempt,
				content_type = excluded.content_type, size_bytes = excluded.size_bytes, sha256 = excluded.sha256,
				blob_id = excluded.blob_id, created_at = now()`,
			jobID, a.Name, f.Step, f.Attempt, a.ContentType, a.SizeBytes, a.SHA256, blobID)
		return err
	})
	return errs.Wrap(err, "store artifact %q of job %s", a.Name, f.JobID)
}

const artifactCols = `a.job_id::text, a.name, a.step_name, a.attempt, a.content_type, a.size_bytes, a.sha256, a.blob_id::text, a.created_at`

const artifactVisible = `FROM job_artifacts a JOIN job_steps s ON s.job_id = a.job_id AND s.step_name = a.step_name
	WHERE a.job_id = $1 AND s.status = 'completed' AND s.attempt = a.attempt`

func scanArtifact(row pgx.Row) (persistence.Artifact, error) {
	var a persistence.Artifact
	err := row.Scan(&a.JobID, &a.Name, &a.StepName, &a.Attempt, &a.ContentType, &a.SizeBytes, &a.SHA256, &a.BlobID, &a.CreatedAt)
	a.CreatedAt = a.CreatedAt.UTC()
	return a, err
}

func (s *Store) ArtifactList(ctx context.Context, jobID string) ([]persistence.Artifact, error) {
	if !validUUID(jobID) {
		return []persistence.Artifact{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+artifactCols+` `+artifactVisible+` ORDER BY a.name`, canonicalUUID(jobID))
	if err != nil {
		return nil, fmt.Errorf("list artifacts of job %s: %w", jobID, interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (persistence.Artifact, error) { return scanArtifact(r) })
	if err != nil {
		return nil, fmt.Errorf("list artifacts of job %s: %w", jobID, interpretError(err))
	}
	if out == nil {
		out = []persistence.Artifact{}
	}
	return out, nil
}

func (s *Store) ArtifactGet(ctx context.Context, jobID, name string) (persistence.Artifact, error) {
	if !validUUID(jobID) {
		return persistence.Artifact{}, notFound("job %s not found", jobID)
	}
	a, err := scanArtifact(s.pool.QueryRow(ctx, `SELECT `+artifactCols+` `+artifactVisible+` AND a.name = $2`, canonicalUUID(jobID), name))
	return a, errs.Row(err, notFound("job %s has no artifact %q", jobID, name), "read artifact %q of job %s", name, jobID)
}

func (s *Store) StateSnapshotPut(ctx context.Context, sn persistence.StateSnapshot, f *persistence.AttemptFence, keep int) error {
	sn, st, keep, err := persistence.PrepareStateSnapshot(sn, keep)
	if err != nil {
		return err
	}
	var jobID any // NULL for an upload
	if sn.JobID != "" {
		jobID = sn.JobID
	}
	err = s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if f != nil {
			if err := fenceAttempt(ctx, tx, *f, "state"); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO state_snapshots
			(id, workspace, task_name, job_id, step_name, source, uploaded_by, state, blob_id, size_bytes, sha256)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)`,
			sn.ID, sn.Workspace, sn.Task, jobID, sn.StepName, sn.Source, sn.UploadedBy, string(st),
			sn.BlobID, sn.SizeBytes, sn.SHA256); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM state_snapshots WHERE workspace = $1 AND task_name = $2 AND seq NOT IN
			(SELECT seq FROM state_snapshots WHERE workspace = $1 AND task_name = $2 ORDER BY seq DESC LIMIT $3)`,
			sn.Workspace, sn.Task, keep)
		return err
	})
	return errs.Wrap(err, "store state of %s/%s", sn.Workspace, sn.Task)
}

const snapshotCols = `id::text, workspace, task_name, coalesce(job_id::text, ''), step_name, source, uploaded_by, state::text, blob_id::text, size_bytes, sha256, created_at`

func scanSnapshot(row pgx.Row) (persistence.StateSnapshot, error) {
	var (
		sn persistence.StateSnapshot
		st string
	)
	if err := row.Scan(&sn.ID, &sn.Workspace, &sn.Task, &sn.JobID, &sn.StepName, &sn.Source, &sn.UploadedBy, &st,
		&sn.BlobID, &sn.SizeBytes, &sn.SHA256, &sn.CreatedAt); err != nil {
		return sn, err
	}
	sn.CreatedAt = sn.CreatedAt.UTC()
	sn.State = map[string]any{}
	if err := json.Unmarshal([]byte(st), &sn.State); err != nil {
		return sn, fmt.Errorf("decode state of snapshot %s: %w", sn.ID, err)
	}
	return sn, nil
}

func (s *Store) StateSnapshotLatest(ctx context.Context, workspace, task string) (persistence.StateSnapshot, error) {
	sn, err := scanSnapshot(s.pool.QueryRow(ctx, `SELECT `+snapshotCols+` FROM state_snapshots
		WHERE workspace = $1 AND task_name = $2 ORDER BY seq DESC LIMIT 1`, workspace, task))
	if err != nil {
		return sn, errs.Row(err, notFound("no state stored for %s", persistence.StateName(workspace, task)), "read state of %s", persistence.StateName(workspace, task))
	}
	return sn, nil
}

func (s *Store) StateScopes(ctx context.Context, workspace, task string) (hasTask, hasGlobal bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM state_snapshots WHERE workspace = $1 AND task_name = $2),
		EXISTS (SELECT 1 FROM state_snapshots WHERE workspace = $1 AND task_name = '')`,
		workspace, task).Scan(&hasTask, &hasGlobal)
	if err != nil {
		return false, false, fmt.Errorf("read state scopes of task %s of workspace %s: %w", task, workspace, interpretError(err))
	}
	return hasTask, hasGlobal, nil
}

func (s *Store) StateSnapshotGet(ctx context.Context, workspace, task, id string) (persistence.StateSnapshot, error) {
	if !validUUID(id) {
		return persistence.StateSnapshot{}, notFound("no state snapshot %s for %s", id, persistence.StateName(workspace, task))
	}
	sn, err := scanSnapshot(s.pool.QueryRow(ctx, `SELECT `+snapshotCols+` FROM state_snapshots
		WHERE workspace = $1 AND task_name = $2 AND id = $3`, workspace, task, canonicalUUID(id)))
	if err != nil {
		return sn, errs.Row(err, notFound("no state snapshot %s for %s", id, persistence.StateName(workspace, task)), "read state snapshot %s", id)
	}
	return sn, nil
}

func (s *Store) StateSnapshotList(ctx context.Context, workspace, task string, limit int) ([]persistence.StateSnapshot, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, `SELECT `+snapshotCols+` FROM state_snapshots
		WHERE workspace = $1 AND task_name = $2 ORDER BY seq DESC LIMIT $3`, workspace, task, limit)
	if err != nil {
		return nil, fmt.Errorf("list state of %s: %w", persistence.StateName(workspace, task), interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (persistence.StateSnapshot, error) { return scanSnapshot(r) })
	if err != nil {
		return nil, fmt.Errorf("list state of %s: %w", persistence.StateName(workspace, task), interpretError(err))
	}
	if out == nil {
		out = []persistence.StateSnapshot{}
	}
	return out, nil
}
