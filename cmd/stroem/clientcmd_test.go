package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// cliResult is what a client command printed and the exit code the binary
// would have had.
type cliResult struct {
	out, err string
	code     int
}

// runCLI runs `stroem args…` in-process, like main does, with ctx.
func runCLI(t *testing.T, ctx context.Context, args ...string) cliResult {
	t.Helper()
	return runCLIIn(t, ctx, "", args...)
}

// runCLIIn is runCLI with stdin.
func runCLIIn(t *testing.T, ctx context.Context, stdin string, args ...string) cliResult {
	t.Helper()
	root := newRootCmd()
	root.SetIn(strings.NewReader(stdin))
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		if msg := err.Error(); msg != "" {
			require.NotContains(t, msg, "\n", "an error is one line")
			errOut.WriteString("stroem: " + msg + "\n") // what report prints
		}
		if hint := authHint(err); hint != "" {
			errOut.WriteString("stroem: " + hint + "\n")
		}
	}
	return cliResult{out: out.String(), err: errOut.String(), code: code}
}

// fakeAPI is an in-memory public API (SPEC §5, §6) for the client commands.
type fakeAPI struct {
	mu       sync.Mutex
	executed []map[string]any
	final    stroem.JobStatus
	queries  []string
	// hold, when set, keeps the log stream open after its lines (a job
	// that goes on) and is closed-signalled on streaming.
	hold      bool
	streaming chan struct{}
}

// otherJobID shares testJobID's first four characters.
const otherJobID = "0b7e9999-0000-4000-8000-000000000002"

const testJobID = "0b7e2c1e-5d7b-4c53-9a67-1d2f3e4a5b6c"

func newFakeAPI(t *testing.T) (*fakeAPI, string) {
	t.Helper()
	f := &fakeAPI{final: stroem.JobCompleted}
	started := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	ended := started.Add(1500 * time.Millisecond)
	worker := "9a1b2c3d-0000-4000-8000-000000000001"
	job := func() stroem.Job {
		f.mu.Lock()
		defer f.mu.Unlock()
		return stroem.Job{ID: testJobID, Workspace: "default", TaskName: "hello-world", Status: f.final,
			SourceType: stroem.SourceAPI, CreatedAt: started, StartedAt: &started, CompletedAt: &ended,
			Steps: []stroem.Step{
				{StepName: "say-hello", Status: stroem.StepCompleted, Attempt: 1, MaxAttempts: 1, WorkerID: &worker, StartedAt: &started, CompletedAt: &ended},
				{StepName: "shout-it", Status: stroem.StepFailed, Attempt: 2, MaxAttempts: 3, WorkerID: &worker, StartedAt: &started, CompletedAt: &ended,
					ErrorMessage: "exit code 1: tr: missing operand\nmore", Attempts: []stroem.Attempt{
						{Attempt: 1, WorkerID: worker, Status: stroem.AttemptFailed, ErrorMessage: "exit code 2: first try went wrong", StartedAt: started, CompletedAt: &ended},
						{Attempt: 2, WorkerID: worker, Status: stroem.AttemptFailed, ErrorMessage: "exit code 1: tr: missing operand\nmore", StartedAt: started, CompletedAt: &ended},
					}},
			}}
	}
	notFound := func(w http.ResponseWriter, what string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(404)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": what + " not found"})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/workspaces", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"name":"default","tasks_count":20,"actions_count":35,"revision":"2270d28421904be05680b13e","errors":[]},
			{"name":"ops","tasks_count":0,"actions_count":0,"revision":"","errors":["a.yaml: bad",{"message":"b","file":"b.yaml","line":3}]}]`))
	})
	mux.HandleFunc("GET /api/workspaces/{ws}/tasks", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("ws") != "default" {
			notFound(w, fmt.Sprintf("workspace %q", r.PathValue("ws")))
			return
		}
		_, _ = w.Write([]byte(`[{"name":"hello-world","mode":"distributed","description":"Say hello, then shout it",
			"input":[{"name":"name","type":"string","default":"World"},{"name":"count","type":"integer","required":true}]}]`))
	})
	mux.HandleFunc("GET /api/workspaces/{ws}/tasks/{task}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("task") != "hello-world" {
			notFound(w, fmt.Sprintf("task %q", r.PathValue("task")))
			return
		}
		_, _ = w.Write([]byte(`{"name":"hello-world","mode":"distributed","flow":[],
			"input":[{"name":"name","type":"string","default":"World"},{"name":"count","type":"integer"},{"name":"version","type":"string"},{"name":"envs","type":"string","multiple":true},{"name":"ports","type":"integer","multiple":true}]}`))
	})
	mux.HandleFunc("POST /api/workspaces/{ws}/tasks/{task}/execute", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("task") != "hello-world" {
			notFound(w, fmt.Sprintf("task %q", r.PathValue("task")))
			return
		}
		var body struct {
			Input map[string]any `json:"input"`
		}
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		f.mu.Lock()
		f.executed = append(f.executed, body.Input)
		f.mu.Unlock()
		w.WriteHeader(201)
		_, _ = w.Write([]byte(`{"job_id":"` + testJobID + `"}`))
	})
	mux.HandleFunc("GET /api/jobs", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.URL.RawQuery)
		f.mu.Unlock()
		j := job()
		j.Steps = nil
		if p := r.URL.Query().Get("id_prefix"); p != "" {
			items := []stroem.Job{}
			for _, id := range []string{testJobID, otherJobID} {
				if strings.HasPrefix(id, p) {
					j.ID = id
					items = append(items, j)
				}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "total": len(items)})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"items": []stroem.Job{j}, "total": 1})
	})
	mux.HandleFunc("GET /api/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testJobID {
			notFound(w, "job")
			return
		}
		_ = json.NewEncoder(w).Encode(job())
	})
	mux.HandleFunc("POST /api/jobs/{id}/steps/{step}/approve", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testJobID {
			notFound(w, "job")
			return
		}
		_ = json.NewEncoder(w).Encode(job())
	})
	mux.HandleFunc("GET /api/jobs/{id}/artifacts", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testJobID {
			notFound(w, "job")
			return
		}
		_, _ = w.Write([]byte(`[{"job_id":"` + testJobID + `","name":"report.txt","step_name":"say-hello","attempt":1,"content_type":"text/plain","size_bytes":2}]`))
	})
	mux.HandleFunc("GET /api/jobs/{id}/artifacts/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testJobID || r.PathValue("name") != "report.txt" {
			notFound(w, "artifact")
			return
		}
		_, _ = w.Write([]byte("hi"))
	})
	mux.HandleFunc("POST /api/jobs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		j := job()
		j.Status = stroem.JobCancelled
		_ = json.NewEncoder(w).Encode(j)
	})
	mux.HandleFunc("GET /api/jobs/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "jsonl" {
			for _, l := range []string{
				`{"seq":1,"step":"say-hello","attempt":1,"stream":"stdout","text":"Hello You"}`,
				`{"seq":2,"step":"shout-it","attempt":1,"stream":"stderr","text":"HELLO YOU"}`,
			} {
				if s := r.URL.Query().Get("step"); s == "" || strings.Contains(l, `"step":"`+s+`"`) {
					_, _ = w.Write([]byte(l + "\n"))
				}
			}
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"logs": "Hello You\nHELLO YOU\n"})
	})
	mux.HandleFunc("GET /api/jobs/{id}/logs/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		lines := []stroem.LogLine{
			{Seq: 1, Step: "say-hello", Attempt: 1, Stream: stroem.Stdout, Text: "Hello You"},
			{Seq: 2, Step: "say-hello", Attempt: 1, Stream: stroem.Stderr, Text: "a warning"},
			{Seq: 3, Step: "shout-it", Attempt: 1, Stream: stroem.Stdout, Text: "HELLO YOU"},
		}
		for _, l := range lines {
			if s := r.URL.Query().Get("step"); s != "" && l.Step != s {
				continue
			}
			b, _ := json.Marshal(l)
			fmt.Fprintf(w, "id: %d\ndata: %s\n\n", l.Seq, b)
		}
		f.mu.Lock()
		final, hold := f.final, f.hold
		f.mu.Unlock()
		if hold {
			w.(http.Flusher).Flush()
			close(f.streaming)
			<-r.Context().Done()
			return
		}
		fmt.Fprintf(w, "event: done\ndata: {\"status\":%q}\n\n", final)
	})
	mux.HandleFunc("GET /api/workspaces/{ws}/tasks/{task}/stats", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.queries = append(f.queries, r.PathValue("ws")+"/"+r.PathValue("task")+"?"+r.URL.RawQuery)
		f.mu.Unlock()
		if r.PathValue("task") == "never-ran" {
			_, _ = w.Write([]byte(`{"window":50,"task":{"sample_size":0,"avg_ms":null,"p50_ms":null,"p95_ms":null,"min_ms":null,"max_ms":null,"recent":[]},"steps":[]}`))
			return
		}
		_, _ = w.Write([]byte(`{"window":20,"task":{"sample_size":7,"avg_ms":1500,"p50_ms":1400,"p95_ms":2600.5,"min_ms":900,"max_ms":2700,"recent":[]},
			"steps":[{"step_name":"say-hello","sample_size":7,"avg_ms":300,"p50_ms":250,"p95_ms":480,"min_ms":120,"max_ms":500}]}`))
	})
	mux.HandleFunc("GET /api/workers", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"items": []stroem.Worker{{ID: "w-1", Name: "worker-1", Status: "active",
			Capabilities: []string{"shell"}, LastHeartbeatAt: time.Now()}}, "total": 1})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func TestTasksCommand(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "tasks", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "NAME         MODE         INPUT")
	require.Contains(t, r.out, `hello-world  distributed  name:string="World", count*:integer  Say hello, then shout it`)

	r = runCLI(t, t.Context(), "--server", url, "tasks", "-o", "json")
	require.Equal(t, 0, r.code, r.err)
	var tasks []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.out), &tasks))
	require.Equal(t, "hello-world", tasks[0]["name"])

	r = runCLI(t, t.Context(), "tasks", "--server", url, "--workspace", "nope")
	require.Equal(t, 1, r.code)
	require.Equal(t, "stroem: workspace \"nope\" not found\n", r.err)
}

// stroem workspaces lists the server's workspaces (the upstream CLI's
// `workspaces`), with how many problems a workspace's load had.
func TestWorkspacesCommand(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "workspaces", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, "NAME     REVISION      TASKS  ACTIONS  PROBLEMS\n"+
		"default  2270d2842190  20     35       -\n"+
		"ops      -             0      0        2\n", r.out)

	r = runCLI(t, t.Context(), "workspaces", "--server", url, "-o", "json")
	require.Equal(t, 0, r.code, r.err)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.out), &list))
	require.Len(t, list, 2)
	require.Equal(t, "2270d28421904be05680b13e", list[0]["revision"], "JSON keeps the whole revision")

	r = runCLI(t, t.Context(), "workspaces", "extra", "--server", url)
	require.Equal(t, 2, r.code, r.err)
}

func TestTriggerCommandInput(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "trigger", "hello-world", "--server", url,
		"--input", `{"name": "json", "keep": [1, 2]}`, "-i", "name=You", "-i", "n=2", "-i", "flag=true",
		"-i", `obj={"k": 1.5}`, "-i", "text=two words", "-i", "empty=")
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, testJobID+"\n", r.out)
	require.Equal(t, []map[string]any{{
		"name": "You", "keep": []any{float64(1), float64(2)}, "n": float64(2), "flag": true,
		"obj": map[string]any{"k": 1.5}, "text": "two words", "empty": "",
	}}, f.executed)

	// String fields of the task get the text as typed; others keep JSON.
	r = runCLI(t, t.Context(), "trigger", "hello-world", "--server", url,
		"-i", "version=2", "-i", "name=true", "-i", "count=3")
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, map[string]any{"version": "2", "name": "true", "count": float64(3)}, f.executed[1])

	// A field of several values gets a list: each pair's value, or a JSON
	// list's items, in order; strings as typed.
	r = runCLI(t, t.Context(), "trigger", "hello-world", "--server", url,
		"-i", `envs=["dev","prod"]`, "-i", "envs=7", "-i", "ports=8080", "-i", "ports=[1, 2]", "-i", "name=a", "-i", "name=b")
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, map[string]any{"envs": []any{"dev", "prod", "7"}, "ports": []any{float64(8080), float64(1), float64(2)},
		"name": "b"}, f.executed[2])
	r = runCLI(t, t.Context(), "trigger", "hello-world", "--server", url, "-i", "envs=dev")
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, map[string]any{"envs": []any{"dev"}}, f.executed[3])

	r = runCLI(t, t.Context(), "trigger", "hello-world", "--server", url, "-o", "json")
	require.Equal(t, 0, r.code, r.err)
	require.JSONEq(t, `{"job_id": "`+testJobID+`"}`, r.out)
}

func TestTriggerFollowExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		final stroem.JobStatus
		code  int
		err   string
	}{
		{stroem.JobCompleted, 0, ""},
		{stroem.JobFailed, 1, "stroem: step shout-it failed: exit code 1: tr: missing operand …\nstroem: job " + testJobID + " failed\n"},
		{stroem.JobCancelled, 130, "stroem: job " + testJobID + " was cancelled\n"},
	} {
		f, url := newFakeAPI(t)
		f.final = tc.final
		r := runCLI(t, t.Context(), "trigger", "hello-world", "-i", "name=You", "--follow", "--server", url)
		require.Equal(t, tc.code, r.code, r.err)
		require.Equal(t, "say-hello | Hello You\nshout-it  | HELLO YOU\n", r.out, "stdout lines in order, prefixed with their step")
		require.Equal(t, "job "+testJobID+"\nsay-hello | a warning\n"+tc.err, r.err, "stderr lines to stderr")

		r = runCLI(t, t.Context(), "trigger", "hello-world", "--follow", "--no-prefix", "--server", url)
		require.Equal(t, tc.code, r.code, r.err)
		require.Equal(t, "Hello You\nHELLO YOU\n", r.out, "--no-prefix: the bare lines")
	}
}

func TestTriggerWait(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "trigger", "hello-world", "--wait", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, testJobID+" completed\n", r.out)

	f.final = stroem.JobFailed
	r = runCLI(t, t.Context(), "trigger", "hello-world", "--wait", "--server", url, "-o", "json")
	require.Equal(t, 1, r.code)
	var job stroem.Job
	require.NoError(t, json.Unmarshal([]byte(r.out), &job))
	require.Equal(t, stroem.JobFailed, job.Status)
}

func TestClientCommandErrors(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"trigger", "nope", "--server", url}, 1, `stroem: task "nope" not found`},
		{[]string{"trigger", "hello-world", "--server", "http://127.0.0.1:1"}, 1, "stroem: server at http://127.0.0.1:1 is unreachable: connection refused"},
		{[]string{"status", "not-a-job", "--server", url}, 2, `stroem: "not-a-job" is not a job id`},
		{[]string{"status", "0b7", "--server", url}, 2, `stroem: "0b7" is not a job id: want its UUID or a unique prefix of at least 4 characters`},
		{[]string{"status", "abcd", "--server", url}, 1, "stroem: no job id starts with abcd"},
		{[]string{"status", "0b7e", "--server", url}, 2, "stroem: job id prefix 0b7e is ambiguous: " + testJobID + " (default/hello-world, completed), " + otherJobID},
		{[]string{"status", "a", "b", "--server", url}, 2, "stroem: status needs exactly one JOB id, got 2 arguments"},
		{[]string{"bogus"}, 2, `stroem: unknown command "bogus"`},
		{[]string{"tasks", "extra", "--server", url}, 2, `stroem: unknown command "extra" for "stroem tasks" (see 'stroem tasks --help')`},
		{[]string{"stauts", testJobID}, 2, `stroem: unknown command "stauts" (did you mean "state" or "stats" or "status"?)`},
		{[]string{"trigger", "hello-world", "--input", "{bad", "--server", url}, 2, "stroem: --input {bad: not a JSON object"},
		{[]string{"trigger", "hello-world", "-i", "novalue", "--server", url}, 2, `stroem: -i "novalue": want key=value or a JSON object`},
		{[]string{"trigger", "--server", url}, 2, "stroem: trigger needs exactly one TASK"},
		{[]string{"trigger", "hello-world", "--bogus"}, 2, "stroem: unknown flag: --bogus (see 'stroem trigger --help')"},
		{[]string{"jobs", "--status", "weird", "--server", url}, 2, `stroem: --status "weird": want one of pending, running, completed, failed, cancelled`},
		{[]string{"jobs", "--limit", "0", "--server", url}, 2, "stroem: --limit 0: want 1 to 1000"},
		{[]string{"jobs", "-o", "yaml", "--server", url}, 2, `stroem: --output must be text or json, not "yaml"`},
		{[]string{"tasks", "--server", "localhost:8080"}, 2, `stroem: --server "localhost:8080": want a URL that starts with http:// or https://`},
	}
	for _, tc := range cases {
		r := runCLI(t, t.Context(), tc.args...)
		require.Equal(t, tc.code, r.code, "%v: %s", tc.args, r.err)
		require.True(t, strings.HasPrefix(r.err, tc.err), "%v: got %q", tc.args, r.err)
		require.Equal(t, 1, strings.Count(r.err, "\n"), "one line: %q", r.err)
	}
}

func TestStatusCommand(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "status", testJobID, "--server", url)
	require.Equal(t, 0, r.code, r.err)
	for _, want := range []string{
		"job:       " + testJobID,
		"task:      default/hello-world",
		"status:    completed",
		"duration:  1.5s",
		"STEP       STATUS     ATTEMPT  WORKER    STARTED               DURATION  ERROR",
		"say-hello  completed  1        9a1b2c3d  2026-11-28 06:00:00Z  1.5s      -",
		"shout-it   failed     2/3      9a1b2c3d  2026-11-28 06:00:00Z  1.5s      exit code 1: tr: missing operand …",
	} {
		require.Contains(t, r.out, want)
	}
	require.Contains(t, r.out, "earlier attempts:\nSTEP      ATTEMPT  STATUS  WORKER    STARTED               DURATION  ERROR\n"+
		"shout-it  1/3      failed  9a1b2c3d  2026-11-28 06:00:00Z  1.5s      exit code 2: first try went wrong\n", "a retried step's earlier errors")
	require.NotContains(t, r.out, "2/3      failed", "the latest attempt is the table's row")

	short := runCLI(t, t.Context(), "status", "0b7e2c1e", "--server", url)
	require.Equal(t, 0, short.code, short.err)
	require.Equal(t, r.out, short.out, "a unique prefix is the job")

	r = runCLI(t, t.Context(), "status", testJobID, "--server", url, "--output", "json")
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, `"step_name": "shout-it"`)
}

func TestJobsCommand(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "jobs", "--status", "failed", "-n", "5", "--workspace", "default", "--task", "hello-world", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, testJobID+"  default/hello-world  completed  2026-11-28 06:00:00Z  1.5s      api")
	require.Equal(t, []string{"limit=5&status=failed&task=hello-world&workspace=default"}, f.queries)
}

func TestLogsCommand(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "logs", testJobID, "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, "say-hello | Hello You\nshout-it  | HELLO YOU\n", r.out, "stored lines in order, stderr too, prefixed and aligned")

	r = runCLI(t, t.Context(), "logs", testJobID, "--server", url, "--no-prefix")
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, "Hello You\nHELLO YOU\n", r.out)

	r = runCLI(t, t.Context(), "logs", testJobID, "--server", url, "-o", "json", "--step", "say-hello")
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, `{"seq":1,"step":"say-hello","attempt":1,"ts":"0001-01-01T00:00:00Z","stream":"stdout","text":"Hello You"}`+"\n", r.out)

	r = runCLI(t, t.Context(), "logs", testJobID, "--follow", "--step", "shout-it", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, "shout-it | HELLO YOU\n", r.out)
}

func TestLogPrinterColoursEachStep(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	p := &logPrinter{out: &out, prefix: true, color: true, colors: map[string]string{}}
	for _, l := range []stroem.LogLine{{Step: "a", Text: "1"}, {Step: "build", Text: "2"}, {Step: "a", Text: "3"}} {
		require.NoError(t, p.print(l))
	}
	require.Equal(t, "\x1b[36ma | \x1b[0m1\n\x1b[33mbuild | \x1b[0m2\n\x1b[36ma     | \x1b[0m3\n", out.String(),
		"one colour per step; the prefix grows to the longest name seen")
}

func TestCancelAndWorkersCommands(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "cancel", testJobID, "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, "job "+testJobID+" cancelled\n", r.out)
	r = runCLI(t, t.Context(), "cancel", "0b7e2c", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, "job "+testJobID+" cancelled\n", r.out, "a unique prefix of the id")

	r = runCLI(t, t.Context(), "workers", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "WORKER  NAME      STATUS  CAPABILITIES  TAGS  LAST HEARTBEAT")
	require.Contains(t, r.out, "w-1     worker-1  active  shell         -     0s ago")
	for _, arg := range []string{"w-", "W-1", "worker-1"} {
		one := runCLI(t, t.Context(), "workers", arg, "--server", url)
		require.Equal(t, 0, one.code, one.err)
		require.Equal(t, r.out, one.out, "an id prefix or the name selects the worker")
	}
	none := runCLI(t, t.Context(), "workers", "zz", "--server", url)
	require.Equal(t, 1, none.code)
	require.Contains(t, none.err, "stroem: no worker id starts with zz")
	two := runCLI(t, t.Context(), "workers", "a", "b", "--server", url)
	require.Equal(t, 2, two.code)
}

func TestWorkerCommandConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	r := runCLI(t, t.Context(), "worker", "--config", missing)
	require.Equal(t, 2, r.code)
	require.Equal(t, "stroem: config "+missing+": no such file or directory\n", r.err)

	noToken := filepath.Join(dir, "w.yaml")
	require.NoError(t, os.WriteFile(noToken, []byte("server_url: http://127.0.0.1:1\n"), 0o600))
	r = runCLI(t, t.Context(), "worker", "--config", noToken)
	require.Equal(t, 2, r.code)
	require.Equal(t, "stroem: config "+noToken+": key worker_token: must be set to the server's worker_token, in the config file (worker_token: …) or as STROEM__WORKER_TOKEN\n", r.err)

	badKey := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(badKey, []byte("worker_token: x\nmax_concurent: 3\n"), 0o600))
	r = runCLI(t, t.Context(), "worker", "--config", badKey)
	require.Equal(t, 2, r.code)
	require.Contains(t, r.err, `line 2: key max_concurent: unknown key (did you mean "max_concurrent"?)`)
}

func TestWorkerCommandRunsAndStopsCleanly(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	registered := make(chan struct{})
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("POST /worker/register", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, "Bearer secret", r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"worker_id":"w1","lease_ms":10000,"heartbeat_ms":2000,"credential":"cred-w1"}`))
		once.Do(func() { close(registered) })
	})
	mux.HandleFunc("POST /worker/jobs/claim", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(200 * time.Millisecond):
			w.WriteHeader(http.StatusNoContent)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	cfg := filepath.Join(t.TempDir(), "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(
		"server_url: %s\nworker_token: secret\nworker_name: test\nmax_concurrent: 2\nwork_dir: %s\n", srv.URL, t.TempDir())), 0o600))

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan cliResult, 1)
	go func() { done <- runCLI(t, ctx, "worker", "--config", cfg) }()
	<-registered
	cancel() // what SIGTERM does through main's signal.NotifyContext
	select {
	case r := <-done:
		require.Equal(t, 0, r.code, r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("stroem worker did not stop")
	}
}

func TestJobsSinceAndTotal(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "jobs", "--since", "2h", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	q, err := neturl.ParseQuery(f.queries[0])
	require.NoError(t, err)
	since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(-2*time.Hour), since, time.Minute)

	r = runCLI(t, t.Context(), "jobs", "--since", "-5m", "--server", url)
	require.Equal(t, 2, r.code)
	require.Contains(t, r.err, "--since")
}

func TestStatsCommand(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	r := runCLI(t, t.Context(), "stats", "hello-world", "-n", "20", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Contains(t, r.out, "STEP       RUNS  P50    P95    MIN    MAX")
	require.Contains(t, r.out, "(task)     7     1.40s  2.60s  900ms  2.70s")
	require.Contains(t, r.out, "say-hello  7     250ms  480ms  120ms  500ms")
	require.Equal(t, []string{"default/hello-world?limit=20"}, f.queries)

	r = runCLI(t, t.Context(), "stats", "never-ran", "--server", url)
	require.Equal(t, 0, r.code, r.err)
	require.Equal(t, "never-ran has no completed run yet\n", r.out)

	r = runCLI(t, t.Context(), "stats", "x", "-n", "0", "--server", url)
	require.Equal(t, 2, r.code)
	r = runCLI(t, t.Context(), "stats", "--server", url)
	require.NotEqual(t, 0, r.code, "a task name is required")
	require.Contains(t, r.err, "accepts 1 arg")
}

func TestCancelMessage(t *testing.T) {
	t.Parallel()
	require.Equal(t, "job "+testJobID+" cancelled", cancelMessage(stroem.Job{ID: testJobID, Status: stroem.JobCancelled}))
	require.Equal(t, "cancel requested; job "+testJobID+" is cancelling (its running steps are being stopped; `stroem status 0b7e2c1e` shows when it has)",
		cancelMessage(stroem.Job{ID: testJobID, Status: stroem.JobRunning}))
	require.Equal(t, "job "+testJobID+" had already ended (completed); nothing to cancel",
		cancelMessage(stroem.Job{ID: testJobID, Status: stroem.JobCompleted}))
}

// logs --follow ends with the job's result, like trigger --follow: a
// cancelled job says so and exits 130.
func TestLogsFollowSaysCancelled(t *testing.T) {
	t.Parallel()
	f, url := newFakeAPI(t)
	f.final = stroem.JobCancelled
	r := runCLI(t, t.Context(), "logs", "0b7e2c1e", "--follow", "--server", url)
	require.Equal(t, 130, r.code, r.err)
	require.Equal(t, "say-hello | Hello You\nshout-it  | HELLO YOU\n", r.out)
	require.Equal(t, "say-hello | a warning\nstroem: job "+testJobID+" was cancelled\n", r.err)

	f.final = stroem.JobFailed
	r = runCLI(t, t.Context(), "logs", testJobID, "--follow", "--server", url)
	require.Equal(t, 1, r.code, r.err)
	require.Contains(t, r.err, "stroem: job "+testJobID+" failed\n")
}

// Ctrl-C on a --follow detaches: the job goes on, exit 3 (not 130, which
// says the job was cancelled).
func TestFollowCtrlCDetaches(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"trigger", "hello-world", "--follow"},
		{"trigger", "hello-world", "--wait"},
		{"logs", testJobID, "--follow"},
	} {
		f, url := newFakeAPI(t)
		f.hold, f.streaming = true, make(chan struct{})
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-f.streaming
			cancel() // what Ctrl-C does to the command's context
		}()
		r := runCLI(t, ctx, append(args, "--server", url)...)
		cancel()
		require.Equal(t, exitDetached, r.code, "%v: %s", args, r.err)
		require.Contains(t, r.err, "stroem: detached; the job continues (stroem cancel "+testJobID+")\n", args)
	}
}
