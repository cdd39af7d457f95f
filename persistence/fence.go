package persistence

import (
	"fmt"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
)

// CanonicalUUID returns id in canonical UUID text (lower case, dashed), the
// form PostgreSQL's uuid type stores and SQLite's text columns are given;
// ok is false when id is not a UUID (it can then name no row).
func CanonicalUUID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return id, false
	}
	return u.String(), true
}

// CanonicalWorker is a worker id as the stores keep it on a step: a UUID in
// canonical form, anything else as given (the column is text).
func CanonicalWorker(id string) string {
	c, _ := CanonicalUUID(id)
	return c
}

// StepHolder is a step's row as a fence reads it: status, current attempt,
// the worker holding it, and the latest attempt its worker acknowledged.
type StepHolder struct {
	Status   string
	Attempt  int
	WorkerID string
	Started  int // started_attempt
}

// Fence is the check of a write on behalf of a step (a log push, an
// artifact, a state snapshot) against the step's row: nil when f's worker
// holds f's attempt, that attempt is running and the worker acknowledged
// it (its start), else CodeConflict. what names what is then not stored
// ("artifact"); "" for a plain fence.
//
// Why the acknowledgement: an attempt handed over but never acknowledged is
// given back with its number unused, and the next worker runs the step
// under the same number. A write made for it before the give-back would be
// the next run's: log lines that take the offsets of its own (which are
// then dropped as duplicates), an artifact listed as its, a state snapshot
// as the task's newest. A worker reports nothing before its start is
// accepted, so it loses nothing by this.
func (h StepHolder) Fence(f AttemptFence, what string) error {
	if h.Status == string(stroem.StepRunning) && h.Attempt == f.Attempt && h.WorkerID == CanonicalWorker(f.WorkerID) {
		if h.Started == h.Attempt {
			return nil
		}
		msg := fmt.Sprintf("step %s of job %s: attempt %d is not acknowledged yet (report its start first)", f.Step, f.JobID, f.Attempt)
		if what != "" {
			msg += ": its " + what + " is not stored"
		}
		return stroem.Errorf(stroem.CodeConflict, "%s", msg)
	}
	msg := fmt.Sprintf("step %s of job %s: attempt %d of worker %s is not the running attempt (step is %s, attempt %d)",
		f.Step, f.JobID, f.Attempt, f.WorkerID, h.Status, h.Attempt)
	if what != "" {
		msg += ": its " + what + " is not stored"
	}
	return stroem.Errorf(stroem.CodeConflict, "%s", msg)
}

// FenceRead is the row a store's StepFence reads: who holds the step, and
// whether its job has a cancel request.
type FenceRead struct {
	Holder StepHolder
	Cancel bool
}

// FenceColumns is what StepFence selects from job_steps into FenceRead.Dest.
const FenceColumns = `status, attempt, coalesce(worker_id, ''), started_attempt, cancel_requested`

// Dest is where a row of FenceColumns is scanned.
func (r *FenceRead) Dest() []any {
	return []any{&r.Holder.Status, &r.Holder.Attempt, &r.Holder.WorkerID, &r.Holder.Started, &r.Cancel}
}

// StepFence is the outcome of a store's StepFence once it read f's step
// into r, err being the read's error: an unknown step is CodeNotFound,
// another read error is interpreted and wrapped, a worker that does not
// hold f's running attempt is CodeConflict (StepHolder.Fence), else the
// step's cancel request.
func (e Errors) StepFence(err error, r FenceRead, f AttemptFence) (bool, error) {
	if err != nil {
		missing := stroem.Errorf(stroem.CodeNotFound, "step %s of job %s not found", f.Step, f.JobID)
		return false, e.Row(err, missing, "fence step %s of job %s", f.Step, f.JobID)
	}
	if err := r.Holder.Fence(f, ""); err != nil {
		return false, err
	}
	return r.Cancel, nil
}

// PrepareArtifact applies ArtifactCommit's rules both stores share before
// any SQL: the fence's job id must be a UUID (CodeNotFound otherwise), the
// name safe (CheckArtifactName) and the blob id a UUID. It returns the
// fence's job id and the blob id in canonical form.
func PrepareArtifact(a Artifact, f AttemptFence) (jobID, blobID string, err error) {
	jobID, ok := CanonicalUUID(f.JobID)
	if !ok {
		return "", "", stroem.Errorf(stroem.CodeNotFound, "job %s not found", f.JobID)
	}
	if err := CheckArtifactName(a.Name); err != nil {
		return "", "", err
	}
	blobID, ok = CanonicalUUID(a.BlobID)
	if !ok {
		return "", "", stroem.Errorf(stroem.CodeInvalid, "blob id %q is not a UUID", a.BlobID)
	}
	return jobID, blobID, nil
}

// CheckJobBytes refuses an artifact that would take its job's artifacts
// (total: the sizes of the job's other artifacts) over max bytes; max <= 0
// is no limit.
func CheckJobBytes(a Artifact, f AttemptFence, total, max int64) error {
	if max <= 0 || total+a.SizeBytes <= max {
		return nil
	}
	return stroem.Errorf(stroem.CodeTooLarge,
		"artifact %q (%d bytes) would take job %s's artifacts to %d bytes, over the limit of %d (artifact_storage.max_job_bytes)",
		a.Name, a.SizeBytes, f.JobID, total+a.SizeBytes, max)
}

// PrepareStateSnapshot applies StateSnapshotPut's rules both stores share
// before any SQL: the ids are UUIDs (returned canonical; a job id that is
// not one is CodeNotFound), the source is step or upload, keep defaults to
// DefaultStateKeep, and the state is returned as JSON.
func PrepareStateSnapshot(sn StateSnapshot, keep int) (StateSnapshot, []byte, int, error) {
	id, ok1 := CanonicalUUID(sn.ID)
	blobID, ok2 := CanonicalUUID(sn.BlobID)
	if !ok1 || !ok2 {
		return sn, nil, 0, stroem.Errorf(stroem.CodeInvalid, "snapshot and blob ids must be UUIDs")
	}
	sn.ID, sn.BlobID = id, blobID
	if sn.Source != StateSourceStep && sn.Source != StateSourceUpload {
		return sn, nil, 0, stroem.Errorf(stroem.CodeInvalid, "snapshot source %q: want step or upload", sn.Source)
	}
	if keep <= 0 {
		keep = DefaultStateKeep
	}
	st, err := StateJSON(sn.State)
	if err != nil {
		return sn, nil, 0, stroem.Errorf(stroem.CodeInvalid, "state: %v", err)
	}
	if sn.JobID != "" {
		j, ok := CanonicalUUID(sn.JobID)
		if !ok {
			return sn, nil, 0, stroem.Errorf(stroem.CodeNotFound, "job %s not found", sn.JobID)
		}
		sn.JobID = j
	}
	return sn, st, keep, nil
}
