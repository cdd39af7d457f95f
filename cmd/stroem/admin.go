package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/retention"
)

func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operator commands that work on the database directly",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAdminPruneCmd())
	return cmd
}

func newAdminPruneCmd() *cobra.Command {
	var (
		configPath  string
		dryRun      bool
		jobDays     int
		workerHours int
	)
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete old jobs, trigger ticks and workers now (retention)",
		Long: `Run one retention pass now, with the server config's retention section
(job_days, worker_hours, batch_size, batch_pause_ms) unless --job-days or
--worker-hours say otherwise. Terminal jobs that ended more than job_days
ago go with their steps, attempts and log files, trigger ticks as old
(each trigger's latest stays), and workers not seen for worker_hours.

It deletes in small batches that skip locked rows, so it is safe while
servers run. --dry-run deletes nothing and prints what would go.`,
		Example: `  stroem admin prune --config server-config.yaml --dry-run
  stroem admin prune --config server-config.yaml --job-days 30`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := readServerConfig(configPath)
			if err != nil {
				return err
			}
			rc := cfg.Retention
			if cmd.Flags().Changed("job-days") {
				rc.JobDays = jobDays
			}
			if cmd.Flags().Changed("worker-hours") {
				rc.WorkerHours = workerHours
			}
			if err := rc.WithDefaults().Validate(); err != nil {
				return usageError("%v", err)
			}
			if !rc.Enabled() {
				return usageError("nothing to prune: set retention.job_days or retention.worker_hours in the config, or pass --job-days/--worker-hours")
			}
			ctx := cmd.Context()
			log := newLogger()
			store, err := openPostgres(ctx, cfg.DB.URL, log)
			if err != nil {
				return err
			}
			defer store.Close()
			pending, err := store.MigrationsPending(ctx)
			if err != nil {
				return err
			}
			if pending {
				return fmt.Errorf("the database schema is behind this binary: run `stroem migrate` (or start a server) first")
			}
			// A pruned job's log lines go with it (a trigger on jobs).
			r, err := retention.New(rc, store, nil, nil, log).Run(ctx, dryRun)
			printPrune(cmd, r)
			return err
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "server config file (env STROEM_CONFIG)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "delete nothing; print what would be deleted")
	cmd.Flags().IntVar(&jobDays, "job-days", 0, "delete terminal jobs that ended more than this many days ago (overrides retention.job_days; 0 = off)")
	cmd.Flags().IntVar(&workerHours, "worker-hours", 0, "delete workers not seen for this many hours (overrides retention.worker_hours; 0 = off)")
	return cmd
}

func printPrune(cmd *cobra.Command, r retention.Report) {
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
	}
	w := newTable(cmd.OutOrStdout())
	fmt.Fprintf(w, "KIND\t%s\tCUT-OFF\n", verb)
	cut := func(t interface{ IsZero() bool }, s string) string {
		if t.IsZero() {
			return "off"
		}
		return s
	}
	jobs := cut(r.JobsBefore, "ended before "+r.JobsBefore.UTC().Format("2006-01-02 15:04:05Z"))
	fmt.Fprintf(w, "jobs\t%d\t%s\n", r.Jobs, jobs)
	fmt.Fprintf(w, "steps\t%d\t%s\n", r.Steps, jobs)
	fmt.Fprintf(w, "trigger ticks\t%d\t%s\n", r.TriggerTicks, cut(r.JobsBefore, "before "+r.JobsBefore.UTC().Format("2006-01-02 15:04:05Z")+", each trigger's latest kept"))
	fmt.Fprintf(w, "workers\t%d\t%s\n", r.Workers, cut(r.WorkersBefore, "last seen before "+r.WorkersBefore.UTC().Format("2006-01-02 15:04:05Z")))
	_ = w.Flush()
}
