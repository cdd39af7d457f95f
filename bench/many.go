package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// manyResult is the many part: ManyJobs one-step jobs created at once by
// CreateConns clients, all run to the end.
type manyResult struct {
	ManyJobs        int     `json:"many_jobs"`
	ManyCreateConns int     `json:"many_create_conns"`
	ManyTotalMS     float64 `json:"many_total_ms"` // the first POST → the last job ended
	ManyCreateMS    float64 `json:"many_create_ms"`
	ManyJobsPerS    float64 `json:"many_jobs_per_s"`
	ManyServerCPU   float64 `json:"many_server_cpu_ms_per_job"`
	ManyWorkersCPU  float64 `json:"many_workers_cpu_ms_per_job"`
	ManyStepProcs   float64 `json:"many_step_processes_cpu_ms_per_job"`
	ManyPostgresCPU float64 `json:"many_postgres_cpu_ms_per_job"`
	ManyOrchCPU     float64 `json:"many_orchestration_cpu_ms_per_job"`
	ManyMachineBusy float64 `json:"many_machine_cpu_busy_pct"`
}

// runMany creates ManyJobs jobs of the one-step task with CreateConns
// concurrent clients, then waits until every one has ended (counting them
// with a job list query every 100 ms, which the CPU figures include), and
// reports the jobs per second and the CPU per job.
func (b *bench) runMany(ctx context.Context) error {
	n := b.sizes.ManyJobs
	ctx, cancel := context.WithTimeoutCause(ctx, 10*time.Minute, fmt.Errorf("the %d jobs did not end within 10 minutes", n))
	defer cancel()
	since := time.Now().Add(-time.Second) // created_at is the database's clock
	cpu0 := b.cpuNow()
	t0 := time.Now()
	created, err := b.createJobs(ctx, "one", n, nil)
	if err != nil {
		return err
	}
	b.logf("many: created %d jobs in %s", n, created.Round(time.Millisecond))
	count := func(st stroem.JobStatus) (int, error) {
		p, err := b.client.JobPage(ctx, client.JobFilter{Task: "one", Status: st, Since: since, Limit: 1})
		return p.Total, err
	}
	for {
		done, failed := 0, 0
		for _, st := range []stroem.JobStatus{stroem.JobCompleted, stroem.JobFailed, stroem.JobCancelled} {
			c, err := count(st)
			if err != nil {
				return fmt.Errorf("count the jobs: %w", err)
			}
			done += c
			if st != stroem.JobCompleted {
				failed += c
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of the %d jobs did not complete", failed, n)
		}
		if done >= n {
			break
		}
		if err := benchSleep(ctx, 100*time.Millisecond); err != nil {
			return context.Cause(ctx)
		}
	}
	total := time.Since(t0)
	u := b.cpuNow().since(cpu0, n)
	r := &manyResult{
		ManyJobs: n, ManyCreateConns: b.sizes.CreateConns,
		ManyTotalMS: benchMS(total), ManyCreateMS: benchMS(created),
		ManyJobsPerS:  benchRound(float64(n) / total.Seconds()),
		ManyServerCPU: u.Server, ManyWorkersCPU: u.Workers, ManyStepProcs: u.StepProcs, ManyPostgresCPU: u.Postgres,
		ManyOrchCPU:     benchRound3(u.Server + u.Workers + u.Postgres),
		ManyMachineBusy: u.MachineBusy,
	}
	b.logf("many: %d jobs ended %s after the first POST (%.0f jobs/s)", n, total.Round(time.Millisecond), r.ManyJobsPerS)
	b.rep.manyResult = r
	return nil
}
