package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// captured collects what a step printed.
type captured struct {
	mu    sync.Mutex
	lines []stroem.PushLine
	first chan string // the first stdout line, once
	once  sync.Once
}

func newCaptured() *captured { return &captured{first: make(chan string, 1)} }

func (c *captured) sink(l stroem.PushLine) {
	c.mu.Lock()
	c.lines = append(c.lines, l)
	c.mu.Unlock()
	if l.Stream == stroem.Stdout {
		c.once.Do(func() { c.first <- l.Text })
	}
}

func (c *captured) texts(stream stroem.Stream) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, l := range c.lines {
		if l.Stream == stream {
			out = append(out, l.Text)
		}
	}
	return out
}

func newShell(t *testing.T) *ShellRunner {
	t.Helper()
	return &ShellRunner{WorkDir: t.TempDir(), Grace: 300 * time.Millisecond, DrainTimeout: 500 * time.Millisecond}
}

func run(t *testing.T, r *ShellRunner, step Step) (Result, *captured) {
	t.Helper()
	c := newCaptured()
	if step.JobID == "" {
		step.JobID, step.Name, step.Attempt = "job-1", "step-1", 1
	}
	res := r.Run(context.Background(), step, c.sink)
	if res.Cleanup != nil {
		res.Cleanup() // as the worker does after reporting
	}
	return res, c
}

func cmdStep(cmd string) Step { return Step{Spec: stroem.StepSpec{Cmd: cmd}} }

// escapeeStep starts a process that leaves the step's process group
// (setsid), holds its stdout and prints its pid, and ends once that process
// runs. (A fixed "sleep 0.2" before the end was not always enough on a busy
// machine: the step ended, killing the escapee before it had printed, and
// the test waited for its pid forever.)
const escapeeStep = `setsid sh -c 'echo $$; : > up; exec sleep 100' &
until [ -e up ]; do sleep 0.01; done`

// firstLine is the step's first stdout line, which Run has delivered by the
// time it returns; a step that printed none fails the test instead of
// leaving it waiting.
func firstLine(t *testing.T, c *captured) string {
	t.Helper()
	select {
	case l := <-c.first:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("the step printed no stdout line; its stderr: %q", c.texts(stroem.Stderr))
		return ""
	}
}

// requireGroupGone waits until no process of group pgid exists.
func requireGroupGone(t *testing.T, pgid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
	}, 5*time.Second, 10*time.Millisecond, "process group %d still has members", pgid)
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	r := newShell(t)

	res, c := run(t, r, cmdStep("echo hello"))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, 0, res.ExitCode)
	require.Equal(t, []string{"hello"}, c.texts(stroem.Stdout))
	require.Nil(t, res.Completion("w", 1).Output, "no OUTPUT line: null output, as upstream")

	res, c = run(t, r, cmdStep(`for i in 1 2 3 4 5 6 7; do echo "err $i" >&2; done; echo out; exit 3`))
	require.False(t, res.Succeeded())
	require.Equal(t, 3, res.ExitCode)
	require.Equal(t, "exit code 3: err 3\nerr 4\nerr 5\nerr 6\nerr 7", res.Error)
	require.Len(t, c.texts(stroem.Stderr), 7)
	comp := res.Completion("w1", 2)
	require.Equal(t, stroem.Completion{WorkerID: "w1", Attempt: 2, ExitCode: 3, Error: res.Error}, comp)

	res, _ = run(t, r, cmdStep("kill -9 $$"))
	require.Equal(t, 128+9, res.ExitCode)
	require.Equal(t, "exit code 137 (killed by signal killed)", res.Error)

	res, _ = run(t, r, Step{})
	require.Equal(t, -1, res.ExitCode)
	require.Contains(t, res.Error, "neither cmd nor script")
}

func TestOutputParsing(t *testing.T) {
	t.Parallel()
	r := newShell(t)

	res, c := run(t, r, cmdStep(`echo 'OUTPUT: {"a": 1}'; echo 'OUTPUT: {"greeting": "Hello", "n": 2, "big": 12345678901234567890}'; echo 'OUTPUT: {"no": "stderr"}' >&2; echo done`))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"greeting": "Hello", "n": json.Number("2"), "big": json.Number("12345678901234567890")}, res.Output, "the last stdout OUTPUT line wins")
	require.Contains(t, c.texts(stroem.Stdout), `OUTPUT: {"a": 1}`, "OUTPUT lines stay in the logs")

	// As upstream, an OUTPUT line that is not JSON is skipped: the last one
	// that is counts. The step's log says so.
	res, c = run(t, r, cmdStep(`echo 'OUTPUT: {"ok": true}'; echo 'OUTPUT: {broken'; echo 'OUTPUT: done'`))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"ok": true}, res.Output)
	require.Equal(t, []string{"stroem: skipped 2 OUTPUT lines that are not JSON (the last: done)"}, c.texts(stroem.Stderr))
	res, c = run(t, r, cmdStep(`echo 'OUTPUT: {"a": 1} trailing'`))
	require.True(t, res.Succeeded(), res.Error)
	require.Nil(t, res.Output)
	require.Equal(t, []string{`stroem: skipped an OUTPUT line that is not JSON (the last: {"a": 1} trailing)`}, c.texts(stroem.Stderr))

	// Any JSON value is an output, as upstream: a list feeds a for_each.
	res, c = run(t, r, cmdStep(`echo 'OUTPUT: ["svc-a", "svc-b"]'`))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []any{"svc-a", "svc-b"}, res.Output)
	require.Empty(t, c.texts(stroem.Stderr))
	res, _ = run(t, r, cmdStep(`echo 'OUTPUT: "text"'; echo 'OUTPUT:42'`))
	require.Equal(t, json.Number("42"), res.Output)
	res, _ = run(t, r, cmdStep(`echo 'OUTPUT: {"a": 1}'; echo 'OUTPUT: null'`))
	require.Nil(t, res.Output, "JSON null is no output")

	res, _ = run(t, r, cmdStep(`echo 'OUTPUT: {"only": "stderr"}' >&2`))
	require.True(t, res.Succeeded(), res.Error)
	require.Nil(t, res.Output)

	res, _ = run(t, r, cmdStep(`printf '%s\n' 'OUTPUT: {"nul": "a\u0000b", "k\u0000": ["\u0000"]}'`))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"nul": `a\0b`, `k\0`: []any{`\0`}}, res.Output,
		"a NUL escape is sanitized as in log lines: the server refuses NUL in a completion")

	res, _ = run(t, r, cmdStep(`printf 'OUTPUT: {"crlf": true}\r\n'`))
	require.Equal(t, map[string]any{"crlf": true}, res.Output)

	res, _ = run(t, r, cmdStep(`echo 'OUTPUT: {"x": 1}'; exit 4`))
	require.Equal(t, 4, res.ExitCode)
	require.Nil(t, res.Output, "a failed step has no output")
}

func TestLongLinesAreSplitNeverDropped(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	// A 200 KiB line, a short one, and a last line without a newline.
	res, c := run(t, r, cmdStep(`head -c 204800 /dev/zero | tr '\0' x; echo; echo short; printf tail`))
	require.True(t, res.Succeeded(), res.Error)
	out := c.texts(stroem.Stdout)
	require.Len(t, out, 6)
	require.Equal(t, []int{65536, 65536, 65536, 8192}, []int{len(out[0]), len(out[1]), len(out[2]), len(out[3])})
	require.Equal(t, strings.Repeat("x", 204800), strings.Join(out[:4], ""))
	require.Equal(t, []string{"short", "tail"}, out[4:])

	// A long OUTPUT line still parses although its log lines are split.
	res, _ = run(t, r, cmdStep(`printf 'OUTPUT: {"v": "'; head -c 100000 /dev/zero | tr '\0' y; echo '"}'`))
	require.True(t, res.Succeeded(), res.Error)
	require.Len(t, res.Output.(map[string]any)["v"], 100000)
}

// A line whose length is an exact multiple of MaxLineBytes is sent as its
// pieces only: the newline that ends it is not an empty line of its own (a
// 1 MiB line used to be stored as 16 pieces and a blank line). A real empty
// line, also right after a long one, is kept.
func TestLongLineOfExactPiecesHasNoBlankTail(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	res, c := run(t, r, cmdStep(`head -c 131072 /dev/zero | tr '\0' x; echo; echo next; `+
		`head -c 65536 /dev/zero | tr '\0' y; printf '\r\n'; echo; echo last; `+
		`head -c 65536 /dev/zero | tr '\0' z >&2; echo >&2`))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"x×65536", "x×65536", "next", "y×65536", "", "last"}, runs(c.texts(stroem.Stdout)))
	require.Equal(t, []string{"z×65536"}, runs(c.texts(stroem.Stderr)))
}

// runs shows each line made of one repeated byte as "b×n", so a failure
// does not print 64 KiB lines.
func runs(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) > 16 && strings.Count(l, l[:1]) == len(l) {
			l = fmt.Sprintf("%s×%d", l[:1], len(l))
		}
		out[i] = l
	}
	return out
}

func TestSplitLinesKeepsRunesWhole(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("é", 10) + "\n" // 2 bytes each
	var pieces []string
	var ends []bool
	require.NoError(t, splitLines(strings.NewReader(in), 5, func(p []byte, end bool) {
		pieces = append(pieces, string(p))
		ends = append(ends, end)
	}))
	require.Equal(t, strings.Repeat("é", 10), strings.Join(pieces, ""))
	for _, p := range pieces {
		require.True(t, len(p) <= 5)
		require.Equal(t, strings.ToValidUTF8(p, "?"), p, "no piece cuts a rune")
	}
	require.True(t, ends[len(ends)-1])
	require.False(t, ends[0])
}

// The buffer grows past its first size for a long line and never cuts a
// line shorter than max, however the reads come.
func TestSplitLinesGrowsItsBufferForLongLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 3*splitStartBytes+7) // grows twice
	huge := strings.Repeat("y", MaxLineBytes+100)    // split at max
	in := "a\n" + long + "\r\n" + "b\n" + huge + "\n" + "tail"
	type piece struct {
		text string
		end  bool
	}
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(in),
		"halves":   iotest.HalfReader(strings.NewReader(in)),
		"one byte": iotest.OneByteReader(strings.NewReader(in[:2*splitStartBytes+10])),
	} {
		var got []piece
		require.NoError(t, splitLines(r, MaxLineBytes, func(p []byte, end bool) {
			got = append(got, piece{string(p), end})
		}), name)
		if name == "one byte" {
			require.Equal(t, []piece{{"a", true}, {long[:2*splitStartBytes+8], true}}, got, name)
			continue
		}
		require.Equal(t, []piece{
			{"a", true}, {long, true}, {"b", true},
			{huge[:MaxLineBytes], false}, {huge[MaxLineBytes:], true},
			{"tail", true},
		}, got, name)
	}
}

func TestBinaryOutputIsSanitized(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	res, c := run(t, r, cmdStep(`printf 'a\000b\n'; printf '\377\376ok\n'; printf 'caf\303\251\n'`))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{`a\0b`, "\uFFFDok", "café"}, c.texts(stroem.Stdout))
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	r.Environ = []string{"PATH=" + os.Getenv("PATH"), "FROM_WORKER=yes", "GREETING=worker"}
	step := Step{
		JobID: "job-42", Name: "say-hello", Attempt: 3,
		Spec: stroem.StepSpec{
			Cmd: `echo "$FROM_WORKER|$GREETING|$STROEM_JOB_ID|$STROEM_STEP|$STROEM_ATTEMPT"; ` +
				`echo "$INPUT_NAME|$INPUT_DRY_RUN|$INPUT_N|$INPUT_F|$INPUT_NIL|$INPUT_CFG|$INPUT_LIST|$INPUT_X_Y_Z"`,
			Env: map[string]string{"GREETING": "Hello"},
		},
		Input: map[string]any{
			"name": "E2E Test", "dry-run": true, "n": json.Number("2"), "f": float64(2),
			"nil": nil, "cfg": map[string]any{"a": "<b>"}, "list": []any{"x", 1.5}, "x.y z": "dots",
		},
	}
	res, c := run(t, r, step)
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{
		"|Hello|job-42|say-hello|3", // FROM_WORKER is the worker's, not the step's
		`E2E Test|true|2|2||{"a":"<b>"}|["x",1.5]|dots`,
	}, c.texts(stroem.Stdout))
}

func TestInputEnvName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "INPUT_DRY_RUN", InputEnvName("dry-run"))
	require.Equal(t, "INPUT_A1_B", InputEnvName("a1.b"))
	require.Equal(t, "INPUT_CAF__", InputEnvName("café"), "each non-ASCII byte becomes _")
}

func TestStdinIsDevNull(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	res, c := run(t, r, cmdStep(`cat; readlink /proc/self/fd/0 || echo /dev/null`))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"/dev/null"}, c.texts(stroem.Stdout))
}

func TestTimeoutKillsTheWholeGroup(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	// The main shell ignores SIGTERM, so only SIGKILL after the grace ends it;
	// the background grandchild must die too.
	step := cmdStep(`trap '' TERM; echo $$; sleep 100 & sleep 100`)
	step.Spec.Timeout = stroem.Duration(300 * time.Millisecond)
	start := time.Now()
	res, c := run(t, r, step)
	require.Less(t, time.Since(start), 5*time.Second)
	require.True(t, res.TimedOut)
	require.Equal(t, "timed out after 300ms", res.Error)
	require.Equal(t, 128+9, res.ExitCode)
	pgid, err := strconv.Atoi(<-c.first)
	require.NoError(t, err)
	requireGroupGone(t, pgid)
}

func TestCancelKillsTheWholeGroup(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	c := newCaptured()
	done := make(chan Result, 1)
	go func() {
		done <- r.Run(ctx, Step{JobID: "j", Name: "s", Attempt: 1,
			Spec: stroem.StepSpec{Cmd: `echo $$; sleep 100 & sleep 100 & wait`}}, c.sink)
	}()
	pgid, err := strconv.Atoi(<-c.first)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(-pgid, 0), "the group is alive while the step runs")
	cancel(errors.New("cancelled by user"))
	res := <-done
	require.True(t, res.Cancelled)
	require.Equal(t, "cancelled: cancelled by user", res.Error)
	requireGroupGone(t, pgid)

	res = r.Run(ctx, cmdStep("echo never"), c.sink)
	require.True(t, res.Cancelled, "a cancelled context runs nothing")
}

func TestBackgroundChildDoesNotOutliveTheStep(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	start := time.Now()
	res, c := run(t, r, cmdStep(`sleep 100 & echo $$`))
	require.True(t, res.Succeeded(), res.Error)
	require.Less(t, time.Since(start), 5*time.Second, "a grandchild holding stdout does not hold the step")
	pgid, err := strconv.Atoi(<-c.first)
	require.NoError(t, err)
	requireGroupGone(t, pgid)
}

func TestEscapedProcessHoldingPipesIsBounded(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	r := newShell(t)
	start := time.Now()
	res, c := run(t, r, cmdStep(escapeeStep))
	require.True(t, res.Succeeded(), res.Error)
	require.Less(t, time.Since(start), 5*time.Second)
	pid, err := strconv.Atoi(firstLine(t, c))
	require.NoError(t, err)
	_ = syscall.Kill(pid, syscall.SIGKILL) // it left the group: ours to clean up in the test
}

func TestWorkspaceScripts(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "actions"), 0o755))
	deploy, err := os.ReadFile("/work/shared/compat/upstream-mvp/actions/deploy.sh")
	if err != nil {
		deploy = []byte("#!/bin/bash\nset -euo pipefail\necho \"Deploying to environment: ${DEPLOY_ENV:-staging}\"\n" +
			"echo \"OUTPUT: {\\\"status\\\": \\\"deployed\\\", \\\"env\\\": \\\"${DEPLOY_ENV:-staging}\\\"}\"\n")
	}
	require.NoError(t, os.WriteFile(filepath.Join(ws, "actions", "deploy.sh"), deploy, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "plain.sh"), []byte("echo plain $1 from $(pwd)\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "noshebang.sh"), []byte("echo no shebang\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "lost-exec-bit.sh"), []byte("#!/bin/bash\nset -euo pipefail\necho \"bash $BASH_VERSION\" | cut -c1-4\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "data.txt"), []byte("payload"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(ws, ".workflows"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, ".workflows", "a.yaml"), []byte("tasks: {}\n"), 0o644))
	r := newShell(t)

	res, c := run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "actions/deploy.sh", Env: map[string]string{"DEPLOY_ENV": "prod"}}})
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"status": "deployed", "env": "prod"}, res.Output)
	require.Contains(t, c.texts(stroem.Stdout), "Deploying to environment: prod")

	res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "plain.sh"}})
	require.True(t, res.Succeeded(), res.Error)
	out := c.texts(stroem.Stdout)
	require.Len(t, out, 1)
	require.True(t, strings.HasPrefix(out[0], "plain from "+r.WorkDir), out[0])

	res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "noshebang.sh"}})
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"no shebang"}, c.texts(stroem.Stdout))

	res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "lost-exec-bit.sh"}})
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"bash"}, c.texts(stroem.Stdout), "a script without its exec bit still runs with its shebang's interpreter")

	// The workflow definitions are not copied into step directories.
	res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: "test -e .workflows && echo present || echo absent"}})
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"absent"}, c.texts(stroem.Stdout))

	// cmd steps run among the workspace files too, in a private copy.
	res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Cmd: "cat data.txt; echo; echo changed > data.txt"}})
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"payload"}, c.texts(stroem.Stdout))
	b, err := os.ReadFile(filepath.Join(ws, "data.txt"))
	require.NoError(t, err)
	require.Equal(t, "payload", string(b), "the cached workspace is never modified")

	// Arguments are shell words, split and expanded by /bin/sh.
	require.NoError(t, os.WriteFile(filepath.Join(ws, "args.sh"), []byte("#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done\n"), 0o755))
	res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "args.sh", Args: `--env 'two words' "$STROEM_STEP"`}})
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"[--env]", "[two words]", "[step-1]"}, c.texts(stroem.Stdout))
	res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "plain.sh", Args: "first"}})
	require.True(t, res.Succeeded(), res.Error)
	require.True(t, strings.HasPrefix(c.texts(stroem.Stdout)[0], "plain first from "), "a non-executable script gets its arguments too")

	res, _ = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "../etc/passwd"}})
	require.Equal(t, `script "../etc/passwd" is outside the workspace`, res.Error)
	res, _ = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "missing.sh"}})
	require.Equal(t, `script "missing.sh" not found in the workspace`, res.Error)
	require.Equal(t, -1, res.ExitCode)
}

func TestStepDirectoryLifecycle(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	c := newCaptured()
	res := r.Run(context.Background(), Step{JobID: "job-1", Name: "s", Attempt: 1, Spec: stroem.StepSpec{Cmd: "pwd"}}, c.sink)
	require.True(t, res.Succeeded(), res.Error)
	require.DirExists(t, c.texts(stroem.Stdout)[0], "kept until the caller has reported and runs Cleanup")
	require.NotNil(t, res.Cleanup)
	res.Cleanup()
	untouched := c.texts(stroem.Stdout)[0]
	require.DirExists(t, untouched, "as handed out: kept for the next step (stepdir.go)")

	res, c = run(t, r, cmdStep("pwd; touch made-here"))
	require.True(t, res.Succeeded(), res.Error)
	dir := c.texts(stroem.Stdout)[0]
	require.Equal(t, untouched, dir, "the kept directory served the next step")
	require.Equal(t, r.WorkDir, filepath.Dir(dir))
	require.NoDirExists(t, dir, "removed after success when the step left something")

	res, c = run(t, r, cmdStep("pwd"))
	require.True(t, res.Succeeded(), res.Error)
	require.DirExists(t, c.texts(stroem.Stdout)[0])
	r.Drain()
	require.NoDirExists(t, c.texts(stroem.Stdout)[0], "Drain removes the kept directories")

	res, c = run(t, r, cmdStep("pwd; mkdir ro; touch ro/f; chmod 500 ro; exit 1"))
	require.False(t, res.Succeeded())
	require.NoDirExists(t, c.texts(stroem.Stdout)[0], "removed after failure too, even with read-only dirs")

	r.KeepFailedDirs = true
	res, c = run(t, r, cmdStep("pwd; exit 1"))
	require.False(t, res.Succeeded())
	require.DirExists(t, c.texts(stroem.Stdout)[0], "KeepFailedDirs keeps it for debugging")
}

func TestEnvValue(t *testing.T) {
	t.Parallel()
	require.Equal(t, "2", EnvValue(float64(2)))
	require.Equal(t, "2.5", EnvValue(2.5))
	require.Equal(t, "1000000", EnvValue(float64(1e6)))
	require.Equal(t, "7", EnvValue(7))
	require.Equal(t, "false", EnvValue(false))
	require.Equal(t, "", EnvValue(nil))
	require.Equal(t, `{"k":[1,"a&b"]}`, EnvValue(map[string]any{"k": []any{1, "a&b"}}))
}

func BenchmarkShellStep(b *testing.B) {
	ws := b.TempDir()
	for i := range 20 {
		require.NoError(b, os.WriteFile(filepath.Join(ws, "f"+strconv.Itoa(i)+".sh"), bytes.Repeat([]byte("echo x\n"), 200), 0o644))
	}
	r := &ShellRunner{WorkDir: b.TempDir()}
	step := Step{JobID: "j", Name: "s", Attempt: 1, Workspace: ws, Spec: stroem.StepSpec{Cmd: "true"}}
	b.Run("copy+spawn+cleanup", func(b *testing.B) {
		for b.Loop() {
			if res := r.Run(context.Background(), step, func(stroem.PushLine) {}); !res.Succeeded() {
				b.Fatal(res.Error)
			}
		}
	})
	b.Run("spawn-only", func(b *testing.B) {
		s := step
		s.Workspace = ""
		for b.Loop() {
			if res := r.Run(context.Background(), s, func(stroem.PushLine) {}); !res.Succeeded() {
				b.Fatal(res.Error)
			}
		}
	})
	b.Run("copy-only", func(b *testing.B) {
		for b.Loop() {
			dir, err := r.prepareDir(step)
			if err != nil {
				b.Fatal(err)
			}
			_ = removeDir(dir)
		}
	})
}

// Copying an executable while another goroutine forks used to make its exec
// fail with "text file busy" (golang/go#22315); copyFile holds ForkLock.
func TestConcurrentScriptStepsNeverTextFileBusy(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	for i := range 10 {
		require.NoError(t, os.WriteFile(filepath.Join(ws, "s"+strconv.Itoa(i)+".sh"), append([]byte("#!/bin/sh\necho ok\nexit 0\n"), bytes.Repeat([]byte("#"), 32<<10)...), 0o755))
	}
	r := newShell(t)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for i := range 15 {
				res, _ := run(t, r, Step{JobID: "j", Name: "s", Attempt: 1, Workspace: ws,
					Spec: stroem.StepSpec{Script: "s" + strconv.Itoa((g+i)%10) + ".sh"}})
				if !res.Succeeded() {
					t.Error(res.Error)
					return
				}
			}
		})
	}
	wg.Wait()
}
