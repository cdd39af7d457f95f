// Package bench is the harness of `stroem bench`: a self-contained
// benchmark of the real deployment. It writes its own workspace into a temp
// dir, creates a fresh database, starts `stroem server` and `stroem worker`s
// as subprocesses of a stroem binary (or `stroem dev` for the SQLite store),
// drives them through the public API like a user would, and reports each
// figure next to the machine's floors (a `sh -c true` spawn, a PostgreSQL
// commit) measured in the same run and next to the targets. It cleans up —
// subprocesses killed, database dropped — on success, failure and
// cancellation. The command (cmd/stroem) only wires its flags to Options.
//
// The harness runs no SQL of its own: creating and dropping the database,
// the commit floor and the bulk rows of the scale part go through the
// stores' packages (persistence/postgres, persistence/sqlite).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

// Parts of the bench, in the order they run. scale runs last: it leaves
// 10,000 queued jobs and 100,000 rows behind, which would skew the others.
var Parts = []string{"chain", "fanout", "trigger", "many", "sse", "fleet", "scale", "logs"}

// DefaultDBURL is the PostgreSQL server used when neither --db-url nor
// STROEM__DB__URL says otherwise.
const DefaultDBURL = "postgres://postgres@127.0.0.1:5432/postgres"

// Sizes are the workload's sizes. The defaults are the issue's; the
// hidden flags shrink them for tests.
type Sizes struct {
	ChainSteps int
	ChainRuns  int
	// WarmupRuns are unmeasured runs of the chain and of the fan-out
	// before their measured ones: a running system's costs per step, not
	// its processes' first ones (their heaps' first pages, say).
	WarmupRuns   int
	FanoutSteps  int
	FanoutRuns   int
	Workers      int
	Slots        int
	TriggerJobs  int
	ManyJobs     int // the many part's jobs, created at once
	SSELines     int
	LogsLines    int
	Queued       int
	CreateConns  int
	TableJobs    int
	ListRequests int
	FloorRuns    int
	// The fleet part: simulated workers, slots each, the idle window (ms)
	// and the jobs created once it closes.
	FleetWorkers int
	FleetSlots   int
	FleetIdleMS  int
	FleetJobs    int
}

func DefaultSizes() Sizes {
	return Sizes{
		ChainSteps: 100, ChainRuns: 3, WarmupRuns: 1,
		FanoutSteps: 400, FanoutRuns: 3,
		Workers: 2, Slots: 8,
		TriggerJobs: 200,
		ManyJobs:    1000,
		SSELines:    200,
		LogsLines:   200_000,
		Queued:      10_000, CreateConns: 16,
		TableJobs: 100_000, ListRequests: 200,
		FloorRuns: 200,
		// The idle window spans one whole long-poll cycle (a worker's poll
		// waits runner.DefaultClaimWait, 25 s): every poll is renewed in it.
		FleetWorkers: 100, FleetSlots: 4, FleetIdleMS: 30_000, FleetJobs: 200,
	}
}

// Options say what to run and where.
type Options struct {
	// DBURL is the PostgreSQL server the bench database is created on.
	DBURL string
	// Store is postgres (server + workers) or sqlite (stroem dev).
	Store string
	// Parts are the parts to run (see Parts).
	Parts map[string]bool
	// Keep keeps the database and the temp dir.
	Keep bool
	// PprofDir, when set, receives CPU and heap profiles of the server.
	PprofDir string
	// Exe is the stroem binary the subprocesses run.
	Exe string
	// Version is the stroem version, for the report and the user agent.
	Version string
	Sizes   Sizes
}

// UsageError is a problem with the options (a bad --db-url): the command
// exits with the usage code.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageError(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// Run sets up the environment, runs the chosen parts and tears the
// environment down, whatever happened.
func Run(ctx context.Context, o Options, progress io.Writer) (_ *Report, err error) {
	rep := &Report{benchMeta: benchMeta{
		Version: o.Version, Store: o.Store, CPUs: runtime.NumCPU(),
		StartedAt: time.Now().UTC().Truncate(time.Second), LoadAvgStart: benchLoadAverage(),
		Workers: o.Sizes.Workers, SlotsPerWorker: o.Sizes.Slots, WarmupRuns: o.Sizes.WarmupRuns,
	}}
	b := &bench{opts: o, sizes: o.Sizes, progress: progress, rep: rep}
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
		{"many", b.runMany},
		{"sse", b.runSSE},
		{"fleet", b.runFleet},
		{"scale", b.runScale},
		{"logs", b.runLogs},
	}
	for _, s := range steps {
		if !o.Parts[s.name] {
			continue
		}
		if err := s.run(runCtx); err != nil {
			return nil, failed(s.name, err)
		}
	}
	if o.PprofDir != "" && len(b.profiles) > 0 {
		rep.PprofFiles = b.profiles
	}
	rep.LoadAvgEnd = benchLoadAverage()
	rep.Targets = benchTargets
	rep.derive()
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

// ErrNoDev is returned for --store sqlite by a binary without `stroem dev`.
var ErrNoDev = errors.New("--store sqlite runs `stroem dev`, which this stroem binary does not have yet")
