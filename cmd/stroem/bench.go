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
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Parts of the bench, in the order they run. scale runs last: it leaves
// 10,000 queued jobs and 100,000 rows behind, which would skew the others.
var benchParts = []string{"chain", "fanout", "trigger", "sse", "scale", "logs"}

// benchDefaultDBURL is the PostgreSQL server used when neither --db-url nor
// STROEM__DB__URL says otherwise.
const benchDefaultDBURL = "postgres://postgres@127.0.0.1:5432/postgres"

// benchSizes are the workload's sizes. The defaults are the issue's; the
// hidden flags shrink them for tests.
type benchSizes struct {
	ChainSteps   int
	ChainRuns    int
	FanoutSteps  int
	FanoutRuns   int
	Workers      int
	Slots        int
	TriggerJobs  int
	SSELines     int
	LogsLines    int
	Queued       int
	CreateConns  int
	TableJobs    int
	ListRequests int
	FloorRuns    int
}

func defaultBenchSizes() benchSizes {
	return benchSizes{
		ChainSteps: 100, ChainRuns: 3,
		FanoutSteps: 400, FanoutRuns: 3,
		Workers: 2, Slots: 8,
		TriggerJobs: 200,
		SSELines:    200,
		LogsLines:   200_000,
		Queued:      10_000, CreateConns: 16,
		TableJobs: 100_000, ListRequests: 200,
		FloorRuns: 200,
	}
}

// benchOptions are the command's flags.
type benchOptions struct {
	dbURL    string
	store    string
	output   string
	only     string
	keep     bool
	pprofDir string
	exe      string // the stroem binary the subprocesses run
	sizes    benchSizes
	parts    map[string]bool
}

func newBenchCmd() *cobra.Command {
	o := benchOptions{sizes: defaultBenchSizes()}
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
  sse      a line printed by a step → received by an SSE client: p50/p99
  scale    server RSS with 10,000 queued jobs (created over the API by 16
           clients), then GET /api/jobs p50/p99 with 100,000 jobs in the table
           (the rest inserted with SQL)

With --store sqlite it runs ` + "`stroem dev`" + ` (embedded SQLite, in-process workers)
instead of a server and workers. --pprof-dir saves 10 s CPU profiles of the
server taken while extra chain and fan-out jobs run (after the measured runs),
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
			rep, err := runBench(ctx, o, cmd.ErrOrStderr())
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
			return rep.writeText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dbURL, "db-url", "", "PostgreSQL server to create the bench database on (default $STROEM__DB__URL, else "+benchDefaultDBURL+")")
	f.StringVar(&o.store, "store", "postgres", "postgres (server + workers) or sqlite (stroem dev)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.only, "only", "", "comma-separated parts to run: "+strings.Join(benchParts, ",")+" (default all)")
	f.BoolVar(&o.keep, "keep", false, "keep the database and the temp dir (printed on stderr)")
	f.StringVar(&o.pprofDir, "pprof-dir", "", "save CPU profiles of the server during chain and fanout, and a heap profile during scale, here")

	// Sizes, for tests and for experiments; the defaults are the issue's.
	s := &o.sizes
	hidden := []struct {
		p    *int
		name string
		help string
	}{
		{&s.ChainSteps, "chain-steps", "steps in the chain"},
		{&s.ChainRuns, "chain-runs", "chain runs (median reported)"},
		{&s.FanoutSteps, "fanout-steps", "steps in the fan-out job"},
		{&s.FanoutRuns, "fanout-runs", "fan-out runs (median reported)"},
		{&s.Workers, "workers", "worker processes"},
		{&s.Slots, "slots", "max_concurrent of each worker"},
		{&s.TriggerJobs, "jobs", "jobs of the trigger part"},
		{&s.SSELines, "sse-lines", "lines printed in the SSE part"},
		{&s.LogsLines, "logs-lines", "lines printed in the logs part"},
		{&s.Queued, "queued", "queued jobs created over the API in the scale part"},
		{&s.CreateConns, "create-conns", "concurrent clients creating the queued jobs"},
		{&s.TableJobs, "table-jobs", "jobs in the table for the job list (the rest inserted with SQL)"},
		{&s.ListRequests, "list-requests", "job list requests per filter"},
		{&s.FloorRuns, "floor-runs", "samples of each floor"},
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
		for _, p := range benchParts {
			o.parts[p] = true
		}
	} else {
		for _, p := range strings.Split(o.only, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(benchParts, p) {
				return usageError("--only: unknown part %q (parts: %s)", p, strings.Join(benchParts, ", "))
			}
			o.parts[p] = true
		}
	}
	s := o.sizes
	for name, v := range map[string]int{"chain-steps": s.ChainSteps, "chain-runs": s.ChainRuns,
		"fanout-steps": s.FanoutSteps, "fanout-runs": s.FanoutRuns, "workers": s.Workers, "slots": s.Slots,
		"jobs": s.TriggerJobs, "sse-lines": s.SSELines, "logs-lines": s.LogsLines, "queued": s.Queued, "create-conns": s.CreateConns,
		"list-requests": s.ListRequests, "floor-runs": s.FloorRuns} {
		if v < 1 {
			return usageError("--%s must be at least 1, got %d", name, v)
		}
	}
	if o.dbURL == "" {
		o.dbURL = os.Getenv("STROEM__DB__URL")
	}
	if o.dbURL == "" {
		o.dbURL = benchDefaultDBURL
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

// runBench sets up the environment, runs the chosen parts and tears the
// environment down, whatever happened.
func runBench(ctx context.Context, o benchOptions, progress io.Writer) (_ *benchReport, err error) {
	rep := &benchReport{benchMeta: benchMeta{
		Version: version, Store: o.store, CPUs: runtime.NumCPU(),
		StartedAt: time.Now().UTC().Truncate(time.Second), LoadAvgStart: benchLoadAverage(),
		Workers: o.sizes.Workers, SlotsPerWorker: o.sizes.Slots,
	}}
	b := &bench{opts: o, sizes: o.sizes, progress: progress, rep: rep}
	defer func() {
		// On Ctrl-C the logs are of no interest; on a failure they are.
		if cerr := b.teardown(err != nil && ctx.Err() == nil); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	// A subprocess that dies stops the run at once, with its last log line,
	// rather than after the client's reconnect attempts give up.
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go b.watch(runCtx, cancel)
	failed := func(part string, err error) error {
		if cause := context.Cause(runCtx); ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
		return fmt.Errorf("%s: %w", part, err)
	}
	if err := b.measureFloors(runCtx); err != nil {
		return nil, failed("floor", err)
	}
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"chain", b.runChain},
		{"fanout", b.runFanout},
		{"trigger", b.runTrigger},
		{"sse", b.runSSE},
		{"scale", b.runScale},
		{"logs", b.runLogs},
	}
	for _, s := range steps {
		if !o.parts[s.name] {
			continue
		}
		if err := s.run(runCtx); err != nil {
			return nil, failed(s.name, err)
		}
	}
	if o.pprofDir != "" && len(b.profiles) > 0 {
		rep.PprofFiles = b.profiles
	}
	rep.LoadAvgEnd = benchLoadAverage()
	rep.Targets = benchTargets
	return rep, nil
}

// watch cancels the run when the server or a worker exits before the
// bench stops it.
func (b *bench) watch(ctx context.Context, cancel context.CancelCauseFunc) {
	procs := append([]*benchProc{b.server}, b.workers...)
	exited := make(chan *benchProc, len(procs))
	for _, p := range procs {
		go func() {
			select {
			case <-p.done:
				exited <- p
			case <-ctx.Done():
			}
		}()
	}
	select {
	case p := <-exited:
		cancel(fmt.Errorf("the %s process exited unexpectedly (%v): %s", p.name, p.waitErr, p.tail(1)))
	case <-ctx.Done():
	}
}

// benchLoadAverage is the 1-minute load average, or -1 where /proc has none.
func benchLoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var l float64
	if _, err := fmt.Sscan(string(b), &l); err != nil {
		return -1
	}
	return l
}

// errNoDev is returned for --store sqlite by a binary without `stroem dev`.
var errNoDev = errors.New("--store sqlite runs `stroem dev`, which this stroem binary does not have yet")
