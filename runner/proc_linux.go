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
