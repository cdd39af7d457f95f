package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/stroem/stroem"
)

// Workspace is one entry of GET /api/workspaces.
type Workspace struct {
	Name         string    `json:"name"`
	TasksCount   int       `json:"tasks_count"`
	ActionsCount int       `json:"actions_count"`
	Revision     string    `json:"revision"`
	Errors       []Problem `json:"errors"`
}

// Problem is one load error of a workspace. The server may send it as a
// plain string or as an object with a position; both decode.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

// UnmarshalJSON accepts "text", {"message", "file", "line", "col"} and
// {"message", "pos": {"file", "line", "col"}}.
func (p *Problem) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*p = Problem{Message: s}
		return nil
	}
	var v struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Col     int    `json:"col"`
		Column  int    `json:"column"`
		Message string `json:"message"`
		Pos     *struct {
			File string `json:"file"`
			Line int    `json:"line"`
			Col  int    `json:"col"`
		} `json:"pos"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Problem{File: v.File, Line: v.Line, Col: v.Col, Message: v.Message}
	if p.Col == 0 {
		p.Col = v.Column
	}
	if v.Pos != nil && p.File == "" {
		p.File, p.Line, p.Col = v.Pos.File, v.Pos.Line, v.Pos.Col
	}
	return nil
}

// String formats the problem as file:line:col: message.
func (p Problem) String() string {
	switch {
	case p.File == "":
		return p.Message
	case p.Line == 0:
		return p.File + ": " + p.Message
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Col, p.Message)
}

// InputField describes one input of a task.
type InputField struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required,omitempty"`
	Default     any    `json:"default,omitempty"`
	Description string `json:"description,omitempty"`
	Enum        []any  `json:"enum,omitempty"`
	Multiple    bool   `json:"multiple,omitempty"` // the value is a list
}

// Task is a task as the API lists it; the detail view adds its flow.
type Task struct {
	Name        string       `json:"name"`
	Workspace   string       `json:"workspace,omitempty"`
	HasTriggers bool         `json:"has_triggers,omitempty"`
	Description string       `json:"description,omitempty"`
	Mode        string       `json:"mode"`
	Input       []InputField `json:"input"`
	// Flow is the task's steps as the server describes them (detail view
	// only); kept raw because clients only display it.
	Flow json.RawMessage `json:"flow,omitempty"`
}

// JobFilter selects jobs for Jobs; zero fields do not filter.
type JobFilter struct {
	Workspace string
	Task      string
	Status    stroem.JobStatus
	// Since/Until bound the jobs' created_at (inclusive, exclusive).
	Since  time.Time
	Until  time.Time
	Limit  int
	Offset int
	// IDPrefix keeps the jobs whose id starts with it (?id_prefix=).
	IDPrefix string
}

// JobPage is one page of GET /api/jobs: the jobs and how many match the
// filter in all.
type JobPage struct {
	Items []stroem.Job `json:"items"`
	Total int          `json:"total"`
}

// Workspaces lists the server's workspaces with their load errors.
func (c *Client) Workspaces(ctx context.Context) ([]Workspace, error) {
	return get[[]Workspace](ctx, c, "/api/workspaces")
}

// Tasks lists the tasks of workspace ws.
func (c *Client) Tasks(ctx context.Context, ws string) ([]Task, error) {
	return get[[]Task](ctx, c, "/api/workspaces/"+seg(ws)+"/tasks")
}

// Task returns one task of workspace ws, with its flow.
func (c *Client) Task(ctx context.Context, ws, task string) (Task, error) {
	return get[Task](ctx, c, "/api/workspaces/"+seg(ws)+"/tasks/"+seg(task))
}

// Execute creates a job running task of workspace ws with input and returns
// the job's id. Invalid input is a stroem.ErrInvalid error listing every
// problem.
func (c *Client) Execute(ctx context.Context, ws, task string, input map[string]any) (string, error) {
	if input == nil {
		input = map[string]any{}
	}
	var out struct {
		JobID string `json:"job_id"`
	}
	_, err := c.do(ctx, request{
		method: http.MethodPost,
		path:   "/api/workspaces/" + seg(ws) + "/tasks/" + seg(task) + "/execute",
		body:   map[string]any{"input": input},
	}, &out)
	if err != nil {
		return "", err
	}
	if out.JobID == "" {
		return "", fmt.Errorf("execute %s/%s: the server answered without a job_id", ws, task)
	}
	return out.JobID, nil
}

// Jobs lists jobs, newest first, without their steps.
func (c *Client) Jobs(ctx context.Context, f JobFilter) ([]stroem.Job, error) {
	p, err := c.JobPage(ctx, f)
	return p.Items, err
}

// JobPage lists one page of jobs, newest first, with the total.
func (c *Client) JobPage(ctx context.Context, f JobFilter) (JobPage, error) {
	q := url.Values{}
	if f.Workspace != "" {
		q.Set("workspace", f.Workspace)
	}
	if f.Task != "" {
		q.Set("task", f.Task)
	}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Offset > 0 {
		q.Set("offset", strconv.Itoa(f.Offset))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.IDPrefix != "" {
		q.Set("id_prefix", f.IDPrefix)
	}
	var out JobPage
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/jobs", query: q}, &out)
	if out.Items == nil {
		out.Items = []stroem.Job{}
	}
	return out, err
}

// Job returns one job with its steps.
func (c *Client) Job(ctx context.Context, id string) (stroem.Job, error) {
	return get[stroem.Job](ctx, c, "/api/jobs/"+seg(id))
}

// CancelJob cancels a job and returns it as it is after the request.
func (c *Client) CancelJob(ctx context.Context, id string) (stroem.Job, error) {
	var out stroem.Job
	_, err := c.do(ctx, request{method: http.MethodPost, path: "/api/jobs/" + seg(id) + "/cancel"}, &out)
	return out, err
}

// Logs returns the stored log text of a job (of one step when step is not
// empty), one line per "\n".
func (c *Client) Logs(ctx context.Context, id, step string) (string, error) {
	q := url.Values{}
	if step != "" {
		q.Set("step", step)
	}
	var out struct {
		Logs string `json:"logs"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/jobs/" + seg(id) + "/logs", query: q, timeout: -1}, &out)
	return out.Logs, err
}

// LogLines returns the stored log lines of a job with their sequence
// numbers, streams and steps (GET …/logs?format=jsonl).
func (c *Client) LogLines(ctx context.Context, id, step string) ([]stroem.LogLine, error) {
	var out []stroem.LogLine
	err := c.EachLogLine(ctx, id, step, func(l stroem.LogLine) error {
		out = append(out, l)
		return nil
	})
	return out, err
}

// EachLogLine calls fn for each stored log line of a job, in order, reading
// the JSON-lines answer incrementally so a huge log needs no huge buffer.
func (c *Client) EachLogLine(ctx context.Context, id, step string, fn func(stroem.LogLine) error) error {
	q := url.Values{"format": {"jsonl"}}
	if step != "" {
		q.Set("step", step)
	}
	r := request{method: http.MethodGet, path: "/api/jobs/" + seg(id) + "/logs", query: q, timeout: -1,
		header: http.Header{"Accept": {"application/x-ndjson, application/jsonl, application/json"}}}
	resp, cancel, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer cancel()
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		b, err := readLine(br, maxEventBytes)
		if len(b) > 0 {
			var l stroem.LogLine
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				return fmt.Errorf("logs of job %s: bad line: %w", id, jerr)
			}
			if ferr := fn(l); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("logs of job %s: %w", id, err)
		}
	}
}

// Workers lists the registered workers.
func (c *Client) Workers(ctx context.Context) ([]stroem.Worker, error) {
	var out struct {
		Items []stroem.Worker `json:"items"`
	}
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/workers"}, &out)
	return out.Items, err
}

// TaskStats and DurationStats are the stats route's answer (the server's
// own types).
type (
	TaskStats     = stroem.TaskStats
	DurationStats = stroem.DurationStats
)

// TaskStats returns the duration statistics of the last limit (0: the
// server's default, 50) completed runs of a task.
func (c *Client) TaskStats(ctx context.Context, ws, task string, limit int) (TaskStats, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out TaskStats
	_, err := c.do(ctx, request{method: http.MethodGet, path: "/api/workspaces/" + seg(ws) + "/tasks/" + seg(task) + "/stats", query: q}, &out)
	return out, err
}
