package main

import (
	"context"
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

// A download's -o that cannot be written is a usage error before the
// download, naming -o: a folder or a missing folder failed after it, with
// "rename /tmp/.x.1102236112 /tmp/x: file exists" about a temporary file.
func TestDownloadOutputFileChecked(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing", "report.txt")
	for _, tc := range []struct{ out, err string }{
		{dir, "stroem: --output-file " + dir + " is a folder: name a file\n"},
		{missing, "stroem: --output-file " + missing + ": folder " + filepath.Dir(missing) + " does not exist\n"},
	} {
		r := runCLI(t, t.Context(), "artifacts", "download", testJobID, "report.txt", "-o", tc.out, "--server", url)
		require.Equal(t, 2, r.code, r.err)
		require.Equal(t, tc.err, r.err)
		r = runCLI(t, t.Context(), "state", "download", "-o", tc.out, "--server", url)
		require.Equal(t, 2, r.code, r.err)
		require.Equal(t, tc.err, r.err)
	}
	out := filepath.Join(dir, "report.txt")
	r := runCLI(t, t.Context(), "artifacts", "download", testJobID, "report.txt", "-o", out, "--server", url)
	require.Equal(t, 0, r.code, r.err)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.Equal(t, "hi", string(b))
}

// Ctrl-C while state upload packs its files ends it, exit 130: packing
// did not watch the context main cancels on SIGINT, so a big file was
// read to the end first (24 s for 3 GB).
func TestStateUploadInterruptedWhilePacking(t *testing.T) {
	t.Parallel()
	_, url := newFakeAPI(t)
	big := filepath.Join(t.TempDir(), "big.bin")
	f, err := os.Create(big)
	require.NoError(t, err)
	require.NoError(t, f.Truncate(8<<30)) // sparse: no disk used
	require.NoError(t, f.Close())
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // what Ctrl-C does
	done := make(chan cliResult, 1)
	go func() { done <- runCLI(t, ctx, "state", "upload", "--task", "hello-world", big, "--server", url) }()
	select {
	case r := <-done:
		require.Equal(t, 130, r.code, r.err)
		require.Empty(t, r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("state upload went on packing after Ctrl-C")
	}
}
