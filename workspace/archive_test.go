package workspace

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tarEntry is what a test reads back from an archive.
type tarEntry struct {
	mode    int64
	link    string
	content string
	mtime   time.Time
}

func readArchive(t *testing.T, data []byte) map[string]tarEntry {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(data))
	require.NoError(t, err)
	tr := tar.NewReader(gz)
	out := map[string]tarEntry{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.False(t, filepath.IsAbs(h.Name), h.Name)
		require.NotContains(t, "/"+h.Name+"/", "/../", h.Name)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[h.Name] = tarEntry{mode: h.Mode, link: h.Linkname, content: string(body), mtime: h.ModTime.UTC()}
	}
	return out
}

func TestArchiveCompat(t *testing.T) {
	t.Parallel()
	dir := copyCompat(t)
	ws := loaded(t, dir)
	data, err := Archive(ws)
	require.NoError(t, err)

	got := readArchive(t, data)
	// Workflow files are not shipped: no step runs them (ignore.go).
	require.Equal(t, []string{"actions/deploy.sh"}, loadSortedKeys(got))
	script, err := os.ReadFile(filepath.Join(compatDir, "actions", "deploy.sh"))
	require.NoError(t, err)
	require.Equal(t, string(script), got["actions/deploy.sh"].content)
	require.Equal(t, int64(0o755), got["actions/deploy.sh"].mode, "the executable bit is kept")
	require.True(t, got["actions/deploy.sh"].mtime.Equal(time.Unix(0, 0)))

	// Deterministic: the same files give the same bytes and revision,
	// wherever the workspace lives.
	again, err := Archive(ws)
	require.NoError(t, err)
	require.Equal(t, data, again)
	elsewhere, err := Load(copyCompat(t))
	require.NoError(t, err)
	require.Equal(t, ws.Revision, elsewhere.Revision)
	other, err := Archive(elsewhere)
	require.NoError(t, err)
	require.Equal(t, data, other)
}

func TestRevisionChanges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{"content", func(t *testing.T, dir string) {
			writeFile(t, dir, "actions/deploy.sh", "#!/bin/sh\necho changed\n")
		}},
		{"mode", func(t *testing.T, dir string) {
			require.NoError(t, os.Chmod(filepath.Join(dir, "actions", "deploy.sh"), 0o644))
		}},
		{"new file", func(t *testing.T, dir string) {
			writeFile(t, dir, "README.md", "hello\n")
		}},
		{"renamed file", func(t *testing.T, dir string) {
			require.NoError(t, os.Rename(filepath.Join(dir, "actions"), filepath.Join(dir, "scripts")))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyCompat(t)
			before, err := Load(dir)
			require.NoError(t, err)
			tt.change(t, dir)
			require.NotEqual(t, before.Revision, currentRevision(before))
			// The stale workspace's archive is refused, not served wrong.
			_, err = Archive(before)
			require.ErrorIs(t, err, ErrRevisionChanged)
			after, err := Load(dir)
			require.NoError(t, err)
			require.NotEqual(t, before.Revision, after.Revision)
		})
	}
}

func TestRevisionSkipsGitAndUnchangedWithoutChange(t *testing.T) {
	t.Parallel()
	dir := copyCompat(t)
	before, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, before.Revision, currentRevision(before))
	writeFile(t, dir, ".git/HEAD", "ref: refs/heads/main\n")
	writeFile(t, dir, "sub/.git/config", "[core]\n")
	after, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, before.Revision, after.Revision, ".git folders are not part of the revision")
	data, err := Archive(after)
	require.NoError(t, err)
	require.NotContains(t, readArchive(t, data), ".git/HEAD")
}

func TestArchiveSymlinks(t *testing.T) {
	t.Parallel()
	dir := copyCompat(t)
	outside := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("password"), 0o600))
	require.NoError(t, os.Symlink("deploy.sh", filepath.Join(dir, "actions", "relative.sh")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "actions", "deploy.sh"), filepath.Join(dir, "absolute.sh")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "actions", "leak")))
	require.NoError(t, os.Symlink("../../etc/passwd", filepath.Join(dir, "dotdot")))
	require.NoError(t, os.Symlink("missing", filepath.Join(dir, "dangling")))

	ws := loaded(t, dir)
	require.Equal(t, []string{
		filepath.Join(dir, "actions", "leak") + `:0:0: symlink to "` + outside + `" leaves the workspace; left out of the revision and the archive`,
		filepath.Join(dir, "dangling") + `:0:0: symlink to "missing" does not resolve (lstat ` + filepath.Join(dir, "missing") + `: no such file or directory); left out of the revision and the archive`,
		filepath.Join(dir, "dotdot") + `:0:0: symlink to "../../etc/passwd" leaves the workspace; left out of the revision and the archive`,
	}, problemStrings(ws))

	data, err := Archive(ws)
	require.NoError(t, err)
	got := readArchive(t, data)
	require.Equal(t, tarEntry{mode: 0o777, link: "deploy.sh", mtime: archiveTime}, got["actions/relative.sh"])
	require.Equal(t, tarEntry{mode: 0o777, link: "actions/deploy.sh", mtime: archiveTime}, got["absolute.sh"], "an absolute target inside is made relative")
	require.NotContains(t, got, "actions/leak")
	require.NotContains(t, got, "dotdot")
	require.NotContains(t, got, "dangling")

	// A symlink's target is part of the revision.
	require.NoError(t, os.Remove(filepath.Join(dir, "actions", "relative.sh")))
	require.NoError(t, os.Symlink("../.workflows/hello.yaml", filepath.Join(dir, "actions", "relative.sh")))
	require.NotEqual(t, ws.Revision, currentRevision(ws))
}

// TestArchiveSingleFile: a single-file workspace holds the file and the
// scripts its actions run, not the rest of the folder.
func TestArchiveSingleFile(t *testing.T) {
	t.Parallel()
	dir := copyCompat(t)
	writeFile(t, dir, "unrelated.txt", "not part of it\n")
	for _, tt := range []struct {
		file string
		want []string
	}{
		// The workflow file itself is not shipped (it may hold secrets).
		{"hello.yaml", []string{}},
		{"deploy.yaml", []string{"actions/deploy.sh"}},
	} {
		// Put the file at the root, so its scripts resolve like in the folder.
		src := filepath.Join(dir, ".workflows", tt.file)
		dst := filepath.Join(dir, tt.file)
		data, err := os.ReadFile(src)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dst, data, 0o644))

		ws, err := Load(dst)
		require.NoError(t, err)
		require.Empty(t, problemStrings(ws))
		require.Equal(t, dir, ws.Root)
		archive, err := Archive(ws)
		require.NoError(t, err)
		got := readArchive(t, archive)
		require.Equal(t, tt.want, loadSortedKeys(got), tt.file)
	}
}

func TestArchiveNotLoaded(t *testing.T) {
	t.Parallel()
	_, err := Archive(&Workspace{Name: "x"})
	require.ErrorContains(t, err, "not loaded from files")
	_, err = Archive(nil)
	require.Error(t, err)
}
