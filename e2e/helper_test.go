package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/stroemtest"
)

// markerEnv is set in the environment of every subprocess; the workers pass
// it on to their steps (pass_env: a step's environment is built fresh), so
// leftovers can be found after the run.
const markerEnv = "E2E_STROEM_RUN"

var (
	// binary is the stroem binary built by TestMain.
	binary string
	// repoRoot is the module root (examples/, workspace/testdata/).
	repoRoot string
	// marker is this run's value of markerEnv.
	marker string
	// skipAll is set under -short.
	skipAll bool
)

// waitFor bounds every wait: generous, because CI machines are small and
// busy; the tests never assert speed.
const waitFor = 60 * time.Second

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		skipAll = true
		os.Exit(m.Run())
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if repoRoot, err = filepath.Abs(".."); err != nil {
		return 1, err
	}
	tmp, err := os.MkdirTemp("", "stroem-e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)
	marker = randomHex(8)

	binary = filepath.Join(tmp, "stroem")
	args := []string{"build", "-o", binary, "-ldflags", "-X main.version=e2e -X main.commit=e2ecommit -X main.buildDate=2026-01-02T03:04:05Z"}
	if os.Getenv("STROEM_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	build := exec.Command(goTool(), append(args, "./cmd/stroem")...)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return 1, fmt.Errorf("build the stroem binary: %v\n%s", err, out)
	}

	code := m.Run()
	if left := leftovers(); len(left) > 0 {
		for _, p := range left {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		return 1, fmt.Errorf("processes left behind after the suite (now killed):\n%s", describe(left))
	}
	return code, nil
}

// goTool finds the go command: $GOROOT/bin/go (set by `go test`), else the
// one on PATH, else the toolchain this test was built with.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type procInfo struct {
	pid     int
	cmdline string
}

// leftovers lists live processes whose environment holds this run's marker
// (Linux only: it reads /proc; elsewhere it finds nothing).
func leftovers() []procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(markerEnv + "=" + marker + "\x00")
	var out []procInfo
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, want) {
			continue // gone, a zombie (empty environ) or not ours
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, procInfo{pid: pid, cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))})
	}
	return out
}

func describe(ps []procInfo) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  pid %d: %s\n", p.pid, p.cmdline)
	}
	return b.String()
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---- subprocesses ----

// proc is one stroem subprocess and its combined output.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *stroemtest.Buffer
	done chan struct{}
	err  error // set when done is closed
}

// subprocessEnv is the test's environment without any STROEM_ setting that
// could leak into a subprocess, plus the marker and extra.
func subprocessEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "STROEM_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, markerEnv+"="+marker)
	return append(env, extra...)
}

// startProc starts `stroem args…` in its own process group.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	return startProcAs(t, name, env, nil, args...)
}

// startProcAs is startProc as another user (cred nil: this process's).
func startProcAs(t *testing.T, name string, env []string, cred *syscall.Credential, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, out: &stroemtest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	require.NoError(t, p.cmd.Start(), "start %s", name)
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group and waits; after grace it sends
// SIGKILL. Step processes run in groups of their own: a worker stopped with
// SIGTERM cancels them itself, and the leftover check catches any it missed.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// ---- a stack: server + workers on a fresh database ----

type stackOpts struct {
	// workspace is the folder served as workspace "default".
	workspace string
	// workers is how many workers to start (default 1).
	workers int
	// maxConcurrent per worker (default 4).
	maxConcurrent int
	// serverEnv is added to the server's environment (secrets).
	serverEnv []string
	// tokenInEnv gives the server and the workers the worker token as
	// STROEM__WORKER_TOKEN instead of in their config files (the
	// least-privilege deployment of docs/security.md).
	tokenInEnv bool
	// workerUser runs the workers as another user (the test must be root):
	// their config files and work dirs are given to that user.
	workerUser *syscall.Credential
	// workerEnv is added to the workers' environment.
	workerEnv []string
	// moreWorkspaces are served besides "default", by name.
	moreWorkspaces map[string]string
	// serverKeys are added to the server's configuration file.
	serverKeys map[string]any
	// libraries is the server's libraries: section (name → keys).
	libraries map[string]any
}

type stack struct {
	t       *testing.T
	url     string
	token   string
	dir     string
	dbURL   string
	opts    stackOpts
	server  *proc
	workers []*proc
	http    *http.Client
}

// startStack starts a server on a fresh database and opts.workers workers,
// and waits until the server is ready and every worker is registered. The
// processes are stopped when the test ends; their output is printed if it
// failed.
func startStack(t *testing.T, opts stackOpts) *stack {
	t.Helper()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	if opts.workers == 0 {
		opts.workers = 1
	}
	if opts.maxConcurrent == 0 {
		opts.maxConcurrent = 4
	}
	dir := t.TempDir()
	s := &stack{t: t, token: randomHex(16), dir: dir, http: &http.Client{Timeout: 30 * time.Second}, opts: opts}
	addr := stroemtest.FreeAddr(t)
	s.url = "http://" + addr
	s.dbURL = dbtest.URL(t)

	serverKeys := map[string]any{
		"listen":         addr,
		"db":             map[string]any{"url": s.dbURL},
		"log_storage":    map[string]any{"local_dir": filepath.Join(dir, "logs")},
		"workspaces":     workspacesConfig(opts),
		"worker_token":   s.token,
		"shutdown_grace": "5s",
	}
	for k, v := range opts.serverKeys {
		serverKeys[k] = v
	}
	if opts.libraries != nil {
		serverKeys["libraries"] = opts.libraries
	}
	serverEnv := opts.serverEnv
	if opts.tokenInEnv {
		delete(serverKeys, "worker_token")
		serverEnv = append(slices.Clip(serverEnv), "STROEM__WORKER_TOKEN="+s.token)
	}
	serverCfg := writeConfig(t, dir, "server.yaml", serverKeys)

	t.Cleanup(func() {
		// Workers first (they cancel their running steps), then the server.
		for _, w := range s.workers {
			w.stop(15 * time.Second)
		}
		if s.server != nil {
			s.server.stop(15 * time.Second)
		}
		if t.Failed() {
			for _, p := range append([]*proc{s.server}, s.workers...) {
				if p != nil {
					t.Logf("---- output of %s (%v) ----\n%s", p.name, p.err, p.out.String())
				}
			}
		}
	})

	s.server = startProc(t, "server", subprocessEnv(serverEnv...), "server", "--config", serverCfg)
	require.Eventually(t, func() bool {
		if s.server.exited() {
			return true // reported below
		}
		resp, err := s.http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, waitFor, 50*time.Millisecond, "server never became ready")
	if s.server.exited() {
		// err is read only once done is closed (no race with the waiter).
		t.Fatalf("the server exited: %v", s.server.err)
	}

	for i := 1; i <= opts.workers; i++ {
		s.startWorker(fmt.Sprintf("worker-%d", i), opts.maxConcurrent)
	}
	require.Eventually(t, func() bool {
		var ws struct{ Items []stroem.Worker }
		if s.getJSON("/api/workers", &ws) != http.StatusOK {
			return false
		}
		return len(ws.Items) == len(s.workers)
	}, waitFor, 50*time.Millisecond, "workers never registered")
	return s
}

// workspacesConfig is the server's workspaces: opts.workspace as
// "default", and opts.moreWorkspaces.
func workspacesConfig(opts stackOpts) map[string]any {
	out := map[string]any{"default": map[string]any{"type": "folder", "path": opts.workspace}}
	for name, path := range opts.moreWorkspaces {
		out[name] = map[string]any{"type": "folder", "path": path}
	}
	return out
}

func (s *stack) startWorker(name string, maxConcurrent int) *proc {
	s.t.Helper()
	keys := map[string]any{
		"server_url":     s.url,
		"worker_token":   s.token,
		"worker_name":    name,
		"max_concurrent": maxConcurrent,
		"work_dir":       filepath.Join(s.dir, name),
		"shutdown_grace": "3s",
		"pass_env":       passEnv(s.opts.workerEnv),
	}
	env := slices.Clone(s.opts.workerEnv)
	if s.opts.tokenInEnv {
		delete(keys, "worker_token")
		env = append(env, "STROEM__WORKER_TOKEN="+s.token)
	}
	cfg := writeConfig(s.t, s.dir, name+".yaml", keys)
	if u := s.opts.workerUser; u != nil {
		workDir := filepath.Join(s.dir, name)
		require.NoError(s.t, os.MkdirAll(workDir, 0o700))
		for _, p := range []string{cfg, workDir} {
			require.NoError(s.t, os.Chown(p, int(u.Uid), int(u.Gid)))
		}
		// The worker's user must reach its files and the binary.
		for _, d := range []string{s.dir, filepath.Dir(s.dir), filepath.Dir(binary)} {
			require.NoError(s.t, os.Chmod(d, 0o755))
		}
	}
	w := startProcAs(s.t, name, subprocessEnv(env...), s.opts.workerUser, "worker", "--config", cfg)
	s.workers = append(s.workers, w)
	return w
}

// writeConfig writes v as a config file (JSON is YAML).
func writeConfig(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// workspaceDir writes a workspace with one workflow file and returns it.
func workspaceDir(t *testing.T, workflow string) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".workflows", "test.yaml"), []byte(workflow), 0o644))
	return dir
}

// ---- the public API ----

func (s *stack) do(method, path string, body any) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(s.t, err)
		r = bytes.NewReader(b)
	}
	return stroemtest.Request(s.t, s.http, method, s.url+path, r, "")
}

// post sends a raw body with an optional bearer token (webhooks).
func (s *stack) post(path, token, body string) (int, string) {
	s.t.Helper()
	status, out := stroemtest.Request(s.t, s.http, "POST", s.url+path, strings.NewReader(body), token)
	return status, string(out)
}

// getJSON is a GET that tolerates transport errors (for polling): it
// returns 0 when the request failed.
func (s *stack) getJSON(path string, dst any) int {
	resp, err := s.http.Get(s.url + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
			return 0
		}
	}
	return resp.StatusCode
}

func (s *stack) execute(task string, input map[string]any) string {
	s.t.Helper()
	code, body := s.do("POST", "/api/workspaces/default/tasks/"+task+"/execute", map[string]any{"input": input})
	require.Equal(s.t, http.StatusCreated, code, "execute %s: %s", task, body)
	var out struct {
		JobID string `json:"job_id"`
	}
	require.NoError(s.t, json.Unmarshal(body, &out))
	require.NotEmpty(s.t, out.JobID)
	return out.JobID
}

func (s *stack) job(id string) stroem.Job {
	s.t.Helper()
	code, body := s.do("GET", "/api/jobs/"+id, nil)
	require.Equal(s.t, http.StatusOK, code, string(body))
	var j stroem.Job
	require.NoError(s.t, json.Unmarshal(body, &j))
	return j
}

// pollJob reads the job every tick until cond holds for it (a failed
// request, e.g. while the server is down, counts as not yet), failing the
// test with msgAndArgs after within; it returns the job cond accepted.
func (s *stack) pollJob(id string, within, tick time.Duration, cond func(stroem.Job) bool, msgAndArgs ...any) stroem.Job {
	s.t.Helper()
	var found stroem.Job
	require.Eventually(s.t, func() bool {
		var j stroem.Job
		if s.getJSON("/api/jobs/"+id, &j) != http.StatusOK || !cond(j) {
			return false
		}
		found = j
		return true
	}, within, tick, msgAndArgs...)
	return found
}

// waitJob waits until the job is terminal and returns it.
func (s *stack) waitJob(id string) stroem.Job {
	s.t.Helper()
	return s.pollJob(id, waitFor, 50*time.Millisecond, func(j stroem.Job) bool { return j.Status.Terminal() },
		"job %s did not end", id)
}

// waitStep waits until a step of the job has status st.
func (s *stack) waitStep(id, step string, st stroem.StepStatus) {
	s.t.Helper()
	s.pollJob(id, waitFor, 50*time.Millisecond, func(j stroem.Job) bool { return stepStatuses(j)[step] == st },
		"step %s of job %s never became %s", step, id, st)
}

func (s *stack) logs(id string) string {
	s.t.Helper()
	code, body := s.do("GET", "/api/jobs/"+id+"/logs", nil)
	require.Equal(s.t, http.StatusOK, code, string(body))
	var out struct {
		Logs string `json:"logs"`
	}
	require.NoError(s.t, json.Unmarshal(body, &out))
	return out.Logs
}

// runCompleted starts each task (no input), all at once, and requires
// each job to complete with every text of its list in its log; it returns
// the jobs and their logs by task.
func (s *stack) runCompleted(runs map[string][]string) (map[string]stroem.Job, map[string]string) {
	s.t.Helper()
	ids := map[string]string{}
	for task := range runs {
		ids[task] = s.execute(task, nil)
	}
	jobs, logs := map[string]stroem.Job{}, map[string]string{}
	for task, want := range runs {
		j := s.waitJob(ids[task])
		require.Equal(s.t, stroem.JobCompleted, j.Status, "%s: %s", task, describeJob(j))
		got := s.logs(j.ID)
		for _, w := range want {
			require.Contains(s.t, got, w, task)
		}
		jobs[task], logs[task] = j, got
	}
	return jobs, logs
}

// waitLog waits until the job's logs contain text and returns them.
func (s *stack) waitLog(id, text string) string {
	s.t.Helper()
	var logs string
	require.Eventually(s.t, func() bool {
		logs = s.logs(id)
		return strings.Contains(logs, text)
	}, waitFor, 50*time.Millisecond, "job %s never logged %q", id, text)
	return logs
}

func stepStatuses(j stroem.Job) map[string]stroem.StepStatus {
	m := map[string]stroem.StepStatus{}
	for _, st := range j.Steps {
		m[st.StepName] = st.Status
	}
	return m
}

// requireEnded asserts that j ended with status and its steps with steps
// (step name → status).
func requireEnded(t *testing.T, j stroem.Job, status stroem.JobStatus, steps map[string]stroem.StepStatus) {
	t.Helper()
	require.Equal(t, status, j.Status, describeJob(j))
	require.Equal(t, steps, stepStatuses(j))
}

// describeJob lists the job's steps with their statuses and errors, for
// failure messages.
func describeJob(j stroem.Job) string {
	var b strings.Builder
	fmt.Fprintf(&b, "job %s %s\n", j.ID, j.Status)
	for _, st := range j.Steps {
		fmt.Fprintf(&b, "  %s: %s (attempt %d) %s\n", st.StepName, st.Status, st.Attempt, st.ErrorMessage)
	}
	return b.String()
}

func stepOf(t *testing.T, j stroem.Job, name string) stroem.Step {
	t.Helper()
	for _, st := range j.Steps {
		if st.StepName == name {
			return st
		}
	}
	t.Fatalf("job %s has no step %q", j.ID, name)
	return stroem.Step{}
}

// ---- the CLI ----

// cli runs `stroem args…` against the stack and returns its exit code,
// stdout and stderr.
func (s *stack) cli(ctx context.Context, args ...string) (int, string, string) {
	s.t.Helper()
	return runCLI(s.t, ctx, append(args, "--server", s.url)...)
}

func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	if ctx == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), waitFor)
		defer cancel()
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = subprocessEnv()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("run stroem %s: %v", strings.Join(args, " "), err)
	return -1, "", ""
}

// ---- Server-Sent Events, read the way `curl -N` shows them ----

type sseEvent struct {
	id    string
	event string // "" for a log line
	data  string
}

// sseConn is an open GET …/logs/stream, read event by event.
type sseConn struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

func (s *stack) openSSE(jobID, lastEventID string) *sseConn {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", s.url+"/api/jobs/"+jobID+"/logs/stream", nil)
	require.NoError(s.t, err)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req) // no client timeout: the stream stays open
	if err != nil {
		cancel()
		require.NoError(s.t, err)
	}
	require.Equal(s.t, http.StatusOK, resp.StatusCode)
	require.Contains(s.t, resp.Header.Get("Content-Type"), "text/event-stream")
	c := &sseConn{resp: resp, events: make(chan sseEvent, 1024), cancel: cancel}
	go c.read()
	s.t.Cleanup(c.close)
	return c
}

func (c *sseConn) read() {
	defer close(c.events)
	readEvents(c.resp.Body, func(ev sseEvent) bool {
		c.events <- ev
		return true
	})
}

// readEvents parses the server-sent events of r (fields id, event and
// data, several data lines joined with "\n"; comments skipped) and calls fn
// with each until fn returns false or r ends.
func readEvents(r io.Reader, fn func(sseEvent) bool) {
	br := bufio.NewReader(r)
	var ev sseEvent
	var has bool
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if has && !fn(ev) {
				return
			}
			ev, has = sseEvent{}, false
		case strings.HasPrefix(line, ":"): // a comment (keep-alive)
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			has = true
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.event = v
			case "data":
				if ev.data != "" {
					ev.data += "\n"
				}
				ev.data += v
			}
		}
	}
}

// next returns the next event; it fails the test if none comes in time or
// the stream ended.
func (c *sseConn) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		require.True(t, ok, "the event stream ended")
		return ev
	case <-time.After(waitFor):
		t.Fatalf("no event within %s", waitFor)
		return sseEvent{}
	}
}

// ended waits until the server closes the stream, failing on any event.
func (c *sseConn) ended(t *testing.T) {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		require.False(t, ok, "unexpected event after done: %+v", ev)
	case <-time.After(waitFor):
		t.Fatalf("the server did not close the stream after done")
	}
}

func (c *sseConn) close() {
	c.cancel()
	c.resp.Body.Close()
}

// logLine decodes a log line event.
func logLine(t *testing.T, ev sseEvent) stroem.LogLine {
	t.Helper()
	require.Empty(t, ev.event, "want a log line, got event %q (%s)", ev.event, ev.data)
	var l stroem.LogLine
	require.NoError(t, json.Unmarshal([]byte(ev.data), &l), ev.data)
	require.Equal(t, strconv.FormatInt(l.Seq, 10), ev.id, "the event id is the line's seq")
	return l
}

// passEnv is what a test worker passes on to its steps: the leftover
// marker, and the names of the extra variables the test gave the worker
// (steps get a fresh environment otherwise, docs/security.md).
func passEnv(workerEnv []string) []string {
	names := []string{markerEnv}
	for _, kv := range workerEnv {
		if k, _, ok := strings.Cut(kv, "="); ok {
			names = append(names, k)
		}
	}
	return names
}

// waitHook waits until the job lists a hook job of the event, waits for
// that job to end and returns it.
func (s *stack) waitHook(id, event string) stroem.Job {
	s.t.Helper()
	j := s.pollJob(id, waitFor, 50*time.Millisecond, func(j stroem.Job) bool {
		return slices.ContainsFunc(j.Hooks, func(h stroem.JobLink) bool { return h.Event == event })
	}, "job %s never listed an %s hook", id, event)
	i := slices.IndexFunc(j.Hooks, func(h stroem.JobLink) bool { return h.Event == event })
	return s.waitJob(j.Hooks[i].JobID)
}

// outMap is a step's output as an object (an approval gate's always is);
// nil when it is not one.
func outMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
