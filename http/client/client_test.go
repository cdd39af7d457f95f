package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func TestMain(m *testing.M) {
	// Idle keep-alive connections of the clients' transports are not leaks.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"))
}

// newServer starts a test server and a client pointed at it.
func newServer(t *testing.T, h http.Handler, opts ...client.Option) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, opts...)
	require.NoError(t, err)
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func TestNewRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		_, err := client.New(u)
		require.Error(t, err, u)
	}
	c, err := client.New("http://example.com:8080/prefix/")
	require.NoError(t, err)
	require.Equal(t, "http://example.com:8080/prefix", c.BaseURL())
}

func TestStatusMapsToErrorCodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		want   error
	}{
		{400, stroem.ErrInvalid},
		{401, stroem.ErrUnauthorized},
		{404, stroem.ErrNotFound},
		{409, stroem.ErrConflict},
		{413, stroem.ErrTooLarge},
		{503, stroem.ErrUnavailable},
	}
	for _, tc := range cases {
		c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, tc.status, map[string]any{"error": "it went wrong", "details": []string{"a is required", "b must be integer"}})
		}))
		_, err := c.Job(context.Background(), "j1")
		require.ErrorIs(t, err, tc.want, "status %d", tc.status)
		require.Equal(t, "it went wrong: a is required; b must be integer", err.Error())
		require.Equal(t, []string{"a is required", "b must be integer"}, stroem.ErrorDetails(err))
	}

	// A problem the message names already is not repeated after it (the
	// job list's 400 for ?limit=5000 put it in both).
	c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, map[string]any{"error": "invalid query: limit: want 1 to 1000", "details": []string{"limit: want 1 to 1000", "offset: negative"}})
	}))
	_, err := c.Job(context.Background(), "j1")
	require.Equal(t, "invalid query: limit: want 1 to 1000: offset: negative", err.Error())
	require.Equal(t, []string{"limit: want 1 to 1000", "offset: negative"}, stroem.ErrorDetails(err), "the details stay whole")

	c = newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom\nmore", http.StatusInternalServerError)
	}))
	_, err = c.Workers(context.Background())
	require.Equal(t, stroem.CodeInternal, stroem.ErrorCode(err))
	require.Equal(t, "server answered 500 Internal Server Error: boom more", err.Error())
	require.True(t, client.Retryable(err))
}

func TestUnreachableServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())

	c, err := client.New("http://" + addr)
	require.NoError(t, err)
	_, err = c.Tasks(context.Background(), "default")
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	require.Equal(t, "server at http://"+addr+" is unreachable: connection refused", err.Error())
	require.True(t, client.Retryable(err))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Tasks(ctx, "default")
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, client.Retryable(err))
}

func TestRequestTimeoutIsUnavailable(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), client.WithTimeout(50*time.Millisecond))
	defer close(release)
	_, err := c.Workers(context.Background())
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	require.Contains(t, err.Error(), "did not answer GET /api/workers within 50ms")
	require.True(t, client.Retryable(err))
}

// An answer of some other service at the server URL is refused with the
// question to ask, not taken for an empty job list or reported as a bare
// decode error; an answer cut off on its way is a read error, as before.
func TestAnswerNotFromAStroemServer(t *testing.T) {
	t.Parallel()
	answer := func(body string) *client.Client {
		return newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, body)
		}))
	}
	const question = ": is that the address of a Strøm server?"

	c := answer(`{"status":"ok","uptime":12}`)
	_, err := c.Jobs(context.Background(), client.JobFilter{})
	require.ErrorContains(t, err, "GET /api/jobs: the answer is not a Strøm server's (none of the fields a Strøm server sends here)"+question)
	_, err = c.Tasks(context.Background(), "default")
	require.ErrorContains(t, err, "GET /api/workspaces/default/tasks: the answer is not a Strøm server's (json: cannot unmarshal object")
	require.ErrorContains(t, err, question)

	c = answer(`[1,2,3]`)
	_, err = c.Job(context.Background(), "j1")
	require.ErrorContains(t, err, "GET /api/jobs/j1: the answer is not a Strøm server's (json: cannot unmarshal array")

	c = answer(`not json`)
	_, err = c.Workers(context.Background())
	require.ErrorContains(t, err, question)

	// A Strøm answer: one shared key is enough, whatever else it holds; an
	// empty object and an empty list are not judged.
	c = answer(`{"items":[],"total":0,"added_later":true}`)
	jobs, err := c.Jobs(context.Background(), client.JobFilter{})
	require.NoError(t, err)
	require.Empty(t, jobs)
	c = answer(`{"JOB_ID":"j1","Status":"running"}`) // keys match without case, as encoding/json
	job, err := c.Job(context.Background(), "j1")
	require.NoError(t, err)
	require.Equal(t, "j1", job.ID)
	c = answer(`{}`)
	_, err = c.Job(context.Background(), "j1")
	require.NoError(t, err)
	c = answer(`[]`)
	tasks, err := c.Tasks(context.Background(), "default")
	require.NoError(t, err)
	require.Empty(t, tasks)

	// Cut off: the length promised more than came.
	c = newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		_, _ = io.WriteString(w, `{"items":[`)
	}))
	_, err = c.Jobs(context.Background(), client.JobFilter{})
	require.ErrorContains(t, err, "GET /api/jobs: read answer: unexpected EOF")
	require.NotContains(t, err.Error(), question)
}

func TestPublicRoutes(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/workspaces", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []any{map[string]any{"name": "default", "tasks_count": 2, "actions_count": 3, "revision": "abc",
			"errors": []any{"plain", map[string]any{"message": "bad", "pos": map[string]any{"file": "a.yaml", "line": 3, "col": 5}}}}})
	})
	mux.HandleFunc("GET /api/workspaces/{ws}/tasks", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "my ws", r.PathValue("ws"))
		writeJSON(w, 200, []any{map[string]any{"name": "hello-world", "mode": "distributed",
			"input": []any{map[string]any{"name": "name", "type": "string", "default": "World"}}}})
	})
	mux.HandleFunc("POST /api/workspaces/{ws}/tasks/{task}/execute", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "hello/world", r.PathValue("task"), "escaped as one segment")
		var body struct {
			Input map[string]any `json:"input"`
		}
		require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
		require.Equal(t, map[string]any{"n": float64(2)}, body.Input)
		writeJSON(w, 201, map[string]string{"job_id": "job-1"})
	})
	mux.HandleFunc("GET /api/jobs", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "status=failed&task=t&workspace=default&limit=5&offset=10",
			"status="+r.URL.Query().Get("status")+"&task="+r.URL.Query().Get("task")+"&workspace="+r.URL.Query().Get("workspace")+
				"&limit="+r.URL.Query().Get("limit")+"&offset="+r.URL.Query().Get("offset"))
		writeJSON(w, 200, map[string]any{"items": []stroem.Job{{ID: "j2", Status: stroem.JobFailed}}, "total": 11})
	})
	mux.HandleFunc("GET /api/jobs/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "jsonl" {
			for i := 1; i <= 3; i++ {
				b, _ := json.Marshal(stroem.LogLine{Seq: int64(i), Step: r.URL.Query().Get("step"), Text: strings.Repeat("x", i*40000)})
				_, _ = w.Write(append(b, '\n'))
			}
			return
		}
		writeJSON(w, 200, map[string]string{"logs": "a\nb\n"})
	})
	mux.HandleFunc("POST /api/jobs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, stroem.Job{ID: r.PathValue("id"), Status: stroem.JobCancelled})
	})
	c := newServer(t, mux)
	ctx := context.Background()

	wss, err := c.Workspaces(ctx)
	require.NoError(t, err)
	require.Len(t, wss, 1)
	require.Equal(t, "plain", wss[0].Errors[0].String())
	require.Equal(t, "a.yaml:3:5: bad", wss[0].Errors[1].String())

	tasks, err := c.Tasks(ctx, "my ws")
	require.NoError(t, err)
	require.Equal(t, "hello-world", tasks[0].Name)
	require.Equal(t, "World", tasks[0].Input[0].Default)

	id, err := c.Execute(ctx, "default", "hello/world", map[string]any{"n": 2})
	require.NoError(t, err)
	require.Equal(t, "job-1", id)

	jobs, err := c.Jobs(ctx, client.JobFilter{Workspace: "default", Task: "t", Status: stroem.JobFailed, Limit: 5, Offset: 10})
	require.NoError(t, err)
	require.Equal(t, "j2", jobs[0].ID)
	jp, err := c.JobPage(ctx, client.JobFilter{Workspace: "default", Task: "t", Status: stroem.JobFailed, Limit: 5, Offset: 10})
	require.NoError(t, err)
	require.Equal(t, 11, jp.Total)

	logs, err := c.Logs(ctx, "j2", "")
	require.NoError(t, err)
	require.Equal(t, "a\nb\n", logs)

	lines, err := c.LogLines(ctx, "j2", "s1")
	require.NoError(t, err)
	require.Len(t, lines, 3)
	require.Equal(t, 120000, len(lines[2].Text))
	require.Equal(t, "s1", lines[0].Step)

	job, err := c.CancelJob(ctx, "j2")
	require.NoError(t, err)
	require.Equal(t, stroem.JobCancelled, job.Status)
}

func TestWorkerRoutes(t *testing.T) {
	t.Parallel()
	var claims atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("POST /worker/register", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer secret", r.Header.Get("Authorization"))
		require.Equal(t, "test-agent", r.Header.Get("User-Agent"))
		writeJSON(w, 200, stroem.WorkerRegistered{WorkerID: "w1", LeaseMS: 10000, HeartbeatMS: 2000, Credential: "cred-w1"})
	})
	mux.HandleFunc("POST /worker/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "Bearer cred-w1", r.Header.Get("Authorization"), "after register, the worker's own credential")
		var hb stroem.Heartbeat
		require.NoError(t, json.NewDecoder(r.Body).Decode(&hb))
		if hb.WorkerID != "w1" {
			writeJSON(w, 404, map[string]string{"error": "unknown worker"})
			return
		}
		writeJSON(w, 200, stroem.HeartbeatResponse{Cancel: hb.Running})
	})
	mux.HandleFunc("POST /worker/jobs/claim", func(w http.ResponseWriter, r *http.Request) {
		if claims.Add(1) == 1 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = io.WriteString(w, `{"job_id":"j","step_name":"a b","attempt":1,"action_type":"shell","workspace":"default","revision":"r1",
			"spec":{"cmd":"echo","timeout":"30s"},"input":{"n":2,"big":12345678901234567890}}`)
	})
	mux.HandleFunc("POST /worker/jobs/{id}/steps/{step}/logs", func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "a b", r.PathValue("step"))
		var p stroem.LogPush
		require.NoError(t, json.NewDecoder(r.Body).Decode(&p))
		writeJSON(w, 200, stroem.LogPushResponse{Stored: len(p.Lines), Cancel: p.Offset > 0})
	})
	mux.HandleFunc("POST /worker/jobs/{id}/steps/{step}/complete", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 409, map[string]string{"error": "stale report"})
	})
	mux.HandleFunc("POST /worker/jobs/{id}/steps/{step}/start", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{})
	})
	mux.HandleFunc("GET /worker/workspaces/{ws}/{file}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("file") != "r1.tar.gz" {
			writeJSON(w, 404, map[string]string{"error": "unknown revision"})
			return
		}
		_, _ = io.WriteString(w, "tarball")
	})
	c := newServer(t, mux, client.WithToken("secret"), client.WithUserAgent("test-agent"))
	ctx := context.Background()

	reg, err := c.Register(ctx, stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}})
	require.NoError(t, err)
	require.Equal(t, stroem.WorkerRegistered{WorkerID: "w1", LeaseMS: 10000, HeartbeatMS: 2000, Credential: "cred-w1"}, reg)
	require.Equal(t, "cred-w1", c.Credential())

	ref := stroem.StepRef{JobID: "j", Step: "s", Attempt: 1}
	hr, err := c.Heartbeat(ctx, stroem.Heartbeat{WorkerID: "w1", Running: []stroem.StepRef{ref}})
	require.NoError(t, err)
	require.Equal(t, []stroem.StepRef{ref}, hr.Cancel)
	_, err = c.Heartbeat(ctx, stroem.Heartbeat{WorkerID: "gone"})
	require.ErrorIs(t, err, stroem.ErrNotFound)

	a, err := c.Claim(ctx, stroem.ClaimRequest{WorkerID: "w1", WaitMS: 100})
	require.NoError(t, err)
	require.Nil(t, a, "204 is no work")
	a, err = c.Claim(ctx, stroem.ClaimRequest{WorkerID: "w1", WaitMS: 100})
	require.NoError(t, err)
	require.Equal(t, "a b", a.StepName)
	require.Equal(t, 30*time.Second, a.Spec.Timeout.D())
	require.Equal(t, json.Number("2"), a.Input["n"], "numbers keep their written form")
	require.Equal(t, json.Number("12345678901234567890"), a.Input["big"])

	require.NoError(t, c.StepStart(ctx, "j", "a b", stroem.StepStart{WorkerID: "w1", Attempt: 1}))
	pr, err := c.PushLogs(ctx, "j", "a b", stroem.LogPush{WorkerID: "w1", Attempt: 1, Offset: 3, Lines: []stroem.PushLine{{Text: "x"}}})
	require.NoError(t, err)
	require.Equal(t, stroem.LogPushResponse{Stored: 1, Cancel: true}, pr)

	err = c.Complete(ctx, "j", "a b", stroem.Completion{WorkerID: "w1", Attempt: 1})
	require.ErrorIs(t, err, stroem.ErrConflict)
	require.False(t, client.Retryable(err))

	rc, err := c.WorkspaceArchive(ctx, "default", "r1")
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "tarball", string(b))
	_, err = c.WorkspaceArchive(ctx, "default", "r2")
	require.ErrorIs(t, err, stroem.ErrNotFound)
}

func TestClaimCancelAbortsLongPoll(t *testing.T) {
	t.Parallel()
	polled := make(chan struct{})
	c := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // net/http notices a gone client only once the body is read
		close(polled)
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Claim(ctx, stroem.ClaimRequest{WorkerID: "w", WaitMS: 30000})
		errc <- err
	}()
	<-polled
	cancel()
	err := <-errc
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)
}
