package runner

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// killDescendantsFor bounds the supervisor's last sweep: a step forking
// faster than it is killed cannot keep the supervisor alive forever.
const killDescendantsFor = 5 * time.Second

// becomeSubreaper makes the supervisor the parent of every orphan among its
// descendants (a double fork, a setsid daemon whose parent exited), so that
// killDescendants finds them in its own process tree.
func becomeSubreaper() {
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// setPdeathsig kills the step's main process if the supervisor dies. The
// supervisor's threads never exit (see supervise), so the signal is not
// sent early.
func setPdeathsig(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }

// killDescendants SIGKILLs every descendant of this process, reaping the
// orphans re-parented to it, until none is left. When no child is left —
// the usual end of a step — it costs one wait4: a process without children
// has no descendants (every descendant's chain of parents ends in a child,
// the supervisor being their subreaper), so there is nothing to walk.
func killDescendants() {
	if !reapChildren() {
		return
	}
	self := os.Getpid()
	deadline := time.Now().Add(killDescendantsFor)
	for {
		for _, pid := range descendants(self) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(2 * time.Millisecond) // let the kernel deliver and re-parent
		if !reapChildren() || !time.Now().Before(deadline) {
			return
		}
	}
}

// reapChildren collects every child that has exited, without blocking, and
// reports whether children remain. A process without children has no
// descendants: every descendant's chain of parents ends in a child. The
// wait4 is raw (it never blocks): the supervisor's runtime need not wake
// its monitor thread for it (supervise_fast_linux.go).
func reapChildren() bool {
	for {
		var ws syscall.WaitStatus
		pid, _, e := syscall.RawSyscall6(unix.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(&ws)), unix.WNOHANG, 0, 0, 0)
		switch {
		case e == unix.EINTR:
		case e != 0: // ECHILD
			return false
		case pid == 0: // children, none exited
			return true
		}
	}
}

// descendants lists the processes below root (zombies included). It walks
// /proc/<pid>/task/<tid>/children, or scans all of /proc where the kernel
// lacks those files.
func descendants(root int) []int {
	if _, err := os.Stat("/proc/self/task/" + strconv.Itoa(unix.Gettid()) + "/children"); err != nil {
		return descendantsByScan(root)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(p) + "/task")
		for _, task := range tasks {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/task/" + task.Name() + "/children")
			for _, f := range bytes.Fields(b) {
				if c, err := strconv.Atoi(string(f)); err == nil {
					out = append(out, c)
					queue = append(queue, c)
				}
			}
		}
	}
	return out
}

// descendantsByScan builds the process tree from every /proc/<pid>/stat.
func descendantsByScan(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// procStat reads a process's parent and state from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// "pid (comm) S ppid …": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(string(f[1]))
	return ppid, f[0][0], err == nil
}

// controlSocketpair makes the supervisor's control socket pair, both ends
// close-on-exec from the start.
func controlSocketpair() ([2]int, error) {
	return syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}
