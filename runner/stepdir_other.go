//go:build !linux

package runner

import "path/filepath"

// Elsewhere step directories are not reused: nothing here vouches for
// change times (stepdir.go).

func stampOf(path, rel string) (stamp, bool) { return stamp{}, false }

// stampsMatch compares every entry's recorded stamp under root with the
// kernel's.
func stampsMatch(root string, snap []stamp) bool {
	for _, s := range snap {
		now, ok := stampOf(filepath.Join(root, s.rel), s.rel)
		if !ok || now != s {
			return false
		}
	}
	return true
}

func coarseNow() (int64, bool) { return 0, false }

// dirHandle is Linux-only (O_PATH); elsewhere no directory is held.
type dirHandle int

const noDirHandle dirHandle = -1

func openDirHandle(string) dirHandle { return noDirHandle }

func (dirHandle) close() {}

func (dirHandle) stamp(string) (stamp, bool) { return stamp{}, false }
