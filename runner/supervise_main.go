package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
)

// supervise is the supervisor process (see supervise.go): it runs the steps
// the worker sends on fd 3, one at a time, relays the worker's signals to
// the running step's group, and kills everything of a step when the step's
// main process exits or the worker's end of fd 3 closes. It returns the
// supervisor's exit code; each step's own status goes to the worker on fd 4.
func supervise() int {
	// The thread that forks a step must outlive it for Pdeathsig (Go issue
	// 27505). No lock is needed for that: a Go program's thread exits only
	// when a goroutine locked to it ends (runtime.goexit0), and no goroutine
	// of the supervisor does (os/signal's locks its thread and never ends),
	// so every thread it forks from lives as long as it does. Locking the
	// main goroutine, as this did, made each of its waits a hand-over
	// between two threads (issue 23: 11 futex calls per step, 3.5 without).
	// Whoever adds a goroutine here must not let it end locked.
	// Only the worker (fd 3) or SIGKILL may end the supervisor. Caught, not
	// ignored: an ignored signal would stay ignored in the step after exec.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	// The steps must not inherit them: a step holding the status pipe would
	// hide the supervisor's death from the worker.
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	ctlFile, st := os.NewFile(3, "control"), os.NewFile(4, "status")
	if ctlFile == nil || st == nil {
		fmt.Fprintln(os.Stderr, "stroem: started as a step supervisor without its pipes")
		return 2
	}
	becomeSubreaper()
	if os.Getenv(supervisorPortableEnv) == "" {
		if code, ok := superviseFast(ctlFile, st); ok {
			return code
		}
	}
	fc, err := net.FileConn(ctlFile)
	ctl, ok := fc.(*net.UnixConn)
	if err != nil || !ok {
		fmt.Fprintln(os.Stderr, "stroem: step supervisor: fd 3 is not a Unix socket")
		return 2
	}
	_ = ctlFile.Close()

	msgs := make(chan ctlMsg)
	go func() {
		defer close(msgs) // EOF: the worker closed it, or died
		r := connReader(ctl)
		for {
			m, err := r.next()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	send := func(m supervisorMsg) { _, _ = st.Write(appendStatusLine(nil, m)) }
	for m := range msgs {
		if m.kind != msgStep {
			continue // a late command for a step that has ended
		}
		if !runStep(m, msgs, send) {
			return 0 // the worker is gone
		}
	}
	return 0
}

// runStep starts and supervises one step. It reports false when the worker
// went away meanwhile (the step has been killed).
func runStep(m ctlMsg, msgs <-chan ctlMsg, send func(supervisorMsg)) bool {
	stdout, stderr := os.NewFile(uintptr(m.fds[0]), "stdout"), os.NewFile(uintptr(m.fds[1]), "stderr")
	var spec supervisorSpec
	if err := json.Unmarshal(m.payload, &spec); err != nil {
		closeAll(stdout, stderr)
		send(supervisorMsg{StartError: "step supervisor: read the step: " + err.Error()})
		return true
	}
	cmd := spec.command(stdout, stderr)
	err := cmd.Start()
	if err != nil && errors.Is(err, syscall.ENOEXEC) && spec.NoExecShell != "" {
		// An executable script without a shebang: run it with the shell.
		spec.Args = []string{spec.NoExecShell, spec.Path}
		spec.Path = spec.NoExecShell
		cmd = spec.command(stdout, stderr)
		err = cmd.Start()
	}
	// The step holds the output pipes now; the supervisor must not keep
	// them open: the worker reads until every holder is gone.
	closeAll(stdout, stderr)
	if err != nil {
		send(supervisorMsg{StartError: "start: " + err.Error()})
		return true
	}
	pid := cmd.Process.Pid
	send(supervisorMsg{PID: pid})

	// mu guards reaped: the group is only signalled while the main process
	// is unreaped, so its pid — the group id — cannot have been recycled.
	var mu sync.Mutex
	reaped := false
	signalGroup := func(sig syscall.Signal) {
		mu.Lock()
		defer mu.Unlock()
		if !reaped {
			_ = syscall.Kill(-pid, sig)
			if sig == syscall.SIGKILL {
				_ = syscall.Kill(pid, sig) // also if it moved to another group
			}
		}
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		if err := waitExited(pid); err != nil { // not Linux: reap at once
			mu.Lock()
			reaped, waitErr = true, cmd.Wait()
			mu.Unlock()
		}
		close(exited)
	}()

	workerAlive := true
	for waiting := true; waiting; {
		select {
		case <-exited:
			waiting = false
		case c, ok := <-msgs:
			switch {
			case !ok:
				workerAlive, msgs = false, nil
				signalGroup(syscall.SIGKILL)
			case c.kind == msgTerm:
				signalGroup(syscall.SIGTERM)
			case c.kind == msgKill:
				signalGroup(syscall.SIGKILL)
			case c.kind == msgStep: // cannot happen: one step at a time
				closeFds(c.fds...)
			}
		}
	}
	signalGroup(syscall.SIGKILL) // what is left of the group
	mu.Lock()
	if !reaped {
		reaped, waitErr = true, cmd.Wait()
	}
	mu.Unlock()
	killDescendants()                                  // what left the group: setsid, double forks
	msg := supervisorMsg{Done: true, Status: 255 << 8} // exit code 255: unknown
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			msg.Status = uint32(ws)
		}
	} else if waitErr != nil {
		msg.StartError = "wait: " + waitErr.Error()
	}
	send(msg)
	return workerAlive
}

// command builds the step's main process: in a process group of its own,
// killed if the supervisor dies.
func (s supervisorSpec) command(stdout, stderr *os.File) *exec.Cmd {
	cmd := &exec.Cmd{
		Path: s.Path, Args: s.Args, Dir: s.Dir, Env: s.Env,
		Stdout: stdout, Stderr: stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	setPdeathsig(cmd.SysProcAttr)
	return cmd
}

// closeFds closes descriptors received from the worker.
func closeFds(fds ...int) {
	for _, fd := range fds {
		_ = syscall.Close(fd)
	}
}
