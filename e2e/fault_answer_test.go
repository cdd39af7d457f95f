package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// pair: a then b; fan: a and b side by side. Each step appends its name
// and attempt to a ledger, so a step run twice shows.
const lostAnswerWorkflow = `
actions:
  mark:
    type: shell
    cmd: 'while [ ! -e %[1]s/go ]; do sleep 0.01; done; echo "$STROEM_STEP $STROEM_ATTEMPT" >> %[1]s/ledger'
tasks:
  pair:
    flow:
      a: { action: mark }
      b: { action: mark, depends_on: [a] }
  fan:
    flow:
      a: { action: mark }
      b: { action: mark }
  only-a:
    flow:
      a: { action: mark }
  only-b:
    flow:
      b: { action: mark }
`

// answerDropper forwards every request to the server and, for the first
// completion of step a, drops the answer: it closes the connection instead
// of writing it, after the server recorded the completion.
type answerDropper struct {
	target string
	// onDrop, when set, runs before the connection is closed (the worker
	// waits for its answer meanwhile).
	onDrop  func()
	mu      sync.Mutex
	dropped []byte // the answer that never reached the worker
}

func (p *answerDropper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	p.mu.Lock()
	drop := p.dropped == nil && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/steps/a/complete") &&
		resp.StatusCode == http.StatusOK
	if drop {
		p.dropped = out
	}
	p.mu.Unlock()
	if drop {
		if p.onDrop != nil {
			p.onDrop()
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close() // the worker sees the connection end without an answer
		}
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}

// The answer to a completion that brought the slot's next step, started,
// is lost on the way. The worker repeats the completion and the repeat
// brings the same step again: it runs once, as attempt 1, and the job
// completes without waiting for a lease (the job has no retry policy, so a
// lost attempt would have failed it). In a chain (two slots, one idle) the
// step is handed over in the completing transaction; in a fan-out (one
// slot) the step of the same job, ready since the job began, is given to
// the completion in its transaction too (an offer); with two one-step jobs
// (one slot) the server claims the second job's step for the completion.
// In the restart cases the server is killed (SIGKILL) and started again
// before the worker's repeat reaches it: the new process finds the step
// given to the completion in the database.
func TestFaultLostCompletionAnswerBringsTheStartedStepAgain(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		tasks   []string
		slots   int
		restart bool
	}{
		{"pair", []string{"pair"}, 2, false}, {"fan", []string{"fan"}, 1, false},
		{"two jobs", []string{"only-a", "only-b"}, 1, false},
		{"pair after a server restart", []string{"pair"}, 2, true}, {"fan after a server restart", []string{"fan"}, 1, true},
		{"two jobs after a server restart", []string{"only-a", "only-b"}, 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			lostAnswer(t, c.tasks, c.slots, c.restart)
		})
	}
}

// lostAnswer runs a job of each of tasks (created in that order, before
// any step may end) on one worker of slots slots, through a proxy that drops
// the answer to step a's first completion; b, the step that answer carried,
// is in the last job.
func lostAnswer(t *testing.T, tasks []string, slots int, restart bool) {
	dir := t.TempDir()
	s := startFaultStack(t, faultOpts{workflow: fmt.Sprintf(lostAnswerWorkflow, dir), lease: 10 * time.Second})
	p := &answerDropper{target: s.url}
	if restart {
		p.onDrop = func() {
			kill9(s.server)
			s.startServer()
		}
	}
	proxy := httptest.NewServer(p)
	t.Cleanup(func() {
		proxy.CloseClientConnections() // the worker's long polls would hold Close for their wait
		proxy.Close()
	})
	direct := s.url
	s.url = proxy.URL // the worker talks through the proxy
	s.startWorker("w1", slots, 3*time.Second)
	s.url = direct
	s.waitHeartbeat("w1")

	started := time.Now()
	var id string
	for _, task := range tasks {
		id = s.execute(task, nil)
	}
	// The steps wait for this file: step a completes only once every job
	// exists, whatever the machine's load (two jobs: b's must be ready when
	// a's completion asks for a next step; after a restart: no job is
	// created while the server is down).
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go"), nil, 0o644))
	j := s.waitJobWithin(id, 10*time.Second)
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	took := time.Since(started)
	figure(t, t.Name()+": the completion's answer lost → job completed", took)
	require.Less(t, took, 8*time.Second, "completed without waiting for the lease")

	p.mu.Lock()
	dropped := string(p.dropped)
	p.mu.Unlock()
	require.Contains(t, dropped, `"step_name":"b"`, "the lost answer carried b")
	require.Contains(t, dropped, `"started":true`, "b came started")

	_, d := s.requireJob(id, stroem.JobCompleted)
	require.Len(t, d.Attempts["b"], 1, "b used one attempt")
	require.Equal(t, "completed", d.Attempts["b"][0].Status)
	ledger, err := os.ReadFile(filepath.Join(dir, "ledger"))
	require.NoError(t, err)
	require.Equal(t, "a 1\nb 1\n", string(ledger), "each step ran once")
}
