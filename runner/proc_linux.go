package runner

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// waitExited blocks until process pid has exited but leaves it unreaped
// (a zombie). While the group leader is unreaped its pid, and so the group
// id, cannot be reused: signalling -pid afterwards can only reach the step's
// own processes, never an unrelated group that recycled the number.
//
// It waits through a pidfd in the runtime's poller where the kernel has
// them (Linux 5.10), else in a blocking waitid.
func waitExited(pid int) error {
	if waitExitedPolled(pid) {
		return nil
	}
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// waitExitedPolled waits for pid to exit, unreaped, through a non-blocking
// pidfd that the runtime's poller watches, and reports whether it could.
// A thread blocked in waitid for the whole step made the supervisor's
// runtime hand its processor to another thread and put its monitor thread
// (sysmon) back to polling every 20 µs after every step: about a third of
// the supervisor's CPU per step in the bench (issue 23).
func waitExitedPolled(pid int) bool {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return false // no pidfds (before Linux 5.10), or pid is not ours
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking: polled
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	exited := false
	err = rc.Read(func(fd uintptr) bool {
		for {
			var info unix.Siginfo
			// EAGAIN while it runs: wait until the pidfd is readable.
			err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOWAIT, nil)
			switch {
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN):
				return false
			}
			exited = err == nil
			return true
		}
	})
	return err == nil && exited
}

// stepPipeBytes is the capacity of the pipes a step writes its stdout and
// stderr to (Linux's default is 64 KiB). With a step that prints faster than
// its log is shipped, every byte a pipe holds is a line waiting, so the pipe
// adds its capacity to each line's latency: 64 KiB of short lines is about
// 3,600 lines. A page holds about 230 short lines; the runner reads the pipe
// as it fills, so throughput stays.
const stepPipeBytes = 4096

// outputPipe makes a pipe for a step's stdout or stderr, holding
// stepPipeBytes: the read end in the runtime's poller (a goroutine reads
// it), the write end a plain blocking descriptor that only goes to the
// step. os.Pipe put both ends in the poller and made both non-blocking,
// and passing the write end on made it blocking again: about 15 system
// calls a pipe from making it to closing it, 9 here (issue 23).
func outputPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	_, _ = unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, stepPipeBytes) // an old kernel keeps the default
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		_, _ = unix.Close(p[0]), unix.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	// os.NewFile polls a descriptor it finds non-blocking, and only that.
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}
