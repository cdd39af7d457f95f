package runner

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The supervisor's loop on Linux (issue 23). The portable loop in
// supervise — a goroutine reading the control socket, one waiting for the
// step, os/exec — cost the supervisor about 60 system calls and 16 context
// switches per trivial step. Here one goroutine does everything:
//
//   - It waits in the runtime's poller on one epoll instance of its own,
//     which watches the control socket and the running step's pidfd (the
//     one clone returns: no pidfd_open).
//   - The step is started with syscall.ForkExec, stdin from a /dev/null
//     opened once: no /dev/null per step, no os.File for the output
//     descriptors, no second pidfd.
//   - Between the wake-up for a step and its fork, and from the step's
//     exit until the next wait, it makes only raw system calls (none of them
//     blocks). A system call through syscall.Syscall wakes the runtime's
//     monitor thread (sysmon) when the process was idle, and sysmon then
//     polls every 20 µs for as long as the process runs — through the
//     whole vfork of the step, until the new program is executing: about a
//     fifth of the supervisor's CPU per step.
//
// What it does for a step is what the portable loop does (supervise.go):
// the same process group, Pdeathsig, signals only while the main process
// is unreaped, the same sweep of descendants when it has exited.

// fastLoop is the supervisor's state.
type fastLoop struct {
	ctlFile, stFile *os.File // fds 3 and 4, kept so that no finalizer closes them
	ctl, status     int
	devnull         int
	epfd            int
	ep              *os.File // epfd, in the runtime's poller (never call its Fd: that makes it blocking, a system call each time)
	epc             syscall.RawConn
	events          [4]unix.EpollEvent
	r               *ctlReader
	line            []byte // writeLine's buffer
	eof             bool   // the worker is gone (or spoke nonsense)
	// recvmsg's arguments, on the heap: the raw call gets their address.
	msg unix.Msghdr
	iov unix.Iovec
}

// superviseFast runs the supervisor's loop; ok is false (nothing done)
// where the kernel lacks pidfds or epoll, and the portable loop runs.
func superviseFast(ctlFile, stFile *os.File) (code int, ok bool) {
	l, err := newFastLoop(ctlFile, stFile)
	if err != nil {
		return 0, false
	}
	for {
		m, ok := l.next()
		if !ok {
			return 0, true // the worker is gone
		}
		if m.kind != msgStep {
			continue // a late command for a step that has ended
		}
		if !l.runStep(m) {
			return 0, true
		}
	}
}

func newFastLoop(ctlFile, stFile *os.File) (*fastLoop, error) {
	// Pidfds from clone (Linux 5.2) that the poller can watch (5.3).
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return nil, err
	}
	_ = unix.Close(self)
	if t, err := unix.GetsockoptInt(int(ctlFile.Fd()), unix.SOL_SOCKET, unix.SO_TYPE); err != nil || t != unix.SOCK_STREAM {
		return nil, errors.New("fd 3 is not a stream socket")
	}
	l := &fastLoop{ctlFile: ctlFile, stFile: stFile, ctl: int(ctlFile.Fd()), status: int(stFile.Fd()), epfd: -1}
	fail := func(err error) (*fastLoop, error) {
		if l.ep != nil {
			_ = l.ep.Close()
		} else if l.epfd >= 0 {
			_ = unix.Close(l.epfd)
		}
		_ = unix.Close(l.devnull)
		return nil, err
	}
	if l.devnull, err = unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return nil, err
	}
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fail(err)
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.ctl, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.ctl)}); err != nil {
		return fail(err)
	}
	if err := unix.SetNonblock(l.epfd, true); err != nil { // os.NewFile polls only a non-blocking descriptor
		return fail(err)
	}
	l.ep = os.NewFile(uintptr(l.epfd), "supervisor epoll")
	if l.epc, err = l.ep.SyscallConn(); err != nil {
		return fail(err)
	}
	// Writes of the status pipe must not block in a raw call: they never
	// fill it (the worker reads each line before it sends the next step),
	// and writeLine waits if they ever did. Last: the portable loop, run
	// when this fails, writes it blocking.
	if err := unix.SetNonblock(l.status, true); err != nil {
		return fail(err)
	}
	l.r = &ctlReader{read: l.recv}
	return l, nil
}

// recv is the control socket's read: raw, never blocking (EAGAIN when
// nothing is there), received descriptors close-on-exec.
func (l *fastLoop) recv(p, oob []byte) (int, int, error) {
	l.iov.Base = &p[0]
	l.iov.SetLen(len(p))
	l.msg = unix.Msghdr{Iov: &l.iov, Control: &oob[0]}
	l.msg.SetIovlen(1)
	l.msg.SetControllen(len(oob))
	for {
		n, _, e := syscall.RawSyscall(unix.SYS_RECVMSG, uintptr(l.ctl), uintptr(unsafe.Pointer(&l.msg)),
			unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return 0, 0, e
		case n == 0 && l.msg.Controllen == 0:
			return 0, 0, io.EOF
		}
		return int(n), int(l.msg.Controllen), nil
	}
}

// wait parks until the control socket or the step's pidfd is ready and
// returns the ready descriptors.
func (l *fastLoop) wait() []unix.EpollEvent {
	var n int
	err := l.epc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&l.events[0])),
				uintptr(len(l.events)), 0, 0, 0)
			switch {
			case e == unix.EINTR:
				continue
			case e != 0:
				n = -1
				return true
			}
			n = int(r)
			return n > 0
		}
	})
	if err != nil || n < 0 {
		// The poller failed us: nothing sensible is left to do but end,
		// which kills the step as if the worker had gone.
		l.gone()
		return nil
	}
	return l.events[:n]
}

// watch adds pidfd to the epoll instance (raw: see above).
func (l *fastLoop) watch(pidfd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(pidfd)}
	_, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.epfd), unix.EPOLL_CTL_ADD, uintptr(pidfd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// gone stops watching the control socket (at EOF it would stay ready).
func (l *fastLoop) gone() {
	if !l.eof {
		l.eof = true
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.ctl, nil)
	}
}

// readCtl reads from the control socket once: what is left stays ready
// in the epoll instance (level-triggered) for the next wait.
func (l *fastLoop) readCtl() {
	if l.eof {
		return
	}
	if err := l.r.fill(); err != nil && !errors.Is(err, unix.EAGAIN) {
		l.gone()
	}
}

// parsed returns the next received message; false when none is complete.
func (l *fastLoop) parsed() (ctlMsg, bool) {
	m, ok, err := l.r.parse()
	if err != nil {
		l.gone()
		return ctlMsg{}, false
	}
	return m, ok
}

// next waits for the next message; false once the worker is gone.
func (l *fastLoop) next() (ctlMsg, bool) {
	for {
		if m, ok := l.parsed(); ok {
			return m, true
		}
		if l.eof {
			return ctlMsg{}, false
		}
		l.wait()
		l.readCtl()
	}
}

// writeLine sends one status line to the worker.
func (l *fastLoop) writeLine(m supervisorMsg) {
	l.line = appendStatusLine(l.line[:0], m)
	b := l.line
	for len(b) > 0 {
		n, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(l.status), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch {
		case e == unix.EINTR:
		case e == unix.EAGAIN:
			fds := []unix.PollFd{{Fd: int32(l.status), Events: unix.POLLOUT}}
			_, _ = unix.Poll(fds, -1) // a blocking wait belongs in a Syscall
		case e != 0:
			return // the worker is gone: EOF on the control socket says so
		default:
			b = b[n:]
		}
	}
}

// start forks and executes the step's main process: in a process group of
// its own, killed if the supervisor dies, with a pidfd.
func (l *fastLoop) start(spec *supervisorSpec, stdout, stderr int) (pid, pidfd int, err error) {
	env, args := spec.Env, spec.Args
	if env == nil {
		env = []string{}
	}
	if len(args) == 0 {
		args = []string{spec.Path} // as exec.Cmd does
	}
	pidfd = -1
	attr := &syscall.ProcAttr{Dir: spec.Dir, Env: env, Files: []uintptr{uintptr(l.devnull), uintptr(stdout), uintptr(stderr)},
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, PidFD: &pidfd}}
	pid, err = syscall.ForkExec(spec.Path, args, attr)
	if err != nil {
		// As os.StartProcess words it.
		if spec.Dir != "" {
			if _, serr := os.Stat(spec.Dir); serr != nil {
				var pe *os.PathError
				if errors.As(serr, &pe) {
					pe.Op = "chdir"
				}
				return 0, -1, serr
			}
		}
		return 0, -1, &os.PathError{Op: "fork/exec", Path: spec.Path, Err: err}
	}
	if pidfd < 0 { // cannot happen where PidfdOpen works; be safe
		_ = syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pid, &ws, 0, nil)
		return 0, -1, errors.New("fork/exec: no pidfd")
	}
	return pid, pidfd, nil
}

// runStep starts and supervises one step. It reports false when the worker
// went away meanwhile (the step has been killed).
func (l *fastLoop) runStep(m ctlMsg) bool {
	stdout, stderr := m.fds[0], m.fds[1]
	var spec supervisorSpec
	if err := json.Unmarshal(m.payload, &spec); err != nil {
		rawClose(stdout, stderr)
		l.writeLine(supervisorMsg{StartError: "step supervisor: read the step: " + err.Error()})
		return true
	}
	pid, pidfd, err := l.start(&spec, stdout, stderr)
	if err != nil && errors.Is(err, syscall.ENOEXEC) && spec.NoExecShell != "" {
		// An executable script without a shebang: run it with the shell.
		spec.Args = []string{spec.NoExecShell, spec.Path}
		spec.Path = spec.NoExecShell
		pid, pidfd, err = l.start(&spec, stdout, stderr)
	}
	// The step holds the output pipes now; the supervisor must not keep
	// them open: the worker reads until every holder is gone.
	rawClose(stdout, stderr)
	if err != nil {
		l.writeLine(supervisorMsg{StartError: "start: " + err.Error()})
		return true
	}
	l.writeLine(supervisorMsg{PID: pid})
	if err := l.watch(pidfd); err != nil {
		// Cannot watch it: treat it as if the worker were gone.
		l.gone()
	}

	// The group is only signalled while the main process is unreaped
	// (below, until wait4), so its pid — the group id — cannot have been
	// recycled.
	signalGroup := func(sig syscall.Signal) {
		_ = syscall.Kill(-pid, sig)
		if sig == syscall.SIGKILL {
			_ = syscall.Kill(pid, sig) // also if it moved to another group
		}
	}
	workerAlive, exited := true, false
	for !exited {
		if l.eof {
			workerAlive = false
			signalGroup(syscall.SIGKILL)
			break // the main process dies of it: wait4 below waits for that
		}
		for _, ev := range l.wait() {
			switch int(ev.Fd) {
			case pidfd:
				exited = true
			case l.ctl:
				l.readCtl()
			}
		}
		for {
			c, ok := l.parsed()
			if !ok {
				break
			}
			switch c.kind {
			case msgTerm:
				signalGroup(syscall.SIGTERM)
			case msgKill:
				signalGroup(syscall.SIGKILL)
			case msgStep: // cannot happen: one step at a time
				rawClose(c.fds...)
			}
		}
	}
	// What is left of the group; the main process itself is a zombie.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	msg := supervisorMsg{Done: true, Status: 255 << 8} // exit code 255: unknown
	var ws syscall.WaitStatus
	if exited {
		err = wait4Raw(pid, &ws) // a zombie: it does not block
	} else {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
	}
	if err == nil {
		msg.Status = uint32(ws)
	} else {
		msg.StartError = "wait: " + err.Error()
	}
	rawClose(pidfd)   // which also takes it out of the epoll instance
	killDescendants() // what left the group: setsid, double forks
	l.writeLine(msg)
	return workerAlive
}

// wait4Raw reaps pid, a child that has exited, without the runtime's
// system-call bookkeeping (it does not block).
func wait4Raw(pid int, ws *syscall.WaitStatus) error {
	for {
		_, _, e := syscall.RawSyscall6(unix.SYS_WAIT4, uintptr(pid), uintptr(unsafe.Pointer(ws)), 0, 0, 0, 0)
		switch e {
		case unix.EINTR:
		case 0:
			return nil
		default:
			return e
		}
	}
}

// rawClose closes descriptors without the runtime's system-call
// bookkeeping (close never blocks for these: pipes, pidfds).
func rawClose(fds ...int) {
	for _, fd := range fds {
		_, _, _ = syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	}
}
