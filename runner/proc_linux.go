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
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// stepPipeBytes is the capacity of the pipes a step writes its stdout and
// stderr to (Linux's default is 64 KiB). With a step that prints faster than
// its log is shipped, every byte a pipe holds is a line waiting, so the pipe
// adds its capacity to each line's latency: 64 KiB of short lines is about
// 3,600 lines. A page holds about 230 short lines; the runner reads the pipe
// as it fills, so throughput stays.
const stepPipeBytes = 4096

// shrinkPipe sets the capacity of the pipe f is an end of to
// stepPipeBytes. A failure (an old kernel) only leaves the default.
func shrinkPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, stepPipeBytes)
	})
}
