// Package blob streams files into and out of the store as numbered chunks
// (persistence.StateArtifactStore's BlobChunk methods): artifacts and state
// snapshots live in the database, the one durable copy every server reads,
// and neither writing nor reading holds more than one chunk in memory.
//
// A blob is invisible until the row that names it (an artifact, a
// snapshot) is committed after its last chunk; chunks of an upload cut
// off halfway are left for retention (BlobsPrune). It must not know about
// jobs, HTTP or SQL.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Chunks is what the blob store needs of a store.
type Chunks interface {
	BlobChunkPut(ctx context.Context, blobID string, n int, data []byte) error
	BlobChunkGet(ctx context.Context, blobID string, n int) ([]byte, error)
}

// Written describes a blob Put stored.
type Written struct {
	ID     string
	Size   int64
	SHA256 string
}

// Put reads r to its end into a new blob of at most limit bytes (0: no
// limit), chunk by chunk. A body over the limit, a read error or a store
// error leaves unnamed chunks behind (BlobsPrune removes them) and returns
// the error; what (e.g. `artifact "report.html"`) names the body in it.
func Put(ctx context.Context, s Chunks, r io.Reader, limit int64, what string) (Written, error) {
	id := uuid.NewString()
	h := sha256.New()
	buf := make([]byte, persistence.BlobChunkSize)
	var size int64
	for n := 0; ; n++ {
		k, err := fill(r, buf)
		if k > 0 || n == 0 {
			size += int64(k)
			if limit > 0 && size > limit {
				return Written{}, TooLarge(what, limit)
			}
			h.Write(buf[:k])
			if perr := s.BlobChunkPut(ctx, id, n, buf[:k]); perr != nil {
				return Written{}, perr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Written{}, fmt.Errorf("read %s: %w", what, err)
		}
	}
	return Written{ID: id, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Reader streams a blob of a known size chunk by chunk.
type Reader struct {
	ctx  context.Context
	s    Chunks
	id   string
	left int64
	n    int
	cur  []byte
}

// Open returns a reader of the size bytes of blob id.
func Open(ctx context.Context, s Chunks, id string, size int64) *Reader {
	return &Reader{ctx: ctx, s: s, id: id, left: size}
}

func (r *Reader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.left <= 0 {
			return 0, io.EOF
		}
		b, err := r.s.BlobChunkGet(r.ctx, r.id, r.n)
		if err != nil {
			return 0, fmt.Errorf("read chunk %d of blob %s: %w", r.n, r.id, err)
		}
		if len(b) == 0 {
			return 0, fmt.Errorf("blob %s: chunk %d is empty with %d bytes still to come", r.id, r.n, r.left)
		}
		r.n++
		r.cur = b
	}
	k := copy(p, r.cur)
	if int64(k) > r.left {
		k = int(r.left)
	}
	r.cur = r.cur[k:]
	r.left -= int64(k)
	if r.left == 0 {
		r.cur = nil
	}
	return k, nil
}

// ReadAll reads a whole (small) blob, refusing one over limit bytes.
func ReadAll(ctx context.Context, s Chunks, id string, size, limit int64) ([]byte, error) {
	if limit > 0 && size > limit {
		return nil, TooLarge("blob "+id, limit)
	}
	return io.ReadAll(Open(ctx, s, id, size))
}

// TooLarge is the error of a body over its limit (413).
func TooLarge(what string, limit int64) error {
	return stroem.Errorf(stroem.CodeTooLarge, "%s is larger than the limit of %d bytes", what, limit)
}

// fill reads into buf until it is full (nil error) or r ends (io.EOF, with
// what was read). Unlike io.ReadFull it passes every other error on as it
// is: a body cut short (net/http's io.ErrUnexpectedEOF) is a failed upload,
// never the end of a shorter file.
func fill(r io.Reader, buf []byte) (int, error) {
	k := 0
	for k < len(buf) {
		n, err := r.Read(buf[k:])
		k += n
		if err != nil {
			return k, err
		}
	}
	return k, nil
}
