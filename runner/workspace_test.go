package runner

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

type tarEntry struct {
	name, body, link string
	typ              byte
	mode             int64
	size             int64 // overrides len(body) in the header when set
}

func file(name, body string) tarEntry {
	return tarEntry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}

// tgz builds a tar.gz archive.
func tgz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		require.NoError(t, tw.WriteHeader(h))
		if e.typ == tar.TypeReg {
			_, err := io.WriteString(tw, e.body)
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return buf.Bytes()
}

// extractInto extracts into a fresh dir inside a parent, so escapes land in
// the parent where the test can look for them.
func extractInto(t *testing.T, archive []byte, lim Limits) (string, error) {
	t.Helper()
	parent := t.TempDir()
	dst := filepath.Join(parent, "ws")
	require.NoError(t, os.Mkdir(dst, 0o755))
	err := Extract(bytes.NewReader(archive), dst, lim)
	if err == nil {
		err = Verify(dst, lim)
	}
	return dst, err
}

var testLimits = Limits{MaxBytes: 1 << 20, MaxEntries: 100}

func TestExtractGoodArchive(t *testing.T) {
	t.Parallel()
	dst, err := extractInto(t, tgz(t,
		tarEntry{name: "./", typ: tar.TypeDir},
		tarEntry{name: ".workflows/", typ: tar.TypeDir},
		file(".workflows/hello.yaml", "tasks: {}\n"),
		tarEntry{name: "actions/deploy.sh", body: "#!/bin/sh\necho hi\n", typ: tar.TypeReg, mode: 0o755},
		tarEntry{name: "link-to-script", link: "actions/deploy.sh", typ: tar.TypeSymlink},
		tarEntry{name: "actions/up", link: "../.workflows", typ: tar.TypeSymlink},
		tarEntry{name: "hard", link: "actions/deploy.sh", typ: tar.TypeLink},
		tarEntry{name: "dangling", link: "not/yet/there", typ: tar.TypeSymlink},
	), testLimits)
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dst, "link-to-script"))
	require.NoError(t, err)
	require.Equal(t, "#!/bin/sh\necho hi\n", string(b))
	fi, err := os.Stat(filepath.Join(dst, "actions/deploy.sh"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	b, err = os.ReadFile(filepath.Join(dst, "hard"))
	require.NoError(t, err)
	require.Equal(t, "#!/bin/sh\necho hi\n", string(b))
	require.FileExists(t, filepath.Join(dst, "actions/up/hello.yaml"))
}

func TestExtractRefusesAttacks(t *testing.T) {
	t.Parallel()
	cases := map[string][]tarEntry{
		"absolute path":              {file("/tmp/stroem-evil", "x")},
		"dot-dot":                    {file("../evil", "x")},
		"dot-dot inside":             {file("a/../../evil", "x")},
		"symlink absolute":           {{name: "l", link: "/etc", typ: tar.TypeSymlink}},
		"symlink relative outside":   {{name: "a/l", link: "../../evil", typ: tar.TypeSymlink}},
		"write through symlink":      {{name: "d", typ: tar.TypeDir}, {name: "d/up", link: "..", typ: tar.TypeSymlink}, file("d/up/../../evil", "x")},
		"hardlink outside":           {{name: "h", link: "../evil", typ: tar.TypeLink}},
		"hardlink absolute":          {{name: "h", link: "/etc/passwd", typ: tar.TypeLink}},
		"hardlink to missing":        {{name: "h", link: "later", typ: tar.TypeLink}, file("later", "x")},
		"hardlink to symlink":        {{name: "s", link: "x", typ: tar.TypeSymlink}, {name: "h", link: "s", typ: tar.TypeLink}},
		"char device":                {{name: "null", typ: tar.TypeChar}},
		"block device":               {{name: "sda", typ: tar.TypeBlock}},
		"fifo":                       {{name: "pipe", typ: tar.TypeFifo}},
		"duplicate name":             {file("a", "1"), file("a", "2")},
		"file over existing symlink": {{name: "a", link: "b", typ: tar.TypeSymlink}, file("a", "x")},
		"too large":                  {file("big", string(make([]byte, 2<<20)))},
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dst, err := extractInto(t, tgz(t, entries...), testLimits)
			require.Error(t, err)
			t.Log(err)
			require.NoFileExists(t, filepath.Join(filepath.Dir(dst), "evil"))
			require.NoFileExists(t, "/tmp/stroem-evil")
		})
	}
}

func TestExtractCaps(t *testing.T) {
	t.Parallel()
	many := make([]tarEntry, 0, 101)
	for i := range 101 {
		many = append(many, file("f"+strconv.Itoa(i), "x"))
	}
	_, err := extractInto(t, tgz(t, many...), testLimits)
	require.ErrorIs(t, err, ErrUnsafeArchive)
	require.ErrorContains(t, err, "more than 100 entries")

	var parts []tarEntry
	for i := range 5 {
		parts = append(parts, file("p"+strconv.Itoa(i), string(make([]byte, 300<<10))))
	}
	_, err = extractInto(t, tgz(t, parts...), testLimits)
	require.ErrorIs(t, err, ErrUnsafeArchive, "the total is capped, not only each file")

	_, err = extractInto(t, []byte("not a gzip stream"), testLimits)
	require.ErrorContains(t, err, "read archive")
}

func TestVerifyCatchesSymlinkChainsOutside(t *testing.T) {
	t.Parallel()
	// Each link is inside lexically, but s1 resolves to the parent: d/s2 is
	// the root, so d/s2/.. is above it.
	dst, err := extractInto(t, tgz(t,
		tarEntry{name: "d", typ: tar.TypeDir},
		tarEntry{name: "d/s2", link: "..", typ: tar.TypeSymlink},
		tarEntry{name: "s1", link: "d/s2/..", typ: tar.TypeSymlink},
	), testLimits)
	require.ErrorIs(t, err, ErrUnsafeArchive)
	require.ErrorContains(t, err, "symlink s1 resolves outside")

	// Writing through such a chain is refused during extraction already.
	_, err = extractInto(t, tgz(t,
		tarEntry{name: "d", typ: tar.TypeDir},
		tarEntry{name: "d/s2", link: "..", typ: tar.TypeSymlink},
		tarEntry{name: "s1", link: "d/s2/..", typ: tar.TypeSymlink},
		file("s1/evil", "x"),
	), testLimits)
	require.Error(t, err)
	require.NoFileExists(t, filepath.Join(filepath.Dir(dst), "evil"))
}

func TestWorkspaceCacheDownloadsOncePerRevision(t *testing.T) {
	t.Parallel()
	archive := tgz(t, file("actions/run.sh", "echo cached\n"))
	var fetches atomic.Int32
	release := make(chan struct{})
	cache := NewWorkspaceCache(t.TempDir(), func(ctx context.Context, ws, rev string) (io.ReadCloser, error) {
		fetches.Add(1)
		<-release
		return io.NopCloser(bytes.NewReader(archive)), nil
	}, nil)

	var wg sync.WaitGroup
	dirs := make([]string, 5)
	for i := range dirs {
		wg.Go(func() {
			dir, rel, err := cache.Acquire(context.Background(), "default", "rev1")
			require.NoError(t, err)
			defer rel()
			dirs[i] = dir
		})
	}
	require.Eventually(t, func() bool { return fetches.Load() == 1 }, 5*time.Second, 5*time.Millisecond)
	close(release)
	wg.Wait()
	require.Equal(t, int32(1), fetches.Load(), "concurrent steps of one revision download once")
	for _, d := range dirs {
		require.Equal(t, dirs[0], d)
	}
	require.FileExists(t, filepath.Join(dirs[0], "actions/run.sh"))

	_, rel, err := cache.Acquire(context.Background(), "default", "rev1")
	require.NoError(t, err)
	rel()
	require.Equal(t, int32(1), fetches.Load(), "cached on disk")

	_, _, err = cache.Acquire(context.Background(), "default", "../x")
	require.ErrorContains(t, err, "invalid revision")
}

func TestWorkspaceCacheFailuresAreNotCached(t *testing.T) {
	t.Parallel()
	var fetches atomic.Int32
	cache := NewWorkspaceCache(t.TempDir(), func(ctx context.Context, ws, rev string) (io.ReadCloser, error) {
		if fetches.Add(1) == 1 {
			return nil, stroem.Errorf(stroem.CodeUnavailable, "server down")
		}
		if rev == "evil" {
			return io.NopCloser(bytes.NewReader(tgz(t, file("../x", "")))), nil
		}
		return io.NopCloser(bytes.NewReader(tgz(t, file("a", "b")))), nil
	}, nil)
	_, _, err := cache.Acquire(context.Background(), "ws", "r")
	require.ErrorIs(t, err, stroem.ErrUnavailable)
	dir, rel, err := cache.Acquire(context.Background(), "ws", "r")
	require.NoError(t, err)
	rel()
	require.FileExists(t, filepath.Join(dir, "a"))

	_, _, err = cache.Acquire(context.Background(), "ws", "evil")
	require.ErrorIs(t, err, ErrUnsafeArchive)
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no half-extracted or refused revision stays behind")
}

func TestWorkspaceCacheWaiterCancel(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	cache := NewWorkspaceCache(t.TempDir(), func(ctx context.Context, ws, rev string) (io.ReadCloser, error) {
		close(started)
		<-ctx.Done() // a download nobody waits for any more is cancelled
		return nil, ctx.Err()
	}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := cache.Acquire(ctx, "ws", "r")
		errc <- err
	}()
	<-started
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	require.Eventually(t, func() bool {
		cache.mu.Lock()
		defer cache.mu.Unlock()
		return len(cache.inflight) == 0
	}, 5*time.Second, 5*time.Millisecond)
}

func TestWorkspaceCachePrunesOldUnusedRevisions(t *testing.T) {
	t.Parallel()
	cache := NewWorkspaceCache(t.TempDir(), func(ctx context.Context, ws, rev string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tgz(t, file("f", rev)))), nil
	}, nil)
	cache.Keep = 2
	_, holdR0, err := cache.Acquire(context.Background(), "ws", "r0")
	require.NoError(t, err)
	for i := 1; i <= 4; i++ {
		_, rel, err := cache.Acquire(context.Background(), "ws", "r"+strconv.Itoa(i))
		require.NoError(t, err)
		rel()
		time.Sleep(10 * time.Millisecond) // distinct modification times
	}
	holdR0()
	entries, err := os.ReadDir(cache.dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Contains(t, names, "r0", "a revision in use is never removed")
	require.Contains(t, names, "r4")
	require.NotContains(t, names, "r1")
}

func TestVerifyRejectsSpecialFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, mkfifo(filepath.Join(dir, "p")))
	err := Verify(dir, testLimits)
	require.True(t, errors.Is(err, ErrUnsafeArchive), "got %v", err)
}

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }

// validRevision accepts exactly what the regular expression it replaced
// accepted.
func TestValidRevisionAsTheRegexp(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	cases := []string{"", "a", "A9", "abc123", ".a", "_a", "-a", "a.b_c-d", "a/b", "..", "a b", "é", "a\n",
		strings.Repeat("f", 128), strings.Repeat("f", 129), "0" + strings.Repeat(".", 127), "a\x00"}
	for c := range 256 { // every byte, alone and after a letter
		cases = append(cases, string([]byte{byte(c)}), "a"+string([]byte{byte(c)}))
	}
	for _, rev := range cases {
		require.Equal(t, re.MatchString(rev), validRevision(rev), "%q", rev)
	}
}

func FuzzValidRevision(f *testing.F) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	f.Add("3f2a9c.b-1_x")
	f.Fuzz(func(t *testing.T, rev string) {
		if re.MatchString(rev) != validRevision(rev) {
			t.Fatalf("%q: regexp %v, validRevision %v", rev, re.MatchString(rev), validRevision(rev))
		}
	})
}
