package runner

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A step's output pipes hold one page, not Linux's default 64 KiB: what a
// full pipe holds is latency for a step that prints faster than its log is
// shipped.
func TestShrinkPipe(t *testing.T) {
	t.Parallel()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	shrinkPipe(r)
	rc, err := w.SyscallConn()
	require.NoError(t, err)
	var size int
	require.NoError(t, rc.Control(func(fd uintptr) {
		size, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0)
	}))
	require.NoError(t, err)
	require.Equal(t, stepPipeBytes, size, "both ends see the pipe's capacity")
}
