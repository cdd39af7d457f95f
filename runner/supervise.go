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
//     the child exits, not the process (golang/go#27505). A Go thread
//     exits when a goroutine locked to it ends, so in the worker — with
//     its libraries' goroutines — a step started from a thread that later
//     exits would be killed for nothing; and it only reaches the direct
//     child, never grandchildren.
//   - A cgroup per step: catches everything, even processes that left the
//     group with setsid, but needs a delegated cgroup v2 subtree the worker
//     can write (root, or systemd Delegate=yes), which most installations do
//     not have.
//   - A small supervising parent (chosen): the worker re-executes its own
//     binary (/proc/self/exe) in a hidden supervisor mode (SupervisorMain),
//     which starts the step in its own process group and holds one end of a
//     Unix socket whose other end only the worker has. However the worker
//     dies, the kernel closes its end; the supervisor reads EOF and
//     SIGKILLs the step's group and every other descendant it has.
//     Supervisors are pooled: each runs one step at a time and many steps
//     in its life, because starting one costs ~45 ms of CPU (a Go binary of
//     this size) — per step, that made 240 short steps 8× slower on a loaded
//     machine. The supervisor is a child subreaper
//     (PR_SET_CHILD_SUBREAPER), so processes whose parent died — double
//     forks, setsid daemons — are re-parented to it rather than to init, and
//     it finds them by walking its process tree in /proc (only when a child
//     is left after the step's main process was reaped: every descendant's
//     chain of parents ends in one of its children). It needs no privilege
//     and no configuration. On Linux it runs its steps from one goroutine
//     with pidfds and an epoll instance of its own
//     (supervise_fast_linux.go); elsewhere, or on kernels without pidfds,
//     a portable loop does the same with os/exec.
//
// Layers: the supervisor's threads never exit (none of its goroutines ends
// locked to one: supervise_main.go), so Pdeathsig=SIGKILL on the
// step's main process is reliable there and kills it if the supervisor
// itself is killed. The supervisor lives in a process group of its own, so a
// signal to the worker's group (a terminal's Ctrl-C, `kill -- -pgid`) does
// not reach it, and it ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT: only the
// worker (through the socket) or SIGKILL ends it.
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
// Costs: one supervisor process per slot of the worker (the stroem binary,
// ~27 MB resident of which ~3 MB its own, the rest the binary's pages,
// shared with the worker and the other supervisors), kept
// while the worker runs. A worker starts them in the background once it
// has registered (prestartSupervisors), so that its first steps do not wait
// for them; a step that finds none idle still starts its own.
//
// The protocol between worker and supervisor: fd 3 of the supervisor is the
// control socket (supervise_proto.go) — a step (supervisorSpec, with the
// step's stdout and stderr as SCM_RIGHTS), then commands for it (SIGTERM,
// SIGKILL to the step's group); EOF means the worker is gone. fd 4 is the
// status pipe back — lines (supervisorMsg): per step its pid, or why it
// could not start, and, once the step's main process has exited and
// everything else of the step is killed, its wait status.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	supervisorVersion = "2"
	// supervisorArg0 is the supervisor's argv[0], what `ps` shows.
	supervisorArg0 = "stroem-step-supervisor"
	// supervisorPortableEnv makes a supervisor run the portable loop
	// where it would run the Linux one (supervise_fast_linux.go): only the
	// tests set it (supervisorTestPortable), to keep both loops tested. The
	// supervisor's environment is the fixed one newSupervisor builds;
	// nothing a step does reaches it.
	supervisorPortableEnv = "STROEM_STEP_SUPERVISOR_PORTABLE"
)

// supervisorTestPortable makes the supervisors started from now on run
// the portable loop; tests only.
var supervisorTestPortable atomic.Bool

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

// supervisorMsg is one line of the status pipe (supervise_proto.go).
type supervisorMsg struct {
	PID        int
	StartError string
	// Done: the step's main process exited with Status (a wait status) and
	// the rest of the step is gone.
	Done   bool
	Status uint32
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
	// swept: a supervisor reported every other process of the step killed
	// (a step started directly, or whose supervisor died, may have left
	// one running outside its group).
	swept bool
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

// prestart starts n supervisors ahead of the steps where steps run under
// one (prestartSupervisors); the returned func stops that.
func (r *ShellRunner) prestart(n int, log *slog.Logger) (stop func()) {
	if r.NoSupervisor || !supervisorReady.Load() {
		return func() {}
	}
	return prestartSupervisors(n, log)
}

// supervisor is a supervisor process as the worker sees it. Supervisors are
// kept in a pool and run one step after another: starting one costs tens of
// milliseconds of CPU (a Go binary of this size), too much to pay per step.
type supervisor struct {
	cmd    *exec.Cmd
	ctl    *net.UnixConn // control socket: steps and signals; closing it kills the step
	status *bufio.Scanner
	stR    *os.File
	mu     sync.Mutex // serialises writes to ctl
}

// maxIdleSupervisors bounds the pool; more supervisors than concurrent
// steps are never started.
const maxIdleSupervisors = 64

var supervisors struct {
	mu   sync.Mutex
	idle []*supervisor
	// live counts the supervisors started and not yet ended, idle or
	// running a step; want is what the running workers asked to keep
	// started (their slots), and starting what prestartSupervisors is
	// starting for them now.
	live, want, starting int
}

// newSupervisor starts a supervisor process.
func newSupervisor() (*supervisor, error) {
	fds, err := controlSocketpair()
	if err != nil {
		return nil, err
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "supervisor control"), os.NewFile(uintptr(fds[1]), "control")
	stR, stW, err := os.Pipe()
	if err != nil {
		closeAll(mine, theirs)
		return nil, err
	}
	cmd := &exec.Cmd{
		Path: selfExe(),
		Args: []string{supervisorArg0},
		// GORACE: a binary built with -race (tests) otherwise sleeps 1 s
		// before it exits; other builds ignore it.
		Env:         []string{supervisorEnv + "=" + supervisorVersion, "GOMAXPROCS=1", "GORACE=atexit_sleep_ms=0"},
		Stderr:      os.Stderr, // only a crash of the supervisor writes here
		ExtraFiles:  []*os.File{theirs, stW},
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if supervisorTestPortable.Load() {
		cmd.Env = append(cmd.Env, supervisorPortableEnv+"=1")
	}
	err = cmd.Start()
	closeAll(theirs, stW) // the supervisor holds its own copies
	if err != nil {
		closeAll(mine, stR)
		return nil, err
	}
	fc, err := net.FileConn(mine)
	_ = mine.Close()
	ctl, ok := fc.(*net.UnixConn)
	if err != nil || !ok {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		stR.Close()
		return nil, fmt.Errorf("control socket: %v", err)
	}
	sc := bufio.NewScanner(stR)
	sc.Buffer(make([]byte, 4096), 1<<20)
	supervisors.mu.Lock()
	supervisors.live++
	supervisors.mu.Unlock()
	return &supervisor{cmd: cmd, ctl: ctl, status: sc, stR: stR}, nil
}

// ended takes a supervisor that has ended (or is ending) out of the count.
func (s *supervisor) ended() {
	supervisors.mu.Lock()
	supervisors.live--
	supervisors.mu.Unlock()
}

// prestartSupervisors asks for n more supervisors to be kept started, and
// starts them in the background, one after another, until the pool holds
// as many as every running worker's asks together; steps that need one
// meanwhile start their own, as without it. Starting a supervisor costs
// tens of milliseconds of CPU (package initialisation of this binary):
// paid when the worker starts, not by its first steps. The returned func
// stops the starting and takes the n back; the supervisors started stay in
// the pool (maxIdleSupervisors).
func prestartSupervisors(n int, log *slog.Logger) (stop func()) {
	supervisors.mu.Lock()
	supervisors.want += n
	supervisors.mu.Unlock()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			default:
			}
			supervisors.mu.Lock()
			short := supervisors.live+supervisors.starting < min(supervisors.want, maxIdleSupervisors)
			if short {
				supervisors.starting++ // two workers starting at once start no more than both asked
			}
			supervisors.mu.Unlock()
			if !short {
				return
			}
			s, err := newSupervisor()
			supervisors.mu.Lock()
			supervisors.starting--
			supervisors.mu.Unlock()
			if err != nil {
				// The first step will say so, with its own error.
				log.Warn("could not start a step supervisor ahead of the steps", "err", err)
				return
			}
			putSupervisor(s)
		}
	}()
	return func() {
		close(quit)
		<-done
		supervisors.mu.Lock()
		supervisors.want -= n
		supervisors.mu.Unlock()
	}
}

// discard ends a supervisor that is not returned to the pool.
func (s *supervisor) discard() {
	s.mu.Lock()
	_ = s.ctl.Close() // the supervisor kills what runs and exits
	s.mu.Unlock()
	_ = s.cmd.Wait()
	_ = s.stR.Close()
	s.ended()
}

func (s *supervisor) send(kind byte, payload []byte, files ...*os.File) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sendCtl(s.ctl, kind, payload, files...)
}

// readMsg reads the next status line.
func (s *supervisor) readMsg() (supervisorMsg, error) {
	if !s.status.Scan() {
		if err := s.status.Err(); err != nil {
			return supervisorMsg{}, err
		}
		return supervisorMsg{}, errors.New("it ended without an answer")
	}
	return parseStatusLine(s.status.Bytes())
}

// takeSupervisor returns an idle supervisor, or a new one.
func takeSupervisor() (sup *supervisor, fresh bool, err error) {
	supervisors.mu.Lock()
	if n := len(supervisors.idle); n > 0 {
		sup = supervisors.idle[n-1]
		supervisors.idle = supervisors.idle[:n-1]
	}
	supervisors.mu.Unlock()
	if sup != nil {
		return sup, false, nil
	}
	sup, err = newSupervisor()
	return sup, true, err
}

func putSupervisor(s *supervisor) {
	supervisors.mu.Lock()
	if len(supervisors.idle) < maxIdleSupervisors {
		supervisors.idle = append(supervisors.idle, s)
		s = nil
	}
	supervisors.mu.Unlock()
	if s != nil {
		s.discard()
	}
}

// supervised is the worker's side of a supervised step.
type supervised struct {
	sup    *supervisor
	done   chan struct{}
	status exitStatus // valid after done
	broken bool       // the supervisor died or misbehaved: not reused
	pid    int
}

func startSupervised(cmd *exec.Cmd, noExecShell string) (*supervised, error) {
	stdout, ok1 := cmd.Stdout.(*os.File)
	stderr, ok2 := cmd.Stderr.(*os.File)
	if !ok1 || !ok2 {
		return nil, errors.New("start the step supervisor: the step's output must be files")
	}
	spec, err := json.Marshal(supervisorSpec{Path: cmd.Path, Args: cmd.Args, Dir: cmd.Dir, Env: cmd.Env, NoExecShell: noExecShell})
	if err != nil {
		return nil, fmt.Errorf("start the step supervisor: %w", err)
	}
	for {
		sup, fresh, err := takeSupervisor()
		if err != nil {
			return nil, fmt.Errorf("start the step supervisor: %w", err)
		}
		if err := sup.send(msgStep, spec, stdout, stderr); err != nil {
			sup.discard()
			if !fresh {
				continue // an idle one that died meanwhile: it never had the step
			}
			return nil, fmt.Errorf("start the step supervisor: %w", err)
		}
		first, err := sup.readMsg()
		if err != nil {
			// It had the step and died before it said so: the step may be
			// running, or have run (one that kills its supervisor at once
			// does, before the supervisor writes its pid). It is never
			// started again; its output is still read (errSupervisorDied).
			sup.discard()
			return nil, errSupervisorDied{err}
		}
		if first.StartError != "" {
			putSupervisor(sup)
			return nil, errors.New(first.StartError)
		}
		s := &supervised{sup: sup, done: make(chan struct{}), pid: first.PID}
		go s.wait()
		return s, nil
	}
}

// errSupervisorDied is startSupervised's error when the supervisor died
// after it had the step but before it reported the step's start: the step
// may have run. The attempt fails (no second start); the step's group
// cannot be killed (its pid never came), but its main process died with the
// supervisor (Pdeathsig).
type errSupervisorDied struct{ err error }

func (e errSupervisorDied) Error() string {
	return "the step supervisor died as the step started: " + e.err.Error()
}

// wait reads the step's end from the supervisor.
func (s *supervised) wait() {
	defer close(s.done)
	m, err := s.sup.readMsg()
	if err == nil && m.Done {
		s.status = statusOf(syscall.WaitStatus(m.Status))
		s.status.swept = true
		if m.StartError != "" {
			s.status.err = errors.New(m.StartError)
		}
		return
	}
	// The supervisor died without a report (killed): its Pdeathsig has
	// killed the main process; kill what is left of the group.
	s.broken = true
	s.status = exitStatus{code: -1}
	if s.pid > 0 {
		_ = syscall.Kill(-s.pid, syscall.SIGKILL)
	}
	_ = s.sup.ctl.Close()
	werr := s.sup.cmd.Wait()
	s.sup.ended()
	s.status.err = fmt.Errorf("the step supervisor died: %v", werr)
}

func (s *supervised) exited() <-chan struct{} { return s.done }

func (s *supervised) signal(sig syscall.Signal) {
	kind := byte(msgTerm)
	if sig == syscall.SIGKILL {
		kind = msgKill
	}
	_ = s.sup.send(kind, nil)
}

func (s *supervised) finish() exitStatus {
	<-s.done
	if s.broken {
		_ = s.sup.stR.Close()
	} else {
		putSupervisor(s.sup)
	}
	return s.status
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
