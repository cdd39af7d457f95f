//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/stroem/stroem"
)

// lockFile takes an exclusive advisory lock (flock) on the file at path,
// created if needed, and returns its release. The kernel drops the lock
// when the process dies, so a crash never leaves the database locked.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, stroem.Errorf(stroem.CodeUnavailable,
				"database unavailable: %s is in use by another process (another stroem dev on the same data dir?)", path)
		}
		return nil, fmt.Errorf("sqlite store: lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
