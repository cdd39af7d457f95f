package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

func pushLines(texts ...string) []stroem.PushLine {
	out := make([]stroem.PushLine, len(texts))
	for i, t := range texts {
		out[i] = stroem.PushLine{TS: time.Unix(1700000000, int64(i)*1000).UTC(), Stream: stroem.Stdout, Text: t}
	}
	return out
}

func scanAll(t testing.TB, s persistence.Store, jobID string, after int64, step string) []stroem.LogLine {
	t.Helper()
	var out []stroem.LogLine
	require.NoError(t, s.LogScan(context.Background(), jobID, after, step, func(l stroem.LogLine) error {
		out = append(out, l)
		return nil
	}))
	return out
}

func texts(lines []stroem.LogLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func testLogs(t *testing.T, open func(t *testing.T) persistence.Store) {
	type testBundle struct {
		store persistence.Store
		job   persistence.NewJob
		claim persistence.ClaimedStep
	}
	setup := func(t *testing.T, steps ...Step) *testBundle {
		t.Helper()
		s := open(t)
		if len(steps) == 0 {
			steps = []Step{{Name: "a"}}
		}
		nj := InsertJob(t, s, steps...)
		return &testBundle{store: s, job: nj, claim: ClaimStarted(t, s, "w1")}
	}
	push := func(b *testBundle, offset int64, lines ...string) (persistence.LogAppended, error) {
		return b.store.LogAppend(context.Background(), persistence.LogAppend{
			JobID: b.job.Job.ID, Step: b.claim.StepName, Attempt: b.claim.Attempt, WorkerID: "w1",
			Offset: offset, Lines: pushLines(lines...),
		})
	}

	t.Run("AppendAssignsSeqsAndScanReadsThemInOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		got, err := push(b, 0, "one", "two\x00", "three\xff")
		require.NoError(t, err)
		require.False(t, got.Cancel)
		require.Len(t, got.Lines, 3)
		for i, l := range got.Lines {
			require.Equal(t, int64(i+1), l.Seq)
			require.Equal(t, "a", l.Step)
			require.Equal(t, 1, l.Attempt)
			require.Equal(t, stroem.Stdout, l.Stream)
		}
		stored := scanAll(t, b.store, b.job.Job.ID, 0, "")
		require.Equal(t, []string{"one", `two\0`, "three\uFFFD"}, texts(stored), "sanitized before storing")
		require.Equal(t, got.Lines, stored, "what Append returns is what is stored")
		require.Equal(t, time.Unix(1700000000, 1000).UTC(), stored[1].TS)
		require.Equal(t, []string{`two\0`, "three\uFFFD"}, texts(scanAll(t, b.store, b.job.Job.ID, 1, "")), "after a seq")
		require.Empty(t, scanAll(t, b.store, b.job.Job.ID, 3, ""))
		require.Empty(t, scanAll(t, b.store, b.job.Job.ID, 0, "other"))
		require.Empty(t, scanAll(t, b.store, "not-a-uuid", 0, ""))
	})

	t.Run("RetriedPushStoresNothingTwice", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := push(b, 0, "a", "b")
		require.NoError(t, err)
		again, err := push(b, 0, "a", "b")
		require.NoError(t, err)
		require.Empty(t, again.Lines)
		more, err := push(b, 1, "b", "c", "d") // overlaps by one
		require.NoError(t, err)
		require.Equal(t, []string{"c", "d"}, texts(more.Lines))
		require.Equal(t, []int64{3, 4}, []int64{more.Lines[0].Seq, more.Lines[1].Seq})
		require.Equal(t, []string{"a", "b", "c", "d"}, texts(scanAll(t, b.store, b.job.Job.ID, 0, "")))
	})

	t.Run("OrderedPushAheadOfTheStoredLinesWaitsForThem", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ordered := func(offset int64, lines ...string) persistence.LogAppended {
			t.Helper()
			got, err := b.store.LogAppend(context.Background(), persistence.LogAppend{
				JobID: b.job.Job.ID, Step: b.claim.StepName, Attempt: b.claim.Attempt, WorkerID: "w1",
				Offset: offset, Lines: pushLines(lines...), Ordered: true,
			})
			require.NoError(t, err)
			return got
		}
		// The second push of a worker arrives first: nothing is stored.
		early := ordered(2, "c", "d")
		require.True(t, early.Ahead)
		require.Empty(t, early.Lines)
		require.Empty(t, scanAll(t, b.store, b.job.Job.ID, 0, ""))
		first := ordered(0, "a", "b")
		require.False(t, first.Ahead)
		require.Len(t, first.Lines, 2)
		require.True(t, ordered(5, "f").Ahead, "still a hole at offset 4")
		again := ordered(2, "c", "d")
		require.False(t, again.Ahead)
		require.Equal(t, []int64{3, 4}, []int64{again.Lines[0].Seq, again.Lines[1].Seq})
		require.Empty(t, ordered(0, "a", "b").Lines, "a retried ordered push stores nothing twice")
		// Without Ordered a push past the stored lines is stored at once
		// (the worker skipped a batch the server refused).
		skipped, err := push(b, 5, "f")
		require.NoError(t, err)
		require.Len(t, skipped.Lines, 1)
		require.Equal(t, []string{"a", "b", "c", "d", "f"}, texts(scanAll(t, b.store, b.job.Job.ID, 0, "")))
	})

	// An attempt handed over but not acknowledged is given back with its
	// number unused, and the next worker runs the step under the same
	// number: a push made for it before the give-back would take the
	// offsets of the next run's lines (which would then be dropped as
	// retries). Nothing is stored before the start.
	t.Run("PushBeforeTheStartIsRefused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ctx := context.Background()
		nj := InsertJob(t, s, Step{Name: "a"})
		c := ClaimOne(t, s, "w1")
		_, err := s.LogAppend(ctx, persistence.LogAppend{JobID: nj.Job.ID, Step: "a", Attempt: c.Attempt, WorkerID: "w1", Lines: pushLines("early")})
		require.ErrorIs(t, err, stroem.ErrConflict)
		require.ErrorContains(t, err, "not acknowledged")
		require.Len(t, giveBack(t, s), 1)

		c2 := ClaimStarted(t, s, "w2")
		require.Equal(t, c.Attempt, c2.Attempt, "the attempt number was not used")
		_, err = s.LogAppend(ctx, persistence.LogAppend{JobID: nj.Job.ID, Step: "a", Attempt: c2.Attempt, WorkerID: "w2", Lines: pushLines("mine")})
		require.NoError(t, err)
		require.Equal(t, []string{"mine"}, texts(scanAll(t, s, nj.Job.ID, 0, "")))
	})

	t.Run("PushOfAnAttemptNotRunningIsRefusedAndStoresNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		for _, a := range []persistence.LogAppend{
			{Step: "a", Attempt: 2, WorkerID: "w1"},
			{Step: "a", Attempt: 1, WorkerID: "w2"},
		} {
			a.JobID, a.Lines = b.job.Job.ID, pushLines("x")
			_, err := b.store.LogAppend(ctx, a)
			require.ErrorIs(t, err, stroem.ErrConflict, "%+v", a)
		}
		_, err := b.store.LogAppend(ctx, persistence.LogAppend{JobID: b.job.Job.ID, Step: "nope", Attempt: 1, WorkerID: "w1", Lines: pushLines("x")})
		require.ErrorIs(t, err, stroem.ErrNotFound)
		_, err = b.store.LogAppend(ctx, persistence.LogAppend{JobID: b.job.Job.ID, Step: "a", Attempt: 1, WorkerID: "w1", Offset: -1, Lines: pushLines("x")})
		require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err))
		_, err = b.store.LogAppend(ctx, persistence.LogAppend{JobID: b.job.Job.ID, Step: "a", Attempt: 1, WorkerID: "w1",
			Lines: []stroem.PushLine{{Stream: "stdin", Text: "x"}}})
		require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err))

		// The attempt is declared lost: its worker's later lines are refused.
		_, err = push(b, 0, "before")
		require.NoError(t, err)
		update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) {
			a := st.Mut("a")
			a.AttemptStatus, a.ErrorMessage, a.Status = stroem.AttemptLost, "worker lost (lease expired)", stroem.StepReady
		})
		_, err = push(b, 1, "after")
		require.ErrorIs(t, err, stroem.ErrConflict)
		require.Equal(t, []string{"before"}, texts(scanAll(t, b.store, b.job.Job.ID, 0, "")))

		// The next attempt's offsets start over.
		c2 := ClaimStarted(t, b.store, "w2")
		got, err := b.store.LogAppend(ctx, persistence.LogAppend{JobID: b.job.Job.ID, Step: "a", Attempt: c2.Attempt, WorkerID: "w2", Lines: pushLines("retry")})
		require.NoError(t, err)
		require.Equal(t, int64(2), got.Lines[0].Seq)
		require.Equal(t, 2, got.Lines[0].Attempt)
	})

	t.Run("NoLineIsStoredAfterTheAttemptIsDeclaredLost", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		var mu sync.Mutex
		var acked []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				text := fmt.Sprintf("line %d", i)
				_, err := push(b, int64(i), text)
				if err != nil {
					return // refused: the attempt is gone
				}
				mu.Lock()
				acked = append(acked, text)
				mu.Unlock()
			}
		}()
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= 5
		}, 10*time.Second, time.Millisecond)
		update(t, b.store, b.job.Job.ID, func(st *persistence.JobState) {
			a := st.Mut("a")
			a.AttemptStatus, a.ErrorMessage, a.Status = stroem.AttemptLost, "worker lost (lease expired)", stroem.StepFailed
		})
		<-done
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, acked, texts(scanAll(t, b.store, b.job.Job.ID, 0, "")),
			"exactly the acknowledged lines are stored: none after the loss, none refused")
	})

	t.Run("StepSizeLimitTruncatesWithAMarker", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		a := persistence.LogAppend{JobID: b.job.Job.ID, Step: "a", Attempt: 1, WorkerID: "w1", MaxStepBytes: 10, Lines: pushLines("12345", "678")}
		_, err := b.store.LogAppend(ctx, a)
		require.NoError(t, err)
		names, err := b.store.LogTruncatedSteps(ctx, b.job.Job.ID)
		require.NoError(t, err)
		require.Empty(t, names)
		a.Offset, a.Lines = 2, pushLines("9", "abc", "never")
		got, err := b.store.LogAppend(ctx, a)
		require.NoError(t, err)
		require.Len(t, got.Lines, 2)
		require.Equal(t, "9", got.Lines[0].Text)
		require.Contains(t, got.Lines[1].Text, "[stroem] the log of step a reached its limit of 10 bytes")
		require.Equal(t, stroem.Stderr, got.Lines[1].Stream)
		a.Offset, a.Lines = 5, pushLines("later")
		got, err = b.store.LogAppend(ctx, a)
		require.NoError(t, err)
		require.Empty(t, got.Lines, "nothing more is stored for the step")
		stored := scanAll(t, b.store, b.job.Job.ID, 0, "")
		require.Len(t, stored, 4)
		require.True(t, strings.HasPrefix(stored[3].Text, "[stroem] "))
		names, err = b.store.LogTruncatedSteps(ctx, b.job.Job.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, names)
	})

	t.Run("ScanPagesThroughLongLogsAndFiltersBySteps", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Step{Name: "a"}, Step{Name: "b"})
		c2 := ClaimStarted(t, b.store, "w2")
		ctx := context.Background()
		n := persistence.LogPageSize*2 + 7
		var wg sync.WaitGroup
		for _, c := range []persistence.ClaimedStep{b.claim, c2} {
			wg.Go(func() {
				worker := "w1"
				if c.StepName != b.claim.StepName {
					worker = "w2"
				}
				for i := 0; i < n; i += 50 {
					var lines []string
					for j := i; j < min(i+50, n); j++ {
						lines = append(lines, fmt.Sprintf("%s %d", c.StepName, j))
					}
					_, err := b.store.LogAppend(ctx, persistence.LogAppend{JobID: b.job.Job.ID, Step: c.StepName, Attempt: c.Attempt,
						WorkerID: worker, Offset: int64(i), Lines: pushLines(lines...)})
					require.NoError(t, err)
				}
			})
		}
		wg.Wait()
		all := scanAll(t, b.store, b.job.Job.ID, 0, "")
		require.Len(t, all, 2*n)
		next := map[string]int{}
		for i, l := range all {
			require.Equal(t, int64(i+1), l.Seq, "seqs are gap-free across concurrent appends")
			require.Equal(t, fmt.Sprintf("%s %d", l.Step, next[l.Step]), l.Text, "each step's lines in order")
			next[l.Step]++
		}
		only := scanAll(t, b.store, b.job.Job.ID, 0, "b")
		require.Len(t, only, n)
		require.Equal(t, "b 0", only[0].Text)
		from := scanAll(t, b.store, b.job.Job.ID, all[700].Seq, "")
		require.Len(t, from, 2*n-701)

		stop := fmt.Errorf("stop")
		seen := 0
		err := b.store.LogScan(ctx, b.job.Job.ID, 0, "", func(stroem.LogLine) error {
			seen++
			if seen == 3 {
				return stop
			}
			return nil
		})
		require.ErrorIs(t, err, stop, "fn's error ends the scan")
	})
	// A step's lines are its own and, for a for_each step, its instances'
	// (stroem.InStep), in seq order, paged like any scan; a step whose name
	// starts another's takes none of the other's lines.
	t.Run("ScanOfAStepTakesItsInstancesAndNoOtherStep", func(t *testing.T) {
		t.Parallel()
		names := []string{"deploy", "deploy[0]", "deploy[1]", "deploy[10]", "deploy2", "deploy2[0]", "deploy-x", "deployx", "build"}
		var steps []Step
		for _, n := range names {
			steps = append(steps, Step{Name: n})
		}
		b := setup(t, steps...)
		ctx := context.Background()
		claims := []persistence.ClaimedStep{b.claim}
		for range names[1:] {
			claims = append(claims, ClaimStarted(t, b.store, "w1"))
		}
		// Rounds of 60 lines per step (the loop step itself prints a few),
		// so each step's lines are spread over the job's seqs and "deploy"'s
		// take more than two pages.
		offsets := map[string]int64{}
		for round := range 6 {
			for _, c := range claims {
				n := 60
				if c.StepName == "deploy" {
					n = 2
				}
				var lines []string
				for i := range n {
					lines = append(lines, fmt.Sprintf("%s %d", c.StepName, round*n+i))
				}
				_, err := b.store.LogAppend(ctx, persistence.LogAppend{JobID: b.job.Job.ID, Step: c.StepName, Attempt: c.Attempt,
					WorkerID: "w1", Offset: offsets[c.StepName], Lines: pushLines(lines...)})
				require.NoError(t, err)
				offsets[c.StepName] += int64(n)
			}
		}
		all := scanAll(t, b.store, b.job.Job.ID, 0, "")
		lineSteps := map[string]int{}
		for _, l := range all {
			lineSteps[l.Step]++
		}
		require.Len(t, lineSteps, len(names), "every step printed")

		for _, tc := range []struct {
			step  string
			steps []string // the steps whose lines it keeps
		}{
			{"deploy", []string{"deploy", "deploy[0]", "deploy[1]", "deploy[10]"}},
			{"deploy2", []string{"deploy2", "deploy2[0]"}},
			{"deploy[1]", []string{"deploy[1]"}},
			{"deploy-x", []string{"deploy-x"}},
			{"deployx", []string{"deployx"}},
			{"build", []string{"build"}},
			{"deploy[", nil},
			{"deplo", nil},
			{"nope", nil},
		} {
			var want []stroem.LogLine
			for _, l := range all {
				if slices.Contains(tc.steps, l.Step) {
					want = append(want, l)
				}
			}
			if len(want) > 0 {
				require.Equal(t, want, filterLines(all, func(l stroem.LogLine) bool { return stroem.InStep(l.Step, tc.step) }),
					"the table agrees with stroem.InStep for %q", tc.step)
			}
			for _, after := range []int64{0, all[len(all)/3].Seq, all[len(all)-5].Seq, all[len(all)-1].Seq} {
				got := scanAll(t, b.store, b.job.Job.ID, after, tc.step)
				wantAfter := filterLines(want, func(l stroem.LogLine) bool { return l.Seq > after })
				require.Equal(t, len(wantAfter), len(got), "step %q after %d", tc.step, after)
				if len(wantAfter) > 0 {
					require.Equal(t, wantAfter, got, "step %q after %d: its lines in seq order", tc.step, after)
				}
			}
		}
		require.Greater(t, len(scanAll(t, b.store, b.job.Job.ID, 0, "deploy")), 2*persistence.LogPageSize, "the loop's lines take several pages")
	})
}

func filterLines(lines []stroem.LogLine, keep func(stroem.LogLine) bool) []stroem.LogLine {
	var out []stroem.LogLine
	for _, l := range lines {
		if keep(l) {
			out = append(out, l)
		}
	}
	return out
}
