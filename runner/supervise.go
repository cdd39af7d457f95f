package runner

// A step's processes die with their worker, whatever kills the worker.
//
// Why a supervising process. Each step runs in a process group of its own,
// so that cancel and timeout can signal everything it started. Nothing ties
// that group to the worker: a worker killed with SIGKILL or by the OOM killer
// used to leave its steps running, while the server declared them lost and
// ran them again elsewhere — the same step twice at once. The ways to tie a
// child's life to its parent's on Linux, and why this package uses the one it
// does:
//
//   - Pdeathsig (PR_SET_PDEATHSIG) alone: fires when the *thread* that forked
//     the child exits, not the process (golang/go#27505). The Go runtime
//     ends idle threads, so a step started from a goroutine that happened to
//     run on a thread that later exits would be killed for nothing; and it
//     only reaches the direct child, never grandchildren.
//   - A cgroup per step: catches everything, even processes that left the
//     group with setsid, but needs a delegated cgroup v2 subtree the worker
//     can write (root, or systemd Delegate=yes), which most installations do
//     not have.
//   - A small supervising parent (chosen): for each step the worker
//     re-executes its own binary (/proc/self/exe) in a hidden supervisor
//     mode (SupervisorMain). The supervisor starts the step in its own
//     process group and holds the read end of a pipe whose only write end is
//     in the worker. However the worker dies, the kernel closes that end;
//     the supervisor reads EOF and SIGKILLs the step's group and every
//     other descendant it has. The supervisor is a child subreaper
//     (PR_SET_CHILD_SUBREAPER), so processes whose parent died — double
//     forks, setsid daemons — are re-parented to it rather than to init, and
//     it finds them by walking its process tree in /proc. It needs no
//     privilege and no configuration.
//
// Layers: the supervisor's thread that forks the step never exits (it is
// locked to the supervisor's main goroutine), so Pdeathsig=SIGKILL on the
// step's main process is reliable there and kills it if the supervisor
// itself is killed. The supervisor lives in a process group of its own, so a
// signal to the worker's group (a terminal's Ctrl-C, `kill -- -pgid`) does
// not reach it, and it ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT: only the
// worker (through the pipe) or SIGKILL ends it.
//
// Limits (documented in docs/reliability.md):
//
//   - If the supervisor itself is SIGKILLed while the worker lives, the
//     step's main process dies (Pdeathsig) and the worker kills the group,
//     but grandchildren that left the group survive.
//   - A process that escapes the supervisor's process tree altogether —
//     started through another service (systemd-run, a container runtime,
//     at) — is not the step's any more and is not killed. A cgroup (the
//     worker's container or systemd unit with KillMode=control-group)
//     catches those when the worker's unit stops.
//   - If the whole host or the kernel dies, the steps die with it; a worker
//     that is alive but cut off from the server keeps running its steps
//     (see docs/reliability.md for how long).
//
// Costs: one extra process per running step (the stroem binary, a few MB
// resident), and its start before each step.
//
// The protocol between worker and supervisor: fd 3 of the supervisor is the
// worker's control pipe — one JSON line (supervisorSpec), then one byte per
// command ('T' SIGTERM, 'K' SIGKILL to the step's group); EOF means the
// worker is gone. fd 4 is the status pipe back — JSON lines
// (supervisorMsg): the step's pid, or why it could not start, and, once the
// step's main process has exited and everything else of the step is killed,
// its wait status. fds 1 and 2 are the step's stdout and stderr pipes.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
)

const (
	// supervisorEnv marks a process started as a step supervisor; its value
	// is the protocol version, so a binary of another version refuses.
	supervisorEnv     = "STROEM_STEP_SUPERVISOR"
	supervisorVersion = "1"
	// supervisorArg0 is the supervisor's argv[0], what `ps` shows.
	supervisorArg0 = "stroem-step-supervisor"

	cmdTerm = 'T'
	cmdKill = 'K'
)

// supervisorSpec is the step to start, sent by the worker.
type supervisorSpec struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
	Dir  string   `json:"dir"`
	Env  []string `json:"env"`
	// NoExecShell runs Path with this shell when the kernel cannot execute
	// it (ENOEXEC: an executable script without a #! line).
	NoExecShell string `json:"noexec_shell,omitempty"`
}

// supervisorMsg is one line of the status pipe.
type supervisorMsg struct {
	PID        int    `json:"pid,omitempty"`
	StartError string `json:"start_error,omitempty"`
	// Done: the step's main process exited with Status (a wait status) and
	// the rest of the step is gone.
	Done   bool   `json:"done,omitempty"`
	Status uint32 `json:"status,omitempty"`
}

// supervisorReady is set by SupervisorMain in a binary that can be started
// as a supervisor: only then may ShellRunner re-execute its own binary.
var supervisorReady atomic.Bool

// SupervisorMain must be the first call in main (and in TestMain of tests
// that run steps). Started as a step supervisor, the process supervises one
// step and exits without returning; otherwise it returns at once, and the
// ShellRunners of this process start every step under a supervisor so that
// it dies with the worker. A program that never calls it starts steps
// directly (they then outlive a worker killed with SIGKILL).
func SupervisorMain() {
	v, ok := os.LookupEnv(supervisorEnv)
	if !ok {
		supervisorReady.Store(true)
		return
	}
	if v != supervisorVersion {
		fmt.Fprintf(os.Stderr, "stroem: %s=%q: this binary speaks supervisor protocol %s\n", supervisorEnv, v, supervisorVersion)
		os.Exit(2)
	}
	os.Exit(supervise())
}

// exitStatus is how a step's main process ended.
type exitStatus struct {
	code   int    // exit status, 128+N for signal N, -1 when unknown
	signal string // "signal killed" when a signal ended it
	err    error  // the process could not be waited for
}

func statusOf(ws syscall.WaitStatus) exitStatus {
	if ws.Signaled() {
		return exitStatus{code: 128 + int(ws.Signal()), signal: "signal " + ws.Signal().String()}
	}
	return exitStatus{code: ws.ExitStatus()}
}

// stepProcess is a started step: its main process and what it starts.
type stepProcess interface {
	// exited is closed when the main process has exited.
	exited() <-chan struct{}
	// signal sends sig to the step's process group while the main process
	// has not been reaped.
	signal(sig syscall.Signal)
	// finish, after exited, kills whatever of the step is left, reaps the
	// main process and says how it ended.
	finish() exitStatus
}

// start starts cmd (stdout and stderr already set) as the step's main
// process, under a supervisor when this binary can be one.
func (r *ShellRunner) start(cmd *exec.Cmd, step Step) (stepProcess, error) {
	if r.NoSupervisor || !supervisorReady.Load() {
		return startDirect(r, cmd, step)
	}
	return startSupervised(cmd, shellOf(r.Shell))
}

// supervised is the worker's side of a supervised step.
type supervised struct {
	sup    *exec.Cmd
	ctl    *os.File // control pipe: commands; closing it kills the step
	done   chan struct{}
	status exitStatus // valid after done
	pid    int

	mu     sync.Mutex
	closed bool
}

func startSupervised(cmd *exec.Cmd, noExecShell string) (*supervised, error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start the step supervisor: %w", err)
	}
	stR, stW, err := os.Pipe()
	if err != nil {
		closeAll(ctlR, ctlW)
		return nil, fmt.Errorf("start the step supervisor: %w", err)
	}
	sup := &exec.Cmd{
		Path: selfExe(),
		Args: []string{supervisorArg0},
		// GORACE: a binary built with -race (tests) otherwise sleeps 1 s
		// before it exits; other builds ignore it.
		Env:         []string{supervisorEnv + "=" + supervisorVersion, "GOMAXPROCS=1", "GORACE=atexit_sleep_ms=0"},
		Stdout:      cmd.Stdout,
		Stderr:      cmd.Stderr,
		ExtraFiles:  []*os.File{ctlR, stW},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	err = sup.Start()
	closeAll(ctlR, stW) // the supervisor holds its own copies
	if err != nil {
		closeAll(ctlW, stR)
		return nil, fmt.Errorf("start the step supervisor: %w", err)
	}
	s := &supervised{sup: sup, ctl: ctlW, done: make(chan struct{})}
	spec, _ := json.Marshal(supervisorSpec{Path: cmd.Path, Args: cmd.Args, Dir: cmd.Dir, Env: cmd.Env, NoExecShell: noExecShell})
	_, werr := ctlW.Write(append(spec, '\n'))
	status := bufio.NewScanner(stR)
	status.Buffer(make([]byte, 4096), 1<<20)
	var first supervisorMsg
	if werr == nil && status.Scan() {
		werr = json.Unmarshal(status.Bytes(), &first)
	} else if werr == nil {
		werr = errors.New("it ended without an answer")
	}
	if werr != nil || first.StartError != "" {
		s.close()
		waitErr := sup.Wait()
		stR.Close()
		if first.StartError != "" {
			return nil, errors.New(first.StartError)
		}
		if waitErr != nil {
			werr = fmt.Errorf("%w (%v)", werr, waitErr)
		}
		return nil, fmt.Errorf("start the step supervisor: %w", werr)
	}
	s.pid = first.PID
	go func() {
		defer close(s.done)
		defer stR.Close()
		for status.Scan() {
			var m supervisorMsg
			if json.Unmarshal(status.Bytes(), &m) == nil && m.Done {
				s.status = statusOf(syscall.WaitStatus(m.Status))
				return
			}
		}
		// The supervisor died without a report (killed): its Pdeathsig has
		// killed the main process; kill what is left of the group.
		s.status = exitStatus{code: -1}
		if s.pid > 0 {
			_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		}
		werr := sup.Wait()
		s.status.err = fmt.Errorf("the step supervisor died: %v", werr)
	}()
	return s, nil
}

func (s *supervised) exited() <-chan struct{} { return s.done }

func (s *supervised) signal(sig syscall.Signal) {
	c := byte(cmdTerm)
	if sig == syscall.SIGKILL {
		c = cmdKill
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		_, _ = s.ctl.Write([]byte{c})
	}
}

func (s *supervised) finish() exitStatus {
	<-s.done
	s.close()
	if s.status.err == nil {
		if err := s.sup.Wait(); err != nil {
			s.status.err = fmt.Errorf("the step supervisor failed: %w", err)
		}
	}
	return s.status
}

func (s *supervised) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		_ = s.ctl.Close()
	}
}

// selfExe is the path that re-executes this binary: /proc/self/exe on
// Linux, which still works when the binary was replaced on disk (an upgrade)
// while the worker runs.
func selfExe() string {
	if runtime.GOOS == "linux" {
		return "/proc/self/exe"
	}
	if p, err := os.Executable(); err == nil {
		return p
	}
	return os.Args[0]
}
