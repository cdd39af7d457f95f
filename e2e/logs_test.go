package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/stroemtest"
)

// logCluster is several servers on one database, each with its own
// workers, and a round-robin reverse proxy in front of the servers.
type logCluster struct {
	t       *testing.T
	token   string
	dir     string
	dbURL   string
	cfgs    []string // server i's config file
	addrs   []string
	servers []*proc // current process of server i
	all     []*proc // every process, for the failure dump
	proxy   *httptest.Server
	http    *http.Client
}

func startLogCluster(t *testing.T, servers int, workflow string, extra map[string]any) *logCluster {
	t.Helper()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	c := &logCluster{t: t, token: randomHex(16), dir: t.TempDir(), dbURL: dbtest.URL(t), http: &http.Client{Timeout: 30 * time.Second}}
	ws := workspaceDir(t, workflow)
	for i := range servers {
		addr := stroemtest.FreeAddr(t)
		cfg := map[string]any{
			"listen":         addr,
			"db":             map[string]any{"url": c.dbURL},
			"workspaces":     map[string]any{"default": map[string]any{"type": "folder", "path": ws}},
			"worker_token":   c.token,
			"lease":          "30s",
			"shutdown_grace": "5s",
		}
		for k, v := range extra {
			cfg[k] = v
		}
		c.addrs = append(c.addrs, addr)
		c.cfgs = append(c.cfgs, writeConfig(t, c.dir, fmt.Sprintf("server%d.yaml", i+1), cfg))
		c.servers = append(c.servers, nil)
	}
	t.Cleanup(func() {
		if c.proxy != nil {
			c.proxy.Close()
		}
		for i := len(c.all) - 1; i >= 0; i-- { // workers first
			c.all[i].stop(15 * time.Second)
		}
		if t.Failed() {
			for _, p := range c.all {
				t.Logf("---- output of %s (%v) ----\n%s", p.name, p.err, p.out.String())
			}
		}
	})
	for i := range servers {
		c.startServer(i)
	}

	// The proxy: round robin over the servers, streaming (SSE) responses
	// flushed at once. A server that is down answers 502; clients retry.
	var next atomic.Uint64
	targets := make([]*url.URL, servers)
	for i, a := range c.addrs {
		targets[i], _ = url.Parse("http://" + a)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(targets[next.Add(1)%uint64(len(targets))])
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	c.proxy = httptest.NewServer(rp)
	return c
}

func (c *logCluster) startServer(i int) {
	c.t.Helper()
	p := startProc(c.t, fmt.Sprintf("server%d#%d", i+1, len(c.all)+1), subprocessEnv(), "server", "--config", c.cfgs[i])
	c.servers[i] = p
	c.all = append(c.all, p)
	require.Eventually(c.t, func() bool {
		if p.exited() {
			return true
		}
		resp, err := c.http.Get("http://" + c.addrs[i] + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, waitFor, 50*time.Millisecond, "server %d never became ready", i+1)
	if p.exited() {
		c.t.Fatalf("server %d exited: %v", i+1, p.err)
	}
}

// startWorker starts a worker talking to server i directly.
func (c *logCluster) startWorker(name string, i int) *proc {
	c.t.Helper()
	cfg := writeConfig(c.t, c.dir, name+".yaml", map[string]any{
		"server_url":     "http://" + c.addrs[i],
		"worker_token":   c.token,
		"worker_name":    name,
		"max_concurrent": 1,
		"work_dir":       filepath.Join(c.dir, name),
		"shutdown_grace": "3s",
	})
	w := startProc(c.t, name, subprocessEnv(), "worker", "--config", cfg)
	c.all = append(c.all, w)
	return w
}

func (c *logCluster) execute(base, task string) string {
	c.t.Helper()
	resp, err := c.http.Post(base+"/api/workspaces/default/tasks/"+task+"/execute", "application/json", strings.NewReader(`{"input":{}}`))
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var out struct {
		JobID string `json:"job_id"`
	}
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(c.t, http.StatusCreated, resp.StatusCode)
	return out.JobID
}

func (c *logCluster) job(base, id string) (stroem.Job, bool) {
	var j stroem.Job
	resp, err := c.http.Get(base + "/api/jobs/" + id)
	if err != nil {
		return j, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return j, false
	}
	return j, json.NewDecoder(resp.Body).Decode(&j) == nil
}

// sseClient follows a job's log through the proxy, reconnecting with
// Last-Event-ID after a random number of events and whenever the
// connection fails, and checks every line arrives exactly once, in order.
type sseClient struct {
	lines      []stroem.LogLine
	done       string
	reconnects int
}

func followJob(ctx context.Context, base, jobID string, rng *rand.Rand) (*sseClient, error) {
	c := &sseClient{}
	var last int64
	for ctx.Err() == nil {
		budget := 50 + rng.IntN(2000) // events before this client hangs up
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/jobs/"+jobID+"/logs/stream", nil)
		req.Header.Set("Accept", "text/event-stream")
		if last > 0 {
			req.Header.Set("Last-Event-ID", strconv.FormatInt(last, 10))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			c.reconnects++
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			c.reconnects++
			select { // a server is down behind the proxy: try the next one
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
			}
			continue
		}
		var (
			ended bool
			fail  error
		)
		readEvents(resp.Body, func(ev sseEvent) bool {
			switch {
			case ev.data == "":
				return true
			case ev.event == "done":
				c.done, ended = ev.data, true
				return false
			}
			var l stroem.LogLine
			if err := json.Unmarshal([]byte(ev.data), &l); err != nil {
				fail = fmt.Errorf("bad event %q: %w", ev.data, err)
				return false
			}
			if l.Seq != last+1 {
				fail = fmt.Errorf("got seq %d after %d (lines so far %d)", l.Seq, last, len(c.lines))
				return false
			}
			last = l.Seq
			c.lines = append(c.lines, l)
			budget--
			return budget > 0
		})
		if ended || fail != nil {
			resp.Body.Close()
			return c, fail
		}
		resp.Body.Close()
		c.reconnects++
	}
	return c, ctx.Err()
}

// twoStepsWorkflow: two steps of 2500 lines each, which stop after their
// 300th line until the file gate exists, so that both are still printing
// when the test kills a server. (Without the gate, on a busy machine one
// step could be nearly done by the time the other had stored its 300th
// line, and too few lines were left to see the stream go on.)
func twoStepsWorkflow(gate string) string {
	return strings.ReplaceAll(`
actions:
  count:
    type: shell
    input: { name: { type: string, required: true }, n: { type: integer, required: true } }
    cmd: |
      for i in $(seq 1 "$INPUT_N"); do
        echo "$INPUT_NAME $i"
        if [ "$i" -eq 300 ]; then while [ ! -e 'GATE' ]; do sleep 0.05; done; fi
        if [ $((i % 100)) -eq 0 ]; then sleep 0.3; fi
      done
tasks:
  two:
    flow:
      left:
        action: count
        input: {name: left, n: 2500}
      right:
        action: count
        input: {name: right, n: 2500}
`, "GATE", gate)
}

// TestLogsAcrossServers: two servers on one database behind a round-robin
// proxy, a worker pushing to each; 50 SSE clients through the proxy that
// hang up and resume at random, and one server killed mid-stream. Every
// client gets every line exactly once, in order.
func TestLogsAcrossServers(t *testing.T) {
	gateDir := t.TempDir()
	require.NoError(t, os.Chmod(gateDir, 0o777))
	gate := filepath.Join(gateDir, "gate")
	c := startLogCluster(t, 2, twoStepsWorkflow(gate), nil)
	c.startWorker("worker-1", 0)
	c.startWorker("worker-2", 1)
	id := c.execute(c.proxy.URL, "two")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const clients = 50
	results := make([]*sseClient, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	var progress atomic.Int64
	for i := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 17))
			results[i], errs[i] = followJob(ctx, c.proxy.URL, id, rng)
			progress.Add(1)
		})
	}

	// Mid-stream: both steps have printed 300 lines and wait at the gate;
	// kill server 1 (worker-1's server) with SIGKILL, open the gate, let the
	// stream go on through server 2 (worker-2's lines), then bring server 1
	// back so worker-1 delivers what it kept meanwhile.
	stored := func(step string) int {
		resp, err := c.http.Get("http://" + c.addrs[1] + "/api/jobs/" + id + "/logs?format=text&step=" + step)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		n := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			n++
		}
		return n
	}
	require.Eventually(t, func() bool { return stored("left") >= 300 && stored("right") >= 300 },
		waitFor, 20*time.Millisecond, "both steps printing")
	kill9(c.servers[0])
	atKill := stored("left") + stored("right")
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	require.Eventually(t, func() bool { return stored("left")+stored("right") >= atKill+500 },
		waitFor, 50*time.Millisecond, "the stream goes on through server 2")
	c.startServer(0)

	wg.Wait()
	j, ok := c.job(c.proxy.URL, id)
	require.True(t, ok)
	require.Equal(t, stroem.JobCompleted, j.Status, "%+v", j)
	reconnects := 0
	for i, r := range results {
		require.NoError(t, errs[i], "client %d", i)
		require.Equal(t, `{"status":"completed"}`, r.done, "client %d", i)
		require.Len(t, r.lines, 5000, "client %d", i)
		next := map[string]int{"left": 1, "right": 1}
		for _, l := range r.lines {
			require.Equal(t, fmt.Sprintf("%s %d", l.Step, next[l.Step]), l.Text, "client %d: each step's lines in order", i)
			next[l.Step]++
		}
		reconnects += r.reconnects
	}
	t.Logf("%d SSE clients, %d reconnects in all; every client got all 5000 lines once, in order", clients, reconnects)

	// Any server serves the whole stored log.
	for _, base := range []string{"http://" + c.addrs[0], "http://" + c.addrs[1]} {
		resp, err := c.http.Get(base + "/api/jobs/" + id + "/logs?format=text&step=left")
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		require.Len(t, lines, 2500)
		require.Equal(t, "left 2500", lines[2499])
	}
}

// TestFollowAndSyncWebhookSeeCompletionsFromAnyServer: jobs are created
// through server 1 and run by a worker of server 2 (which records their
// end); `--follow` and a sync webhook through server 1 end with the job's
// result at once, not at a timeout.
func TestFollowAndSyncWebhookSeeCompletionsFromAnyServer(t *testing.T) {
	c := startLogCluster(t, 2, `
actions:
  hello:
    type: shell
    cmd: "sleep 1; echo done here"
tasks:
  hello:
    flow:
      only:
        action: hello
triggers:
  hook:
    type: webhook
    task: hello
    mode: sync
    timeout_secs: 60
`, nil)
	c.startWorker("worker-2", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code, out, errOut := runCLI(t, ctx, "trigger", "hello", "--follow", "--no-color", "--server", "http://"+c.addrs[0])
	exited := time.Now()
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "only | done here\n", out)
	// Measured from the job's end (server 2's timestamp), not from the CLI's
	// start: on a loaded machine starting the CLI and running the job take
	// seconds. Missing the end, the stream would run on to its next
	// keep-alive (15 s after connecting, about 13 s after the end).
	cl, err := client.New("http://" + c.addrs[0])
	require.NoError(t, err)
	jobs, err := cl.Jobs(ctx, client.JobFilter{Task: "hello", Limit: 1})
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.NotNil(t, jobs[0].CompletedAt)
	require.Less(t, exited.Sub(*jobs[0].CompletedAt), 7*time.Second, "the end is seen at once, not at the next keep-alive")

	start := time.Now()
	resp, err := c.http.Post("http://"+c.addrs[0]+"/hooks/hook", "application/json", strings.NewReader(`{}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"completed"`)
	require.Less(t, time.Since(start), 30*time.Second, "answered when the job ended on the other server, not at the 60 s timeout")
}

// rssKB is the resident set size of pid, from /proc.
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// TestLogsAtScale: `seq 1 200000` stores 200,000 lines; ten concurrent full
// reads of a 20 MB log keep the server's RSS under 150 MB; a client that
// sends its body slowly is cut off within the read timeout.
func TestLogsAtScale(t *testing.T) {
	c := startLogCluster(t, 1, `
actions:
  seq:
    type: shell
    cmd: seq 1 200000
  big:
    type: shell
    cmd: "yes 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789 | head -n 200000"
tasks:
  seq:
    flow:
      only:
        action: seq
  big:
    flow:
      only:
        action: big
`, map[string]any{"http": map[string]any{"read_timeout": "2s"}})
	c.startWorker("worker-1", 0)
	base := "http://" + c.addrs[0]

	count := func(id, format string) (int, string) {
		resp, err := c.http.Get(base + "/api/jobs/" + id + "/logs?format=" + format)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		n, last := 0, ""
		for sc.Scan() {
			n++
			last = sc.Text()
		}
		require.NoError(t, sc.Err())
		return n, last
	}
	waitDone := func(id string) {
		require.Eventually(t, func() bool {
			j, ok := c.job(base, id)
			return ok && j.Status.Terminal()
		}, 3*time.Minute, 100*time.Millisecond)
		j, _ := c.job(base, id)
		require.Equal(t, stroem.JobCompleted, j.Status)
		require.False(t, j.Steps[0].LogsTruncated)
	}

	start := time.Now()
	id := c.execute(base, "seq")
	waitDone(id)
	took := time.Since(start)
	n, last := count(id, "text")
	require.Equal(t, 200000, n, "every line stored")
	require.Equal(t, "200000", last)
	t.Logf("seq 1 200000: stored in %v (%.0f lines/s end to end)", took, 200000/took.Seconds())

	big := c.execute(base, "big")
	waitDone(big)
	pid := c.servers[0].cmd.Process.Pid
	before := rssKB(pid)
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if r := rssKB(pid); r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i := range 10 {
		format := []string{"json", "jsonl", "text"}[i%3]
		wg.Go(func() {
			resp, err := http.Get(base + "/api/jobs/" + big + "/logs?format=" + format)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if err != nil || n < 20_000_000 {
				t.Errorf("read %d bytes of the 20 MB log (%s): %v", n, format, err)
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	t.Logf("server RSS before the reads %d KB, peak during ten concurrent 20 MB reads %d KB", before, peak.Load())
	require.Less(t, peak.Load(), int64(150<<10), "server RSS stays under 150 MB")

	// A slow body: one byte every 200 ms; the read timeout is 2 s.
	d := stroemtest.SlowBody(t, c.addrs[0], "/api/workspaces/default/tasks/seq/execute", 200*time.Millisecond, 20*time.Second)
	t.Logf("slow body cut off after %v (read_timeout 2s)", d)
	require.Less(t, d, 4*time.Second)
}

// TestNoLogLineStoredForALostAttempt (issue 26, test c): the worker is
// frozen (SIGSTOP, its step keeps printing into the pipe) until the server
// declares the attempt lost; thawed, it pushes what the step printed
// meanwhile, and none of it is stored.
func TestNoLogLineStoredForALostAttempt(t *testing.T) {
	flagFile := filepath.Join(t.TempDir(), "go")
	printed := flagFile + ".printed"
	c := startLogCluster(t, 1, `
actions:
  chatty:
    type: shell
    cmd: |
      echo before
      until [ -f `+flagFile+` ]; do sleep 0.05; done
      for i in $(seq 1 50); do echo "after $i"; done
      touch `+printed+`
      sleep 60
tasks:
  chatty:
    flow:
      only:
        action: chatty
`, map[string]any{"lease": "2s"})
	w := c.startWorker("worker-1", 0)
	base := "http://" + c.addrs[0]
	id := c.execute(base, "chatty")
	require.Eventually(t, func() bool {
		resp, err := c.http.Get(base + "/api/jobs/" + id + "/logs?format=text")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b) == "before\n"
	}, waitFor, 20*time.Millisecond)

	require.NoError(t, syscall.Kill(w.cmd.Process.Pid, syscall.SIGSTOP)) // the worker only: its step runs on
	defer func() { _ = syscall.Kill(w.cmd.Process.Pid, syscall.SIGCONT) }()
	require.Eventually(t, func() bool {
		j, ok := c.job(base, id)
		return ok && len(j.Steps[0].Attempts) > 0 && j.Steps[0].Attempts[0].Status == stroem.AttemptLost
	}, waitFor, 50*time.Millisecond, "the server declares the attempt lost")
	require.NoError(t, os.WriteFile(flagFile, nil, 0o644)) // the step prints "after …" into the frozen worker's pipe
	require.Eventually(t, func() bool {
		_, err := os.Stat(printed)
		return err == nil
	}, waitFor, 20*time.Millisecond, "the step printed its lines")
	require.NoError(t, syscall.Kill(w.cmd.Process.Pid, syscall.SIGCONT))
	require.Eventually(t, func() bool {
		out := w.out.String()
		// The worker ships every line it read before it reports, so once it
		// reported (or gave up as stale), every push has been answered.
		return strings.Contains(out, "the server gave it to another attempt") || strings.Contains(out, "completion refused as stale")
	}, waitFor, 50*time.Millisecond, "the thawed worker pushed its lines")
	require.Contains(t, w.out.String(), "the server gave it to another attempt", "its pushes were refused (409)")

	resp, err := c.http.Get(base + "/api/jobs/" + id + "/logs?format=jsonl")
	require.NoError(t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var l stroem.LogLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l))
		require.False(t, l.Attempt == 1 && strings.HasPrefix(l.Text, "after"), "a line of the lost attempt was stored: %+v", l)
	}
}
