package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/sqlite"
)

const benchWorkspace = "default"

// measureFloors measures what no orchestrator can beat on this machine: a
// process spawn, and (PostgreSQL) one durable commit.
func (b *bench) measureFloors(ctx context.Context) error {
	n := b.sizes.FloorRuns
	f := &floorResult{FloorSamples: n}
	var spawn benchLatencies
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		t := time.Now()
		if err := exec.Command("/bin/sh", "-c", "true").Run(); err != nil {
			return fmt.Errorf("run /bin/sh -c true: %w", err)
		}
		spawn = append(spawn, time.Since(t))
	}
	f.SpawnP50MS = spawn.p50()

	if b.dbURL != "" {
		floor, err := postgres.MeasureCommits(ctx, b.dbURL, n)
		if err != nil {
			return fmt.Errorf("commit floor on the bench database: %s", benchOneLine(err))
		}
		f.PGSyncCommit, f.PGFsync, f.PGVersion = floor.SynchronousCommit, floor.Fsync, floor.Version
		p50 := benchLatencies(floor.Commits).p50()
		f.PGCommitP50MS = &p50
	} else {
		f.ServerProcessNote = "stroem dev (server, SQLite store and workers in one process)"
	}
	rss, _, err := benchRSS(b.server.pid())
	if err == nil {
		f.ServerRSSStartMB = benchRound(rss)
	}
	b.rep.floorResult = f
	msg := fmt.Sprintf("floor: spawn p50 %s", benchFmtMS(f.SpawnP50MS))
	if f.PGCommitP50MS != nil {
		msg += fmt.Sprintf(", PostgreSQL commit p50 %s (synchronous_commit=%s, fsync=%s)", benchFmtMS(*f.PGCommitP50MS), f.PGSyncCommit, f.PGFsync)
	}
	b.logf("%s", msg)
	return nil
}

// runJob executes task and waits for the job to end: total is the job's
// started_at → completed_at (server clock), wall is this process's time from
// just before the POST to the SSE `done` event.
func (b *bench) runJob(ctx context.Context, task string, limit time.Duration) (total, wall time.Duration, job stroem.Job, err error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t0 := time.Now()
	id, err := b.client.Execute(ctx, benchWorkspace, task, nil)
	if err != nil {
		return 0, 0, job, fmt.Errorf("execute %s: %w", task, err)
	}
	status, err := b.client.StreamLogs(ctx, id, client.StreamOptions{}, func(stroem.LogLine) error { return nil })
	wall = time.Since(t0)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, 0, job, fmt.Errorf("job %s (%s) did not end within %s", id, task, limit)
		}
		return 0, 0, job, fmt.Errorf("wait for job %s (%s): %w", id, task, err)
	}
	if job, err = b.client.Job(ctx, id); err != nil {
		return 0, 0, job, err
	}
	if status != stroem.JobCompleted || job.StartedAt == nil || job.CompletedAt == nil {
		return 0, 0, job, fmt.Errorf("job %s (%s) ended %s, want completed%s", id, task, status, benchFailedStep(job))
	}
	return job.CompletedAt.Sub(*job.StartedAt), wall, job, nil
}

// chainBreakdown splits a chain's time by its steps' timestamps (all on
// the database's clock): span = a step's claim → its completion recorded
// (answer to the claim, start ack, workspace copy, spawn, run, log flush,
// complete request); handoff = a completion recorded → the next step's
// claim (the completion's transaction and commit, promotion, Dispatcher
// wake-up, claim).
func chainBreakdown(j stroem.Job) (spans, handoffs []time.Duration) {
	var prev *stroem.Step
	for i := range j.Steps {
		s := &j.Steps[i]
		if s.StartedAt == nil || s.CompletedAt == nil {
			return nil, nil
		}
		spans = append(spans, s.CompletedAt.Sub(*s.StartedAt))
		if prev != nil {
			handoffs = append(handoffs, s.StartedAt.Sub(*prev.CompletedAt))
		}
		prev = s
	}
	return spans, handoffs
}

// benchCPU is a sample of the CPU time used so far by the bench's
// processes and by the whole machine.
type benchCPU struct {
	ok                     bool
	server, workers, steps time.Duration
	supervisors            time.Duration // part of workers: the pooled step supervisors
	postgres               time.Duration // backends of the bench database
	busy, total            uint64        // machine, in ticks
}

// cpuNow samples the CPU times; ok is false where /proc is missing.
func (b *bench) cpuNow() benchCPU {
	var c benchCPU
	var ch time.Duration
	var err error
	if c.server, ch, err = benchProcCPU(b.server.pid()); err != nil {
		return c
	}
	if len(b.workers) == 0 { // stroem dev: the steps are the server's children
		c.steps = ch
		// …and so are the pooled step supervisors.
		sOwn, sCh, err := benchChildrenCPU(b.server.pid())
		if err != nil {
			return c
		}
		c.supervisors += sOwn
		c.server += sOwn
		c.steps += sCh
	}
	for _, w := range b.workers {
		own, ch, err := benchProcCPU(w.pid())
		if err != nil {
			return c
		}
		c.workers += own
		c.steps += ch
		// The pooled step supervisors: their own CPU is the worker's
		// (orchestration), what they reaped is the steps'.
		sOwn, sCh, err := benchChildrenCPU(w.pid())
		if err != nil {
			return c
		}
		c.supervisors += sOwn
		c.workers += sOwn
		c.steps += sCh
	}
	if b.dbName != "" {
		if c.postgres, err = benchPGBackendsCPU(b.dbName); err != nil {
			return c
		}
	}
	c.busy, c.total, err = benchMachineCPU()
	c.ok = err == nil
	return c
}

// benchCPUUse is the CPU per step (ms) of each party between two samples,
// and how busy the machine was (percent of all its CPUs, other users'
// work included).
type benchCPUUse struct {
	Server, Workers, Supervisors, StepProcs, Postgres, MachineBusy float64
}

func (c benchCPU) since(c0 benchCPU, steps int) benchCPUUse {
	if !c.ok || !c0.ok || steps == 0 {
		return benchCPUUse{}
	}
	per := func(d time.Duration) float64 { return benchRound3(benchMS(d) / float64(steps)) }
	u := benchCPUUse{
		Server: per(c.server - c0.server), Workers: per(c.workers - c0.workers),
		Supervisors: per(c.supervisors - c0.supervisors),
		StepProcs:   per(c.steps - c0.steps), Postgres: per(c.postgres - c0.postgres),
	}
	if c.total > c0.total {
		u.MachineBusy = benchRound(100 * float64(c.busy-c0.busy) / float64(c.total-c0.total))
	}
	return u
}

// failedStep describes the first failed step of a job, for errors.
func benchFailedStep(j stroem.Job) string {
	for _, s := range j.Steps {
		if s.Status == stroem.StepFailed {
			return fmt.Sprintf(" (step %s: %s)", s.StepName, s.ErrorMessage)
		}
	}
	return ""
}

// benchJobLimit is how long a job of steps steps may take: 5 minutes, or
// 100 ms a step for a bigger job (a 10,000-step fan-out).
func benchJobLimit(steps int) time.Duration {
	return max(5*time.Minute, time.Duration(steps)*100*time.Millisecond)
}

// runSeries runs task runs times, one job after the other, handing each
// run's API total, wall time and job to each, and returns the CPU used per
// step (steps a run) over the series. The series follows the warm-up runs,
// which are not measured.
func (b *bench) runSeries(ctx context.Context, task string, runs, steps int, each func(i int, total, wall time.Duration, job stroem.Job)) (benchCPUUse, error) {
	for i := range b.sizes.WarmupRuns {
		total, _, _, err := b.runJob(ctx, task, benchJobLimit(steps))
		if err != nil {
			return benchCPUUse{}, err
		}
		b.logf("%s warm-up run %d/%d: %d steps in %s (API), not measured", task, i+1, b.sizes.WarmupRuns, steps, benchFmtMS(benchMS(total)))
	}
	cpu0 := b.cpuNow()
	for i := range runs {
		total, wall, job, err := b.runJob(ctx, task, benchJobLimit(steps))
		if err != nil {
			return benchCPUUse{}, err
		}
		each(i, total, wall, job)
	}
	return b.cpuNow().since(cpu0, steps*runs), nil
}

func (b *bench) runChain(ctx context.Context) error {
	n, runs := b.sizes.ChainSteps, b.sizes.ChainRuns
	var totals, walls []time.Duration
	var spans, handoffs benchLatencies
	r := &chainResult{ChainSteps: n, ChainRuns: runs}
	u, err := b.runSeries(ctx, "chain", runs, n, func(i int, total, wall time.Duration, job stroem.Job) {
		s, h := chainBreakdown(job)
		spans, handoffs = append(spans, s...), append(handoffs, h...)
		totals, walls = append(totals, total), append(walls, wall)
		r.ChainTotals = append(r.ChainTotals, benchMS(total))
		b.logf("chain run %d/%d: %d steps in %s (API), %s per hop, wall %s",
			i+1, runs, n, benchFmtMS(benchMS(total)), benchFmtMS(benchMS(total)/float64(n)), benchFmtMS(benchMS(wall)))
	})
	if err != nil {
		return err
	}
	r.ChainServerCPU, r.ChainWorkersCPU, r.ChainStepProcsCPU, r.ChainPostgresCPU, r.ChainMachineBusy =
		u.Server, u.Workers, u.StepProcs, u.Postgres, u.MachineBusy
	r.ChainSupervisorsCPU = u.Supervisors
	r.ChainOrchestrationCPU = benchRound3(u.Server + u.Workers + u.Postgres)
	r.ChainTotalMS = benchMS(benchMedian(totals))
	r.ChainWallMS = benchMS(benchMedian(walls))
	r.ChainPerHopMS = benchRound3(r.ChainTotalMS / float64(n))
	r.ChainStepSpanP50MS, r.ChainHandoffP50MS = spans.p50(), handoffs.p50()
	b.logf("chain: per hop, p50 %s from claim to completion recorded (worker side) + %s from completion recorded to the next claim (server side)",
		benchFmtMS(r.ChainStepSpanP50MS), benchFmtMS(r.ChainHandoffP50MS))
	b.rep.chainResult = r
	return b.profileCPU(ctx, "chain", func(ctx context.Context) error {
		_, _, _, err := b.runJob(ctx, "chain", benchJobLimit(n))
		return err
	})
}

func (b *bench) runFanout(ctx context.Context) error {
	n, runs := b.sizes.FanoutSteps, b.sizes.FanoutRuns
	var totals, walls []time.Duration
	r := &fanoutResult{FanoutSteps: n, FanoutRuns: runs}
	var spans benchLatencies
	var busy, elapsed time.Duration
	u, err := b.runSeries(ctx, "fanout", runs, n, func(i int, total, wall time.Duration, job stroem.Job) {
		s, _ := chainBreakdown(job)
		spans = append(spans, s...)
		for _, d := range s {
			busy += d
		}
		elapsed += total
		totals, walls = append(totals, total), append(walls, wall)
		rate := float64(n) / total.Seconds()
		r.FanoutStepsPerSes = append(r.FanoutStepsPerSes, benchRound(rate))
		b.logf("fanout run %d/%d: %d steps in %s (API): %.0f steps/s, wall %s",
			i+1, runs, n, benchFmtMS(benchMS(total)), rate, benchFmtMS(benchMS(wall)))
	})
	if err != nil {
		return err
	}
	r.FanoutServerCPU, r.FanoutWorkersCPU, r.FanoutStepProcsCPU, r.FanoutPostgresCPU, r.FanoutMachineBusy =
		u.Server, u.Workers, u.StepProcs, u.Postgres, u.MachineBusy
	r.FanoutSupervisorsCPU = u.Supervisors
	r.FanoutOrchestrationCPU = benchRound3(u.Server + u.Workers + u.Postgres)
	if elapsed > 0 {
		r.FanoutAvgConcurrency = benchRound(float64(busy) / float64(elapsed))
	}
	r.FanoutStepSpanP50MS = spans.p50()
	total := benchMedian(totals)
	r.FanoutTotalMS = benchMS(total)
	r.FanoutWallMS = benchMS(benchMedian(walls))
	r.FanoutStepsPerS = benchRound(float64(n) / total.Seconds())
	b.rep.fanoutResult = r
	return b.profileCPU(ctx, "fanout", func(ctx context.Context) error {
		_, _, _, err := b.runJob(ctx, "fanout", benchJobLimit(n))
		return err
	})
}

// runTrigger creates one-step jobs one after the other, each after the
// previous one ended, and measures from just before the POST to the step's
// started_at (its claim, on the database's clock; same host, same clock).
func (b *bench) runTrigger(ctx context.Context) error {
	n := b.sizes.TriggerJobs
	var toRunning, create benchLatencies
	for i := range n {
		t0 := time.Now()
		id, err := b.client.Execute(ctx, benchWorkspace, "one", nil)
		if err != nil {
			return fmt.Errorf("execute one: %w", err)
		}
		create = append(create, time.Since(t0))
		job, err := b.waitEnded(ctx, id, 30*time.Second)
		if err != nil {
			return err
		}
		if job.Status != stroem.JobCompleted || len(job.Steps) != 1 || job.Steps[0].StartedAt == nil {
			return fmt.Errorf("job %s ended %s, want completed with a started step%s", id, job.Status, benchFailedStep(job))
		}
		toRunning = append(toRunning, job.Steps[0].StartedAt.Sub(t0))
		if (i+1)%50 == 0 || i+1 == n {
			b.logf("trigger: %d/%d jobs, → running p50 so far %s", i+1, n, benchFmtMS(toRunning.p50()))
		}
	}
	b.rep.triggerResult = &triggerResult{
		TriggerJobs:         n,
		TriggerToRunningP50: toRunning.p50(),
		TriggerToRunningP99: toRunning.p99(),
		TriggerToRunningMax: toRunning.max(),
		CreateP50MS:         create.p50(),
		CreateP99MS:         create.p99(),
	}
	return nil
}

// waitEnded polls a job until it is terminal. The first look is 15 ms after
// the call, so polling does not compete with the claim being measured.
func (b *bench) waitEnded(ctx context.Context, id string, limit time.Duration) (stroem.Job, error) {
	deadline := time.Now().Add(limit)
	wait := 15 * time.Millisecond
	for {
		if err := benchSleep(ctx, wait); err != nil {
			return stroem.Job{}, err
		}
		job, err := b.client.Job(ctx, id)
		if err != nil {
			return job, err
		}
		if job.Status.Terminal() {
			return job, nil
		}
		if time.Now().After(deadline) {
			return job, fmt.Errorf("job %s still %s after %s", id, job.Status, limit)
		}
		wait = 10 * time.Millisecond
	}
}

// runSSE runs the step that prints `date +%s%N` lines and compares each
// line's timestamp with the time this SSE client received it.
func (b *bench) runSSE(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	id, err := b.client.Execute(ctx, benchWorkspace, "sse", nil)
	if err != nil {
		return fmt.Errorf("execute sse: %w", err)
	}
	var lat benchLatencies
	status, err := b.client.StreamLogs(ctx, id, client.StreamOptions{}, func(l stroem.LogLine) error {
		now := time.Now()
		ns, err := strconv.ParseInt(strings.TrimSpace(l.Text), 10, 64)
		if err != nil {
			return fmt.Errorf("job %s printed %q (%s), not a `date +%%s%%N` timestamp", id, l.Text, l.Stream)
		}
		lat = append(lat, now.Sub(time.Unix(0, ns)))
		return nil
	})
	wall := time.Since(t0)
	if err != nil {
		return err
	}
	if status != stroem.JobCompleted {
		job, _ := b.client.Job(ctx, id)
		return fmt.Errorf("job %s ended %s%s", id, status, benchFailedStep(job))
	}
	if len(lat) != b.sizes.SSELines {
		return fmt.Errorf("received %d of the %d lines job %s printed", len(lat), b.sizes.SSELines, id)
	}
	b.rep.sseResult = &sseResult{
		SSELines: len(lat), SSEP50MS: lat.p50(), SSEP99MS: lat.p99(), SSEMaxMS: lat.max(), SSEWallMS: benchMS(wall),
	}
	b.logf("sse: %d lines, p50 %s, p99 %s", len(lat), benchFmtMS(lat.p50()), benchFmtMS(lat.p99()))
	return nil
}

// createJobs creates n jobs of task over the API with CreateConns
// concurrent clients, stopping at the first error, and returns how long it
// took. each, when not nil, gets the latency of every creation with the
// index of the client that made it (so a client's figures need no lock).
func (b *bench) createJobs(ctx context.Context, task string, n int, each func(client int, took time.Duration)) (time.Duration, error) {
	var next atomic.Int64
	cctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	var wg sync.WaitGroup
	t0 := time.Now()
	for g := range b.sizes.CreateConns {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && cctx.Err() == nil {
				t := time.Now()
				if _, err := b.client.Execute(cctx, benchWorkspace, task, nil); err != nil {
					stop(fmt.Errorf("create a job of task %s: %w", task, err))
					return
				}
				if each != nil {
					each(g, time.Since(t))
				}
			}
		})
	}
	wg.Wait()
	return time.Since(t0), context.Cause(cctx)
}

// dockerPlaceholder registers a simulated worker offering the queued task's
// docker capability, which claims nothing and heartbeats until stop: the
// server refuses a task no registered worker can run, and fails a step no
// active worker can run once it has waited unmatched_step_timeout_secs.
// The queued jobs must stay queued while they are measured.
func (b *bench) dockerPlaceholder(ctx context.Context) (stop func(), err error) {
	c, err := client.New(b.baseURL, client.WithToken(b.token), client.WithUserAgent("stroem-bench-scale/"+b.opts.Version))
	if err != nil {
		return nil, err
	}
	reg, err := c.Register(ctx, stroem.WorkerRegistration{Name: "scale-docker", Capabilities: []string{"docker"}})
	if err != nil {
		return nil, fmt.Errorf("register the docker placeholder worker: %w", err)
	}
	every := max(idleHeartbeat(reg), 100*time.Millisecond)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		heartbeatUntilDone(ctx, c, reg.WorkerID, every, func(error) {}) // a missed beat is harmless here
	}()
	return func() { cancel(); <-done }, nil
}

// runScale creates the queued jobs over the API, measures the server's RSS,
// fills the jobs table up to TableJobs with SQL and measures the job list.
func (b *bench) runScale(ctx context.Context) error {
	r := &scaleResult{ScaleQueuedJobs: b.sizes.Queued, ScaleCreateConns: b.sizes.CreateConns,
		JobListRequests: b.sizes.ListRequests, ScaleListTaskFilter: "one"}
	pid := b.server.pid()
	if rss, _, err := benchRSS(pid); err == nil {
		r.ServerRSSBeforeMB = benchRound(rss)
	}
	stop, err := b.dockerPlaceholder(ctx)
	if err != nil {
		return err
	}
	defer stop()

	// Create the queued jobs with CreateConns concurrent clients.
	lats := make([]benchLatencies, b.sizes.CreateConns)
	elapsed, err := b.createJobs(ctx, "queued", b.sizes.Queued, func(client int, took time.Duration) {
		lats[client] = append(lats[client], took)
	})
	if err != nil {
		return err
	}
	var create benchLatencies
	for _, l := range lats {
		create = append(create, l...)
	}
	r.ScaleCreateJobsPerS = benchRound(float64(b.sizes.Queued) / elapsed.Seconds())
	r.ScaleCreateP50MS, r.ScaleCreateP99MS = create.p50(), create.p99()
	b.logf("scale: created %d queued jobs in %s (%.0f jobs/s)", b.sizes.Queued, elapsed.Round(time.Millisecond), r.ScaleCreateJobsPerS)

	// Let the server settle (job actors spawned, garbage collected), then
	// read its RSS.
	if err := benchSleep(ctx, 2*time.Second); err != nil {
		return err
	}
	rss, peak, err := benchRSS(pid)
	if err != nil {
		return fmt.Errorf("read the server's RSS: %w", err)
	}
	r.ServerRSSQueuedMB, r.ServerRSSPeakMB = benchRound(rss), benchRound(peak)
	b.logf("scale: server RSS %.1f MB with %d queued jobs (peak %.1f MB)", rss, b.sizes.Queued, peak)
	if err := b.profileHeap(ctx, "queued"); err != nil {
		return err
	}

	if err := b.fillJobs(ctx, r); err != nil {
		return err
	}

	for _, q := range []struct {
		f        client.JobFilter
		p50, p99 *float64
	}{
		{client.JobFilter{Limit: 50}, &r.JobListP50MS, &r.JobListP99MS},
		{client.JobFilter{Limit: 50, Status: stroem.JobCompleted}, &r.JobListStatusP50MS, &r.JobListStatusP99MS},
		{client.JobFilter{Limit: 50, Task: r.ScaleListTaskFilter}, &r.JobListTaskP50MS, &r.JobListTaskP99MS},
	} {
		var lat benchLatencies
		for range b.sizes.ListRequests {
			t := time.Now()
			jobs, err := b.client.Jobs(ctx, q.f)
			if err != nil {
				return fmt.Errorf("list jobs: %w", err)
			}
			lat = append(lat, time.Since(t))
			if len(jobs) == 0 {
				return fmt.Errorf("list jobs %+v: empty page", q.f)
			}
		}
		*q.p50, *q.p99 = lat.p50(), lat.p99()
		b.logf("scale: GET /api/jobs %s: p50 %s, p99 %s", benchFilterQuery(q.f), benchFmtMS(*q.p50), benchFmtMS(*q.p99))
	}
	if rss, _, err := benchRSS(pid); err == nil {
		r.ServerRSSEndMB = benchRound(rss)
	}
	b.rep.scaleResult = r
	return nil
}

func benchFilterQuery(f client.JobFilter) string {
	q := fmt.Sprintf("?limit=%d", f.Limit)
	if f.Status != "" {
		q += "&status=" + string(f.Status)
	}
	if f.Task != "" {
		q += "&task=" + f.Task
	}
	return q
}

// benchFillTasks are the task names the inserted jobs spread over: the bench
// workspace's and a few a real installation would have.
var benchFillTasks = []string{"one", "chain", "fanout", "sse", "nightly-report", "deploy", "backup", "sync-users"}

// fillJobs fills the jobs table up to TableJobs with finished jobs (see
// postgres.FillFinishedJobs and sqlite.FillFinishedJobs: 90% completed, 5%
// failed, 5% cancelled; a fifth from a cron trigger; one step each; created
// every 26 s going back from the oldest job already there, so 100,000 jobs
// ≈ 30 days).
func (b *bench) fillJobs(ctx context.Context, r *scaleResult) error {
	t0 := time.Now()
	var have, now int
	var err error
	desc := "%d jobs created over the API, %d inserted with SQL (finished, one step each, 26 s apart, then ANALYZE)"
	if b.dbURL == "" {
		// stroem dev: the dev process's SQLite file (data-dir/stroem.db).
		desc = "%d jobs created over the API, %d inserted with SQL into the SQLite file (finished, one step each, 26 s apart; no ANALYZE)"
		have, now, err = sqlite.FillFinishedJobs(ctx, filepath.Join(b.dir, "data", "stroem.db"), b.sizes.TableJobs, benchFillTasks)
	} else {
		have, now, err = postgres.FillFinishedJobs(ctx, b.dbURL, b.sizes.TableJobs, benchFillTasks)
	}
	if err != nil {
		return err
	}
	missing := b.sizes.TableJobs - have
	r.ScaleSQLInsertMS = benchMS(time.Since(t0))
	r.ScaleJobsInTable = now
	r.ScaleFillDescription = fmt.Sprintf(desc, have, max(missing, 0))
	b.logf("scale: %d jobs in the table (%d inserted with SQL in %s)", r.ScaleJobsInTable, max(missing, 0), time.Since(t0).Round(time.Millisecond))
	return nil
}

// profileCPU saves a 10 s CPU profile of the server while workload runs
// again and again (after the measured runs, so profiling does not skew
// them). The last workload run is let finish, so it cannot spill into the
// next part.
func (b *bench) profileCPU(ctx context.Context, part string, workload func(context.Context) error) error {
	if b.opts.PprofDir == "" || !b.hasPprof() {
		return nil
	}
	dst := filepath.Join(b.opts.PprofDir, "server-cpu-"+part+".pprof")
	done := make(chan error, 1)
	go func() { done <- b.fetchProfile(ctx, "/debug/pprof/profile?seconds=10", dst) }()
	runs := 0
	for {
		if err := workload(ctx); err != nil {
			return err
		}
		runs++
		select {
		case err := <-done:
			if err != nil {
				return err
			}
			b.profiles = append(b.profiles, dst)
			b.logf("%s: saved a 10 s CPU profile of the server over %d more runs to %s", part, runs, dst)
			return nil
		default:
		}
	}
}

// profileIdle saves a 10 s CPU profile of the server while nothing but
// what is already running goes on (after the measured window, so
// profiling does not skew it).
func (b *bench) profileIdle(ctx context.Context, part string) error {
	return b.saveProfile(ctx, "/debug/pprof/profile?seconds=10", "server-cpu-"+part, part+": saved a 10 s CPU profile of the server")
}

// profileHeap saves a heap profile of the server.
func (b *bench) profileHeap(ctx context.Context, what string) error {
	return b.saveProfile(ctx, "/debug/pprof/heap?gc=1", "server-heap-"+what, "saved a heap profile of the server")
}

// saveProfile fetches path from the server's /debug/pprof into
// <pprof-dir>/<name>.pprof and says so (done, then the file), when
// profiles are asked for and the server serves them.
func (b *bench) saveProfile(ctx context.Context, path, name, done string) error {
	if b.opts.PprofDir == "" || !b.hasPprof() {
		return nil
	}
	dst := filepath.Join(b.opts.PprofDir, name+".pprof")
	if err := b.fetchProfile(ctx, path, dst); err != nil {
		return err
	}
	b.profiles = append(b.profiles, dst)
	b.logf("%s to %s", done, dst)
	return nil
}

// hasPprof reports whether the server process serves /debug/pprof.
func (b *bench) hasPprof() bool {
	return b.opts.Store == "postgres" || b.devPprof
}

func (b *bench) fetchProfile(ctx context.Context, path, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.baseURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s", path, resp.Status)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("fetch %s: %w", path, err)
	}
	return f.Close()
}
