package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// BenchClaimComplete measures claim+complete pairs on s: each of N claimers
// (own goroutine) claims one step at a time and completes it with a
// JobUpdate, until b.N steps are done. seed must insert n ready shell steps
// (the store's fastest way: it is not measured).
func BenchClaimComplete(b *testing.B, s persistence.Store, seed func(b *testing.B, n int)) {
	ctx := context.Background()
	for _, claimers := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("claimers=%d", claimers), func(b *testing.B) {
			seed(b, b.N)
			b.ResetTimer()
			var (
				wg   sync.WaitGroup
				errs = make(chan error, claimers)
			)
			for w := range claimers {
				wg.Go(func() {
					p := persistence.ClaimParams{WorkerID: fmt.Sprintf("w%d", w), Capabilities: []string{"shell"}, Limit: 1, Lease: time.Minute}
					for {
						got, err := s.StepsClaim(ctx, p)
						if err != nil {
							errs <- err
							return
						}
						if len(got) == 0 {
							return
						}
						if _, err := s.JobUpdate(ctx, got[0].JobID, completeClaimed(got[0])); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
		})
	}
}

// completeClaimed is the benchmark's "complete": the step completes, and
// the job with it once every step is terminal.
func completeClaimed(c persistence.ClaimedStep) func(*persistence.JobState) error {
	return func(st *persistence.JobState) error {
		s := st.Mut(c.StepName)
		if s.Attempt != c.Attempt || s.AttemptStatus != stroem.AttemptRunning {
			return stroem.Errorf(stroem.CodeConflict, "stale")
		}
		code := 0
		s.Status, s.AttemptStatus, s.ExitCode, s.Output = stroem.StepCompleted, stroem.AttemptCompleted, &code, map[string]any{"ok": true}
		for _, o := range st.All() {
			if !o.Status.Terminal() {
				return nil
			}
		}
		st.Job.Status = stroem.JobCompleted
		return nil
	}
}
