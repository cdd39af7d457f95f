package runner

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// testWorkerEnv makes the test binary a stand-in worker (TestMain): it runs
// one step with a ShellRunner — under the real supervisor, the test binary
// re-executed once more — and prints its lines until it is killed.
const testWorkerEnv = "STROEM_RUNNER_TEST_WORKER"

type testWorkerSpec struct {
	WorkDir string            `json:"work_dir"`
	Cmd     string            `json:"cmd"`
	Env     map[string]string `json:"env"`
}

func testWorkerMain() int {
	var spec testWorkerSpec
	if err := json.Unmarshal([]byte(os.Getenv(testWorkerEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "test worker:", err)
		return 2
	}
	r := &ShellRunner{WorkDir: spec.WorkDir}
	res := r.Run(context.Background(), Step{JobID: "job", Name: "step", Attempt: 1,
		Spec: stroem.StepSpec{Cmd: spec.Cmd, Env: spec.Env}}, func(l stroem.PushLine) { fmt.Println(l.Text) })
	fmt.Println("step ended:", res.ExitCode, res.Error)
	return 0
}

// alive reports whether pid is a live process (a zombie is dead: it only
// waits for its parent to collect its status).
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// liveGroupMembers lists the live processes of process group pgid.
func liveGroupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !alive(pid) {
			continue
		}
		if g, err := syscall.Getpgid(pid); err == nil && g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// readPID waits for a step to write its pid to file.
func readPID(t *testing.T, file string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(file)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	}, 10*time.Second, 5*time.Millisecond, "%s never written", file)
	return pid
}

// killerStep starts a grandchild that traps SIGTERM and a process that
// leaves the group with setsid, writes every pid to $PIDS, and waits.
const killerStep = `
sh -c 'trap "echo TERM ignored; touch \"\$PIDS/termed\"" TERM; echo $$ > "$PIDS/trapper.tmp"; mv "$PIDS/trapper.tmp" "$PIDS/trapper"; while :; do sleep 1; done' &
setsid sh -c 'echo $$ > "$PIDS/escapee.tmp"; mv "$PIDS/escapee.tmp" "$PIDS/escapee"; exec sleep 100' &
echo $$ > "$PIDS/main.tmp"; mv "$PIDS/main.tmp" "$PIDS/main"
echo $PPID > "$PIDS/parent.tmp"; mv "$PIDS/parent.tmp" "$PIDS/parent"
wait
`

func TestStepDiesWithItsWorker(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	pids := t.TempDir()
	spec, err := json.Marshal(testWorkerSpec{WorkDir: t.TempDir(), Cmd: killerStep, Env: map[string]string{"PIDS": pids}})
	require.NoError(t, err)
	worker := exec.Command(os.Args[0], "-test.run=^$")
	worker.Env = append(os.Environ(), testWorkerEnv+"="+string(spec))
	out, err := worker.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, worker.Start())
	t.Cleanup(func() { _ = worker.Process.Kill(); _ = worker.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	main := readPID(t, filepath.Join(pids, "main"))
	trapper := readPID(t, filepath.Join(pids, "trapper"))
	escapee := readPID(t, filepath.Join(pids, "escapee"))
	supervisor := readPID(t, filepath.Join(pids, "parent"))
	t.Cleanup(func() { // never leave them behind, even when the test fails
		for _, p := range []int{escapee, trapper, main, supervisor} {
			if alive(p) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
	})
	// The step really runs under the supervisor, a child of the worker.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", supervisor))
	require.NoError(t, err)
	require.Equal(t, supervisorArg0, strings.TrimRight(string(cmdline), "\x00"))
	ppid, _, ok := procStat(supervisor)
	require.True(t, ok)
	require.Equal(t, worker.Process.Pid, ppid)
	require.NotEqual(t, main, mustPgid(t, escapee), "the escapee left the step's group")
	require.GreaterOrEqual(t, len(liveGroupMembers(main)), 2, "sh and the trapper, in the step's group")

	killed := time.Now()
	require.NoError(t, worker.Process.Signal(syscall.SIGKILL))
	_ = worker.Wait()
	stepGone := func() bool {
		return !alive(main) && !alive(trapper) && !alive(escapee) && !alive(supervisor) &&
			len(liveGroupMembers(main)) == 0
	}
	// The supervisor SIGKILLs at once, with no grace: how soon they are gone
	// is scheduling latency (milliseconds on an idle machine, the FIGURE),
	// not a budget of the design, so the bound is only "long before the
	// trapper's loop or the escapee's sleep 100 would end by themselves".
	// That the kill was immediate is asserted below: the trapper never saw
	// a SIGTERM.
	if !assert.Eventually(t, stepGone, 30*time.Second, 2*time.Millisecond, "a process of the step outlived its worker") {
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", supervisor))
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", supervisor))
		t.Fatalf("alive after 30 s: main %v, trapper %v, escapee %v, supervisor %v (%s %s, descendants %v), group %v",
			alive(main), alive(trapper), alive(escapee), alive(supervisor), st, wchan, descendants(supervisor), liveGroupMembers(main))
	}
	t.Logf("FIGURE worker SIGKILL → every process of the step gone: %v", time.Since(killed).Round(time.Millisecond))
	require.NoFileExists(t, filepath.Join(pids, "termed"), "the step was killed outright (SIGKILL), not asked to stop (SIGTERM) and given a grace")
	for l := range lines {
		require.NotContains(t, l, "step ended", "the worker died before the step ended")
	}
}

func mustPgid(t *testing.T, pid int) int {
	t.Helper()
	g, err := syscall.Getpgid(pid)
	require.NoError(t, err)
	return g
}

func TestSetsidEscapeeDiesWithTheStep(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	r := newShell(t)
	res, c := run(t, r, cmdStep(escapeeStep))
	require.True(t, res.Succeeded(), res.Error)
	pid, err := strconv.Atoi(firstLine(t, c))
	require.NoError(t, err)
	require.False(t, alive(pid), "a process that left the step's group with setsid was killed when the step ended")
}

func TestSupervisorKilledTakesTheStepDown(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	c := newCaptured()
	done := make(chan Result, 1)
	go func() {
		done <- r.Run(context.Background(), Step{JobID: "j", Name: "s", Attempt: 1,
			Spec: stroem.StepSpec{Cmd: `echo $PPID $$; sleep 100 & wait`}}, c.sink)
	}()
	var supervisor, main int
	_, err := fmt.Sscan(<-c.first, &supervisor, &main)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(supervisor, syscall.SIGKILL))
	var res Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its supervisor was killed")
	}
	if res.Cleanup != nil {
		res.Cleanup()
	}
	require.False(t, res.Succeeded())
	require.Contains(t, res.Error, "the step supervisor died")
	require.Eventually(t, func() bool { return len(liveGroupMembers(main)) == 0 },
		time.Second, 5*time.Millisecond, "the step's group outlived its supervisor")
}

func TestUnsupervisedStepsStillDieWithTheirGroup(t *testing.T) {
	t.Parallel()
	r := newShell(t)
	r.NoSupervisor = true
	ctx, cancel := context.WithCancel(context.Background())
	c := newCaptured()
	done := make(chan Result, 1)
	go func() {
		done <- r.Run(ctx, Step{JobID: "j", Name: "s", Attempt: 1,
			Spec: stroem.StepSpec{Cmd: `echo $PPID $$; sh -c 'trap "" TERM; sleep 100' & wait`}}, c.sink)
	}()
	var parent, main int
	_, err := fmt.Sscan(<-c.first, &parent, &main)
	require.NoError(t, err)
	require.Equal(t, os.Getpid(), parent, "started by the worker itself")
	cancel()
	res := <-done
	if res.Cleanup != nil {
		res.Cleanup()
	}
	require.True(t, res.Cancelled)
	require.Empty(t, liveGroupMembers(main))

	// And an exit code still comes through.
	res, _ = run(t, r, cmdStep(`exit 7`))
	require.Equal(t, 7, res.ExitCode)
}

// The supervisor's reader parses messages however the stream cuts or joins
// them, with its buffers reused from one message to the next.
func TestControlReaderSplitAndJoinedMessages(t *testing.T) {
	t.Parallel()
	fds, err := controlSocketpair()
	require.NoError(t, err)
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "ctl")
		c, err := net.FileConn(f)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		t.Cleanup(func() { _ = c.Close() })
		return c.(*net.UnixConn)
	}
	w, rc := conn(fds[0]), conn(fds[1])
	out, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer out.Close()

	big := []byte(strings.Repeat("s", 100<<10)) // more than one read
	require.NoError(t, sendCtl(w, msgStep, []byte(`{"path":"a"}`), out, out))
	require.NoError(t, sendCtl(w, msgTerm, nil))
	require.NoError(t, sendCtl(w, msgStep, big, out, out))
	// One message written in two pieces, the second with the next message.
	framed := func(kind byte, payload string) []byte {
		return append([]byte{kind, 0, 0, 0, byte(len(payload))}, payload...)
	}
	half := framed(msgKill, "xyz")
	_, err = w.Write(half[:3])
	require.NoError(t, err)
	_, err = w.Write(append(half[3:], framed(msgTerm, "")...))
	require.NoError(t, err)
	require.NoError(t, w.CloseWrite())

	r := connReader(rc)
	var got []string
	for {
		m, err := r.next()
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
		closeFds(m.fds...)
		got = append(got, fmt.Sprintf("%c %d %d", m.kind, len(m.payload), len(m.fds)))
		if m.kind == msgStep && len(m.payload) == len(big) {
			require.Equal(t, big, m.payload)
		}
	}
	require.Equal(t, []string{"S 12 2", "T 0 0", fmt.Sprintf("S %d 2", len(big)), "K 3 0", "T 0 0"}, got)
}

// daemonStep starts a double-forked daemon that also leaves the session
// (the shell in between exits at once, so the daemon is re-parented), waits
// until it runs, and ends: the supervisor's sweep must find it.
const daemonStep = `mkfifo up
( setsid sh -c 'echo $$; echo > up; exec sleep 100' & )
read x < up`

func TestDoubleForkedDaemonDiesWithTheStep(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	if _, err := exec.LookPath("mkfifo"); err != nil {
		t.Skip("mkfifo not installed")
	}
	requireDaemonKilled(t, newShell(t))
}

func requireDaemonKilled(t *testing.T, r *ShellRunner) {
	t.Helper()
	res, c := run(t, r, cmdStep(daemonStep))
	require.True(t, res.Succeeded(), res.Error)
	pid, err := strconv.Atoi(<-c.first)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// Run returned after the supervisor reported the step's processes
	// killed and reaped: the daemon is gone, not even a zombie.
	require.NoDirExists(t, fmt.Sprintf("/proc/%d", pid), "a double-forked daemon outlived its step")
}

// idleSupervisorEpolls counts the epoll instances an idle pooled
// supervisor holds: the Linux loop has one of its own besides the
// runtime's.
func idleSupervisorEpolls(t *testing.T) int {
	t.Helper()
	supervisors.mu.Lock()
	require.NotEmpty(t, supervisors.idle)
	pid := supervisors.idle[len(supervisors.idle)-1].cmd.Process.Pid
	supervisors.mu.Unlock()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	n := 0
	for _, fd := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); target == "anon_inode:[eventpoll]" {
			n++
		}
	}
	return n
}

// idleSupervisorPIDs lists the pooled supervisors.
func idleSupervisorPIDs() []int {
	supervisors.mu.Lock()
	defer supervisors.mu.Unlock()
	var pids []int
	for _, s := range supervisors.idle {
		pids = append(pids, s.cmd.Process.Pid)
	}
	return pids
}

// threadsOf lists the ids of process pid's threads.
func threadsOf(t *testing.T, pid int) []int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	require.NoError(t, err)
	var tids []int
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		require.NoError(t, err)
		tids = append(tids, tid)
	}
	return tids
}

// Both supervisor loops (the Linux one, the portable fallback) run steps
// alike: exit codes, output, a script without a shebang, a start error,
// cancellation through the group, and the sweep; none of a supervisor's
// threads exits meanwhile. Not parallel: it chooses
// the loop of the supervisors it starts.
func TestSupervisorLoops(t *testing.T) {
	if _, err := exec.LookPath("setsid"); err != nil {
		t.Skip("setsid not installed")
	}
	epolls := map[bool]int{}
	for _, portable := range []bool{false, true} {
		t.Run(fmt.Sprintf("portable=%v", portable), func(t *testing.T) {
			drainSupervisors()
			supervisorTestPortable.Store(portable)
			t.Cleanup(func() { supervisorTestPortable.Store(false); drainSupervisors() })
			r := newShell(t)

			res, c := run(t, r, cmdStep(`echo out; echo err >&2; exit 7`))
			require.Equal(t, 7, res.ExitCode)
			require.Equal(t, []string{"out"}, c.texts(stroem.Stdout))
			require.Contains(t, res.Error, "err")
			epolls[portable] = idleSupervisorEpolls(t)
			threads := map[int][]int{} // the idle supervisors' threads
			for _, pid := range idleSupervisorPIDs() {
				threads[pid] = threadsOf(t, pid)
			}

			// A step larger than the control socket's buffer (about 200
			// KiB) reaches the supervisor in parts.
			big := cmdStep(`echo ${#B0} ${#B5}`)
			big.Spec.Env = map[string]string{}
			for i := range 6 {
				big.Spec.Env[fmt.Sprint("B", i)] = strings.Repeat("x", 100<<10)
			}
			res, c = run(t, r, big)
			require.True(t, res.Succeeded(), res.Error)
			require.Equal(t, []string{"102400 102400"}, c.texts(stroem.Stdout))

			ws := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(ws, "noshebang"), []byte("echo from script\n"), 0o755))
			res, c = run(t, r, Step{Workspace: ws, Spec: stroem.StepSpec{Script: "noshebang"}})
			require.True(t, res.Succeeded(), res.Error)
			require.Equal(t, []string{"from script"}, c.texts(stroem.Stdout))

			noShell := newShell(t)
			noShell.Shell = "/nonexistent/sh"
			idle := idleSupervisorPIDs()
			res, _ = run(t, noShell, cmdStep(`true`))
			require.False(t, res.Succeeded())
			require.Equal(t, -1, res.ExitCode)
			require.Equal(t, "start: fork/exec /nonexistent/sh: no such file or directory", res.Error)
			require.Equal(t, idle, idleSupervisorPIDs(), "the supervisor that could not start it serves again")

			// Cancelled: SIGTERM to the group, which traps it; SIGKILL after
			// the grace.
			ctx, cancel := context.WithCancel(context.Background())
			c = newCaptured()
			done := make(chan Result, 1)
			go func() {
				done <- r.Run(ctx, Step{JobID: "j", Name: "s", Attempt: 1,
					Spec: stroem.StepSpec{Cmd: `trap "" TERM; echo $$; sleep 100 & wait`}}, c.sink)
			}()
			main, err := strconv.Atoi(<-c.first)
			require.NoError(t, err)
			cancel()
			res = <-done
			if res.Cleanup != nil {
				res.Cleanup()
			}
			require.True(t, res.Cancelled)
			require.Empty(t, liveGroupMembers(main))

			// No thread of a supervisor exited while it ran these steps: the
			// one that forked a step outlived it, so Pdeathsig was not sent
			// early (supervise_main.go says why no thread is locked).
			kept := 0
			for _, pid := range idleSupervisorPIDs() {
				if before, ok := threads[pid]; ok {
					kept++
					require.Subset(t, threadsOf(t, pid), before, "supervisor %d lost a thread", pid)
				}
			}
			require.NotZero(t, kept, "a supervisor idle after the first step served the others")

			requireDaemonKilled(t, r)
		})
	}
	require.Equal(t, epolls[true]+1, epolls[false], "the Linux loop ran where asked, the portable loop where asked")
}

// A step that kills its supervisor at once may do so before the supervisor
// has written the step's pid: the worker then has no word of the start.
// The step ran all the same: it is never started again (on another
// supervisor, when the dead one came from the pool), the attempt fails as
// for a supervisor killed later, and what the step printed is kept. Each
// run of the step appends one line to a ledger; the race goes either way
// from run to run, and no run may append two.
func TestStepThatKillsItsSupervisorAtOnceRunsOnce(t *testing.T) {
	t.Parallel()
	ledger := filepath.Join(t.TempDir(), "ledger")
	r := newShell(t)
	const runs = 20
	for i := range runs {
		// A step first, so that the next one may get a pooled supervisor.
		ok, _ := run(t, r, Step{Spec: stroem.StepSpec{Cmd: "true"}})
		require.True(t, ok.Succeeded(), ok.Error)
		res, c := run(t, r, Step{Spec: stroem.StepSpec{Cmd: fmt.Sprintf(`echo %d >> %s; echo ran; kill -KILL $PPID; sleep 5`, i, ledger)}})
		require.False(t, res.Succeeded())
		require.Contains(t, res.Error, "the step supervisor died", "run %d", i)
		require.Equal(t, []string{"ran"}, c.texts(stroem.Stdout), "run %d: its output is kept", i)
		lines, err := os.ReadFile(ledger)
		require.NoError(t, err)
		require.Equal(t, i+1, strings.Count(string(lines), "\n"), "run %d: the step ran once:\n%s", i, lines)
	}
}
