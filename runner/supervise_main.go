package runner

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// supervise is the supervisor process (see supervise.go): it starts the
// step the worker describes on fd 3, relays the worker's signals to the
// step's group, and kills everything of the step when the step's main
// process exits or the worker's end of fd 3 closes. It returns the
// supervisor's exit code; the step's own status goes to the worker on fd 4.
func supervise() int {
	// The thread that forks the step must outlive it for Pdeathsig (Go
	// issue 27505): lock the main goroutine to its thread and never unlock.
	runtime.LockOSThread()
	// Only the worker (fd 3) or SIGKILL may end the supervisor. Caught, not
	// ignored: an ignored signal would stay ignored in the step after exec.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)

	ctl, st := os.NewFile(3, "control"), os.NewFile(4, "status")
	if ctl == nil || st == nil {
		fmt.Fprintln(os.Stderr, "stroem: started as a step supervisor without its pipes")
		return 2
	}
	// The step must not inherit them: a step holding the status pipe would
	// hide the supervisor's death from the worker.
	syscall.CloseOnExec(3)
	syscall.CloseOnExec(4)
	send := json.NewEncoder(st)
	in := bufio.NewReader(ctl)
	line, err := in.ReadBytes('\n')
	var spec supervisorSpec
	if err == nil {
		err = json.Unmarshal(line, &spec)
	}
	if err != nil {
		_ = send.Encode(supervisorMsg{StartError: "step supervisor: read the step: " + err.Error()})
		return 2
	}
	becomeSubreaper()

	cmd := spec.command()
	err = cmd.Start()
	if err != nil && errors.Is(err, syscall.ENOEXEC) && spec.NoExecShell != "" {
		// An executable script without a shebang: run it with the shell.
		spec.Args = []string{spec.NoExecShell, spec.Path}
		spec.Path = spec.NoExecShell
		cmd = spec.command()
		err = cmd.Start()
	}
	if err != nil {
		_ = send.Encode(supervisorMsg{StartError: "start: " + err.Error()})
		return 0
	}
	// The step holds the output pipes now; the supervisor must not keep
	// them open (the worker reads until every holder is gone), nor write to
	// them.
	nullStdio()
	pid := cmd.Process.Pid
	_ = send.Encode(supervisorMsg{PID: pid})

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
	workerGone := make(chan struct{})
	go func() {
		for {
			c, err := in.ReadByte()
			if err != nil { // EOF: the worker closed it, or died
				close(workerGone)
				return
			}
			switch c {
			case cmdTerm:
				signalGroup(syscall.SIGTERM)
			case cmdKill:
				signalGroup(syscall.SIGKILL)
			}
		}
	}()

	select {
	case <-exited:
	case <-workerGone:
		signalGroup(syscall.SIGKILL)
		<-exited
	}
	signalGroup(syscall.SIGKILL) // what is left of the group
	mu.Lock()
	if !reaped {
		reaped, waitErr = true, cmd.Wait()
	}
	mu.Unlock()
	killDescendants() // what left the group: setsid, double forks
	msg := supervisorMsg{Done: true}
	msg.Status = 255 << 8 // exit code 255: the status is unknown
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
			msg.Status = uint32(ws)
		}
	} else if waitErr != nil {
		_ = send.Encode(supervisorMsg{StartError: "wait: " + waitErr.Error()})
	}
	_ = send.Encode(msg)
	return 0
}

// command builds the step's main process: in a process group of its own,
// killed if the supervisor dies.
func (s supervisorSpec) command() *exec.Cmd {
	cmd := &exec.Cmd{
		Path: s.Path, Args: s.Args, Dir: s.Dir, Env: s.Env,
		Stdout: os.Stdout, Stderr: os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	setPdeathsig(cmd.SysProcAttr)
	return cmd
}

// nullStdio points fds 1 and 2 at /dev/null.
func nullStdio() {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		_ = os.Stdout.Close()
		_ = os.Stderr.Close()
		return
	}
	defer null.Close()
	_ = unix.Dup2(int(null.Fd()), 1)
	_ = unix.Dup2(int(null.Fd()), 2)
}
