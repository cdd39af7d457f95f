//go:build !linux

package runner

import "syscall"

// Outside Linux the supervisor has neither a child subreaper nor
// Pdeathsig: it still kills the step's process group when the worker dies,
// but not processes that left the group.

func becomeSubreaper() {}

func setPdeathsig(*syscall.SysProcAttr) {}

func killDescendants() {}

// controlSocketpair makes the supervisor's control socket pair, both ends
// close-on-exec (darwin has no SOCK_CLOEXEC: set under the fork lock, so
// no child started meanwhile inherits them).
func controlSocketpair() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds, nil
}
