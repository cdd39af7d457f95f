package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// diamondWorkflow is a task diamond (a → b, c → d) whose steps each append
// "job step attempt" to the ledger file (the first %s), then run the shell
// of the second %s.
const diamondWorkflow = `
actions:
  mark:
    type: shell
    cmd: 'echo "$STROEM_JOB_ID $STROEM_STEP $STROEM_ATTEMPT" >> %s%s'
tasks:
  diamond:
    flow:
      a: { action: mark }
      b: { action: mark, depends_on: [a] }
      c: { action: mark, depends_on: [a] }
      d: { action: mark, depends_on: [b, c] }
`

// startDiamondStack starts a fault stack serving diamondWorkflow, its
// ledger in the test's temporary directory and then run by each step after
// its ledger line, and two workers of 4 slots. It returns the stack and the
// ledger's path.
func startDiamondStack(t *testing.T, then string) (*faultStack, string) {
	t.Helper()
	ledger := filepath.Join(t.TempDir(), "ledger")
	s := startFaultStack(t, faultOpts{workflow: fmt.Sprintf(diamondWorkflow, ledger, then)})
	s.startWorker("w1", 4, 3*time.Second)
	s.startWorker("w2", 4, 3*time.Second)
	return s, ledger
}

// waitAllWithin waits for every job of ids to end, each within within, and
// returns when the last one completed.
func (s *faultStack) waitAllWithin(ids []string, within time.Duration) time.Time {
	var last time.Time
	for _, id := range ids {
		j := s.waitJobWithin(id, within)
		if j.CompletedAt.After(last) {
			last = *j.CompletedAt
		}
	}
	return last
}

// 60 jobs at once, each a diamond (a → b, c → d), on two workers: every step
// runs exactly once. Each step appends one line to a shared file, which must
// end up with one line per step; PostgreSQL must hold one attempt per step.
func TestFaultManyJobsEachStepOnce(t *testing.T) {
	t.Parallel()
	const jobs = 60
	s, ledger := startDiamondStack(t, "")

	start := time.Now()
	ids := map[string]bool{}
	for range jobs {
		ids[s.execute("diamond", nil)] = true
	}
	last := s.waitAllWithin(slices.Collect(maps.Keys(ids)), 2*waitFor)
	figure(t, fmt.Sprintf("%d diamond jobs (%d steps) on 2 workers: submit → all completed", jobs, 4*jobs), last.Sub(start))

	for id := range ids {
		j, d := s.requireJob(id, stroem.JobCompleted)
		for _, st := range j.Steps {
			require.Equal(t, 1, st.Attempt, "job %s step %s", id, st.StepName)
			require.Len(t, d.Attempts[st.StepName], 1)
		}
	}
	var total int
	require.NoError(t, s.pool().QueryRow(t.Context(), `SELECT count(*) FROM step_attempts`).Scan(&total))
	require.Equal(t, 4*jobs, total, "one attempt per step in PostgreSQL")

	seen := ledgerCounts(t, ledger)
	require.Len(t, seen, 4*jobs, "every step ran")
	for k, n := range seen {
		job, _, _ := strings.Cut(k, " ")
		require.True(t, ids[job], "ledger line of an unknown job: %q", k)
		require.Equal(t, 1, n, "step %s ran %d times", k, n)
	}
}

var badUTF8 = regexp.MustCompile("bad:\uFFFD+:end\n")

// A step printing NUL bytes, invalid UTF-8 and a 1 MiB line completes, and
// its logs are readable through the API and over SSE.
func TestFaultHostileOutput(t *testing.T) {
	t.Parallel()
	s := startFaultStack(t, faultOpts{workflow: `
actions:
  hostile:
    type: shell
    cmd: |
      printf 'nul:\000:end\n'
      printf 'bad:\377\376:end\n'
      head -c 1048576 /dev/zero | tr '\000' x
      echo
      echo 'OUTPUT: {"ok": true}'
      echo done
tasks:
  hostile:
    flow:
      h: { action: hostile }
`})
	s.startWorker("w1", 1, 3*time.Second)
	start := time.Now()
	id := s.execute("hostile", nil)
	j, _ := s.requireJob(id, stroem.JobCompleted)
	figure(t, "hostile output: submit → completed", j.CompletedAt.Sub(start))
	require.Equal(t, map[string]any{"ok": true}, stepOf(t, j, "h").Output)

	// (Never require.Contains on the logs: a failure would print 1 MiB.)
	logs := s.logs(id)
	require.True(t, strings.Contains(logs, "nul:\\0:end\n"), "NUL is stored as the two characters \\0")
	require.True(t, badUTF8.MatchString(logs), "invalid UTF-8 becomes U+FFFD")
	require.Equal(t, 1<<20, strings.Count(logs, "x"), "the 1 MiB line is kept whole")
	require.True(t, strings.HasSuffix(logs, "done\n"), "the last line is there")
	var texts []string
	var long int
	for _, l := range s.logLines(id, "h") {
		if strings.HasPrefix(l.Text, "x") {
			long++
			require.LessOrEqual(t, len(l.Text), 64<<10, "long lines are split at 64 KiB")
			continue
		}
		texts = append(texts, l.Text)
	}
	require.Equal(t, 16, long)
	require.Len(t, texts, 4, "%q", texts)

	// Over SSE: every line replays, then done.
	c := s.openSSE(id, "")
	var xs, events int
	for {
		ev := c.next(t)
		if ev.event == "done" {
			break
		}
		l := logLine(t, ev)
		xs += strings.Count(l.Text, "x")
		events++
	}
	require.Equal(t, 1<<20, xs)
	require.Equal(t, len(s.logLines(id, "")), events)
}

// 60 diamond jobs on two workers while the server is killed with SIGKILL
// four times and restarted: every job completes, every step runs exactly
// once, attempts never overlap. (A claim committed in the instant before a
// kill never reaches its worker; the restarted server notices that the
// worker's heartbeats leave it out and makes the step ready again, without
// using an attempt.)
func TestFaultServerKilledUnderLoad(t *testing.T) {
	t.Parallel()
	const jobs = 60
	s, ledger := startDiamondStack(t, "; sleep 0.05")
	var ids []string
	for range jobs {
		ids = append(ids, s.execute("diamond", nil))
	}
	var fault time.Time
	for k := range 4 {
		time.Sleep(time.Duration(300+200*k) * time.Millisecond)
		if k == 0 {
			fault = time.Now()
		}
		kill9(s.server)
		time.Sleep(300 * time.Millisecond)
		s.startServer()
	}

	last := s.waitAllWithin(ids, 2*waitFor)
	ran := ledgerCounts(t, ledger)
	require.Len(t, ran, 4*jobs, "every step ran")
	for _, id := range ids {
		j, _ := s.requireJob(id, stroem.JobCompleted)
		for _, st := range j.Steps {
			require.Equal(t, 1, st.Attempt, "job %s step %s", id, st.StepName)
			require.Equal(t, 1, ran[id+" "+st.StepName], "job %s step %s ran once", id, st.StepName)
		}
	}
	undone := 0
	for _, sv := range s.servers {
		undone += strings.Count(sv.out.String(), "never reached its worker")
	}
	t.Logf("claims undone after a restart (committed, never delivered): %d", undone)
	figure(t, "4× server SIGKILL during 60 jobs: first kill → all jobs completed", last.Sub(fault))
}

// ledgerCounts reads a ledger of "<job> <step> <attempt>" lines and counts
// the executions of each "<job> <step>".
func ledgerCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	n := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		require.Len(t, f, 3, "ledger line %q", l)
		n[f[0]+" "+f[1]]++
	}
	return n
}
