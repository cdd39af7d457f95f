//go:build !linux

package runner

import (
	"errors"
	"os"
)

// waitExited is Linux-only (waitid with WNOWAIT); elsewhere the runner falls
// back to killing the group right after reaping the leader, which is safe as
// long as one member of the group is still alive, and harmless (ESRCH)
// otherwise except for the rare reuse of the pid by a new group.
func waitExited(int) error { return errors.ErrUnsupported }

// outputPipe makes a pipe for a step's stdout or stderr.
func outputPipe() (r, w *os.File, err error) { return os.Pipe() }
