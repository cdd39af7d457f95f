//go:build !linux

package runner

import "os"

// superviseFast is Linux-only (pidfds and epoll): elsewhere the portable
// loop in supervise runs the steps.
func superviseFast(_, _ *os.File) (int, bool) { return 0, false }
