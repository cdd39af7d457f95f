package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/runner"
)

func newWorkerCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker: claim steps from the server and run them",
		Long: `Run a worker process. It registers with the server, runs up to
max_concurrent steps at once (each slot long-polls for work), heartbeats
their leases, streams their logs and reports their results, retrying with
backoff while the server is unreachable.

On SIGTERM or Ctrl-C it stops claiming, lets running steps finish within
shutdown_grace (default 30s), cancels and reports the rest, and exits 0.

The config file is YAML (server_url, worker_token, worker_name,
max_concurrent, work_dir, capabilities, tags, exclusive, pass_env, shutdown_grace,
log_spool_bytes, metrics_listen, tracing; the upstream's worker keys
are accepted, each one this worker does not use named in a warning).
A step whose action has tags runs only on a worker with all of them; an
exclusive worker runs only steps that require every one of its tags.
STROEM_CONFIG
names it when --config is not given, and STROEM__KEY variables override any
key (STROEM__WORKER_TOKEN=…). A bad config is exit code 2.`,
		Example: `  stroem worker --config worker-config.yaml
  STROEM__SERVER_URL=http://server:8080 STROEM__WORKER_TOKEN=secret stroem worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, notes, err := readWorkerConfig(configPath)
			if err != nil {
				return err
			}
			tuneGC(workerGCHeadroom)
			procs := tuneWorker(cfg.MaxConcurrent)
			log := daemonLogger(cfg.WorkerToken)
			log.Info("worker starting", "version", version, "gomaxprocs", procs)
			for _, n := range notes {
				log.Warn("config: " + n)
			}
			c, err := client.New(cfg.ServerURL, client.WithToken(cfg.WorkerToken), client.WithUserAgent("stroem-worker/"+version))
			if err != nil {
				return exitCode(2, fmt.Errorf("key server_url: %w", err))
			}
			ops, err := startWorkerOps(cmd.Context(), cfg, newLogger())
			if err != nil {
				return err
			}
			defer ops.stop()
			w, err := runner.NewWorker(c, runner.WorkerConfig{
				Name:          cfg.WorkerName,
				Capabilities:  cfg.Capabilities,
				Tags:          cfg.Tags,
				Exclusive:     cfg.Exclusive,
				MaxConcurrent: cfg.MaxConcurrent,
				WorkDir:       cfg.WorkDir,
				ShutdownGrace: cfg.ShutdownGrace,
				LogSpoolBytes: cfg.LogSpoolBytes,
				PassEnv:       cfg.PassEnv,
				OnSecrets:     logSecrets(log),
				MaskExtra:     []string{cfg.WorkerToken},
				WrapRunner:    ops.wrap,
			}, log)
			if err != nil {
				return exitCode(2, err)
			}
			return w.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "worker config file (env STROEM_CONFIG)")
	return cmd
}

// readWorkerConfig loads and validates the worker's configuration; every
// problem is exit code 2.
func readWorkerConfig(path string) (workerConfig, []string, error) {
	cfg := defaultWorkerConfig()
	if err := readConfig(path, &cfg); err != nil {
		return cfg, nil, err
	}
	notes, err := cfg.upstreamNotes()
	if err != nil {
		if path != "" {
			err = fmt.Errorf("config %s: %w", path, err)
		}
		return cfg, nil, exitCode(2, err)
	}
	if cfg.WorkerName == "" {
		cfg.WorkerName = "worker"
	}
	return cfg, notes, nil
}
