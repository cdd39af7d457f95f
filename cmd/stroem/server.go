package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/actors"
	"github.com/stroem/stroem/auth"
	stroemhttp "github.com/stroem/stroem/http"
	"github.com/stroem/stroem/http/logstream"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/tracing"
	"github.com/stroem/stroem/ui"
	"github.com/stroem/stroem/workspace"
)

func newServerCmd() *cobra.Command {
	var configPath string
	var pprofOn bool
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Strøm server (API, orchestrator, worker API)",
		Long: `Run the Strøm server: it migrates the database, loads the workspaces,
recovers unfinished jobs and serves the REST API, the worker API and SSE logs.

The config file is YAML (see docs/operations.md); STROEM_CONFIG names it when
--config is not given, and STROEM__KEY__SUBKEY variables override any key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := readServerConfig(configPath)
			if err != nil {
				return err
			}
			tuneGC(serverGCHeadroom)
			log := daemonLogger(cfg.WorkerToken)
			app, err := startServer(cmd.Context(), cfg, serverOptions{pprof: pprofOn}, log)
			if err != nil {
				return err
			}
			log.Info("strøm server listening", "addr", app.Addr(), "version", version)
			<-cmd.Context().Done()
			log.Info("shutting down")
			return app.Stop(context.Background())
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "server config file (env STROEM_CONFIG)")
	cmd.Flags().BoolVar(&pprofOn, "pprof", false, "serve Go profiles at /debug/pprof")
	return cmd
}

// readServerConfig loads the server config with defaults and env overrides.
func readServerConfig(path string) (serverConfig, error) {
	cfg := defaultServerConfig()
	return cfg, readConfig(path, &cfg)
}

func newLogger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("STROEM_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	// Every record is masked with the secrets known so far (see logSecrets).
	return slog.New(stroem.NewMaskHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
}

// daemonLogger is the logger of a long-running process (server, worker)
// holding the worker token: it makes the process non-dumpable first (a
// failure is logged), and masks the token in every record.
func daemonLogger(workerToken string) *slog.Logger {
	log := newLogger()
	if err := harden(); err != nil {
		log.Warn("could not make the process non-dumpable: steps of the same uid may read its environment", "err", err)
	}
	if add := logSecrets(log); add != nil {
		add([]string{workerToken})
	}
	return log
}

// logSecrets returns the function that adds secret values to log's
// masking, or nil when log does not mask.
func logSecrets(log *slog.Logger) func([]string) {
	if mh, ok := log.Handler().(*stroem.MaskHandler); ok {
		return mh.Add
	}
	return nil
}

type serverOptions struct {
	pprof bool
	// store, when set, is used instead of opening PostgreSQL at cfg.DB.URL;
	// the caller has migrated it, and Stop closes it.
	store persistence.Store
	// listener, when set, is used instead of listening on cfg.Listen (tests).
	listener net.Listener
	// extra mounts more routes (webhooks).
	extra func(chi.Router)
	// tracer, when set, is used instead of the tracing section (tests).
	tracer *tracing.Tracer
}

// serverApp is a running server: every component, wired.
type serverApp struct {
	// listening is set once the LISTEN for other servers' ready steps is up
	// and its first wake-up sent (tests start once it is: that wake-up has
	// every waiting claim query again).
	listening atomic.Bool
	cfg       serverConfig
	log       *slog.Logger
	store     persistence.Store
	hub       *logstream.Hub
	ws        *workspace.Registry
	orch      *actors.Orchestrator
	sched     *actors.Scheduler
	hooks     *stroemhttp.Triggers
	ops       *opsParts // metrics, tracing, retention (ops.go)
	// routes is the API's router (app.http's handler wraps it with the
	// request metrics).
	routes chi.Router
	http   *http.Server
	ln     net.Listener

	cancel  context.CancelFunc
	done    chan struct{}
	ready   atomic.Bool
	stopped atomic.Bool
}

// startServer starts every component of a server; Stop ends them.
func startServer(ctx context.Context, cfg serverConfig, opts serverOptions, log *slog.Logger) (_ *serverApp, err error) {
	// Before anything else: a server without authentication must not be
	// reachable from other machines (unless insecure_no_auth says so).
	addr := cfg.Listen
	if opts.listener != nil {
		addr = opts.listener.Addr().String()
	}
	if err := checkExposure(addr, cfg.Auth != nil, cfg.InsecureNoAuth); err != nil {
		if opts.store != nil {
			opts.store.Close()
		}
		if opts.listener != nil {
			_ = opts.listener.Close()
		}
		return nil, exitCode(2, err)
	}
	app := &serverApp{cfg: cfg, log: log, done: make(chan struct{})}
	bg, cancel := context.WithCancel(context.Background())
	app.cancel = cancel
	defer func() {
		if err != nil {
			_ = app.Stop(context.Background())
		}
	}()

	if opts.store != nil {
		app.store = opts.store
	} else {
		pg, err := openPostgres(ctx, cfg.DB.URL, log)
		if err != nil {
			return nil, err
		}
		app.store = pg
		if err = pg.Migrate(ctx); err != nil {
			return nil, fmt.Errorf("migrate database: %w", err)
		}
	}
	if app.ops, app.store, err = startOps(ctx, cfg, app.store, opts.tracer, log); err != nil {
		return nil, err
	}
	if cfg.LogStorage.LocalDir != "" {
		log.Warn("log_storage.local_dir is ignored: logs are stored in the database")
	}

	paths := map[string]string{}
	for name, w := range cfg.Workspaces {
		if w.Type != "git" {
			paths[name] = w.Path
		}
	}
	app.ws = workspace.NewRegistryWithLibraries(paths, loadLibraries(ctx, cfg, log), log)
	addGitWorkspaces(ctx, app.ws, cfg, log)
	app.ws.OnReload(func(ws *workspace.Workspace) { app.storeArchive(bg, ws); logWebhookSecretWarnings(log, ws) })
	// The registry loaded every workspace (and logged its problems); store
	// their files before workers can claim, since reload hooks only run for
	// later reloads.
	for _, ws := range app.ws.List() {
		if ws.Revision != "" {
			app.storeArchive(ctx, ws)
		}
		logWebhookSecretWarnings(log, ws)
	}

	var authSvc *auth.Service
	var acl *auth.ACL
	if cfg.Auth != nil {
		if acl, err = auth.NewACL(cfg.ACL); err != nil {
			return nil, err
		}
		if authSvc, err = auth.New(*cfg.Auth, acl, app.store, log, auth.Options{}); err != nil {
			return nil, err
		}
		for _, w := range cfg.Auth.Warnings() {
			log.Warn("auth: " + w)
		}
		// The length only, so operators of several servers can check they
		// share the secret without it being logged.
		log.Info("auth enabled", "jwt_secret_len", len(cfg.Auth.JWTSecret), "acl", acl.Enabled())
		if err = authSvc.Seed(ctx); err != nil {
			return nil, err
		}
	} else {
		log.Warn("auth: no auth section: every client may run any task (only safe on a loopback address)")
	}

	app.hub = logstream.New(hubSource{store: app.store}, log)
	events := &serverEvents{hub: app.hub, ops: app.ops}
	app.orch = actors.New(actors.Config{
		Lease: cfg.Lease, StartTimeout: cfg.StartTimeout, DefaultStepTimeout: cfg.DefaultStepTimeout,
		OnSecrets: logSecrets(log), MaskExtra: []string{cfg.WorkerToken},
		DefaultJobTimeout: cfg.DefaultJobTimeout, UnmatchedStepTimeout: cfg.Recovery.unmatchedStepTimeout(),
	}, app.store, app.ws, events, log)
	app.sched = actors.NewScheduler(app.orch, app.store, app.ws, log)
	app.hooks = stroemhttp.NewTriggers(stroemhttp.TriggersConfig{Headers: cfg.Webhooks.Headers, ACL: acl}, app.orch, app.store, app.ws, app.sched, log)
	events.hooks = app.hooks
	if err = app.orch.Start(ctx); err != nil {
		return nil, err
	}
	if err = app.sched.Start(); err != nil {
		return nil, err
	}
	app.ws.OnReload(app.sched.Reload)
	// Wake the Dispatcher for other servers' notifications; this server's own
	// transitions already woke it in-process.
	own := app.store.Origin() + ":"
	go func() {
		wake := func(payload string) {
			if !strings.HasPrefix(payload, own) {
				app.orch.Wake() // "" on each (re)connect: what was missed meanwhile
			}
			if payload == "" {
				app.listening.Store(true)
			}
		}
		if err := app.store.Listen(bg, persistence.ChannelStepsReady, wake); err != nil && bg.Err() == nil {
			log.Error("listen for ready steps stopped", "err", err)
		}
	}()
	go app.listenLogs(bg)
	go app.ws.Watch(bg)

	hub := app.ops.hub(app.hub) // observed: log lines published, SSE clients
	workers := actors.NewWorkers(app.orch, app.store, app.store, hub)
	workers.MaxStepLogBytes = cfg.LogStorage.MaxStepBytes
	limits, err := fileLimits(cfg.ArtifactStorage, cfg.StateStorage)
	if err != nil {
		return nil, err
	}
	files := actors.NewFiles(app.store, limits)
	app.orch.SetFiles(files)
	api := stroemhttp.NewServer(stroemhttp.Config{
		WorkerToken: cfg.WorkerToken, MaxBodyBytes: cfg.MaxBodyBytes, WriteTimeout: cfg.HTTP.WriteTimeout,
		Ready: app.ready.Load, Auth: authSvc,
		Files: files,
		UI:    ui.Handler(),
		Extra: func(r chi.Router) {
			app.hooks.Mount(r)
			app.ops.mount(r)
			if opts.pprof {
				r.HandleFunc("/debug/pprof/*", pprof.Index)
				r.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
				r.HandleFunc("/debug/pprof/profile", pprof.Profile)
				r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
				r.HandleFunc("/debug/pprof/trace", pprof.Trace)
			}
			if opts.extra != nil {
				opts.extra(r)
			}
		},
	}, app.orch, app.ops.workers(workers), app.store, app.ws, app.store, hub, log)

	app.ln = opts.listener
	if app.ln == nil {
		if app.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	app.ln = stroemhttp.LimitConnections(app.ln, cfg.HTTP.MaxConnections, log)
	// The router is a chi.Router (its routes can be walked, see the auth
	// tests); SSE streams, long-poll claims and streamed log reads move
	// their own write deadlines (see http.Server.deadlines).
	app.routes = api.Handler().(chi.Router)
	app.http = &http.Server{
		Handler:           app.ops.instrument(app.routes),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       cfg.HTTP.ReadTimeout,
		WriteTimeout:      cfg.HTTP.WriteTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
	}
	go func() {
		defer close(app.done)
		if err := app.http.Serve(app.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err)
		}
	}()
	app.ops.startRetention()
	app.ready.Store(true)
	return app, nil
}

// Addr is the address the server listens on.
func (a *serverApp) Addr() string { return a.ln.Addr().String() }

// URL is the server's base URL.
func (a *serverApp) URL() string { return "http://" + a.Addr() }

// Stop shuts the server down: stop accepting, let in-flight requests end
// (bounded by shutdown_grace), end SSE streams, stop the actors, close
// storage. All state is in PostgreSQL already. Safe to call twice.
func (a *serverApp) Stop(ctx context.Context) error {
	if a.stopped.Swap(true) {
		return nil
	}
	a.ready.Store(false)
	var errs []error
	if a.http != nil {
		// Long polls and SSE streams would keep Shutdown waiting: answer the
		// waiting claims with nothing and end the streams (clients resume).
		if a.orch != nil {
			a.orch.Drain()
		}
		if a.hub != nil {
			a.hub.Close()
		}
		if a.hooks != nil {
			a.hooks.Close() // and so would sync webhooks
		}
		c, cancel := context.WithTimeout(ctx, a.cfg.ShutdownGrace)
		if err := a.http.Shutdown(c); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
			_ = a.http.Close()
		}
		cancel()
		<-a.done
	} else if a.ln != nil {
		_ = a.ln.Close()
	}
	if a.sched != nil {
		a.sched.Stop()
	}
	if a.orch != nil {
		a.orch.Stop()
	}
	if a.hub != nil {
		a.hub.Close()
	}
	a.ops.stop()
	a.cancel()
	if a.store != nil {
		a.store.Close()
	}
	return errors.Join(errs...)
}

// storeArchive keeps the files of a workspace revision in the database, so
// workers can fetch exactly what a job was created from.
func (a *serverApp) storeArchive(ctx context.Context, ws *workspace.Workspace) {
	b, err := workspace.Archive(ws)
	if err == nil {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = a.store.WorkspaceArchivePut(c, ws.Revision, b)
		cancel()
	}
	if err != nil {
		a.log.Error("store workspace archive", "workspace", ws.Name, "revision", ws.Revision, "err", err)
	}
}
