package runner

import (
	"errors"

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
