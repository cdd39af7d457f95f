package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/persistence/sqlite"
	"github.com/stroem/stroem/runner"
)

// `stroem dev` is the whole product in one process for a first try or a
// laptop: the real server (API, SSE, orchestrator, scheduler) on the
// embedded SQLite store of package persistence/sqlite, plus N real workers
// (runner.Worker with the ShellRunner). No PostgreSQL is opened, whatever
// the environment says.
//
// The workers talk to the server exactly as remote ones do: the worker
// protocol over HTTP, here on the loopback address the server listens on,
// with a worker token generated for the run (random, never printed or
// stored), or STROEM__WORKER_TOKEN when set (devWorkerToken). An in-process transport would save a few microseconds per call
// and exercise less of the real path; loopback keeps dev mode honest: what
// works here works with `stroem server` and `stroem worker`.
//
// Everything durable lives in --data-dir: the database file (stroem.db,
// WAL mode), which holds the job logs too; the workers' scratch space is
// work/. Restarting with the same --data-dir resumes unfinished jobs and
// lists the earlier ones with their logs.

// Defaults of the dev command.
const (
	devDefaultListen  = "127.0.0.1:8080"
	devDefaultDataDir = ".stroem"
	devDefaultWorkers = 2
	devMaxConcurrent  = 4
	// devWorkerGrace is how long Ctrl-C lets running steps finish before
	// they are cancelled (a production worker's default is 30 s).
	devWorkerGrace = 10 * time.Second
)

// devWorkspaceCandidates are tried, in order, when no WORKSPACE is given.
var devWorkspaceCandidates = []string{"workspace", filepath.Join("examples", "workspace")}

// devOptions configures a dev run.
type devOptions struct {
	workspace string // empty: the first of devWorkspaceCandidates with workflows
	listen    string
	dataDir   string
	workers   int
	pprof     bool
	// listener, when set, is used instead of listening on listen (tests).
	listener net.Listener
	// workerGrace overrides devWorkerGrace (tests).
	workerGrace time.Duration
}

func newDevCmd() *cobra.Command {
	o := devOptions{}
	cmd := &cobra.Command{
		Use:   "dev [WORKSPACE]",
		Short: "Run the server, workers and an embedded store in one process (no PostgreSQL)",
		Long: `Run all of Strøm in one process: the server (REST API, SSE logs,
orchestrator, scheduler), --workers worker loops that run steps with the
shell runner, and an embedded SQLite database. Nothing else is needed: no
PostgreSQL, no config file, no worker token to choose (the workers get a
random one; set STROEM__WORKER_TOKEN to choose it, so that a separate
` + "`stroem worker`" + ` — one with docker, say — can join).

WORKSPACE is a workspace folder (one with a .workflows folder). Without it,
./workspace is used if it has workflows, else examples/workspace.

State is kept in --data-dir (default ./.stroem): the database (stroem.db),
job logs included. Restart with the same --data-dir and the earlier
jobs, their logs and any unfinished work are still there. Only one stroem
dev can use a data dir at a time.

Ctrl-C stops claiming new steps, lets running ones finish (up to 10s), then
stops the server; the exit code is 0.`,
		Example: `  stroem dev examples/workspace
  stroem trigger hello-world --follow     # in a second terminal
  stroem dev ./my-workspace --listen 127.0.0.1:9090 --data-dir /tmp/stroem --workers 4`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.workspace = args[0]
			}
			if o.workers < 1 || o.workers > 64 {
				return usageError("--workers must be between 1 and 64, not %d", o.workers)
			}
			tuneGC(serverGCHeadroom)
			log := newLogger()
			d, err := startDev(cmd.Context(), o, log)
			if err != nil {
				return err
			}
			d.printBanner(cmd.OutOrStdout())
			<-cmd.Context().Done()
			log.Info("shutting down: letting running steps finish", "grace", d.grace)
			return d.Stop(context.Background())
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", devDefaultListen, "address the server listens on")
	cmd.Flags().StringVar(&o.dataDir, "data-dir", devDefaultDataDir, "folder for the database (job logs included) and the workers' scratch space")
	cmd.Flags().IntVar(&o.workers, "workers", devDefaultWorkers, fmt.Sprintf("number of in-process workers (each runs up to %d steps at once)", devMaxConcurrent))
	cmd.Flags().BoolVar(&o.pprof, "pprof", false, "serve Go profiles at /debug/pprof")
	return cmd
}

// devApp is a running dev system.
type devApp struct {
	server    *serverApp
	url       string
	workspace string
	dataDir   string
	workers   int
	grace     time.Duration
	hintTask  string

	stopWorkers context.CancelFunc
	running     sync.WaitGroup
	stopOnce    sync.Once
	stopErr     error
}

// startDev opens the store, starts the server and the workers, and returns
// once the server accepts requests.
func startDev(ctx context.Context, o devOptions, log *slog.Logger) (_ *devApp, err error) {
	ws, err := devWorkspace(o.workspace)
	if err != nil {
		return nil, usageError("%v", err)
	}
	if o.dataDir == "" {
		o.dataDir = devDefaultDataDir
	}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return nil, usageError("--data-dir: %v", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	workers := o.workers
	if workers <= 0 {
		workers = devDefaultWorkers
	}
	grace := o.workerGrace
	if grace <= 0 {
		grace = devWorkerGrace
	}

	ln := o.listener
	if ln == nil {
		if o.listen == "" {
			o.listen = devDefaultListen
		}
		// dev has no authentication: anyone reaching it could run any
		// command, so it only listens where only this machine can reach.
		if !loopbackAddr(o.listen) {
			return nil, usageError("--listen %s: stroem dev has no authentication, so it only listens on a loopback address (e.g. 127.0.0.1:8080); "+
				"for a server others can reach, run `stroem server` with an auth: section (docs/auth.md)", o.listen)
		}
		if _, port, _ := net.SplitHostPort(o.listen); port != "" {
			if p, err := strconv.Atoi(port); err == nil && (p < 0 || p > 65535) {
				return nil, usageError("--listen %s: port %s is not 0 to 65535", o.listen, port)
			}
		}
		if ln, err = net.Listen("tcp", o.listen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", o.listen, err)
		}
	}
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()

	dbPath := filepath.Join(dataDir, "stroem.db")
	store, err := sqlite.Open(ctx, dbPath, log)
	if err != nil {
		return nil, err
	}
	// The workers of earlier runs on this data dir are gone (this process
	// is the only one using it): drop them, so `stroem workers` lists this
	// run's. A worker still holding a running step stays until the step's
	// lease runs out.
	if _, err := store.WorkersPrune(ctx, time.Now().Add(time.Hour), false); err != nil {
		log.Warn("could not remove the workers of earlier runs", "err", err)
	}
	token, err := devWorkerToken(os.Getenv)
	if err != nil {
		store.Close()
		return nil, err
	}
	cfg := defaultServerConfig()
	cfg.Listen = ln.Addr().String()
	cfg.DB.URL = "sqlite:" + dbPath // for the record: the store is given below, PostgreSQL is never opened
	cfg.Workspaces = map[string]workspaceConfig{"default": {Type: "folder", Path: ws}}
	cfg.WorkerToken = token
	cfg.ShutdownGrace = 10 * time.Second
	app, err := startServer(ctx, cfg, serverOptions{store: store, listener: ln, pprof: o.pprof}, log)
	if err != nil {
		return nil, err // startServer's cleanup closed the store
	}

	d := &devApp{
		server: app, url: loopbackURL(ln.Addr()), workspace: ws, dataDir: dataDir, workers: workers, grace: grace,
		hintTask: hintTask(app),
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.stopWorkers = cancel
	for i := 1; i <= workers; i++ {
		name := fmt.Sprintf("dev-worker-%d", i)
		wlog := log.With("worker", name)
		c, err := client.New(d.url, client.WithToken(token), client.WithUserAgent("stroem-dev/"+version))
		if err == nil {
			var w *runner.Worker
			w, err = runner.NewWorker(c, runner.WorkerConfig{
				Name:          name,
				Capabilities:  []string{"shell"},
				Tags:          []string{"dev"},
				MaxConcurrent: devMaxConcurrent,
				WorkDir:       filepath.Join(dataDir, "work", name),
				ShutdownGrace: grace,
			}, wlog)
			if err == nil {
				d.running.Go(func() {
					if err := w.Run(wctx); err != nil {
						wlog.Error("worker stopped", "err", err)
					}
				})
				continue
			}
		}
		_ = d.Stop(context.Background())
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return d, nil
}

// Stop stops the workers (they stop claiming, finish or cancel their
// running steps within the grace and report them), then the server, then
// closes the store. Safe to call twice.
func (d *devApp) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() {
		d.stopWorkers()
		d.running.Wait()
		d.stopErr = d.server.Stop(ctx)
	})
	return d.stopErr
}

// URL is the server's base URL.
func (d *devApp) URL() string { return d.url }

// printBanner tells the user where the server is and what to try first.
// The worker token is not in it: nothing outside this process needs it.
func (d *devApp) printBanner(w io.Writer) {
	fmt.Fprintf(w, "Strøm dev is running at %s\n", d.url)
	fmt.Fprintf(w, "  workspace %s\n  data      %s (database and logs; delete it to start afresh)\n  workers   %d × %d slots, shell runner\n",
		d.workspace, d.dataDir, d.workers, devMaxConcurrent)
	server := ""
	if d.url != defaultServerURL && d.url != "http://127.0.0.1:8080" {
		server = " --server " + d.url
	}
	if d.hintTask != "" {
		fmt.Fprintf(w, "Try: stroem trigger %s --follow%s\n", d.hintTask, server)
	} else {
		fmt.Fprintf(w, "The workspace has no valid task yet: add one under %s, it is picked up on save.\n",
			filepath.Join(d.workspace, ".workflows"))
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

// devWorkspace returns the absolute path of the workspace to serve: the
// one given, which must exist, or the first default candidate that has a
// .workflows folder.
func devWorkspace(given string) (string, error) {
	if given != "" {
		if _, err := os.Stat(given); err != nil {
			return "", fmt.Errorf("workspace %s: %w", given, unwrapPathError(err))
		}
		return filepath.Abs(given)
	}
	tried := make([]string, 0, len(devWorkspaceCandidates))
	for _, c := range devWorkspaceCandidates {
		if fi, err := os.Stat(filepath.Join(c, ".workflows")); err == nil && fi.IsDir() {
			return filepath.Abs(c)
		}
		tried = append(tried, "./"+filepath.ToSlash(c))
	}
	return "", fmt.Errorf("no workspace given and none found (tried %s: neither has a .workflows folder); run stroem dev PATH",
		strings.Join(tried, ", "))
}

// hintTask is the task the banner suggests: hello-world, else the first
// task of the workspace by name.
func hintTask(app *serverApp) string {
	ws := app.ws.Get("default")
	if ws == nil || len(ws.Tasks) == 0 {
		return ""
	}
	if _, ok := ws.Tasks["hello-world"]; ok {
		return "hello-world"
	}
	names := make([]string, 0, len(ws.Tasks))
	for name := range ws.Tasks {
		names = append(names, name)
	}
	slices.Sort(names)
	return names[0]
}

// loopbackURL is the URL that reaches a listener from this machine: an
// unspecified host (0.0.0.0, ::) becomes 127.0.0.1.
func loopbackURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// devWorkerToken is the worker token of a dev run: STROEM__WORKER_TOKEN
// when it is set (so a `stroem worker` of another kind — docker, say — can
// join the dev server, and the bench's simulated workers can), else a fresh
// random one that nothing outside this process knows.
func devWorkerToken(getenv func(string) string) (string, error) {
	if t := strings.TrimSpace(getenv("STROEM__WORKER_TOKEN")); t != "" {
		return t, nil
	}
	return newDevToken()
}

// newDevToken returns a fresh worker token: 32 random bytes, hex.
func newDevToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", errors.New("generate a worker token: " + err.Error())
	}
	return hex.EncodeToString(b), nil
}
