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

// shrinkPipe is Linux-only (F_SETPIPE_SZ); elsewhere pipes keep their
// default capacity.
func shrinkPipe(*os.File) {}
