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

	"github.com/stroem/stroem/actors"
	stroemhttp "github.com/stroem/stroem/http"
	"github.com/stroem/stroem/http/logstream"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/postgres"
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
			log := newLogger()
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
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
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
}

// serverApp is a running server: every component, wired.
type serverApp struct {
	cfg   serverConfig
	log   *slog.Logger
	store persistence.Store
	hub   *logstream.Hub
	ws    *workspace.Registry
	orch  *actors.Orchestrator
	sched *actors.Scheduler
	hooks *stroemhttp.Triggers
	http  *http.Server
	ln    net.Listener

	cancel  context.CancelFunc
	done    chan struct{}
	ready   atomic.Bool
	stopped atomic.Bool
}

// startServer starts every component of a server; Stop ends them.
func startServer(ctx context.Context, cfg serverConfig, opts serverOptions, log *slog.Logger) (_ *serverApp, err error) {
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
		pg, err := postgres.Open(ctx, cfg.DB.URL, log)
		if err != nil {
			return nil, err
		}
		app.store = pg
		if err = pg.Migrate(ctx); err != nil {
			return nil, fmt.Errorf("migrate database: %w", err)
		}
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
	app.ws = workspace.NewRegistry(paths, log)
	addGitWorkspaces(ctx, app.ws, cfg, log)
	app.ws.OnReload(func(ws *workspace.Workspace) { app.storeArchive(bg, ws) })
	// The registry loaded every workspace (and logged its problems); store
	// their files before workers can claim, since reload hooks only run for
	// later reloads.
	for _, ws := range app.ws.List() {
		if ws.Revision != "" {
			app.storeArchive(ctx, ws)
		}
	}

	app.hub = logstream.New(hubSource{store: app.store}, log)
	events := &serverEvents{hub: app.hub, store: app.store, log: log}
	app.orch = actors.New(actors.Config{Lease: cfg.Lease}, app.store, app.ws, events, log)
	app.sched = actors.NewScheduler(app.orch, app.store, app.ws, log)
	app.hooks = stroemhttp.NewTriggers(stroemhttp.TriggersConfig{}, app.orch, app.store, app.ws, app.sched, log)
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
				app.orch.Wake()
			}
		}
		if err := app.store.Listen(bg, persistence.ChannelStepsReady, wake); err != nil && bg.Err() == nil {
			log.Error("listen for ready steps stopped", "err", err)
		}
	}()
	go app.listenLogs(bg)
	go app.ws.Watch(bg)

	workers := actors.NewWorkers(app.orch, app.store, app.store, app.hub)
	workers.MaxStepLogBytes = cfg.LogStorage.MaxStepBytes
	api := stroemhttp.NewServer(stroemhttp.Config{
		WorkerToken: cfg.WorkerToken, MaxBodyBytes: cfg.MaxBodyBytes, WriteTimeout: cfg.HTTP.WriteTimeout,
		Ready: app.ready.Load,
		Extra: func(r chi.Router) {
			app.hooks.Mount(r)
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
	}, app.orch, workers, app.store, app.ws, app.store, app.hub, log)

	app.ln = opts.listener
	if app.ln == nil {
		if app.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	// SSE streams, long-poll claims and streamed log reads move their own
	// write deadlines; see http.Server.deadlines for the read deadline.
	app.http = &http.Server{
		Handler:           api.Handler(),
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
