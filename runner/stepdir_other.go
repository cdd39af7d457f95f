//go:build !linux

package runner

// Elsewhere step directories are not reused: nothing here vouches for
// change times (stepdir.go).

func stampOf(path, rel string) (stamp, bool) { return stamp{}, false }

func coarseNow() (int64, bool) { return 0, false }

// dirHandle is Linux-only (O_PATH); elsewhere no directory is held.
type dirHandle int

const noDirHandle dirHandle = -1

func openDirHandle(string) dirHandle { return noDirHandle }

func (dirHandle) close() {}

func (dirHandle) stamp(string) (stamp, bool) { return stamp{}, false }
