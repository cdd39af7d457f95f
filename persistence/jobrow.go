package persistence

import (
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
)

// PreparedJob is a NewJob checked, defaulted and encoded by the rules every
// store applies before its INSERTs (PrepareJob); what is left to a store is
// the SQL and its own column encodings (times, lists).
type PreparedJob struct {
	// Job has its ID in canonical UUID form and Status, Mode and
	// SourceType defaulted.
	Job stroem.Job
	// Input is the job's input as JSON, never nil ({} for none); Output and
	// Context are nil for SQL NULL.
	Input, Output, Context []byte
	// SnapshotBody is the sanitized snapshot to store with the job, nil
	// when the store said it already holds NewJob.SnapshotID.
	SnapshotBody []byte
	Steps        []PreparedStep
	// AnyReady reports whether a step is inserted ready (claimable).
	AnyReady bool
}

// PreparedStep is a NewStep of a PreparedJob: MaxAttempts at least 1,
// DependsOn never nil, ErrorMessage sanitized, Input and Output encoded
// (Output nil for NULL).
type PreparedStep struct {
	NewStep
	Input, Output []byte
}

// PrepareJob applies JobInsert's rules to nj: the job id must be a UUID, a
// status must be known (and no step inserted running), user text and JSON
// are sanitized. snapshotKnown says the store already holds nj.SnapshotID,
// so its body is not sent again.
func PrepareJob(nj NewJob, snapshotKnown bool) (PreparedJob, error) {
	j := nj.Job
	id, err := uuid.Parse(j.ID)
	if err != nil {
		return PreparedJob{}, stroem.Errorf(stroem.CodeInvalid, "job id %q is not a UUID", j.ID)
	}
	j.ID = id.String()
	if j.Status == "" {
		j.Status = stroem.JobPending
	}
	if !j.Status.Valid() {
		return PreparedJob{}, stroem.Errorf(stroem.CodeInvalid, "job %s: unknown status %q", j.ID, j.Status)
	}
	if j.Mode == "" {
		j.Mode = "distributed"
	}
	if j.SourceType == "" {
		j.SourceType = stroem.SourceAPI
	}
	j.CreatedBy = stroem.SanitizeText(j.CreatedBy)
	p := PreparedJob{Job: j, Steps: make([]PreparedStep, len(nj.Steps))}
	if p.Input, err = EncodeJSON(SanitizeMap(j.Input)); err != nil {
		return PreparedJob{}, err
	}
	if p.Input == nil {
		p.Input = []byte("{}")
	}
	if p.Output, err = EncodeJSON(SanitizeMap(j.Output)); err != nil {
		return PreparedJob{}, err
	}
	if p.Context, err = EncodeJSON(SanitizeMap(nj.Context)); err != nil {
		return PreparedJob{}, err
	}
	if nj.SnapshotID != "" && !snapshotKnown && nj.SnapshotBody != nil {
		if p.SnapshotBody, err = SanitizeJSONBytes(nj.SnapshotBody); err != nil {
			return PreparedJob{}, err
		}
	}
	for i, st := range nj.Steps {
		if p.Steps[i], err = prepareStep(j.ID, st); err != nil {
			return PreparedJob{}, err
		}
		p.AnyReady = p.AnyReady || st.Status == stroem.StepReady
	}
	return p, nil
}

func prepareStep(jobID string, st NewStep) (PreparedStep, error) {
	if !st.Status.Valid() {
		return PreparedStep{}, stroem.Errorf(stroem.CodeInvalid, "job %s step %s: unknown status %q", jobID, st.Name, st.Status)
	}
	if st.Status == stroem.StepRunning {
		return PreparedStep{}, stroem.Errorf(stroem.CodeInvalid, "job %s step %s: a step cannot be inserted running", jobID, st.Name)
	}
	in, err := EncodeJSON(SanitizeMap(st.Input))
	if err != nil {
		return PreparedStep{}, err
	}
	var out []byte
	if st.Output != nil {
		if out, err = EncodeJSONValue(SanitizeValue(st.Output)); err != nil {
			return PreparedStep{}, err
		}
	}
	st.MaxAttempts = max(st.MaxAttempts, 1)
	st.Tags = NormalTags(st.Tags)
	if st.DependsOn == nil {
		st.DependsOn = []string{}
	}
	st.ErrorMessage = stroem.SanitizeText(st.ErrorMessage)
	return PreparedStep{NewStep: st, Input: in, Output: out}, nil
}

// JobColumns and StepColumns are the columns both stores select into a
// JobRow and a StepRow, in the order their scans expect.
const (
	JobColumns = `CAST(id AS text), workspace, task_name, mode, input, output, status, source_type,
	source_id, revision, coalesce(snapshot_id, ''), cancel_requested, created_at, started_at, completed_at,
	created_by, cancelled_by`
	StepColumns = `step_name, position, action_name, action_type, image, depends_on,
	continue_on_failure, max_attempts, status, input, output, error_message, coalesce(worker_id, ''),
	attempt, attempt_status, exit_code, lease_expires_at, ready_at, cancel_requested, started_at, completed_at,
	started_attempt, required_tags`
)

// Snapshots remembers the ids of the task snapshots a store holds, so its
// JobInsert sends a snapshot's body once per process, not once per job
// (see PrepareJob). The zero value is ready to use.
type Snapshots struct{ ids sync.Map }

// Known reports whether the snapshot id is stored.
func (c *Snapshots) Known(id string) bool {
	_, ok := c.ids.Load(id)
	return ok
}

// Stored records that the snapshot id is stored; "" (no snapshot) is
// ignored.
func (c *Snapshots) Stored(id string) {
	if id != "" {
		c.ids.Store(id, struct{}{})
	}
}

// Put is SnapshotPut as both stores do it: the body is sanitized (see
// SanitizeJSONBytes), write stores it with the store's SQL (storing an id
// again being a no-op), and the id is then known. write's error is
// interpreted and wrapped with e.
func (c *Snapshots) Put(e Errors, id string, body []byte, write func(body []byte) error) error {
	body, err := SanitizeJSONBytes(body)
	if err != nil {
		return err
	}
	if err := write(body); err != nil {
		return e.Wrap(err, "store snapshot %s", id)
	}
	c.Stored(id)
	return nil
}

// InsertJob is JobInsert as both stores do it: nj is prepared (PrepareJob,
// with the snapshot's body only when its id is not known yet), write
// inserts it with the store's SQL in one transaction, and the snapshot id
// is known once that committed. write's error is interpreted and wrapped
// with e.
func (c *Snapshots) InsertJob(e Errors, nj NewJob, write func(p PreparedJob) error) error {
	p, err := PrepareJob(nj, c.Known(nj.SnapshotID))
	if err != nil {
		return err
	}
	if err := write(p); err != nil {
		return e.Wrap(err, "insert job %s", p.Job.ID)
	}
	c.Stored(nj.SnapshotID)
	return nil
}

// Get is SnapshotGet as both stores do it: read returns the body with the
// store's SQL; no row is CodeNotFound, another error is interpreted and
// wrapped with e; a body read means the id is known.
func (c *Snapshots) Get(e Errors, id string, read func() ([]byte, error)) ([]byte, error) {
	body, err := read()
	if err != nil {
		return nil, e.Row(err, stroem.Errorf(stroem.CodeNotFound, "task snapshot %s not found", id), "read snapshot %s", id)
	}
	c.Stored(id)
	return body, nil
}

// JobRow is a jobs row as a store scans it, before Decode turns its text
// and JSON columns into the domain's types. Both stores select the same
// columns in the same order.
type JobRow struct {
	Job                stroem.Job
	Input, Output      []byte
	Status, SourceType string
	SnapshotID         string
	CancelRequested    bool
}

// Decode returns the job of the row, its times in UTC.
func (r *JobRow) Decode() (stroem.Job, error) {
	j := r.Job
	j.Status, j.SourceType = stroem.JobStatus(r.Status), stroem.SourceType(r.SourceType)
	var err error
	if j.Input, err = DecodeJSON(r.Input); err != nil {
		return j, err
	}
	if j.Output, err = DecodeJSON(r.Output); err != nil {
		return j, err
	}
	j.CreatedAt = j.CreatedAt.UTC()
	j.StartedAt, j.CompletedAt = utc(j.StartedAt), utc(j.CompletedAt)
	return j, nil
}

// StepRow is a job_steps row as a store scans it, before Decode.
type StepRow struct {
	Step                  StepState
	Input, Output         []byte
	Status, AttemptStatus string
}

// Decode returns the step of the row: DependsOn never nil, times in UTC.
func (r *StepRow) Decode() (*StepState, error) {
	st := r.Step
	st.Status, st.AttemptStatus = stroem.StepStatus(r.Status), stroem.AttemptStatus(r.AttemptStatus)
	if st.DependsOn == nil {
		st.DependsOn = []string{}
	}
	if len(st.Tags) == 0 {
		st.Tags = nil // a store's scan may give an empty list: none is nil
	}
	var err error
	if st.Input, err = DecodeJSON(r.Input); err != nil {
		return nil, err
	}
	if st.Output, err = DecodeJSONValue(r.Output); err != nil {
		return nil, err
	}
	st.LeaseExpiresAt, st.ReadyAt = utc(st.LeaseExpiresAt), utc(st.ReadyAt)
	st.StartedAt, st.CompletedAt = utc(st.StartedAt), utc(st.CompletedAt)
	return &st, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
