package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// state upload refuses a path that is not a regular file or a folder, as
// it does inside a folder: a named pipe blocked the command in open(2)
// forever, deaf to Ctrl-C, and a device was sent as an empty file.
func TestStateUploadRefusesAPipe(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	fifo := filepath.Join(t.TempDir(), "pipe")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, p := range []string{fifo, os.DevNull} {
		done := make(chan cliResult, 1)
		go func() { done <- runCLI(t, t.Context(), "state", "upload", "--task", "hello-world", p, "--server", url) }()
		select {
		case r := <-done:
			require.Equal(t, 2, r.code, r.err)
			require.Equal(t, "stroem: "+p+": not a regular file or a folder\n", r.err)
		case <-time.After(10 * time.Second):
			if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil { // let the reader go
				_ = w.Close()
			}
			t.Fatalf("state upload %s did not return", p)
		}
	}
}
