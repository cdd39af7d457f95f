package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// Targets of the fleet part (issue 23): what an idle fleet may cost the
// server and PostgreSQL together, and the claim latency when work arrives.
const (
	benchFleetIdleCPUPctTarget = 2
	benchFleetClaimP99MSTarget = 10
)

// fleetCapability is what the simulated workers offer and the fleet task's
// step needs: no real worker of the bench offers it (they run shell), so
// every fleet step goes to a simulated worker.
const fleetCapability = "pod"

type fleetResult struct {
	FleetWorkers int `json:"fleet_workers"`
	FleetSlots   int `json:"fleet_slots_per_worker"`
	// The idle window: every slot of every simulated worker in a long
	// poll, the workers heartbeating at the idle period the server gave
	// them (FleetHeartbeatMS; an older server's heartbeat period).
	FleetIdleMS        float64 `json:"fleet_idle_window_ms"`
	FleetIdleServerCPU float64 `json:"fleet_idle_server_cpu_pct_of_core"`
	FleetIdlePGCPU     float64 `json:"fleet_idle_postgres_cpu_pct_of_core"`
	FleetIdleCPUPct    float64 `json:"fleet_idle_cpu_pct_of_core"`
	FleetHeartbeatMS   int64   `json:"fleet_heartbeat_ms"`
	// Work arriving: FleetJobs one-step jobs created one after another; a
	// job's claim latency is its step's claim (started_at) minus the job's
	// creation (created_at), both stamped by the server.
	FleetJobs        int     `json:"fleet_jobs"`
	FleetClaimP50MS  float64 `json:"fleet_claim_latency_p50_ms"`
	FleetClaimP99MS  float64 `json:"fleet_claim_latency_p99_ms"`
	FleetClaimMaxMS  float64 `json:"fleet_claim_latency_max_ms"`
	FleetClaimErrors int64   `json:"fleet_claim_errors"`
}

// fleetWorker is one simulated worker: its own client (it carries the
// worker's credential once registered) and id.
type fleetWorker struct {
	c  *client.Client
	id string
}

// runFleet measures what an idle fleet costs: FleetWorkers simulated
// workers (in this process, so their own CPU is not counted), each with
// FleetSlots slots long-polling the server, heartbeating like a real
// worker. Then it creates FleetJobs one-step jobs that only they can run
// and measures how fast an idle slot claims each.
func (b *bench) runFleet(ctx context.Context) error {
	s := b.sizes
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	fleet := make([]*fleetWorker, 0, s.FleetWorkers)
	var hbEvery time.Duration
	for i := range s.FleetWorkers {
		c, err := client.New(b.baseURL, client.WithToken(b.token), client.WithUserAgent("stroem-bench-fleet/"+b.opts.Version))
		if err != nil {
			return err
		}
		reg, err := c.Register(ctx, stroem.WorkerRegistration{Name: fmt.Sprintf("fleet-%03d", i+1), Capabilities: []string{fleetCapability}})
		if err != nil {
			return fmt.Errorf("register simulated worker %d: %w", i+1, err)
		}
		hbEvery = idleHeartbeat(reg)
		fleet = append(fleet, &fleetWorker{c: c, id: reg.WorkerID})
	}
	if hbEvery <= 0 {
		return errors.New("the server gave the simulated workers no heartbeat period")
	}

	var (
		wg       sync.WaitGroup
		polling  atomic.Int64
		claimErr atomic.Int64
		claimed  = make(chan string, s.FleetJobs+s.FleetWorkers*s.FleetSlots)
	)
	defer wg.Wait()
	defer cancel()
	for _, w := range fleet {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Steps end as soon as they are claimed: nothing to list.
			heartbeatUntilDone(ctx, w.c, w.id, hbEvery, func(error) { claimErr.Add(1) })
		}()
		for range s.FleetSlots {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.fleetSlot(ctx, w, &polling, &claimErr, claimed)
			}()
		}
	}
	// Every slot in its poll before the window opens.
	want := int64(s.FleetWorkers * s.FleetSlots)
	for polling.Load() < want {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the polls reach the server

	r := &fleetResult{FleetWorkers: s.FleetWorkers, FleetSlots: s.FleetSlots, FleetJobs: s.FleetJobs, FleetHeartbeatMS: hbEvery.Milliseconds()}
	window := time.Duration(s.FleetIdleMS) * time.Millisecond
	c0, t0 := b.cpuNow(), time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(window):
	}
	c1, elapsed := b.cpuNow(), time.Since(t0)
	r.FleetIdleMS = benchMS(elapsed)
	if c0.ok && c1.ok {
		pct := func(d time.Duration) float64 { return benchRound3(100 * float64(d) / float64(elapsed)) }
		r.FleetIdleServerCPU, r.FleetIdlePGCPU = pct(c1.server-c0.server), pct(c1.postgres-c0.postgres)
		r.FleetIdleCPUPct = benchRound3(r.FleetIdleServerCPU + r.FleetIdlePGCPU)
	}
	b.logf("fleet: %d simulated workers × %d slots idle for %s: server %.2f %% + PostgreSQL %.2f %% of a core",
		s.FleetWorkers, s.FleetSlots, elapsed.Round(time.Millisecond), r.FleetIdleServerCPU, r.FleetIdlePGCPU)
	if err := b.profileIdle(ctx, "fleet-idle"); err != nil {
		return err
	}

	// Work arrives: one job at a time, each claimed by an idle slot.
	ids := make([]string, 0, s.FleetJobs)
	for range s.FleetJobs {
		id, err := b.client.Execute(ctx, benchWorkspace, "fleet", nil)
		if err != nil {
			return fmt.Errorf("execute fleet: %w", err)
		}
		ids = append(ids, id)
		select {
		case <-claimed:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			return fmt.Errorf("job %s: no simulated worker claimed its step within 30 s", id)
		}
	}
	var lat benchLatencies
	for _, id := range ids {
		j, err := b.waitEnded(ctx, id, 30*time.Second)
		if err != nil {
			return err
		}
		if j.Status != stroem.JobCompleted || len(j.Steps) != 1 || j.Steps[0].StartedAt == nil {
			return fmt.Errorf("job %s ended %s%s", id, j.Status, benchFailedStep(j))
		}
		lat = append(lat, max(0, j.Steps[0].StartedAt.Sub(j.CreatedAt)))
	}
	r.FleetClaimP50MS, r.FleetClaimP99MS, r.FleetClaimMaxMS = lat.p50(), lat.p99(), lat.max()
	r.FleetClaimErrors = claimErr.Load()
	b.rep.fleetResult = r
	b.logf("fleet: %d jobs, created → claimed p50 %s, p99 %s, max %s", len(lat),
		benchFmtMS(r.FleetClaimP50MS), benchFmtMS(r.FleetClaimP99MS), benchFmtMS(r.FleetClaimMaxMS))
	return nil
}

// fleetSlot is one slot of a simulated worker: long-poll, and end a
// claimed step at once (start, then complete with exit 0), like a worker
// whose step takes no time.
func (b *bench) fleetSlot(ctx context.Context, w *fleetWorker, polling, errs *atomic.Int64, claimed chan<- string) {
	first := true
	for ctx.Err() == nil {
		if first {
			polling.Add(1)
			first = false
		}
		a, err := w.c.Claim(ctx, stroem.ClaimRequest{WorkerID: w.id, Capabilities: []string{fleetCapability}, WaitMS: 25_000})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			errs.Add(1)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if a == nil {
			continue
		}
		if err := w.c.StepStart(ctx, a.JobID, a.StepName, stroem.StepStart{WorkerID: w.id, Attempt: a.Attempt}); err != nil {
			errs.Add(1)
			continue
		}
		if err := w.c.Complete(ctx, a.JobID, a.StepName, stroem.Completion{WorkerID: w.id, Attempt: a.Attempt}); err != nil {
			errs.Add(1)
			continue
		}
		select {
		case claimed <- a.JobID:
		default:
		}
	}
}

func (f *fleetResult) rows(row func(part, what, value, target string)) {
	row("fleet", fmt.Sprintf("idle: %d workers × %d slots polling, server + PG CPU", f.FleetWorkers, f.FleetSlots),
		fmt.Sprintf("%.2f %% of a core", f.FleetIdleCPUPct), benchVerdict(f.FleetIdleCPUPct, benchFleetIdleCPUPctTarget, "<", "%"))
	row("fleet", "  server / PostgreSQL", fmt.Sprintf("%.2f / %.2f %%", f.FleetIdleServerCPU, f.FleetIdlePGCPU),
		fmt.Sprintf("(idle heartbeat every %d ms, %.0f s window)", f.FleetHeartbeatMS, f.FleetIdleMS/1000))
	row("fleet", fmt.Sprintf("job created → step claimed, p99 (%d jobs)", f.FleetJobs), benchFmtMS(f.FleetClaimP99MS),
		benchVerdict(f.FleetClaimP99MS, benchFleetClaimP99MSTarget, "≤", "ms"))
	row("fleet", "  p50 / max", benchFmtMS(f.FleetClaimP50MS)+" / "+benchFmtMS(f.FleetClaimMaxMS), "")
	if f.FleetClaimErrors > 0 {
		row("fleet", "  failed worker calls", fmt.Sprint(f.FleetClaimErrors), "")
	}
}

// idleHeartbeat is how often a worker registered with reg heartbeats while
// no step runs, as a real worker does (runner.Worker): the idle period the
// server gave, else (an older server) the heartbeat period.
func idleHeartbeat(reg stroem.WorkerRegistered) time.Duration {
	return time.Duration(max(reg.IdleHeartbeatMS, reg.HeartbeatMS)) * time.Millisecond
}

// heartbeatUntilDone sends a simulated worker's empty heartbeat every
// period (sooner when an answer asks for it, as a real worker does) until
// ctx is done, telling failed ones (while ctx lasts) to failed.
func heartbeatUntilDone(ctx context.Context, c *client.Client, workerID string, every time.Duration, failed func(error)) {
	next := every
	for {
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		next = every
		resp, err := c.Heartbeat(ctx, stroem.Heartbeat{WorkerID: workerID})
		if err != nil && ctx.Err() == nil {
			failed(err)
		}
		if err == nil && resp.HeartbeatMS > 0 {
			next = min(every, time.Duration(resp.HeartbeatMS)*time.Millisecond)
		}
	}
}
