package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Task state and artifacts (docs/state-artifacts.md): the worker's uploads
// and downloads for the step it runs, and the CLI's calls.

// StepFile names the attempt a worker uploads or downloads for.
type StepFile struct {
	JobID    string
	Step     string
	WorkerID string
	Attempt  int
}

func (f StepFile) query(extra ...string) url.Values {
	q := url.Values{"worker_id": {f.WorkerID}, "attempt": {strconv.Itoa(f.Attempt)}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return q
}

// segs escapes each element of a slash-separated name.
func segs(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = seg(p)
	}
	return strings.Join(parts, "/")
}

// ArtifactUpload streams one artifact of size bytes of the step's running
// attempt. Only ctx bounds it.
func (c *Client) ArtifactUpload(ctx context.Context, f StepFile, name, contentType string, body io.Reader, size int64) error {
	_, err := c.do(ctx, request{
		method: http.MethodPost, path: stepPath(f.JobID, f.Step, "artifacts/"+segs(name)), query: f.query(),
		raw: body, rawType: contentType, rawLen: size, timeout: -1,
	}, nil)
	return err
}

// StepStateUpload uploads the state snapshot (a tar.gz) a step wrote;
// scope is "task" or "global".
func (c *Client) StepStateUpload(ctx context.Context, f StepFile, scope string, body io.Reader, size int64) error {
	_, err := c.do(ctx, request{
		method: http.MethodPost, path: stepPath(f.JobID, f.Step, "state"), query: f.query("scope", scope),
		raw: body, rawType: "application/gzip", rawLen: size, timeout: -1,
	}, nil)
	return err
}

// StepState downloads the newest state snapshot (tar.gz) the step sees;
// nil without error when there is none yet. The caller closes it.
func (c *Client) StepState(ctx context.Context, f StepFile, scope string) (io.ReadCloser, error) {
	resp, cancel, err := c.send(ctx, request{
		method: http.MethodGet, path: stepPath(f.JobID, f.Step, "state"), query: f.query("scope", scope),
		header: http.Header{"Accept": {"application/gzip"}}, timeout: -1,
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNoContent {
		resp.Body.Close()
		cancel()
		return nil, nil
	}
	return &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}

// statePath is a task's state route, or the workspace's global one when
// task is "".
func statePath(ws, task string) string {
	if task == "" {
		return "/api/workspaces/" + seg(ws) + "/state"
	}
	return "/api/workspaces/" + seg(ws) + "/tasks/" + seg(task) + "/state"
}

// StateSnapshot is a stored state snapshot as the API shows it.
type StateSnapshot struct {
	ID         string         `json:"id"`
	Workspace  string         `json:"workspace"`
	Task       string         `json:"task,omitempty"`
	JobID      string         `json:"job_id,omitempty"`
	StepName   string         `json:"step_name,omitempty"`
	Source     string         `json:"source"`
	UploadedBy string         `json:"uploaded_by,omitempty"`
	State      map[string]any `json:"state"`
	SizeBytes  int64          `json:"size_bytes"`
	SHA256     string         `json:"sha256"`
	CreatedAt  time.Time      `json:"created_at"`
}

// StateUpload uploads a tar.gz (nil: none) as the newest state of a task
// (task "": the workspace's global state); mode is "replace" or "merge",
// values become string entries of state.json.
func (c *Client) StateUpload(ctx context.Context, ws, task, mode string, values map[string]string, body io.Reader, size int64) (StateSnapshot, error) {
	q := url.Values{}
	for k, v := range values {
		q.Set(k, v)
	}
	if mode != "" {
		q.Set("mode", mode)
	}
	if body == nil {
		body, size = strings.NewReader(""), 0
	}
	var out StateSnapshot
	_, err := c.do(ctx, request{method: http.MethodPost, path: statePath(ws, task), query: q,
		raw: body, rawType: "application/gzip", rawLen: size, timeout: -1}, &out)
	return out, err
}

// StateList is a task's state history, newest first.
func (c *Client) StateList(ctx context.Context, ws, task string) ([]StateSnapshot, error) {
	var out struct {
		Items []StateSnapshot `json:"items"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: statePath(ws, task)}, &out)
	return out.Items, err
}

// StateDownload streams one snapshot's tar.gz ("latest": the newest).
func (c *Client) StateDownload(ctx context.Context, ws, task, id string) (io.ReadCloser, error) {
	return c.stream(ctx, statePath(ws, task)+"/"+seg(id))
}

// Artifact is a stored artifact as the API lists it.
type Artifact struct {
	Name        string    `json:"name"`
	StepName    string    `json:"step_name"`
	ContentType string    `json:"content_type"`
	SizeBytes   int64     `json:"size_bytes"`
	SHA256      string    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
	URL         string    `json:"url"`
}

// Artifacts lists a job's artifacts.
func (c *Client) Artifacts(ctx context.Context, jobID string) ([]Artifact, error) {
	return get[[]Artifact](ctx, c, "/api/jobs/"+seg(jobID)+"/artifacts")
}

// ArtifactDownload streams one artifact; the caller closes it.
func (c *Client) ArtifactDownload(ctx context.Context, jobID, name string) (io.ReadCloser, error) {
	return c.stream(ctx, "/api/jobs/"+seg(jobID)+"/artifacts/"+segs(name))
}

func (c *Client) stream(ctx context.Context, path string) (io.ReadCloser, error) {
	resp, cancel, err := c.send(ctx, request{method: http.MethodGet, path: path,
		header: http.Header{"Accept": {"*/*"}}, timeout: -1})
	if err != nil {
		return nil, err
	}
	return &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}
