package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

type memChunks struct {
	mu     sync.Mutex
	m      map[string][]byte
	gets   int
	maxLen int
}

func key(id string, n int) string { return id + "/" + string(rune('a'+n)) }

func (s *memChunks) BlobChunkPut(_ context.Context, id string, n int, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	s.maxLen = max(s.maxLen, len(data))
	s.m[key(id, n)] = bytes.Clone(data)
	return nil
}

func (s *memChunks) BlobChunkGet(_ context.Context, id string, n int) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	b, ok := s.m[key(id, n)]
	if !ok {
		return nil, stroem.ErrNotFound
	}
	return b, nil
}

func TestPutOpenRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, size := range []int{0, 1, persistence.BlobChunkSize, persistence.BlobChunkSize + 7, 3*persistence.BlobChunkSize - 1} {
		s := &memChunks{}
		data := make([]byte, size)
		_, _ = rand.Read(data)
		w, err := Put(ctx, s, bytes.NewReader(data), 0, "test")
		require.NoError(t, err)
		sum := sha256.Sum256(data)
		require.Equal(t, hex.EncodeToString(sum[:]), w.SHA256)
		require.Equal(t, int64(size), w.Size)
		require.LessOrEqual(t, s.maxLen, persistence.BlobChunkSize, "no chunk over the chunk size")
		got, err := io.ReadAll(Open(ctx, s, w.ID, w.Size))
		require.NoError(t, err)
		require.True(t, bytes.Equal(data, got), "size %d", size)
	}
}

func TestPutLimit(t *testing.T) {
	t.Parallel()
	s := &memChunks{}
	_, err := Put(context.Background(), s, strings.NewReader(strings.Repeat("x", 101)), 100, `artifact "a"`)
	require.Equal(t, stroem.CodeTooLarge, stroem.ErrorCode(err))
	require.Contains(t, stroem.ErrorMessage(err), `artifact "a" is larger than the limit of 100 bytes`)
	_, err = Put(context.Background(), s, strings.NewReader(strings.Repeat("x", 100)), 100, "b")
	require.NoError(t, err, "exactly the limit is fine")
}

func TestOpenMissingChunk(t *testing.T) {
	t.Parallel()
	_, err := io.ReadAll(Open(context.Background(), &memChunks{}, "gone", 10))
	require.ErrorIs(t, err, stroem.ErrNotFound)
}

func TestTarNamesCannotEscape(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"../x", "/etc/passwd", "a/../../b", "a\x01b"} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		require.NoError(t, w.Add(name, 1, strings.NewReader("x")))
		require.NoError(t, w.Close())
		dir := t.TempDir()
		_, err := Extract(&buf, dir, 0)
		require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err), "%q: %v", name, err)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf)
	require.NoError(t, w.Add("./sub/ok.txt", 2, strings.NewReader("ok")))
	require.NoError(t, w.Add(StateFile, 2, strings.NewReader("{}")))
	require.NoError(t, w.Close())
	st, err := Extract(&buf, t.TempDir(), 0)
	require.NoError(t, err)
	require.Equal(t, "{}", string(st))
}

type prunes struct{ calls []int64 }

func (p *prunes) BlobsPrune(_ context.Context, before time.Time, limit int, dryRun bool) (int64, error) {
	n := int64(0)
	if len(p.calls) == 0 {
		n = int64(limit) // a full batch: another follows
	}
	p.calls = append(p.calls, n)
	return n, nil
}

func TestPruneHookRunsBatchesUntilShort(t *testing.T) {
	t.Parallel()
	p := &prunes{}
	require.NoError(t, PruneHook(p)(context.Background(), nil))
	require.Equal(t, []int64{100, 0}, p.calls)
}

type cutReader struct{ left int }

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.ErrUnexpectedEOF // what net/http says of a body cut short
	}
	n := min(len(p), c.left)
	c.left -= n
	return n, nil
}

// A body cut short is a failed upload, never a shorter file.
func TestPutCutShortFails(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 10, persistence.BlobChunkSize + 3} {
		_, err := Put(context.Background(), &memChunks{}, &cutReader{left: n}, 0, "x")
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "after %d bytes", n)
	}
}
