package e2e

// Helpers of the fault-injection suite (fault_*_test.go, issue 8): a stack
// whose server can be killed and restarted on the same database, log
// directory and address, workers that can be killed, stopped and resumed,
// and checks that read PostgreSQL directly, next to the API.
//
// Every scenario uses a short lease (faultLease, 2 s instead of the
// production default of 10 s) so that lease expiry, and therefore the suite,
// is fast. Waits are bounded generously (the machine running the suite may
// be small and busy); timings are logged as FIGURE lines, never asserted
// beyond correctness bounds such as "within lease + 15 s".

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/stroemtest"
)

// faultLease is the lease of every fault scenario (production default: 10 s).
const faultLease = 2 * time.Second

// faultMargin is the correctness bound on top of a lease: a fault must be
// resolved within lease + faultMargin (the "within 15 s").
const faultMargin = 15 * time.Second

type faultOpts struct {
	workflow string
	// dbURL is the database; empty means a fresh one from dbtest (already
	// migrated). A URL of a throwaway cluster is migrated by the server.
	dbURL string
	// lease is the server's lease (default faultLease).
	lease time.Duration
	// serverGrace is the server's shutdown_grace (default 5 s).
	serverGrace time.Duration
}

// faultStack is a server and its workers on one database, with everything
// the scenarios need to break them.
type faultStack struct {
	*stack
	opts      faultOpts
	dbURL     string
	serverCfg string
	servers   []*proc // every server incarnation, for the failure dump
	db        *pgxpool.Pool

	mu    sync.Mutex
	names map[string]*proc // worker name → process
}

// startFaultStack writes the configs and starts the server; workers are
// started by the scenario (startWorker), so it decides who gets which step.
func startFaultStack(t *testing.T, opts faultOpts) *faultStack {
	t.Helper()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	if opts.lease == 0 {
		opts.lease = faultLease
	}
	if opts.serverGrace == 0 {
		opts.serverGrace = 5 * time.Second
	}
	if opts.dbURL == "" {
		opts.dbURL = dbtest.URL(t)
	}
	dir := t.TempDir()
	addr := stroemtest.FreeAddr(t)
	s := &faultStack{
		stack: &stack{t: t, url: "http://" + addr, token: randomHex(16), dir: dir,
			http: &http.Client{Timeout: 10 * time.Second}},
		opts:  opts,
		dbURL: opts.dbURL,
		names: map[string]*proc{},
	}
	s.serverCfg = writeConfig(t, dir, "server.yaml", map[string]any{
		"listen":         addr,
		"db":             map[string]any{"url": opts.dbURL},
		"log_storage":    map[string]any{"local_dir": filepath.Join(dir, "logs")},
		"workspaces":     map[string]any{"default": map[string]any{"type": "folder", "path": workspaceDir(t, opts.workflow)}},
		"worker_token":   s.token,
		"lease":          opts.lease.String(),
		"shutdown_grace": opts.serverGrace.String(),
	})
	t.Cleanup(func() {
		for _, w := range s.workers {
			_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGCONT) // a stopped worker cannot stop
			w.stop(15 * time.Second)
		}
		for _, sv := range s.servers {
			sv.stop(15 * time.Second)
		}
		if t.Failed() {
			s.dumpDB()
			for _, p := range append(append([]*proc{}, s.servers...), s.workers...) {
				t.Logf("---- output of %s (%v) ----\n%s", p.name, p.err, p.out.String())
			}
		}
		if s.db != nil {
			s.db.Close()
		}
	})
	s.startServer()
	return s
}

// startServer starts a server incarnation on the stack's config and waits
// until it is ready.
func (s *faultStack) startServer() *proc {
	s.t.Helper()
	p := startProc(s.t, fmt.Sprintf("server#%d", len(s.servers)+1), subprocessEnv(), "server", "--config", s.serverCfg)
	s.servers = append(s.servers, p)
	s.server = p
	s.waitReady(p)
	return p
}

// waitReady waits until the server answers /readyz with 200.
func (s *faultStack) waitReady(p *proc) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		if p.exited() {
			return true
		}
		return s.status("/readyz") == http.StatusOK
	}, waitFor, 50*time.Millisecond, "server never became ready")
	if p.exited() { // p.err may be read only once it exited
		s.t.Fatalf("the server exited: %v", p.err)
	}
}

// startWorker starts a worker and waits until it is registered.
func (s *faultStack) startWorker(name string, maxConcurrent int, grace time.Duration) *proc {
	s.t.Helper()
	cfg := writeConfig(s.t, s.dir, name+".yaml", map[string]any{
		"server_url":     s.url,
		"worker_token":   s.token,
		"worker_name":    name,
		"max_concurrent": maxConcurrent,
		"work_dir":       filepath.Join(s.dir, name),
		"shutdown_grace": grace.String(),
		"pass_env":       []string{markerEnv},
	})
	w := startProc(s.t, name, subprocessEnv(), "worker", "--config", cfg)
	s.workers = append(s.workers, w)
	s.mu.Lock()
	s.names[name] = w
	s.mu.Unlock()
	require.Eventually(s.t, func() bool { return s.workerID(name) != "" }, waitFor, 50*time.Millisecond,
		"worker %s never registered", name)
	return w
}

// workerID is the id the named worker registered with ("" when unknown).
func (s *faultStack) workerID(name string) string {
	var ws struct{ Items []stroem.Worker }
	if s.getJSON("/api/workers", &ws) != http.StatusOK {
		return ""
	}
	for _, w := range ws.Items {
		if w.Name == name {
			return w.ID
		}
	}
	return ""
}

// status is a GET's status code, 0 when no answer came.
func (s *faultStack) status(path string) int {
	resp, err := s.http.Get(s.url + path)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// kill9 kills a subprocess's process group with SIGKILL and waits for it.
func kill9(p *proc) {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// signalGroup sends sig to a subprocess's process group.
func signalGroup(t *testing.T, p *proc, sig syscall.Signal) {
	t.Helper()
	require.NoError(t, syscall.Kill(-p.cmd.Process.Pid, sig), "signal %s to %s", sig, p.name)
}

// waitExit waits until p exits and returns how long that took.
func waitExit(t *testing.T, p *proc, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-p.done:
		return time.Since(start)
	case <-time.After(within):
		t.Fatalf("%s did not exit within %s", p.name, within)
		return 0
	}
}

// waitJobWithin waits (tolerating a server that is down) until the job is
// terminal.
func (s *faultStack) waitJobWithin(id string, within time.Duration) stroem.Job {
	s.t.Helper()
	return s.pollJob(id, within, 20*time.Millisecond, func(j stroem.Job) bool { return j.Status.Terminal() },
		"job %s did not end within %s", id, within)
}

// waitRunningOn waits until the job's step is running and returns the
// worker id holding it.
func (s *faultStack) waitRunningOn(id, step string) string {
	s.t.Helper()
	running := func(st stroem.Step) bool {
		return st.StepName == step && st.Status == stroem.StepRunning && st.WorkerID != nil
	}
	j := s.pollJob(id, waitFor, 20*time.Millisecond, func(j stroem.Job) bool { return slices.ContainsFunc(j.Steps, running) },
		"step %s of job %s never ran", step, id)
	return *j.Steps[slices.IndexFunc(j.Steps, running)].WorkerID
}

var pgidRE = regexp.MustCompile(`pgid (\d+)`)

// stepPGID waits for the "pgid N" line a step prints ($$ of its shell, the
// leader of the step's process group) and returns N.
func (s *faultStack) stepPGID(id string) int {
	s.t.Helper()
	m := pgidRE.FindStringSubmatch(s.waitLog(id, "pgid "))
	require.NotNil(s.t, m)
	n, err := strconv.Atoi(m[1])
	require.NoError(s.t, err)
	return n
}

// groupAlive reports whether any process of process group pgid is alive.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	if err != nil {
		return false
	}
	// Zombies still count for kill(2); look for a live member.
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid && alive(pid) {
			return true
		}
	}
	return false
}

// logLines returns the job's stored log lines (API, jsonl).
func (s *faultStack) logLines(id, step string) []stroem.LogLine {
	s.t.Helper()
	path := "/api/jobs/" + id + "/logs?format=jsonl"
	if step != "" {
		path += "&step=" + step
	}
	resp, err := s.http.Get(s.url + path)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	require.Equal(s.t, http.StatusOK, resp.StatusCode)
	var out []stroem.LogLine
	dec := json.NewDecoder(resp.Body)
	for {
		var l stroem.LogLine
		if err := dec.Decode(&l); err == io.EOF {
			break
		} else {
			require.NoError(s.t, err)
		}
		out = append(out, l)
	}
	return out
}

// jsonBody encodes v as a JSON string.
func jsonBody(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// figure logs a measured time in a form the report collects.
func figure(t *testing.T, what string, d time.Duration) {
	t.Helper()
	t.Logf("FIGURE %s: %s", what, d.Round(time.Millisecond))
}

// ---- PostgreSQL, read directly ----

// pool opens (once) a pool on the stack's database.
func (s *faultStack) pool() *pgxpool.Pool {
	s.t.Helper()
	if s.db == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := pgxpool.New(ctx, s.dbURL)
		require.NoError(s.t, err)
		s.db = db
	}
	return s.db
}

// dbAttempt is one row of step_attempts.
type dbAttempt struct {
	Step        string
	Attempt     int
	WorkerID    string
	Status      string
	Error       string
	StartedAt   time.Time
	CompletedAt *time.Time
}

// dbStep is one row of job_steps.
type dbStep struct {
	Name          string
	Status        string
	Attempt       int
	AttemptStatus string
	WorkerID      string
	Error         string
	Lease         *time.Time
}

// dbJob is what PostgreSQL holds of a job.
type dbJob struct {
	Status      string
	CompletedAt *time.Time
	Steps       map[string]dbStep
	Attempts    map[string][]dbAttempt // by step, in attempt order
}

// dbState reads a job, its steps and all their attempts from PostgreSQL.
// It retries for a while, so it works across a restart of the database.
func (s *faultStack) dbState(id string) dbJob {
	s.t.Helper()
	var (
		j       dbJob
		lastErr error
	)
	require.Eventually(s.t, func() bool {
		j, lastErr = s.readDB(id)
		return lastErr == nil
	}, waitFor, 100*time.Millisecond, "read job %s from PostgreSQL", id)
	require.NoError(s.t, lastErr)
	return j
}

func (s *faultStack) readDB(id string) (dbJob, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db := s.pool()
	j := dbJob{Steps: map[string]dbStep{}, Attempts: map[string][]dbAttempt{}}
	if err := db.QueryRow(ctx, `SELECT status, completed_at FROM jobs WHERE id = $1`, id).
		Scan(&j.Status, &j.CompletedAt); err != nil {
		return j, err
	}
	rows, err := db.Query(ctx, `SELECT step_name, status, attempt, attempt_status, coalesce(worker_id, ''),
		error_message, lease_expires_at FROM job_steps WHERE job_id = $1`, id)
	if err != nil {
		return j, err
	}
	for rows.Next() {
		var st dbStep
		if err := rows.Scan(&st.Name, &st.Status, &st.Attempt, &st.AttemptStatus, &st.WorkerID, &st.Error, &st.Lease); err != nil {
			rows.Close()
			return j, err
		}
		j.Steps[st.Name] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return j, err
	}
	rows, err = db.Query(ctx, `SELECT step_name, attempt, worker_id, status, error_message, started_at, completed_at
		FROM step_attempts WHERE job_id = $1 ORDER BY step_name, attempt`, id)
	if err != nil {
		return j, err
	}
	defer rows.Close()
	for rows.Next() {
		var a dbAttempt
		if err := rows.Scan(&a.Step, &a.Attempt, &a.WorkerID, &a.Status, &a.Error, &a.StartedAt, &a.CompletedAt); err != nil {
			return j, err
		}
		j.Attempts[a.Step] = append(j.Attempts[a.Step], a)
	}
	return j, rows.Err()
}

// checkNoOverlap asserts that no step of the job ever had two attempts
// running at once: attempts are numbered 1, 2, …, every attempt but the
// last has ended, and each ended before the next started (database clock).
// Once the job is terminal, no attempt is still running.
func checkNoOverlap(t *testing.T, j dbJob) {
	t.Helper()
	for step, as := range j.Attempts {
		for i, a := range as {
			require.Equal(t, i+1, a.Attempt, "step %s: attempts are numbered without gaps", step)
			if i == len(as)-1 {
				if j.CompletedAt != nil {
					require.NotEqual(t, "running", a.Status, "step %s: attempt %d still running in a finished job", step, a.Attempt)
				}
				continue
			}
			require.NotEqual(t, "running", a.Status, "step %s: attempt %d still running while attempt %d exists", step, a.Attempt, a.Attempt+1)
			require.NotNil(t, a.CompletedAt, "step %s: attempt %d has no end", step, a.Attempt)
			require.False(t, as[i+1].StartedAt.Before(*a.CompletedAt),
				"step %s: attempt %d started at %s, before attempt %d ended at %s",
				step, a.Attempt+1, as[i+1].StartedAt, a.Attempt, *a.CompletedAt)
		}
	}
}

// requireJob asserts the job's status through the API and in PostgreSQL and
// that no step ran twice at once; it returns both views.
func (s *faultStack) requireJob(id string, want stroem.JobStatus) (stroem.Job, dbJob) {
	s.t.Helper()
	j := s.waitJobWithin(id, waitFor)
	require.Equal(s.t, want, j.Status, describeJob(j))
	d := s.dbState(id)
	require.Equal(s.t, string(want), d.Status, "job status in PostgreSQL")
	require.NotNil(s.t, d.CompletedAt)
	for _, st := range j.Steps {
		ds, ok := d.Steps[st.StepName]
		require.True(s.t, ok, "step %s in PostgreSQL", st.StepName)
		require.Equal(s.t, string(st.Status), ds.Status, "step %s: API and PostgreSQL agree", st.StepName)
		require.Equal(s.t, st.Attempt, ds.Attempt, "step %s: attempt", st.StepName)
		require.Len(s.t, d.Attempts[st.StepName], st.Attempt, "step %s: one step_attempts row per attempt", st.StepName)
		require.Len(s.t, st.Attempts, st.Attempt, "step %s: the API shows every attempt", st.StepName)
		require.Nil(s.t, ds.Lease, "step %s: a finished step holds no lease", st.StepName)
	}
	checkNoOverlap(s.t, d)
	return j, d
}

// dumpDB logs every job of the stack's database with steps and attempts.
func (s *faultStack) dumpDB() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := pgxpool.New(ctx, s.dbURL)
	if err != nil {
		s.t.Logf("dump database: %v", err)
		return
	}
	defer db.Close()
	rows, err := db.Query(ctx, `SELECT id::text FROM jobs ORDER BY created_at LIMIT 20`)
	if err != nil {
		s.t.Logf("dump database: %v", err)
		return
	}
	var ids []string
	for rows.Next() {
		var id string
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		j, err := s.readDB(id)
		if err != nil {
			s.t.Logf("dump job %s: %v", id, err)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "job %s %s completed_at=%v\n", id, j.Status, j.CompletedAt)
		for _, n := range slices.Sorted(maps.Keys(j.Steps)) {
			st := j.Steps[n]
			fmt.Fprintf(&b, "  %s %s attempt=%d/%s worker=%s lease=%v %q\n", n, st.Status, st.Attempt, st.AttemptStatus, st.WorkerID, st.Lease, st.Error)
			for _, a := range j.Attempts[n] {
				fmt.Fprintf(&b, "    #%d %s worker=%s %s → %v %q\n", a.Attempt, a.Status, a.WorkerID,
					a.StartedAt.Format("15:04:05.000"), a.CompletedAt, a.Error)
			}
		}
		s.t.Log(b.String())
	}
}
