package e2e

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/stroemtest"
)

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	lang  string
	lines []string
}

// quickStartBlocks returns the fenced code blocks of README.md's
// "## Quick start" section, in order.
func quickStartBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "README.md"))
	require.NoError(t, err)
	defer f.Close()
	var (
		blocks []readmeBlock
		in     bool
		cur    *readmeBlock
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, line)
		case strings.HasPrefix(line, "#"):
			in = line == "## Quick start" // the section ends at the next heading
		case in && strings.HasPrefix(line, "```"):
			cur = &readmeBlock{lang: strings.TrimPrefix(line, "```")}
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, blocks, "README.md has a ## Quick start section with code blocks")
	return blocks
}

// TestReadmeQuickStart runs the README's quick start as written — the
// commands are read from README.md, so the two cannot drift apart — and
// checks that the trigger prints what the README shows. The only changes:
// the built binary stands for `go run ./cmd/stroem`, and `stroem dev` gets
// a fresh --data-dir and a free --listen address (the client finds it by
// STROEM_URL), both documented options, so the test neither writes into the
// repository nor needs port 8080.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	if skipAll {
		t.Skip("end-to-end tests are skipped under -short")
	}
	blocks := quickStartBlocks(t)

	// The shell blocks hold the commands, one a line; an untagged block
	// right after the one with the trigger is its output.
	const goRun = "go run ./cmd/stroem "
	var devArgs, triggerArgs []string
	var want []string
	for i, b := range blocks {
		if b.lang != "sh" {
			continue
		}
		for _, line := range b.lines {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			require.True(t, strings.HasPrefix(line, goRun), "a quick-start command this test does not know how to run: %q", line)
			args := strings.Fields(strings.TrimPrefix(line, goRun))
			switch args[0] {
			case "dev":
				devArgs = args
			case "trigger":
				triggerArgs = args
				require.Greater(t, len(blocks), i+1, "the trigger's output follows it")
				require.Equal(t, "", blocks[i+1].lang, "the trigger's output is an untagged block")
				want = blocks[i+1].lines
			default:
				t.Fatalf("a quick-start command this test does not know how to run: %q", line)
			}
		}
	}
	require.NotEmpty(t, devArgs, "the quick start starts stroem dev")
	require.NotEmpty(t, triggerArgs, "the quick start triggers a task")
	require.NotEmpty(t, want, "the quick start shows the trigger's output")

	addr := stroemtest.FreeAddr(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	dev := exec.Command(binary, append(devArgs, "--data-dir", dataDir, "--listen", addr)...)
	dev.Dir = repoRoot // the README runs from a clone's root
	devOut := &stroemtest.Buffer{}
	dev.Stdout, dev.Stderr = devOut, devOut
	dev.Env = subprocessEnv()
	dev.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, dev.Start())
	devDone := make(chan error, 1)
	go func() { devDone <- dev.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-dev.Process.Pid, syscall.SIGINT) // Ctrl-C, as the README says
		select {
		case err := <-devDone:
			if err != nil {
				t.Errorf("stroem dev did not exit cleanly on Ctrl-C: %v", err)
			}
		case <-time.After(waitFor):
			_ = syscall.Kill(-dev.Process.Pid, syscall.SIGKILL)
			<-devDone
			t.Errorf("stroem dev did not stop on Ctrl-C")
		}
		if t.Failed() {
			t.Logf("stroem dev output:\n%s", devOut.String())
		}
	})
	url := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, waitFor, 50*time.Millisecond, "stroem dev never became ready:\n%s", devOut.String())

	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	var stdout, stderr stroemtest.Buffer
	trig := exec.CommandContext(ctx, binary, triggerArgs...)
	trig.Dir = repoRoot
	trig.Env = subprocessEnv("STROEM_URL=" + url)
	trig.Stdout, trig.Stderr = &stdout, &stderr
	trig.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err := trig.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("%s exited %d\nstdout:\n%s\nstderr:\n%s", strings.Join(triggerArgs, " "), ee.ExitCode(), stdout.String(), stderr.String())
	}
	require.NoError(t, err)

	// The README's output: the "job ID" line (stderr, the id differs each
	// run), then the step lines as printed on stdout.
	jobLine := regexp.MustCompile(`^job [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	require.Regexp(t, jobLine, want[0], "the README's output starts with the job line")
	require.Regexp(t, `(?m)^job [0-9a-f-]{36}$`, stderr.String())
	require.Equal(t, strings.Join(want[1:], "\n")+"\n", stdout.String(), "the trigger prints what the README shows")
}
