//go:build !linux

package runner

// Elsewhere step directories are not reused: nothing here vouches for
// change times (stepdir.go).

func stampOf(path, rel string) (stamp, bool) { return stamp{}, false }

func coarseNow() (int64, bool) { return 0, false }
