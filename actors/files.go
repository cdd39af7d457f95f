package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/blob"
	"github.com/stroem/stroem/persistence"
)

// Task state, global state and artifacts (issue 22, docs/state-artifacts.md):
// the rules of storing and serving them, for the worker protocol (fenced by
// attempt like a log push) and the public API.

// FileStore is what Files needs of the store.
type FileStore interface {
	persistence.StateArtifactStore
	JobGet(ctx context.Context, id string) (*stroem.Job, error)
	JobList(ctx context.Context, f persistence.JobFilter) ([]stroem.Job, error)
	StepFence(ctx context.Context, jobID, step string, attempt int, workerID string) (bool, error)
}

// FileLimits bound what Files stores; zero fields take the defaults.
type FileLimits struct {
	// MaxFileBytes bounds one artifact (default 100 MiB).
	MaxFileBytes int64
	// MaxJobBytes bounds a job's artifacts together (default 1 GiB).
	MaxJobBytes int64
	// MaxStateBytes bounds a state snapshot's tarball (default 50 MiB).
	MaxStateBytes int64
	// StateKeep is how many snapshots a task keeps (default 5).
	StateKeep int
}

// Default limits (the upstream's).
const (
	DefaultMaxArtifactBytes    = 100 << 20
	DefaultMaxJobArtifactBytes = 1 << 30
	DefaultMaxStateBytes       = 50 << 20
)

// StateUnpackFactor bounds what a snapshot unpacks to: at most this many
// times state_storage.max_bytes (1 GiB by default). The tarball's own
// bound says little of that (zeros compress a thousandfold), and every
// worker that runs the task unpacks it.
const StateUnpackFactor = 20

// maxUnpacked is the most a snapshot may unpack to.
func (l FileLimits) maxUnpacked() int64 { return StateUnpackFactor * l.MaxStateBytes }

// unpackedLimit counts what a snapshot's entries unpack to; fn checks one
// entry's size before its bytes are read.
type unpackedLimit struct {
	total, max int64
}

func (u *unpackedLimit) add(size int64) error {
	u.total += size
	if u.total > u.max {
		return blob.TooLarge(fmt.Sprintf("unpacked state snapshot (%d × state_storage.max_bytes)", StateUnpackFactor), u.max)
	}
	return nil
}

func (l FileLimits) withDefaults() FileLimits {
	orDefault(&l.MaxFileBytes, DefaultMaxArtifactBytes)
	orDefault(&l.MaxJobBytes, DefaultMaxJobArtifactBytes)
	orDefault(&l.MaxStateBytes, DefaultMaxStateBytes)
	orDefault(&l.StateKeep, persistence.DefaultStateKeep)
	return l
}

// Files stores and serves state snapshots and artifacts.
type Files struct {
	store FileStore
	lim   FileLimits
	heads jobHeadCache
}

// NewFiles returns the state and artifact service over store.
func NewFiles(store FileStore, lim FileLimits) *Files {
	return &Files{store: store, lim: lim.withDefaults()}
}

// Limits are the limits in force.
func (f *Files) Limits() FileLimits { return f.lim }

// StepWrite names the step attempt a worker writes or reads for.
type StepWrite struct {
	JobID    string
	Step     string
	Attempt  int
	WorkerID string
}

// Scopes of state: the task's own, or the workspace's global state.
const (
	ScopeTask   = "task"
	ScopeGlobal = "global"
)

// check authenticates the worker (it may only act for itself) and fences
// the attempt before any byte is stored.
func (f *Files) check(ctx context.Context, w *StepWrite) (*stroem.Job, error) {
	if err := callerIs(ctx, &w.WorkerID); err != nil {
		return nil, err
	}
	if w.Attempt < 1 {
		return nil, stroem.Errorf(stroem.CodeInvalid, "attempt must be at least 1, got %d", w.Attempt)
	}
	if _, err := f.store.StepFence(ctx, w.JobID, w.Step, w.Attempt, w.WorkerID); err != nil {
		return nil, err
	}
	return f.jobHead(ctx, w.JobID)
}

// jobHead is the job's id, workspace and task: what check's callers need.
// Every step fetches its task and global state when it starts, so JobGet
// here — every step and attempt of the job, twice per step — made a fan-out
// of n steps cost O(n²) on the server and in PostgreSQL (issue 23). JobList
// on the full id reads one row by the primary key, and the answer is kept:
// a job's workspace and task never change (and the fence, checked before,
// fails for a job that is gone).
func (f *Files) jobHead(ctx context.Context, id string) (*stroem.Job, error) {
	if j, ok := f.heads.get(id); ok {
		return j, nil
	}
	js, err := f.store.JobList(ctx, persistence.JobFilter{IDPrefix: id, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(js) == 0 || !strings.EqualFold(js[0].ID, id) {
		return nil, stroem.Errorf(stroem.CodeNotFound, "job %s not found", id)
	}
	j := &stroem.Job{ID: js[0].ID, Workspace: js[0].Workspace, TaskName: js[0].TaskName}
	f.heads.put(id, j)
	return j, nil
}

// jobHeadCache keeps the heads of the jobs whose steps ran lately; when
// full it starts over (the running jobs fill it again at one read each).
type jobHeadCache struct {
	mu sync.Mutex
	m  map[string]*stroem.Job
}

const jobHeadCacheSize = 4096

func (c *jobHeadCache) get(id string) (*stroem.Job, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.m[id]
	if !ok {
		return nil, false
	}
	cp := *j
	return &cp, true
}

func (c *jobHeadCache) put(id string, j *stroem.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= jobHeadCacheSize {
		c.m = make(map[string]*stroem.Job)
	}
	cp := *j
	c.m[id] = &cp
}

func (w StepWrite) fence() persistence.AttemptFence {
	return persistence.AttemptFence{JobID: w.JobID, Step: w.Step, Attempt: w.Attempt, WorkerID: w.WorkerID}
}

// ArtifactPut stores one artifact of a running attempt from body, streamed
// in chunks; it becomes visible (listed) once the step completes. A body
// over the per-file limit, or one that takes the job over its limit, is
// CodeTooLarge and stores nothing visible.
func (f *Files) ArtifactPut(ctx context.Context, w StepWrite, name, contentType string, body io.Reader) (persistence.Artifact, error) {
	if err := persistence.CheckArtifactName(name); err != nil {
		return persistence.Artifact{}, err
	}
	if _, err := f.check(ctx, &w); err != nil {
		return persistence.Artifact{}, err
	}
	ct := cleanContentType(contentType)
	wr, err := blob.Put(ctx, f.store, body, f.lim.MaxFileBytes, fmt.Sprintf("artifact %q (artifact_storage.max_file_bytes)", name))
	if err != nil {
		return persistence.Artifact{}, err
	}
	a := persistence.Artifact{
		JobID: w.JobID, Name: name, StepName: w.Step, Attempt: w.Attempt, ContentType: ct,
		SizeBytes: wr.Size, SHA256: wr.SHA256, BlobID: wr.ID,
	}
	if err := f.store.ArtifactCommit(ctx, a, w.fence(), f.lim.MaxJobBytes); err != nil {
		return persistence.Artifact{}, err
	}
	return a, nil
}

func cleanContentType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt == "" {
		return "application/octet-stream"
	}
	return mime.FormatMediaType(mt, params)
}

// StatePut stores the state snapshot a step wrote (a tarball whose root
// state.json is its structured state) as the newest of its task, or of its
// workspace's global state.
func (f *Files) StatePut(ctx context.Context, w StepWrite, scope string, body io.Reader) (persistence.StateSnapshot, error) {
	if scope != ScopeTask && scope != ScopeGlobal {
		return persistence.StateSnapshot{}, stroem.Errorf(stroem.CodeInvalid, "scope: want task or global, got %q", scope)
	}
	j, err := f.check(ctx, &w)
	if err != nil {
		return persistence.StateSnapshot{}, err
	}
	wr, err := blob.Put(ctx, f.store, body, f.lim.MaxStateBytes, "state snapshot (state_storage.max_bytes)")
	if err != nil {
		return persistence.StateSnapshot{}, err
	}
	st, err := f.readState(ctx, wr)
	if err != nil {
		return persistence.StateSnapshot{}, err
	}
	sn := persistence.StateSnapshot{
		ID: uuid.NewString(), Workspace: j.Workspace, Task: j.TaskName, JobID: j.ID, StepName: w.Step,
		Source: persistence.StateSourceStep, State: st, BlobID: wr.ID, SizeBytes: wr.Size, SHA256: wr.SHA256,
	}
	if scope == ScopeGlobal {
		sn.Task = ""
	}
	fence := w.fence()
	if err := f.store.StateSnapshotPut(ctx, sn, &fence, f.lim.StateKeep); err != nil {
		return persistence.StateSnapshot{}, err
	}
	return sn, nil
}

// readState reads the structured state of a stored tarball (checking every
// entry on the way).
func (f *Files) readState(ctx context.Context, wr blob.Written) (map[string]any, error) {
	st := map[string]any{}
	u := unpackedLimit{max: f.lim.maxUnpacked()}
	err := blob.Walk(blob.Open(ctx, f.store, wr.ID, wr.Size), func(name string, size int64, body io.Reader) error {
		if err := u.add(size); err != nil {
			return err
		}
		if name != blob.StateFile {
			return nil
		}
		if size > blob.MaxStateJSON {
			return blob.TooLarge("state.json", blob.MaxStateJSON)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return stroem.Errorf(stroem.CodeInvalid, "state.json is not a JSON object: %v", err)
		}
		return nil
	})
	return st, err
}

// StateGet returns the newest snapshot a running step sees and its
// tarball; a nil reader when there is none yet.
func (f *Files) StateGet(ctx context.Context, w StepWrite, scope string) (persistence.StateSnapshot, io.Reader, error) {
	if scope != ScopeTask && scope != ScopeGlobal {
		return persistence.StateSnapshot{}, nil, stroem.Errorf(stroem.CodeInvalid, "scope: want task or global, got %q", scope)
	}
	j, err := f.check(ctx, &w)
	if err != nil {
		return persistence.StateSnapshot{}, nil, err
	}
	task := j.TaskName
	if scope == ScopeGlobal {
		task = ""
	}
	sn, err := f.store.StateSnapshotLatest(ctx, j.Workspace, task)
	if errors.Is(err, stroem.ErrNotFound) {
		return sn, nil, nil // no state yet
	}
	if err != nil {
		return sn, nil, err
	}
	return sn, blob.Open(ctx, f.store, sn.BlobID, sn.SizeBytes), nil
}

// StateUpload is an operator's upload of state (POST …/state).
type StateUpload struct {
	Workspace string
	// Task is "" for the workspace's global state.
	Task string
	By   string
	// Mode is "replace" (default) or "merge".
	Mode string
	// Values become top-level string entries of state.json.
	Values map[string]string
}

// StateUpload stores an uploaded tarball as the newest snapshot: in replace
// mode exactly its files and Values; in merge mode the newest snapshot's
// files overlaid with the upload's, and its state with Values.
func (f *Files) StateUpload(ctx context.Context, u StateUpload, body io.Reader) (persistence.StateSnapshot, error) {
	switch u.Mode {
	case "":
		u.Mode = "replace"
	case "replace", "merge":
	default:
		return persistence.StateSnapshot{}, stroem.Errorf(stroem.CodeInvalid, "mode: want replace or merge, got %q", u.Mode)
	}
	st := map[string]any{}
	var prev *persistence.StateSnapshot
	if u.Mode == "merge" {
		p, err := f.store.StateSnapshotLatest(ctx, u.Workspace, u.Task)
		switch {
		case err == nil:
			prev = &p
			maps.Copy(st, p.State)
		case !errors.Is(err, stroem.ErrNotFound):
			return persistence.StateSnapshot{}, err
		}
	}
	for k, v := range u.Values {
		st[k] = v
	}
	stJSON, err := json.Marshal(st)
	if err != nil {
		return persistence.StateSnapshot{}, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(f.writeUpload(ctx, pw, body, prev, stJSON))
	}()
	wr, err := blob.Put(ctx, f.store, pr, f.lim.MaxStateBytes, "state snapshot (state_storage.max_bytes)")
	pr.CloseWithError(errors.New("state upload stopped")) // ends the writer if Put stopped early
	if err != nil {
		return persistence.StateSnapshot{}, err
	}
	sn := persistence.StateSnapshot{
		ID: uuid.NewString(), Workspace: u.Workspace, Task: u.Task, Source: persistence.StateSourceUpload,
		UploadedBy: u.By, State: st, BlobID: wr.ID, SizeBytes: wr.Size, SHA256: wr.SHA256,
	}
	if err := f.store.StateSnapshotPut(ctx, sn, nil, f.lim.StateKeep); err != nil {
		return persistence.StateSnapshot{}, err
	}
	return sn, nil
}

// writeUpload writes the new snapshot's tarball: the upload's files, then
// (merge) the previous snapshot's files the upload did not replace, then
// state.json.
func (f *Files) writeUpload(ctx context.Context, w io.Writer, body io.Reader, prev *persistence.StateSnapshot, st []byte) error {
	tw := blob.NewWriter(w)
	seen := map[string]bool{}
	u := unpackedLimit{max: f.lim.maxUnpacked() - int64(len(st))}
	err := blob.Walk(body, func(name string, size int64, r io.Reader) error {
		if err := u.add(size); err != nil {
			return err
		}
		if name == blob.StateFile {
			return stroem.Errorf(stroem.CodeInvalid, "the tarball may not hold a root state.json: pass state values as query parameters")
		}
		if seen[name] {
			return stroem.Errorf(stroem.CodeInvalid, "the tarball holds %q twice", name)
		}
		seen[name] = true
		return tw.Add(name, size, r)
	})
	if err != nil {
		return err
	}
	if prev != nil {
		err := blob.Walk(blob.Open(ctx, f.store, prev.BlobID, prev.SizeBytes), func(name string, size int64, r io.Reader) error {
			if name == blob.StateFile || seen[name] {
				return nil
			}
			if err := u.add(size); err != nil {
				return err
			}
			return tw.Add(name, size, r)
		})
		if err != nil {
			return err
		}
	}
	if err := tw.Add(blob.StateFile, int64(len(st)), strings.NewReader(string(st))); err != nil {
		return err
	}
	return tw.Close()
}

// StateList is a task's (task "": the workspace's global) snapshot history,
// newest first.
func (f *Files) StateList(ctx context.Context, workspace, task string, limit int) ([]persistence.StateSnapshot, error) {
	return f.store.StateSnapshotList(ctx, workspace, task, limit)
}

// StateOpen returns one snapshot ("latest": the newest) and its tarball.
func (f *Files) StateOpen(ctx context.Context, workspace, task, id string) (persistence.StateSnapshot, io.Reader, error) {
	var (
		sn  persistence.StateSnapshot
		err error
	)
	if id == "latest" {
		sn, err = f.store.StateSnapshotLatest(ctx, workspace, task)
	} else {
		sn, err = f.store.StateSnapshotGet(ctx, workspace, task, id)
	}
	if err != nil {
		return sn, nil, err
	}
	return sn, blob.Open(ctx, f.store, sn.BlobID, sn.SizeBytes), nil
}

// ArtifactList lists a job's artifacts (of its completed steps).
func (f *Files) ArtifactList(ctx context.Context, jobID string) ([]persistence.Artifact, error) {
	return f.store.ArtifactList(ctx, jobID)
}

// ArtifactOpen returns one listed artifact and a reader of its bytes that
// holds one chunk in memory at a time.
func (f *Files) ArtifactOpen(ctx context.Context, jobID, name string) (persistence.Artifact, io.Reader, error) {
	a, err := f.store.ArtifactGet(ctx, jobID, name)
	if err != nil {
		return a, nil, err
	}
	return a, blob.Open(ctx, f.store, a.BlobID, a.SizeBytes), nil
}

// TemplateState is what a step's templates see of state: `state` (the
// task's newest structured state) and `global_state`, each only when one
// exists.
func (f *Files) TemplateState(ctx context.Context, workspace, task string) (map[string]any, error) {
	out := map[string]any{}
	for key, t := range map[string]string{"state": task, "global_state": ""} {
		sn, err := f.store.StateSnapshotLatest(ctx, workspace, t)
		switch {
		case err == nil:
			out[key] = sn.State
		case !errors.Is(err, stroem.ErrNotFound):
			return nil, err
		}
	}
	return out, nil
}

// SetFiles makes the state of f visible to step templates.
func (o *Orchestrator) SetFiles(f *Files) { o.files.Store(f) }

// stateTemplates adds `state` and `global_state` to a claimed step's
// template variables (an empty object where there is no snapshot yet).
// State is resolved at claim time, like $STATE_DIR, so a step's command sees
// what the steps before it wrote; its input and when see the job-start
// snapshot instead (state_tmpl.go). A store error leaves them out (logged):
// the templates then fail naming the variable, or fall back to a default.
func (o *Orchestrator) stateTemplates(ctx context.Context, p *plan, cs *persistence.ClaimedStep) {
	f := o.files.Load()
	if f == nil || !usesState(p, cs.StepName) {
		return // no query on the claim path of a step that cannot need it
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := f.TemplateState(c, cs.Workspace, cs.TaskName)
	if err != nil {
		o.log.Warn("read state for templates", "job_id", cs.JobID, "step", cs.StepName, "err", err)
		return
	}
	for _, k := range []string{stateVar, globalStateVar} {
		if _, ok := m[k]; !ok {
			m[k] = map[string]any{} // no snapshot yet: `not state` is true
		}
	}
	cs.Templates = m
}

// stateHint says which state scopes of a claimed step's task have a
// snapshot now, for the assignment (stroem.AssignmentState): the worker
// then downloads only those instead of asking for both on every step. It
// reads the store, so it holds whichever server wrote the state; it runs
// after the claim, so a step sees what the steps before it wrote, as
// STATE_DIR promises. Nil (the worker asks, as before) without state
// storage or when the store cannot say.
func (o *Orchestrator) stateHint(ctx context.Context, workspace, task string) *stroem.AssignmentState {
	f := o.files.Load()
	if f == nil {
		return nil
	}
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	hasTask, hasGlobal, err := f.store.StateScopes(c, workspace, task)
	if err != nil {
		o.log.Warn("read state for an assignment", "workspace", workspace, "task", task, "err", err)
		return nil
	}
	return &stroem.AssignmentState{Task: hasTask, Global: hasGlobal}
}

// stateHints memoises stateHint over the steps of one claim (a fan-out's
// steps share their task).
type stateHints map[[2]string]*stroem.AssignmentState

// get returns the hint for a step of task; known is what the store read
// with the claim or the transition (nil when it did not), which spares
// the query.
func (m stateHints) get(ctx context.Context, o *Orchestrator, workspace, task string, known *stroem.AssignmentState) *stroem.AssignmentState {
	k := [2]string{workspace, task}
	if h, ok := m[k]; ok && h != nil {
		return h
	}
	var h *stroem.AssignmentState
	switch {
	case o.files.Load() == nil:
		// No state storage: the worker asks, as stateHint says.
	case known != nil:
		c := *known
		h = &c
	default:
		h = o.stateHint(ctx, workspace, task)
	}
	m[k] = h
	return h
}

// usesState reports whether the templates of a step's action may refer to
// `state` or `global_state` (a mention anywhere in them is enough).
func usesState(p *plan, step string) bool {
	ps := p.step(step)
	if ps == nil || ps.action == nil {
		return false
	}
	a := ps.action
	texts := append([]string{a.Cmd, a.Script, a.Inline}, a.Args...)
	for _, v := range a.Env {
		texts = append(texts, v)
	}
	for _, t := range texts {
		if strings.Contains(t, "state") {
			return true
		}
	}
	return false
}
