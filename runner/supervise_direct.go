package runner

import (
	"errors"
	"os/exec"
	"syscall"
)

// direct is a step started by the worker itself, without a supervisor (a
// program that did not call SupervisorMain, or ShellRunner.NoSupervisor):
// cancel, timeout and the step's end still kill its whole group, but a
// worker killed with SIGKILL leaves the group running.
type direct struct {
	cmd    *exec.Cmd
	pgid   int
	done   chan struct{}
	reaped bool
	err    error
}

func startDirect(r *ShellRunner, cmd *exec.Cmd, step Step) (*direct, error) {
	err := cmd.Start()
	if err != nil && errors.Is(err, syscall.ENOEXEC) && step.Spec.Script != "" {
		// An executable script without a shebang: run it with the shell.
		retry := &exec.Cmd{
			Path: shellOf(r.Shell), Args: []string{shellOf(r.Shell), cmd.Path},
			Dir: cmd.Dir, Env: cmd.Env, Stdout: cmd.Stdout, Stderr: cmd.Stderr,
			SysProcAttr: cmd.SysProcAttr,
		}
		cmd, err = retry, retry.Start()
	}
	if err != nil {
		return nil, errors.New("start: " + err.Error())
	}
	d := &direct{cmd: cmd, pgid: cmd.Process.Pid, done: make(chan struct{})}
	// Wait for the main process to exit without reaping it, so the group id
	// stays reserved while the group is signalled.
	go func() {
		if err := waitExited(d.pgid); err != nil {
			d.reaped, d.err = true, cmd.Wait()
		}
		close(d.done)
	}()
	return d, nil
}

func (d *direct) exited() <-chan struct{} { return d.done }

func (d *direct) signal(sig syscall.Signal) { _ = syscall.Kill(-d.pgid, sig) }

func (d *direct) finish() exitStatus {
	<-d.done
	// The main process is gone: nothing else of the step may stay behind.
	_ = syscall.Kill(-d.pgid, syscall.SIGKILL)
	if !d.reaped {
		d.err = d.cmd.Wait()
	}
	ps := d.cmd.ProcessState
	if ps == nil {
		return exitStatus{code: -1, err: d.err}
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		return statusOf(ws)
	}
	return exitStatus{code: ps.ExitCode()}
}
