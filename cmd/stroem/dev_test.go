package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/stroemtest"
)

// devLeakOptions are the goroutines a stopped dev system may leave for a
// moment: protoactor's dead-letter throttle starts a timer goroutine when a
// message reaches an actor that already stopped (at shutdown), and it ends
// by itself after the throttle interval.
func devLeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
	}
}

// devTestBundle is a dev system started in-process on 127.0.0.1:0.
type devTestBundle struct {
	t       *testing.T
	dataDir string
	app     *devApp
	c       *client.Client
	tr      *http.Transport
}

func startDevForTest(t *testing.T, dataDir string) *devTestBundle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	app, err := startDev(context.Background(), devOptions{
		workspace: compatWorkspace, dataDir: dataDir, workers: 2, listener: ln, workerGrace: 5 * time.Second,
	}, log)
	require.NoError(t, err)
	b := &devTestBundle{t: t, dataDir: dataDir, app: app}
	t.Cleanup(func() { _ = app.Stop(context.Background()) })
	b.c, b.tr = testClient(t, app.URL())
	return b
}

func (b *devTestBundle) stop() {
	b.t.Helper()
	require.NoError(b.t, b.app.Stop(context.Background()))
	b.tr.CloseIdleConnections()
}

// testClient is a client with a transport of its own, whose idle
// connections the test closes (goleak).
func testClient(t *testing.T, url string) (*client.Client, *http.Transport) {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c, err := client.New(url, client.WithHTTPClient(&http.Client{Transport: tr}))
	require.NoError(t, err)
	t.Cleanup(tr.CloseIdleConnections)
	return c, tr
}

// run executes a task and follows its logs over SSE until the job ends.
func (b *devTestBundle) run(task string, input map[string]any) (stroem.Job, string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id, err := b.c.Execute(ctx, "default", task, input)
	require.NoError(b.t, err)
	var streamed strings.Builder
	status, err := b.c.StreamLogs(ctx, id, client.StreamOptions{}, func(l stroem.LogLine) error {
		streamed.WriteString(l.Text + "\n")
		return nil
	})
	require.NoError(b.t, err)
	require.Equal(b.t, stroem.JobCompleted, status, "logs:\n%s", streamed.String())
	job, err := b.c.Job(ctx, id)
	require.NoError(b.t, err)
	logs, err := b.c.Logs(ctx, id, "")
	require.NoError(b.t, err)
	require.Equal(b.t, streamed.String(), logs, "the stream and the stored log agree")
	return job, logs
}

func stepStates(j stroem.Job) map[string]stroem.StepStatus {
	out := map[string]stroem.StepStatus{}
	for _, s := range j.Steps {
		out[s.StepName] = s.Status
	}
	return out
}

// TestDevRunsTheCompatWorkflowsAndKeepsThemAcrossRestarts runs the upstream
// MVP's workflows to completion in dev mode, restarts on the same data dir,
// and finds the jobs and their logs again. PostgreSQL is never opened:
// STROEM__DB__URL points at a closed port.
func TestDevRunsTheCompatWorkflowsAndKeepsThemAcrossRestarts(t *testing.T) {
	defer goleak.VerifyNone(t, devLeakOptions()...)
	t.Setenv("STROEM__DB__URL", "postgres://stroem:stroem@"+stroemtest.FreeAddr(t)+"/stroem?connect_timeout=1")
	dataDir := filepath.Join(t.TempDir(), "data")
	b := startDevForTest(t, dataDir)

	start := time.Now()
	hello, logs := b.run("hello-world", map[string]any{"name": "E2E Test"})
	t.Logf("hello-world in dev mode: %s from execute to completed (logs followed over SSE)", time.Since(start).Round(time.Millisecond))
	require.Equal(t, map[string]stroem.StepStatus{"say-hello": stroem.StepCompleted, "shout-it": stroem.StepCompleted}, stepStates(hello))
	require.Contains(t, logs, "Hello E2E Test")
	require.Contains(t, logs, "HELLO E2E TEST")
	require.Equal(t, map[string]any{"greeting": "Hello E2E Test"}, hello.Steps[0].Output)

	deploy, logs := b.run("deploy-pipeline", nil)
	require.Equal(t, map[string]stroem.StepStatus{
		"health-check": stroem.StepCompleted, "deploy-app": stroem.StepCompleted, "send-notification": stroem.StepCompleted,
	}, stepStates(deploy))
	require.Contains(t, logs, "Deployment complete!")
	require.Contains(t, logs, "Deployment to staging completed with status=success")

	workers, err := b.c.Workers(context.Background())
	require.NoError(t, err)
	require.Len(t, workers, 2)
	// The in-process workers say their slots, as the web UI's Workers page
	// shows them (it showed "—" while they were not reported).
	var listedJSON struct {
		Items []map[string]any `json:"items"`
	}
	resp, err := (&http.Client{Transport: b.tr}).Get(b.app.URL() + "/api/workers")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&listedJSON))
	require.NoError(t, resp.Body.Close())
	require.Len(t, listedJSON.Items, 2)
	for _, w := range listedJSON.Items {
		require.Equal(t, float64(devMaxConcurrent), w["max_concurrent"], "slots of %v", w["name"])
	}
	b.stop()

	// Restart on the same data dir: the jobs and their logs are still there.
	again := startDevForTest(t, dataDir)
	ctx := context.Background()
	listed, err := again.c.Workers(ctx)
	require.NoError(t, err)
	for _, w := range listed {
		for _, old := range workers {
			require.NotEqual(t, old.ID, w.ID, "the workers of the earlier run are not listed any more")
		}
	}
	jobs, err := again.c.Jobs(ctx, client.JobFilter{})
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	require.Equal(t, []string{deploy.ID, hello.ID}, []string{jobs[0].ID, jobs[1].ID}, "newest first")
	for _, j := range jobs {
		require.Equal(t, stroem.JobCompleted, j.Status)
	}
	got, err := again.c.Job(ctx, hello.ID)
	require.NoError(t, err)
	require.Equal(t, hello.CompletedAt, got.CompletedAt)
	logs, err = again.c.Logs(ctx, hello.ID, "shout-it")
	require.NoError(t, err)
	require.Contains(t, logs, "HELLO E2E TEST")
	logs, err = again.c.Logs(ctx, deploy.ID, "")
	require.NoError(t, err)
	require.Contains(t, logs, "Deployment complete!")

	// And it still runs new work.
	third, _ := again.run("hello-world", map[string]any{"name": "again"})
	require.Equal(t, stroem.JobCompleted, third.Status)
	again.stop()
}

// TestDevCommand runs `stroem dev` as a user does and stops it as Ctrl-C
// does: it prints the URL and the hint, never the worker token, and exits 0.
func TestDevCommand(t *testing.T) {
	defer goleak.VerifyNone(t, devLeakOptions()...)
	t.Setenv("STROEM__DB__URL", "postgres://stroem:stroem@"+stroemtest.FreeAddr(t)+"/stroem?connect_timeout=1")
	t.Setenv("STROEM_LOG_LEVEL", "")
	dataDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	out := &stroemtest.Buffer{}
	root.SetOut(out)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"dev", compatWorkspace, "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--workers", "1"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	var url string
	// The banner is written line by line: wait for its hint, the last one
	// (checking it as soon as the first line showed failed once in CI).
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`running at (http://\S+)`).FindStringSubmatch(out.String())
		if m != nil {
			url = m[1]
		}
		return m != nil && strings.Contains(out.String(), "Try: ")
	}, time.Minute, 10*time.Millisecond, "the banner names the URL and gives the hint")
	require.Contains(t, out.String(), "Try: stroem trigger hello-world --follow --server "+url)
	require.NotRegexp(t, `[0-9a-f]{64}`, out.String(), "the worker token is not printed")

	c, tr := testClient(t, url)
	id, err := c.Execute(ctx, "default", "hello-world", nil)
	require.NoError(t, err)
	status, err := c.StreamLogs(ctx, id, client.StreamOptions{}, func(stroem.LogLine) error { return nil })
	require.NoError(t, err)
	require.Equal(t, stroem.JobCompleted, status)
	tr.CloseIdleConnections()

	cancel() // Ctrl-C
	select {
	case err := <-done:
		require.NoError(t, err, "exit 0")
	case <-time.After(time.Minute):
		t.Fatal("stroem dev did not stop")
	}
	require.FileExists(t, filepath.Join(dataDir, "stroem.db"))
}

func TestDevWorkspaceDefault(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	_, err := devWorkspace("")
	require.ErrorContains(t, err, "tried ./workspace, ./examples/workspace")

	// A ./workspace without workflows (this repository's Go package, say)
	// is passed over for examples/workspace.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "workspace"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "examples", "workspace", ".workflows"), 0o755))
	ws, err := devWorkspace("")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "examples", "workspace"), ws)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "workspace", ".workflows"), 0o755))
	ws, err = devWorkspace("")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "workspace"), ws)

	_, err = devWorkspace("nope")
	require.ErrorContains(t, err, "workspace nope: no such file or directory")
	ws, err = devWorkspace("examples/workspace")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "examples", "workspace"), ws)
}

func TestDevRefusesASecondRunOnTheSameDataDir(t *testing.T) {
	defer goleak.VerifyNone(t, devLeakOptions()...)
	dataDir := t.TempDir()
	b := startDevForTest(t, dataDir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, err = startDev(context.Background(), devOptions{workspace: compatWorkspace, dataDir: dataDir, listener: ln},
		slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	require.ErrorContains(t, err, "in use by another process")
	b.stop()
}

func TestLoopbackURL(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"0.0.0.0:9000":   "http://127.0.0.1:9000",
		"[::]:9000":      "http://127.0.0.1:9000",
		"[::1]:9000":     "http://[::1]:9000",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err)
		require.Equal(t, want, loopbackURL(a), addr)
	}
}

func TestDevWorkerToken(t *testing.T) {
	t.Parallel()
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "STROEM__WORKER_TOKEN" {
				return v
			}
			return ""
		}
	}
	tok, err := devWorkerToken(env("chosen-token"))
	require.NoError(t, err)
	require.Equal(t, "chosen-token", tok, "STROEM__WORKER_TOKEN is the dev server's worker token")

	a, err := devWorkerToken(env("  "))
	require.NoError(t, err)
	b, err := devWorkerToken(env(""))
	require.NoError(t, err)
	require.Len(t, a, 64, "a blank variable is not a token: a random one is made")
	require.Len(t, b, 64)
	require.NotEqual(t, a, b)
}

// A --listen port that cannot be one is a usage error (exit 2), as a
// non-loopback host is: it was "listen tcp: address 99999: invalid port",
// exit 1.
func TestDevListenWithABadPort(t *testing.T) {
	t.Parallel()
	r := runCLI(t, t.Context(), "dev", compatWorkspace, "--listen", "127.0.0.1:99999", "--data-dir", t.TempDir())
	require.Equal(t, 2, r.code, r.err)
	require.Equal(t, "stroem: --listen 127.0.0.1:99999: port 99999 is not 0 to 65535\n", r.err)
}
