//go:build !linux

package runner

import "errors"

// waitExited is Linux-only (waitid with WNOWAIT); elsewhere the runner falls
// back to killing the group right after reaping the leader, which is safe as
// long as one member of the group is still alive, and harmless (ESRCH)
// otherwise except for the rare reuse of the pid by a new group.
func waitExited(int) error { return errors.ErrUnsupported }
