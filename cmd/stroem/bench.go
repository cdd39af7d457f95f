package main

// `stroem bench` (issue 9): a self-contained benchmark of the real
// deployment. It writes its own workspace into a temp dir, creates a fresh
// database, starts `stroem server` and two `stroem worker`s as subprocesses of
// this same binary (or `stroem dev` for --store sqlite), drives them through
// the public API like a user would, and prints each figure next to the
// machine's floors (a `sh -c true` spawn, a PostgreSQL commit) measured in the
// same run and next to the targets. It cleans up — subprocesses
// killed, database dropped — on success, failure and Ctrl-C.

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/bench"
)

// benchOptions are the command's flags; bench.Options is what they become.
type benchOptions struct {
	dbURL    string
	store    string
	output   string
	only     string
	keep     bool
	pprofDir string
	exe      string // the stroem binary the subprocesses run
	sizes    bench.Sizes
	parts    map[string]bool
}

func newBenchCmd() *cobra.Command {
	o := benchOptions{sizes: bench.DefaultSizes()}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure step hand-off, throughput, latency and memory on a fresh server",
		Long: `Bench measures Strøm on this machine, self-contained: it writes its own
workspace into a temp dir, creates a fresh database (CREATE DATABASE
stroem_bench_<random> on the PostgreSQL server at --db-url, dropped at the end
unless --keep), starts ` + "`stroem server --pprof`" + ` and 2 ` + "`stroem worker`" + `s (8 slots
each) as subprocesses of this binary, and measures through the public API:

  floor    a ` + "`sh -c true`" + ` spawn, and a small PostgreSQL commit (p50 of 200)
  chain    a 100-step linear chain of trivial steps: total and per hop (median of 3)
  fanout   400 independent trivial steps in one job: steps/s (median of 3)
  trigger  POST execute → first step running (claimed): p50/p99 over 200 jobs
  many     1,000 one-step jobs created at once (by 16 clients) and run to
           the end: jobs/s and CPU per job
  sse      a line printed by a step → received by an SSE client: p50/p99
  scale    server RSS with 10,000 queued jobs (created over the API by 16
           clients), then GET /api/jobs p50/p99 with 100,000 jobs in the table
           (the rest inserted with SQL)
  logs     one step printing short lines as fast as it can: lines stored per
           second, and a line's latency to an SSE client, from the step's
           print and from the worker's read

The chain and the fan-out each run once unmeasured first (--warmup-runs), so
that their figures leave out more of what processes just started pay once
(their heaps' first pages, say).

With --store sqlite it runs ` + "`stroem dev`" + ` (embedded SQLite, in-process workers)
instead of a server and workers. --pprof-dir saves 10 s CPU profiles of the
server taken while extra chain, fan-out and logs jobs run (after the measured runs),
and a heap profile with the queued jobs. Progress goes to stderr, figures to
stdout. The machine should be otherwise idle; the load average is printed.`,
		Example: `  stroem bench
  stroem bench --only chain,trigger --output json
  stroem bench --db-url postgres://postgres@db:5432/postgres --pprof-dir ./profiles`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			rep, err := bench.Run(ctx, bench.Options{
				DBURL: o.dbURL, Store: o.store, Parts: o.parts, Keep: o.keep, PprofDir: o.pprofDir,
				Exe: o.exe, Version: version, Sizes: o.sizes,
			}, cmd.ErrOrStderr())
			var usage *bench.UsageError
			if errors.As(err, &usage) {
				return usageError("%s", usage.Err.Error())
			}
			if err != nil {
				if ctx.Err() != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "stroem bench: interrupted; cleaned up")
					return exitCode(130, nil)
				}
				return err
			}
			if o.output == "json" {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return rep.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dbURL, "db-url", "", "PostgreSQL server to create the bench database on (default $STROEM__DB__URL, else "+bench.DefaultDBURL+")")
	f.StringVar(&o.store, "store", "postgres", "postgres (server + workers) or sqlite (stroem dev)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.only, "only", "", "comma-separated parts to run: "+strings.Join(bench.Parts, ",")+" (default all)")
	f.BoolVar(&o.keep, "keep", false, "keep the database and the temp dir (printed on stderr)")
	f.StringVar(&o.pprofDir, "pprof-dir", "", "save CPU profiles of the server during chain, fanout and logs, and a heap profile during scale, here")

	// Sizes, for tests and for experiments; the defaults are the issue's.
	s := &o.sizes
	hidden := []struct {
		p    *int
		name string
		help string
	}{
		{&s.ChainSteps, "chain-steps", "steps in the chain"},
		{&s.ChainRuns, "chain-runs", "chain runs (median reported)"},
		{&s.WarmupRuns, "warmup-runs", "unmeasured runs of the chain and the fan-out before the measured ones (0: none)"},
		{&s.FanoutSteps, "fanout-steps", "steps in the fan-out job"},
		{&s.FanoutRuns, "fanout-runs", "fan-out runs (median reported)"},
		{&s.Workers, "workers", "worker processes"},
		{&s.Slots, "slots", "max_concurrent of each worker"},
		{&s.TriggerJobs, "jobs", "jobs of the trigger part"},
		{&s.ManyJobs, "many-jobs", "jobs created at once in the many part"},
		{&s.SSELines, "sse-lines", "lines printed in the SSE part"},
		{&s.LogsLines, "logs-lines", "lines printed in the logs part"},
		{&s.Queued, "queued", "queued jobs created over the API in the scale part"},
		{&s.CreateConns, "create-conns", "concurrent clients creating the queued jobs"},
		{&s.TableJobs, "table-jobs", "jobs in the table for the job list (the rest inserted with SQL)"},
		{&s.ListRequests, "list-requests", "job list requests per filter"},
		{&s.FloorRuns, "floor-runs", "samples of each floor"},
		{&s.FleetWorkers, "fleet-workers", "simulated workers of the fleet part"},
		{&s.FleetSlots, "fleet-slots", "slots (long polls) of each simulated worker"},
		{&s.FleetIdleMS, "fleet-idle-ms", "the fleet part's idle window, in ms"},
		{&s.FleetJobs, "fleet-jobs", "jobs created after the fleet part's idle window"},
	}
	for _, h := range hidden {
		f.IntVar(h.p, h.name, *h.p, h.help)
		_ = f.MarkHidden(h.name)
	}
	f.StringVar(&o.exe, "exe", "", "the stroem binary to run as server and workers (default this one)")
	_ = f.MarkHidden("exe")
	return cmd
}

// check validates the flags and fills the defaults that depend on the
// environment.
func (o *benchOptions) check() error {
	if o.output != "text" && o.output != "json" {
		return usageError("--output must be text or json, not %q", o.output)
	}
	if o.store != "postgres" && o.store != "sqlite" {
		return usageError("--store must be postgres or sqlite, not %q", o.store)
	}
	o.parts = map[string]bool{}
	if strings.TrimSpace(o.only) == "" {
		for _, p := range bench.Parts {
			o.parts[p] = true
		}
	} else {
		for _, p := range strings.Split(o.only, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(bench.Parts, p) {
				return usageError("--only: unknown part %q (parts: %s)", p, strings.Join(bench.Parts, ", "))
			}
			o.parts[p] = true
		}
	}
	s := o.sizes
	if s.WarmupRuns < 0 {
		return usageError("--warmup-runs must be at least 0, got %d", s.WarmupRuns)
	}
	for name, v := range map[string]int{"chain-steps": s.ChainSteps, "chain-runs": s.ChainRuns,
		"fanout-steps": s.FanoutSteps, "fanout-runs": s.FanoutRuns, "workers": s.Workers, "slots": s.Slots,
		"jobs": s.TriggerJobs, "many-jobs": s.ManyJobs, "sse-lines": s.SSELines, "logs-lines": s.LogsLines, "queued": s.Queued, "create-conns": s.CreateConns,
		"list-requests": s.ListRequests, "floor-runs": s.FloorRuns} {
		if v < 1 {
			return usageError("--%s must be at least 1, got %d", name, v)
		}
	}
	if o.dbURL == "" {
		o.dbURL = os.Getenv("STROEM__DB__URL")
	}
	if o.dbURL == "" {
		o.dbURL = bench.DefaultDBURL
	}
	if o.exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the stroem binary to run the server with: %w", err)
		}
		o.exe = exe
	}
	return nil
}
