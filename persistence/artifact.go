package persistence

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/stroem/stroem"
)

// BlobChunkSize is the size of every chunk of a stored blob but its last
// (package blob writes them; the stores keep them as numbered rows).
const BlobChunkSize = 1 << 20

// AttemptFence names the running attempt a worker must hold for a write on
// behalf of a step to be accepted (an artifact, a state snapshot): the
// same fence as a log push, checked in the transaction that writes.
type AttemptFence struct {
	JobID    string
	Step     string
	Attempt  int
	WorkerID string
}

// Artifact is a file a step left in its artifacts directory, stored as a
// blob. Name is its path relative to that directory ("reports/q1.html").
type Artifact struct {
	JobID       string    `json:"job_id"`
	Name        string    `json:"name"`
	StepName    string    `json:"step_name"`
	Attempt     int       `json:"attempt"`
	ContentType string    `json:"content_type"`
	SizeBytes   int64     `json:"size_bytes"`
	SHA256      string    `json:"sha256"`
	BlobID      string    `json:"-"`
	CreatedAt   time.Time `json:"created_at"`
}

// StateSnapshot is one stored state of a task (Task != "") or of a
// workspace (Task == "": global state): a tar.gz of files, with the
// structured state (State) also kept as JSON for templates.
type StateSnapshot struct {
	ID        string `json:"id"`
	Workspace string `json:"workspace"`
	Task      string `json:"task,omitempty"`
	// JobID and StepName name the step that wrote it (empty for an
	// upload, and once the job is deleted).
	JobID    string `json:"job_id,omitempty"`
	StepName string `json:"step_name,omitempty"`
	// Source is "step" or "upload".
	Source     string         `json:"source"`
	UploadedBy string         `json:"uploaded_by,omitempty"`
	State      map[string]any `json:"state"`
	BlobID     string         `json:"-"`
	SizeBytes  int64          `json:"size_bytes"`
	SHA256     string         `json:"sha256"`
	CreatedAt  time.Time      `json:"created_at"`
}

// StateSources are the values of StateSnapshot.Source.
const (
	StateSourceStep   = "step"
	StateSourceUpload = "upload"
)

// DefaultStateKeep is how many snapshots a task (or a workspace's global
// state) keeps when the caller does not say.
const DefaultStateKeep = 5

// CheckArtifactName refuses a name that could escape the artifacts
// directory or confuse a file system or a terminal: empty, absolute, a
// `..` or `.` or empty path element, a backslash, NUL or another control
// character, or longer than 1024 bytes.
func CheckArtifactName(name string) error {
	switch {
	case name == "":
		return stroem.Invalid("artifact name is empty")
	case len(name) > 1024:
		return stroem.Errorf(stroem.CodeInvalid, "artifact name is longer than 1024 bytes")
	case strings.HasPrefix(name, "/"):
		return stroem.Errorf(stroem.CodeInvalid, "artifact name %q is absolute: want a path relative to the artifacts directory", name)
	case strings.ContainsRune(name, '\\'):
		return stroem.Errorf(stroem.CodeInvalid, "artifact name %q holds a backslash", name)
	}
	for _, r := range name {
		if r == 0 || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return stroem.Errorf(stroem.CodeInvalid, "artifact name %q holds a NUL, control character or invalid UTF-8", name)
		}
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return stroem.Errorf(stroem.CodeInvalid, "artifact name %q has an empty, . or .. element: names may not leave the artifacts directory", name)
		}
	}
	return nil
}

// StateJSON encodes structured state for a store (an empty object for nil).
func StateJSON(m map[string]any) ([]byte, error) {
	if m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(m)
}

// StateArtifactStore keeps blobs (as chunks), job artifacts and state
// snapshots (issue 22; docs/state-artifacts.md). A blob's chunks are
// written first, each in its own short transaction, and become visible
// only through the row that names them, written last: an upload cut off
// halfway leaves unnamed chunks that BlobsPrune removes, never a half
// artifact or snapshot.
type StateArtifactStore interface {
	// BlobChunkPut stores chunk n of a blob (a repeated put replaces it).
	BlobChunkPut(ctx context.Context, blobID string, n int, data []byte) error
	// BlobChunkGet returns chunk n (stroem.ErrNotFound when absent).
	BlobChunkGet(ctx context.Context, blobID string, n int) ([]byte, error)
	// BlobsPrune deletes (or, with dryRun, counts) up to limit blobs
	// written before before that no artifact or snapshot names.
	BlobsPrune(ctx context.Context, before time.Time, limit int, dryRun bool) (int64, error)

	// ArtifactCommit records an artifact whose blob is fully written,
	// fenced by f (CodeConflict when the worker no longer holds the
	// attempt); an artifact of the same name is replaced. maxJobBytes > 0
	// bounds the job's artifacts together (CodeTooLarge).
	ArtifactCommit(ctx context.Context, a Artifact, f AttemptFence, maxJobBytes int64) error
	// ArtifactList returns the artifacts of the job's completed steps
	// (the attempt that completed), by name; an artifact of a running,
	// failed or lost attempt is not listed.
	ArtifactList(ctx context.Context, jobID string) ([]Artifact, error)
	// ArtifactGet returns one listed artifact (stroem.ErrNotFound else).
	ArtifactGet(ctx context.Context, jobID, name string) (Artifact, error)

	// StateSnapshotPut records a snapshot whose blob is fully written and
	// keeps the newest keep snapshots of its task (or workspace). With a
	// fence, the step's worker must hold the running attempt.
	StateSnapshotPut(ctx context.Context, s StateSnapshot, f *AttemptFence, keep int) error
	// StateSnapshotLatest returns the newest snapshot of a task (task ""
	// : the workspace's global state); stroem.ErrNotFound when none.
	StateSnapshotLatest(ctx context.Context, workspace, task string) (StateSnapshot, error)
	// StateScopes reports, in one query, whether the task and the
	// workspace's global state (task "") each have a snapshot: what an
	// assignment tells its worker to download (stroem.AssignmentState).
	StateScopes(ctx context.Context, workspace, task string) (hasTask, hasGlobal bool, err error)
	// StateSnapshotGet returns one snapshot of a task by id.
	StateSnapshotGet(ctx context.Context, workspace, task, id string) (StateSnapshot, error)
	// StateSnapshotList returns a task's snapshots, newest first.
	StateSnapshotList(ctx context.Context, workspace, task string, limit int) ([]StateSnapshot, error)
}

// StateName describes whose state a snapshot is, for errors.
func StateName(workspace, task string) string {
	if task == "" {
		return "the global state of workspace " + workspace
	}
	return "task " + task + " of workspace " + workspace
}

// ArtifactPath is the API path that downloads a job's artifact, each
// segment of its name escaped (a name may hold spaces, # or ?). The API's
// artifact list and hooks' hook.artifacts both give it.
func ArtifactPath(jobID, name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/api/jobs/" + jobID + "/artifacts/" + strings.Join(parts, "/")
}
