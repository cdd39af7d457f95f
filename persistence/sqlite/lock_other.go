//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlite

// lockFile is a no-op where flock is not available: one process per
// database file is then the user's to ensure.
func lockFile(string) (func(), error) { return func() {}, nil }
