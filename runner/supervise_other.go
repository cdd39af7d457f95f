//go:build !linux

package runner

import "syscall"

// Outside Linux the supervisor has neither a child subreaper nor
// Pdeathsig: it still kills the step's process group when the worker dies,
// but not processes that left the group.

func becomeSubreaper() {}

func setPdeathsig(*syscall.SysProcAttr) {}

func killDescendants() {}
