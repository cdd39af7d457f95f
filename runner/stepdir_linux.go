package runner

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// stampOf reads one entry's stamp without following a link.
func stampOf(path, rel string) (stamp, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return stamp{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return stamp{}, false
	}
	return stamp{rel: rel, dev: uint64(st.Dev), ino: st.Ino, nlink: uint64(st.Nlink), uid: st.Uid, gid: st.Gid,
		mode: fi.Mode(), size: fi.Size(), ctime: st.Ctim.Nano()}, true
}

// coarseNow is the clock the kernel stamps file changes with (a file
// system may use a finer one, never an earlier one), in Unix nanoseconds.
func coarseNow() (int64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts); err != nil {
		return 0, false
	}
	return ts.Nano(), true
}
