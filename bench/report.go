package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is every figure of one run. It marshals to one flat JSON
// object whose field names carry their units; the parts not run are left
// out (nil embedded pointers).
type Report struct {
	benchMeta
	*floorResult
	*chainResult
	*fanoutResult
	*triggerResult
	*manyResult
	*sseResult
	*fleetResult
	*scaleResult
	*logsResult
	PprofFiles []string           `json:"pprof_files,omitempty"`
	Targets    map[string]float64 `json:"targets"`
}

type benchMeta struct {
	Version        string    `json:"version"`
	Store          string    `json:"store"`
	StartedAt      time.Time `json:"started_at"`
	CPUs           int       `json:"cpus"`
	LoadAvgStart   float64   `json:"load_avg_1m_start"`
	LoadAvgEnd     float64   `json:"load_avg_1m_end"`
	Workers        int       `json:"workers"`
	SlotsPerWorker int       `json:"slots_per_worker"`
	// Unmeasured runs before the chain's and the fan-out's measured ones.
	WarmupRuns int `json:"warmup_runs"`
}

type floorResult struct {
	SpawnP50MS float64 `json:"spawn_floor_p50_ms"`
	// PostgreSQL only: one small INSERT committed (autocommit) into a
	// regular table — a temp table is not WAL-logged, so its commit skips the
	// WAL flush and would understate the floor.
	PGCommitP50MS     *float64 `json:"pg_commit_p50_ms,omitempty"`
	PGSyncCommit      string   `json:"pg_synchronous_commit,omitempty"`
	PGFsync           string   `json:"pg_fsync,omitempty"`
	PGVersion         string   `json:"pg_version,omitempty"`
	ServerRSSStartMB  float64  `json:"server_rss_start_mb"`
	FloorSamples      int      `json:"floor_samples"`
	ServerProcessNote string   `json:"server_process,omitempty"`
}

type chainResult struct {
	ChainSteps    int       `json:"chain_steps"`
	ChainRuns     int       `json:"chain_runs"`
	ChainTotalMS  float64   `json:"chain_total_ms"`
	ChainWallMS   float64   `json:"chain_wall_ms"`
	ChainPerHopMS float64   `json:"chain_per_hop_ms"`
	ChainTotals   []float64 `json:"chain_totals_ms"`
	// Where a hop's time goes (p50 over every hop of every run).
	ChainStepSpanP50MS float64 `json:"chain_step_span_p50_ms"`
	ChainHandoffP50MS  float64 `json:"chain_handoff_p50_ms"`
	// CPU used per step over the measured runs (zero where /proc is
	// missing).
	ChainServerCPU    float64 `json:"chain_server_cpu_ms_per_step"`
	ChainWorkersCPU   float64 `json:"chain_workers_cpu_ms_per_step"`
	ChainStepProcsCPU float64 `json:"chain_step_processes_cpu_ms_per_step"`
	ChainPostgresCPU  float64 `json:"chain_postgres_cpu_ms_per_step"`
	ChainMachineBusy  float64 `json:"chain_machine_cpu_busy_pct"`
	// Of the workers' CPU, the pooled step supervisors' own share.
	ChainSupervisorsCPU float64 `json:"chain_supervisors_cpu_ms_per_step"`
	// Orchestration: server + workers (supervisors included) + PostgreSQL
	// backends, the step's own processes excluded.
	ChainOrchestrationCPU float64 `json:"chain_orchestration_cpu_ms_per_step"`
	// Per hop minus the spawn floor measured in the same run.
	ChainHopOverFloorMS float64 `json:"chain_hop_over_spawn_floor_ms,omitempty"`
}

type fanoutResult struct {
	FanoutSteps       int       `json:"fanout_steps"`
	FanoutRuns        int       `json:"fanout_runs"`
	FanoutTotalMS     float64   `json:"fanout_total_ms"`
	FanoutWallMS      float64   `json:"fanout_wall_ms"`
	FanoutStepsPerS   float64   `json:"fanout_steps_per_s"`
	FanoutStepsPerSes []float64 `json:"fanout_runs_steps_per_s"`
	// How busy the slots were: the sum of the steps' claim → completion
	// spans over the job's duration (at most workers × slots).
	FanoutAvgConcurrency float64 `json:"fanout_avg_concurrency"`
	FanoutStepSpanP50MS  float64 `json:"fanout_step_span_p50_ms"`
	FanoutServerCPU      float64 `json:"fanout_server_cpu_ms_per_step"`
	FanoutWorkersCPU     float64 `json:"fanout_workers_cpu_ms_per_step"`
	FanoutStepProcsCPU   float64 `json:"fanout_step_processes_cpu_ms_per_step"`
	FanoutPostgresCPU    float64 `json:"fanout_postgres_cpu_ms_per_step"`
	FanoutMachineBusy    float64 `json:"fanout_machine_cpu_busy_pct"`
	FanoutSupervisorsCPU float64 `json:"fanout_supervisors_cpu_ms_per_step"`
	// Orchestration: server + workers (supervisors included) + PostgreSQL
	// backends, the step's own processes excluded.
	FanoutOrchestrationCPU float64 `json:"fanout_orchestration_cpu_ms_per_step"`
	// The spawn-bound ceiling: CPUs ÷ the step processes' CPU per step, in
	// steps/s (what the machine could do if orchestration cost nothing),
	// and the fan-out's throughput as a share of it.
	FanoutSpawnCeilingPerS float64 `json:"fanout_spawn_ceiling_steps_per_s,omitempty"`
	FanoutCeilingPct       float64 `json:"fanout_pct_of_spawn_ceiling,omitempty"`
}

type triggerResult struct {
	TriggerJobs         int     `json:"trigger_jobs"`
	TriggerToRunningP50 float64 `json:"trigger_to_running_p50_ms"`
	TriggerToRunningP99 float64 `json:"trigger_to_running_p99_ms"`
	TriggerToRunningMax float64 `json:"trigger_to_running_max_ms"`
	CreateP50MS         float64 `json:"create_p50_ms"`
	CreateP99MS         float64 `json:"create_p99_ms"`
}

type sseResult struct {
	SSELines  int     `json:"sse_lines"`
	SSEP50MS  float64 `json:"sse_latency_p50_ms"`
	SSEP99MS  float64 `json:"sse_latency_p99_ms"`
	SSEMaxMS  float64 `json:"sse_latency_max_ms"`
	SSEWallMS float64 `json:"sse_job_wall_ms"`
}

type scaleResult struct {
	ScaleQueuedJobs      int     `json:"scale_queued_jobs"`
	ScaleCreateConns     int     `json:"scale_create_conns"`
	ScaleCreateJobsPerS  float64 `json:"scale_create_jobs_per_s"`
	ScaleCreateP50MS     float64 `json:"scale_create_p50_ms"`
	ScaleCreateP99MS     float64 `json:"scale_create_p99_ms"`
	ServerRSSBeforeMB    float64 `json:"server_rss_before_queued_mb"`
	ServerRSSQueuedMB    float64 `json:"server_rss_queued_mb"`
	ServerRSSPeakMB      float64 `json:"server_rss_peak_mb"`
	ScaleJobsInTable     int     `json:"scale_jobs_in_table"`
	ScaleSQLInsertMS     float64 `json:"scale_sql_insert_ms"`
	JobListP50MS         float64 `json:"job_list_p50_ms"`
	JobListP99MS         float64 `json:"job_list_p99_ms"`
	JobListStatusP50MS   float64 `json:"job_list_status_completed_p50_ms"`
	JobListStatusP99MS   float64 `json:"job_list_status_completed_p99_ms"`
	JobListTaskP50MS     float64 `json:"job_list_task_p50_ms"`
	JobListTaskP99MS     float64 `json:"job_list_task_p99_ms"`
	JobListRequests      int     `json:"job_list_requests"`
	ServerRSSEndMB       float64 `json:"server_rss_end_mb"`
	ScaleListTaskFilter  string  `json:"job_list_task_filter"`
	ScaleFillDescription string  `json:"scale_fill,omitempty"`
}

// benchTargets are the targets for this kind of machine (2 cores,
// PostgreSQL with fsync on).
var benchTargets = map[string]float64{
	"chain_per_hop_ms":          5,
	"chain_total_ms":            500,
	"fanout_steps_per_s":        1000,
	"trigger_to_running_p50_ms": 10,
	"sse_latency_p50_ms":        50,
	"server_rss_queued_mb":      150,
	"job_list_p99_ms":           50,
	"logs_stored_lines_per_s":   benchLogsLinesPerSTarget,
	"logs_sse_latency_p50_ms":   benchLogsP50MSTarget,
	// Issue 23: CPU budgets and ratios, which hold on a loaded machine.
	"chain_orchestration_cpu_ms_per_step":  benchChainOrchCPUTarget,
	"fanout_orchestration_cpu_ms_per_step": benchFanoutOrchCPUTarget,
	"fanout_pct_of_spawn_ceiling":          benchCeilingPctTarget,
	"chain_hop_over_spawn_floor_ms":        benchHopOverFloorTarget,
	"fleet_idle_cpu_pct_of_core":           benchFleetIdleCPUPctTarget,
	"fleet_claim_latency_p99_ms":           benchFleetClaimP99MSTarget,
}

const (
	benchChainOrchCPUTarget  = 1.5
	benchFanoutOrchCPUTarget = 1.0
	benchCeilingPctTarget    = 70
	benchHopOverFloorTarget  = 2
)

// derive computes the figures that combine parts (the ratios to the
// floors measured in the same run).
func (r *Report) derive() {
	if c, f := r.chainResult, r.floorResult; c != nil && f != nil {
		c.ChainHopOverFloorMS = benchRound3(c.ChainPerHopMS - f.SpawnP50MS)
	}
	if f := r.fanoutResult; f != nil && f.FanoutStepProcsCPU > 0 && r.CPUs > 0 {
		f.FanoutSpawnCeilingPerS = benchRound(float64(r.CPUs) * 1000 / f.FanoutStepProcsCPU)
		f.FanoutCeilingPct = benchRound(100 * f.FanoutStepsPerS / f.FanoutSpawnCeilingPerS)
	}
}

// WriteText prints the report as a table: figure, value, target, verdict.
func (r *Report) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Strøm bench %s — store %s, %d CPUs, load average %.2f at start, %.2f at end\n\n",
		r.Version, r.Store, r.CPUs, r.LoadAvgStart, r.LoadAvgEnd)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(part, what, value, target string) { fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", part, what, value, target) }
	// cpuRows are a part's CPU figures per step.
	cpuRows := func(part string, u benchCPUUse, orchestration, orchestrationTarget float64) {
		row(part, "CPU per step: server / workers / sh / PG", benchFmtCPU(u.Server, u.Workers, u.StepProcs, u.Postgres),
			fmt.Sprintf("(machine %.0f%% busy)", u.MachineBusy))
		row(part, "  of the workers': step supervisors", benchFmtMS(u.Supervisors), "")
		row(part, "orchestration CPU per step (server+workers+PG)", benchFmtMS(orchestration),
			benchVerdict(orchestration, orchestrationTarget, "≤", "ms"))
	}
	fmt.Fprintln(tw, "PART\tFIGURE\tVALUE\tTARGET")
	if f := r.floorResult; f != nil {
		row("floor", "sh -c true spawn, p50", benchFmtMS(f.SpawnP50MS), "")
		if f.PGCommitP50MS != nil {
			row("floor", "PostgreSQL small commit, p50", benchFmtMS(*f.PGCommitP50MS),
				fmt.Sprintf("(synchronous_commit=%s, fsync=%s)", f.PGSyncCommit, f.PGFsync))
		}
		row("floor", "server RSS after start", benchFmtMB(f.ServerRSSStartMB), "")
	}
	if c := r.chainResult; c != nil {
		row("chain", fmt.Sprintf("%d-step chain, total (API, median of %d%s)", c.ChainSteps, c.ChainRuns, r.warmup()),
			benchFmtMS(c.ChainTotalMS), benchVerdict(c.ChainTotalMS, float64(c.ChainSteps)*5, "≤", "ms"))
		row("chain", "per hop", benchFmtMS(c.ChainPerHopMS), benchVerdict(c.ChainPerHopMS, 5, "≤", "ms"))
		row("chain", "  claim → completion recorded, p50", benchFmtMS(c.ChainStepSpanP50MS), "(worker side of a hop)")
		row("chain", "  completion recorded → next claim, p50", benchFmtMS(c.ChainHandoffP50MS), "(server side; 0 = handed off in the completing transaction)")
		row("chain", "wall, execute → done event", benchFmtMS(c.ChainWallMS), "")
		cpuRows("chain", benchCPUUse{Server: c.ChainServerCPU, Workers: c.ChainWorkersCPU, StepProcs: c.ChainStepProcsCPU,
			Postgres: c.ChainPostgresCPU, MachineBusy: c.ChainMachineBusy, Supervisors: c.ChainSupervisorsCPU},
			c.ChainOrchestrationCPU, benchChainOrchCPUTarget)
		if r.floorResult != nil {
			row("chain", "per hop − spawn floor", benchFmtMS(c.ChainHopOverFloorMS),
				benchVerdict(c.ChainHopOverFloorMS, benchHopOverFloorTarget, "≤", "ms"))
		}
	}
	if f := r.fanoutResult; f != nil {
		row("fanout", fmt.Sprintf("%d steps, %d×%d slots (median of %d%s)", f.FanoutSteps, r.Workers, r.SlotsPerWorker, f.FanoutRuns, r.warmup()),
			fmt.Sprintf("%.0f steps/s", f.FanoutStepsPerS), benchVerdict(f.FanoutStepsPerS, 1000, "≥", "steps/s"))
		row("fanout", "total (API)", benchFmtMS(f.FanoutTotalMS), "")
		row("fanout", "busy slots on average", fmt.Sprintf("%.1f of %d", f.FanoutAvgConcurrency, r.Workers*r.SlotsPerWorker), "")
		row("fanout", "claim → completion recorded, p50", benchFmtMS(f.FanoutStepSpanP50MS), "")
		cpuRows("fanout", benchCPUUse{Server: f.FanoutServerCPU, Workers: f.FanoutWorkersCPU, StepProcs: f.FanoutStepProcsCPU,
			Postgres: f.FanoutPostgresCPU, MachineBusy: f.FanoutMachineBusy, Supervisors: f.FanoutSupervisorsCPU},
			f.FanoutOrchestrationCPU, benchFanoutOrchCPUTarget)
		if f.FanoutSpawnCeilingPerS > 0 {
			row("fanout", "spawn ceiling (CPUs ÷ step processes' CPU per step)", fmt.Sprintf("%.0f steps/s", f.FanoutSpawnCeilingPerS), "")
			row("fanout", "throughput ÷ spawn ceiling", fmt.Sprintf("%.1f %%", f.FanoutCeilingPct),
				benchVerdict(f.FanoutCeilingPct, benchCeilingPctTarget, "≥", "%"))
		}
	}
	if t := r.triggerResult; t != nil {
		row("trigger", fmt.Sprintf("→ step running, p50 (%d jobs)", t.TriggerJobs), benchFmtMS(t.TriggerToRunningP50), benchVerdict(t.TriggerToRunningP50, 10, "≤", "ms"))
		row("trigger", "→ step running, p99 / max", benchFmtMS(t.TriggerToRunningP99)+" / "+benchFmtMS(t.TriggerToRunningMax), "")
		row("trigger", "POST execute, p50 / p99", benchFmtMS(t.CreateP50MS)+" / "+benchFmtMS(t.CreateP99MS), "")
	}
	if m := r.manyResult; m != nil {
		row("many", fmt.Sprintf("%d one-step jobs at once (%d clients), all ended", m.ManyJobs, m.ManyCreateConns),
			fmt.Sprintf("%.0f jobs/s", m.ManyJobsPerS), "")
		row("many", "first POST → last job ended / creating them", benchFmtMS(m.ManyTotalMS)+" / "+benchFmtMS(m.ManyCreateMS), "")
		row("many", "CPU per job: server / workers / sh / PG", benchFmtCPU(m.ManyServerCPU, m.ManyWorkersCPU, m.ManyStepProcs, m.ManyPostgresCPU),
			fmt.Sprintf("(machine %.0f%% busy)", m.ManyMachineBusy))
		row("many", "orchestration CPU per job (server+workers+PG)", benchFmtMS(m.ManyOrchCPU), "")
	}
	if s := r.sseResult; s != nil {
		row("sse", fmt.Sprintf("line → SSE client, p50 (%d lines)", s.SSELines), benchFmtMS(s.SSEP50MS), benchVerdict(s.SSEP50MS, 50, "≤", "ms"))
		row("sse", "line → SSE client, p99 / max", benchFmtMS(s.SSEP99MS)+" / "+benchFmtMS(s.SSEMaxMS), "")
	}
	if f := r.fleetResult; f != nil {
		f.rows(row)
	}
	if s := r.scaleResult; s != nil {
		row("scale", fmt.Sprintf("create %d jobs, %d clients", s.ScaleQueuedJobs, s.ScaleCreateConns),
			fmt.Sprintf("%.0f jobs/s", s.ScaleCreateJobsPerS), "")
		row("scale", "POST execute under load, p50 / p99", benchFmtMS(s.ScaleCreateP50MS)+" / "+benchFmtMS(s.ScaleCreateP99MS), "")
		row("scale", "server RSS before → with queued jobs", benchFmtMB(s.ServerRSSBeforeMB)+" → "+benchFmtMB(s.ServerRSSQueuedMB),
			benchVerdict(s.ServerRSSQueuedMB, 150, "≤", "MB"))
		row("scale", "server RSS peak (VmHWM) / at end", benchFmtMB(s.ServerRSSPeakMB)+" / "+benchFmtMB(s.ServerRSSEndMB), "")
		row("scale", fmt.Sprintf("GET /api/jobs p50 / p99 (%d jobs)", s.ScaleJobsInTable),
			benchFmtMS(s.JobListP50MS)+" / "+benchFmtMS(s.JobListP99MS), benchVerdict(s.JobListP99MS, 50, "≤", "ms"))
		row("scale", "  ?status=completed", benchFmtMS(s.JobListStatusP50MS)+" / "+benchFmtMS(s.JobListStatusP99MS), benchVerdict(s.JobListStatusP99MS, 50, "≤", "ms"))
		row("scale", "  ?task="+s.ScaleListTaskFilter, benchFmtMS(s.JobListTaskP50MS)+" / "+benchFmtMS(s.JobListTaskP99MS), benchVerdict(s.JobListTaskP99MS, 50, "≤", "ms"))
	}
	if l := r.logsResult; l != nil {
		l.rows(row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if f := r.floorResult; f != nil && f.ServerProcessNote != "" {
		fmt.Fprintf(w, "\nserver = %s: its figures include the workers'.\n", f.ServerProcessNote)
	}
	if s := r.scaleResult; s != nil && s.ScaleFillDescription != "" {
		fmt.Fprintf(w, "\nscale: %s\n", s.ScaleFillDescription)
	}
	if len(r.PprofFiles) > 0 {
		fmt.Fprintf(w, "\nprofiles: %s\n", strings.Join(r.PprofFiles, ", "))
	}
	return nil
}

// verdict prints "target ≤ 5 ms  ok" or "… MISS".
func benchVerdict(v, target float64, op, unit string) string {
	ok := v <= target
	switch op {
	case "≥":
		ok = v >= target
	case "<":
		ok = v < target
	}
	mark := "ok"
	if !ok {
		mark = "MISS"
	}
	return fmt.Sprintf("%s %s %s  %s", op, benchTrimFloat(target), unit, mark)
}

func benchFmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func benchFmtCPU(server, workers, steps, postgres float64) string {
	return fmt.Sprintf("%.2f / %.2f / %.2f / %.2f ms", server, workers, steps, postgres)
}

func benchFmtMB(v float64) string { return fmt.Sprintf("%.1f MB", v) }

func benchTrimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

// ms is d in milliseconds, rounded to the microsecond.
func benchMS(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// benchLatencies collects samples and answers nearest-rank percentiles.
type benchLatencies []time.Duration

func (l benchLatencies) percentile(p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	s := slices.Clone(l)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (l benchLatencies) p50() float64 { return benchMS(l.percentile(50)) }
func (l benchLatencies) p99() float64 { return benchMS(l.percentile(99)) }
func (l benchLatencies) max() float64 { return benchMS(l.percentile(100)) }

// median of durations.
func benchMedian(d []time.Duration) time.Duration { return benchLatencies(d).percentile(50) }

// benchRound rounds to one decimal, for rates and sizes.
func benchRound(v float64) float64 { return math.Round(v*10) / 10 }

// benchRound3 rounds to three decimals (microseconds, for figures in ms).
func benchRound3(v float64) float64 { return math.Round(v*1000) / 1000 }

// warmup says, in a figure's label, that the runs followed warm-up runs.
func (r *Report) warmup() string {
	if r.WarmupRuns == 0 {
		return ""
	}
	return fmt.Sprintf(", after %d warm-up", r.WarmupRuns)
}
