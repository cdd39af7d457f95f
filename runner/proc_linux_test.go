package runner

import (
	"io"
	"os"
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
