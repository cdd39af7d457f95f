package runner

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A step's output pipes hold one page, not Linux's default 64 KiB: what a
// full pipe holds is latency for a step that prints faster than its log is
// shipped. The read end is polled (a read deadline works); the write end,
// which only the step gets, is a blocking descriptor.
func TestOutputPipe(t *testing.T) {
	t.Parallel()
	r, w, err := outputPipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	size, err := unix.FcntlInt(w.Fd(), unix.F_GETPIPE_SZ, 0)
	require.NoError(t, err)
	require.Equal(t, stepPipeBytes, size, "both ends see the pipe's capacity")
	flags, err := unix.FcntlInt(w.Fd(), unix.F_GETFL, 0)
	require.NoError(t, err)
	require.Zero(t, flags&unix.O_NONBLOCK, "the step's end blocks")

	require.NoError(t, r.SetReadDeadline(time.Now().Add(-time.Second)), "the read end is in the poller")
	_, err = r.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.NoError(t, r.SetReadDeadline(time.Time{}))
	_, err = w.Write([]byte("x\n"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "x\n", string(b))
}

// waitExited returns once the process has exited, leaving it a zombie (its
// pid, the group id, stays reserved until it is reaped), through the
// runtime's poller where pidfds exist.
func TestWaitExitedLeavesTheProcessUnreaped(t *testing.T) {
	t.Parallel()
	for name, wait := range map[string]func(int) error{
		"polled": func(pid int) error {
			if !waitExitedPolled(pid) {
				return errors.New("no pidfd")
			}
			return nil
		},
		"any": waitExited,
	} {
		cmd := exec.Command("/bin/cat")
		in, err := cmd.StdinPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- wait(cmd.Process.Pid) }()
		select {
		case err := <-done:
			t.Fatalf("%s: returned while cat waits for its input: %v", name, err)
		default:
		}
		require.NoError(t, in.Close()) // cat exits
		require.NoError(t, <-done, name)
		_, state, ok := procStat(cmd.Process.Pid)
		require.True(t, ok, name)
		require.Equal(t, byte('Z'), state, "%s: exited, not reaped", name)
		require.NoError(t, cmd.Wait(), name)
	}
}
