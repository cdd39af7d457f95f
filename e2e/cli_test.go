package e2e

import (
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/stroemtest"
)

const cliWorkflow = `
actions:
  say:
    type: shell
    input: { text: { type: string, required: true } }
    cmd: 'echo "$INPUT_TEXT"; echo "to stderr" >&2'
  fail:
    type: shell
    cmd: 'echo "about to fail"; echo "it broke" >&2; exit 4'
  long:
    type: shell
    cmd: 'echo "started"; sleep 300'
tasks:
  hello:
    input: { name: { type: string, default: World } }
    flow:
      greet: { action: say, input: { text: "Hello {{ input.name }}" } }
  broken:
    flow:
      boom: { action: fail }
  sleeper:
    flow:
      sleep: { action: long }
`

// `stroem trigger TASK --follow` streams the logs and exits with the job's
// result: 0 completed, 1 failed, 130 cancelled.
func TestCLITriggerFollow(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, cliWorkflow)})

	t.Run("completed", func(t *testing.T) {
		code, out, errOut := s.cli(nil, "trigger", "hello", "-i", "name=CLI", "--follow")
		require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		require.Equal(t, "greet | Hello CLI\n", out, "stdout lines go to stdout, prefixed with their step")
		require.Contains(t, errOut, "to stderr", "stderr lines go to stderr")
		require.Contains(t, errOut, "job ")
	})

	t.Run("failed", func(t *testing.T) {
		code, out, errOut := s.cli(nil, "trigger", "broken", "--follow")
		require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
		require.Contains(t, out, "about to fail")
		require.Contains(t, errOut, "step boom failed: exit code 4: it broke")
	})

	t.Run("cancelled", func(t *testing.T) {
		// The CLI prints "job ID" first, then follows: cancel once the step
		// printed its first line, so the cancel reaches a running step.
		f, id := startFollow(t, s, "sleeper", "started")
		code, body := s.do("POST", "/api/jobs/"+id+"/cancel", nil)
		require.Equal(t, 200, code, string(body))

		require.Equal(t, 130, f.exitCode(t, "after the cancel"), "stderr: %s", f.stderr.String())
		require.Contains(t, f.stderr.String(), "was cancelled")
		require.Equal(t, stroem.JobCancelled, s.job(id).Status)
	})

	t.Run("Ctrl-C detaches", func(t *testing.T) {
		f, id := startFollow(t, s, "sleeper", "started")
		require.NoError(t, f.cmd.Process.Signal(syscall.SIGINT)) // Ctrl-C

		require.Equal(t, 3, f.exitCode(t, "on Ctrl-C"), "detached, not cancelled; stderr: %s", f.stderr.String())
		require.Contains(t, f.stderr.String(), "stroem: detached; the job continues (stroem cancel "+id+")")
		require.Equal(t, stroem.JobRunning, s.job(id).Status, "the job goes on")

		// stroem cancel says what it did; the job ends cancelled.
		code, out, errOut := s.cli(nil, "cancel", id[:8])
		require.Equal(t, 0, code, errOut)
		require.Regexp(t, `^(job `+id+` cancelled|cancel requested; job `+id+` is cancelling .*)\n$`, out)
		require.Equal(t, stroem.JobCancelled, s.waitJob(id).Status)
	})

	t.Run("status and logs", func(t *testing.T) {
		code, out, errOut := s.cli(nil, "trigger", "hello", "--wait")
		require.Equal(t, 0, code, errOut)
		fields := strings.Fields(out)
		require.Len(t, fields, 2, out)
		id := fields[0]
		require.Equal(t, "completed", fields[1])

		code, out, errOut = s.cli(nil, "logs", id)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "Hello World\n")
		require.Contains(t, out, "to stderr\n")

		code, out, errOut = s.cli(nil, "status", id)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "status:    completed")
		require.Regexp(t, `greet\s+completed`, out)

		code, _, errOut = s.cli(nil, "status", "not-a-uuid")
		require.Equal(t, 2, code, "a usage error")
		require.Contains(t, errOut, `"not-a-uuid" is not a job id`)

		// Like git, a unique prefix of the id names the job.
		code, short, errOut := s.cli(nil, "status", id[:8])
		require.Equal(t, 0, code, errOut)
		require.Contains(t, short, "job:       "+id)
		code, out, errOut = s.cli(nil, "logs", strings.ToUpper(id[:6]))
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "Hello World\n")
		code, body := s.do("GET", "/api/jobs?id_prefix=zz", nil)
		require.Equal(t, 400, code, string(body))
		require.Contains(t, string(body), "id_prefix")
	})
}

// following is a `stroem trigger TASK --follow` running as a subprocess.
type following struct {
	cmd            *exec.Cmd
	stdout, stderr stroemtest.Buffer
	exited         chan error
}

// startFollow starts `stroem trigger task --follow` against s and waits
// until the job's output shows want; it returns the CLI and the job's id.
// The CLI is killed when it outlives waitFor.
func startFollow(t *testing.T, s *stack, task, want string) (*following, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	f := &following{exited: make(chan error, 1)}
	f.cmd = exec.CommandContext(ctx, binary, "trigger", task, "--follow", "--server", s.url)
	f.cmd.Env = subprocessEnv()
	f.cmd.Stdout, f.cmd.Stderr = &f.stdout, &f.stderr
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, f.cmd.Start())
	go func() { f.exited <- f.cmd.Wait() }()
	require.Eventually(t, func() bool { return strings.Contains(f.stdout.String(), want) }, waitFor, 20*time.Millisecond,
		"the CLI never printed the step's output; stderr: %s", f.stderr.String())
	return f, jobIDFrom(t, f.stderr.String())
}

// exitCode waits for the CLI to exit (after what) and returns its exit
// code; it must exit with one.
func (f *following) exitCode(t *testing.T, after string) int {
	t.Helper()
	var err error
	select {
	case err = <-f.exited:
	case <-time.After(waitFor):
		t.Fatalf("the CLI did not exit %s", after)
	}
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr: %s", f.stderr.String())
	return ee.ExitCode()
}

// jobIDFrom finds the id in the CLI's "job ID" line.
func jobIDFrom(t *testing.T, stderr string) string {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		if id, ok := strings.CutPrefix(line, "job "); ok {
			return strings.TrimSpace(id)
		}
	}
	t.Fatalf("no job id in the CLI's stderr: %q", stderr)
	return ""
}

const fanWorkflow = `
actions:
  work:
    type: shell
    input: { n: { type: integer, required: true } }
    cmd: 'echo "part $INPUT_N"; sleep 0.5'
tasks:
  fan:
    flow:
      p1: { action: work, input: { n: 1 } }
      p2: { action: work, input: { n: 2 } }
      p3: { action: work, input: { n: 3 } }
      p4: { action: work, input: { n: 4 } }
`

// Two workers with one slot each share a job's parallel steps, and no step
// runs twice.
func TestTwoWorkersShareTheLoad(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOpts{workspace: workspaceDir(t, fanWorkflow), workers: 2, maxConcurrent: 1})

	var page struct{ Items []stroem.Worker }
	require.Equal(t, 200, s.getJSON("/api/workers", &page))
	workers := page.Items
	require.Len(t, workers, 2)
	names := map[string]string{}
	for _, w := range workers {
		require.Equal(t, "active", w.Status)
		names[w.ID] = w.Name
	}

	j := s.waitJob(s.execute("fan", nil))
	require.Equal(t, stroem.JobCompleted, j.Status, describeJob(j))
	used := map[string]int{}
	for _, st := range j.Steps {
		require.Equal(t, stroem.StepCompleted, st.Status)
		require.Equal(t, 1, st.Attempt, "step %s ran more than once", st.StepName)
		require.NotNil(t, st.WorkerID)
		used[names[*st.WorkerID]]++
	}
	require.Len(t, used, 2, "both workers ran steps: %v", used)
}
