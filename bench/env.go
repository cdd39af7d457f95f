package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/persistence/postgres"
)

// bench is one run: its environment (temp dir, database, subprocesses) and
// the report being filled.
type bench struct {
	opts     Options
	sizes    Sizes
	progress io.Writer
	rep      *Report

	dir      string // temp dir: workspace, configs, logs, work dirs
	wsDir    string
	baseURL  string
	token    string
	client   *client.Client
	adminURL string // the PostgreSQL server's URL, as given
	dbName   string // the bench database, once created
	dbURL    string
	server   *benchProc // `stroem server`, or `stroem dev`
	devPprof bool       // `stroem dev` serves /debug/pprof
	workers  []*benchProc
	profiles []string
}

// logf prints a progress line on stderr.
func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.progress, "bench: "+format+"\n", args...)
}

// setup builds the workspace, the database and the processes, and waits
// until the server is ready and every worker has registered.
func (b *bench) setup(ctx context.Context) error {
	if b.opts.Store == "sqlite" {
		// Checked first: nothing to clean up yet.
		if err := b.checkDev(); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "stroem-bench-")
	if err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	b.dir = dir
	b.wsDir = filepath.Join(dir, "workspace")
	if err := writeBenchWorkspace(b.wsDir, b.sizes); err != nil {
		return err
	}
	b.token = benchRandomToken()
	port, err := benchFreePort()
	if err != nil {
		return err
	}
	listen := "127.0.0.1:" + strconv.Itoa(port)
	b.baseURL = "http://" + listen
	if b.client, err = client.New(b.baseURL, client.WithUserAgent("stroem-bench/"+b.opts.Version)); err != nil {
		return err
	}

	if b.opts.Store == "sqlite" {
		return b.startDev(ctx, listen)
	}
	if err := b.createDatabase(ctx); err != nil {
		return err
	}
	if err := b.startServer(ctx, listen); err != nil {
		return err
	}
	pids := make([]string, 0, b.sizes.Workers)
	for i := 1; i <= b.sizes.Workers; i++ {
		if err := b.startWorker(i); err != nil {
			return err
		}
		pids = append(pids, strconv.Itoa(b.workers[i-1].pid()))
	}
	b.logf("worker pids %s, %d slots each", strings.Join(pids, " "), b.sizes.Slots)
	return b.waitWorkers(ctx, b.sizes.Workers)
}

// createDatabase creates stroem_bench_<random> on the PostgreSQL server. An
// unreachable server is one clear line.
func (b *bench) createDatabase(ctx context.Context) error {
	b.adminURL = b.opts.DBURL
	u, err := url.Parse(b.adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return usageError("--db-url: want a postgres:// URL, got %q", b.opts.DBURL)
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	name := "stroem_bench_" + benchRandomHex(6)
	if err := postgres.CreateDatabase(c, b.adminURL, name, ""); err != nil {
		var connErr *postgres.ConnectError
		if !errors.As(err, &connErr) {
			return fmt.Errorf("create database %s on %s: %s", name, u.Redacted(), benchOneLine(err))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		verb := "is unreachable"
		if connErr.Refused {
			verb = "refused the connection"
		}
		return fmt.Errorf("PostgreSQL at %s %s: %s (set --db-url or STROEM__DB__URL)", u.Redacted(), verb, connErr.Error())
	}
	b.dbName = name
	u.Path = "/" + name
	tls := benchLoopbackPlain(u)
	b.dbURL = u.String()
	b.logf("database %s on %s%s", name, u.Redacted(), tls)
	return nil
}

// benchLoopbackPlain adds sslmode=disable to the bench's database URL when
// it names a loopback host and says nothing of TLS, and returns a note
// saying so. pgx's default (prefer) otherwise encrypts every round trip to
// a server on the same machine, which cost the server process and its
// PostgreSQL backends a sixth of their CPU per step (issue 23) — a cost a
// production DSN pays only if it asks for it. An explicit sslmode is
// kept, so --db-url '…?sslmode=require' still measures TLS. Only the
// bench's own subprocesses see the change, never a user's configuration.
func benchLoopbackPlain(u *url.URL) string {
	q := u.Query()
	if q.Has("sslmode") || !benchLoopback(u.Hostname()) {
		return ""
	}
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return " (loopback: sslmode=disable; give --db-url an sslmode to measure TLS)"
}

// benchLoopback reports whether host is this machine: a loopback name or
// address, or a Unix socket directory.
func benchLoopback(host string) bool {
	if host == "localhost" || strings.HasPrefix(host, "/") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// dropDatabase drops the bench database, even with connections left.
func (b *bench) dropDatabase() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := postgres.DropDatabase(ctx, b.adminURL, b.dbName); err != nil {
		return fmt.Errorf("drop database %s: %s", b.dbName, benchOneLine(err))
	}
	return nil
}

// childEnv is this process's environment without Strøm's own variables, so
// a STROEM__DB__URL meant for --db-url cannot redirect the subprocesses.
func benchChildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "STROEM__") || strings.HasPrefix(kv, "STROEM_CONFIG=") || strings.HasPrefix(kv, "STROEM_URL=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (b *bench) startServer(ctx context.Context, listen string) error {
	cfg := map[string]any{
		"listen":         listen,
		"db":             map[string]any{"url": b.dbURL},
		"workspaces":     map[string]any{"default": map[string]any{"type": "folder", "path": b.wsDir}},
		"worker_token":   b.token,
		"shutdown_grace": "5s",
	}
	path := filepath.Join(b.dir, "server.yaml")
	if err := benchWriteYAML(path, cfg); err != nil {
		return err
	}
	p, err := b.startProc("server", b.opts.Exe, []string{"server", "--config", path, "--pprof"}, filepath.Join(b.dir, "server.log"))
	if err != nil {
		return err
	}
	b.server = p
	b.logf("server pid %d on %s (log %s)", p.pid(), b.baseURL, p.logPath)
	return b.waitReady(ctx, 60*time.Second)
}

func (b *bench) startWorker(i int) error {
	cfg := map[string]any{
		"server_url":     b.baseURL,
		"worker_token":   b.token,
		"worker_name":    fmt.Sprintf("bench-%d", i),
		"max_concurrent": b.sizes.Slots,
		"work_dir":       filepath.Join(b.dir, fmt.Sprintf("work-%d", i)),
		"capabilities":   []string{"shell"},
		"shutdown_grace": "5s",
	}
	path := filepath.Join(b.dir, fmt.Sprintf("worker-%d.yaml", i))
	if err := benchWriteYAML(path, cfg); err != nil {
		return err
	}
	p, err := b.startProc(fmt.Sprintf("worker-%d", i), b.opts.Exe, []string{"worker", "--config", path}, filepath.Join(b.dir, fmt.Sprintf("worker-%d.log", i)))
	if err != nil {
		return err
	}
	b.workers = append(b.workers, p)
	return nil
}

// checkDev fails clearly when this binary has no `dev` command.
func (b *bench) checkDev() error {
	out, err := exec.Command(b.opts.Exe, "dev", "--help").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--data-dir")) {
		return ErrNoDev
	}
	return nil
}

// startDev runs `stroem dev` on the bench workspace: server, embedded
// SQLite store and in-process workers in one process.
func (b *bench) startDev(ctx context.Context, listen string) error {
	args := []string{"dev", b.wsDir, "--data-dir", filepath.Join(b.dir, "data"), "--listen", listen,
		"--workers", strconv.Itoa(b.sizes.Workers)}
	help, _ := exec.Command(b.opts.Exe, "dev", "--help").CombinedOutput()
	if bytes.Contains(help, []byte("--pprof")) {
		args = append(args, "--pprof")
		b.devPprof = true
	}
	// dev's workers have a fixed number of slots, which its help states.
	if m := regexp.MustCompile(`runs up to (\d+) steps`).FindSubmatch(help); m != nil {
		if n, err := strconv.Atoi(string(m[1])); err == nil && n != b.sizes.Slots {
			b.logf("stroem dev's workers have %d slots each, not %d", n, b.sizes.Slots)
			b.rep.SlotsPerWorker = n
		}
	}
	// dev takes the bench's worker token, for the simulated workers of the
	// fleet and scale parts.
	p, err := b.startProc("dev", b.opts.Exe, args, filepath.Join(b.dir, "dev.log"), "STROEM__WORKER_TOKEN="+b.token)
	if err != nil {
		return err
	}
	b.server = p
	b.logf("stroem dev pid %d on %s (log %s): %s", p.pid(), b.baseURL, p.logPath, strings.Join(args, " "))
	if err := b.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	return b.waitWorkers(ctx, b.sizes.Workers)
}

// waitReady polls /readyz until the server answers 200.
func (b *bench) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.baseURL+"/readyz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if b.server.exited() {
			return fmt.Errorf("the %s process exited before it was ready: %s", b.server.name, b.server.tail(1))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s process was not ready within %s (log %s)", b.server.name, limit, b.server.logPath)
		}
		if err := benchSleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitWorkers waits until n active workers are registered.
func (b *bench) waitWorkers(ctx context.Context, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ws, err := b.client.Workers(ctx)
		active := 0
		for _, w := range ws {
			if w.Status == "" || w.Status == "active" {
				active++
			}
		}
		if err == nil && active >= n {
			return nil
		}
		for _, w := range b.workers {
			if w.exited() {
				return fmt.Errorf("%s exited: %s", w.name, w.tail(1))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d workers registered within 30s (last error: %v)", active, n, err)
		}
		if err := benchSleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// teardown stops the workers, then the server, then drops the database and
// removes the temp dir (all kept with --keep). On failure the processes' log
// tails are printed first.
func (b *bench) teardown(failed bool) error {
	if failed && b.server != nil {
		for _, p := range append([]*benchProc{b.server}, b.workers...) {
			if t := p.tail(15); t != "" {
				b.logf("last lines of the %s log:\n%s", p.name, t)
			}
		}
	}
	var errs []error
	var wg sync.WaitGroup
	for _, w := range b.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.stop(10 * time.Second) }()
	}
	wg.Wait()
	if b.server != nil {
		b.server.stop(20 * time.Second)
	}
	if b.dbName != "" {
		if b.opts.Keep {
			u, _ := url.Parse(b.dbURL)
			b.logf("kept database %s", u.Redacted())
		} else if err := b.dropDatabase(); err != nil {
			errs = append(errs, err)
		}
	}
	if b.dir != "" {
		if b.opts.Keep {
			b.logf("kept temp dir %s", b.dir)
		} else if err := os.RemoveAll(b.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove temp dir: %w", err))
		}
	}
	return errors.Join(errs...)
}

// benchProc is a subprocess with its output in a log file.
type benchProc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	waitErr error
}

// startProc starts a subprocess; with --pprof-dir, a worker also writes a
// CPU profile of its whole life to <pprof-dir>/<name>-cpu-whole.pprof
// (STROEM_CPUPROFILE), so the workers' costs can be profiled too. (Not the
// server: it is profiled over /debug/pprof per part, and a process has one
// CPU profile at a time.)
func (b *bench) startProc(name, exe string, args []string, logPath string, env ...string) (*benchProc, error) {
	if b.opts.PprofDir != "" && strings.HasPrefix(name, "worker") {
		if err := os.MkdirAll(b.opts.PprofDir, 0o755); err != nil {
			return nil, err
		}
		dst := filepath.Join(b.opts.PprofDir, name+"-cpu-whole.pprof")
		env = append(env, "STROEM_CPUPROFILE="+dst)
		b.profiles = append(b.profiles, dst)
	}
	return startBenchProc(name, exe, args, logPath, env...)
}

func startBenchProc(name, exe string, args []string, logPath string, env ...string) (*benchProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(benchChildEnv(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so Ctrl-C in a terminal reaches only the
	// bench, which then stops the children in order; and (on Linux) killed
	// with the bench if the bench dies without cleaning up.
	cmd.SysProcAttr = benchSysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &benchProc{name: name, cmd: cmd, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *benchProc) pid() int { return p.cmd.Process.Pid }

func (p *benchProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then kills the process group.
func (p *benchProc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last n lines of the process's log.
func (p *benchProc) tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// writeBenchWorkspace writes the workload: one workflow file with every
// task the parts run.
func writeBenchWorkspace(dir string, s Sizes) error {
	if err := os.MkdirAll(filepath.Join(dir, ".workflows"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ".workflows", "bench.yaml"), []byte(benchWorkflow(s)), 0o644); err != nil {
		return fmt.Errorf("write bench workspace: %w", err)
	}
	return writeBenchLogsWorkflow(dir, s)
}

// benchWorkflow is the bench's workflow file.
//
//   - chain: s001 → s002 → … (ChainSteps trivial steps)
//   - fanout: FanoutSteps independent trivial steps
//   - one: one trivial step (trigger → running)
//   - sse: a step that sleeps 0.5 s (so the client is connected), then
//     prints SSELines lines of `date +%s%N`, 10 ms apart
//   - queued: a docker step; the workers only run shell, so it stays queued
//     (the scale part registers a docker worker that claims nothing)
//   - fleet: a pod step, which only the fleet part's simulated workers run
func benchWorkflow(s Sizes) string {
	var w strings.Builder
	fmt.Fprintf(&w, `# Written by stroem bench.
actions:
  noop:
    type: shell
    cmd: "true"
  stamp:
    type: shell
    cmd: 'sleep 0.5; i=0; while [ $i -lt %d ]; do date +%%s%%N; sleep 0.01; i=$((i+1)); done'
  boxed:
    type: docker
    image: "x"
    cmd: "true"
  pod:
    type: pod
    image: "x"
    cmd: "true"

tasks:
  one:
    flow:
      run:
        action: noop
  sse:
    flow:
      stamp:
        action: stamp
  queued:
    flow:
      run:
        action: boxed
  fleet:
    flow:
      run:
        action: pod
  chain:
    flow:
`, s.SSELines)
	for i := 1; i <= s.ChainSteps; i++ {
		fmt.Fprintf(&w, "      s%03d:\n        action: noop\n", i)
		if i > 1 {
			fmt.Fprintf(&w, "        depends_on: [s%03d]\n", i-1)
		}
	}
	w.WriteString("  fanout:\n    flow:\n")
	for i := 1; i <= s.FanoutSteps; i++ {
		fmt.Fprintf(&w, "      f%03d:\n        action: noop\n", i)
	}
	return w.String()
}

func benchWriteYAML(path string, v any) error {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// freePort asks the kernel for a free port on 127.0.0.1.
func benchFreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func benchRandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func benchRandomToken() string { return benchRandomHex(24) }

func benchOneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

func benchSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
