package blob

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// State snapshots are gzip tarballs of regular files; the structured state
// is the root file StateFile. These helpers read and write them with names
// checked like artifact names, so no entry can leave its directory.

// StateFile is the name of the structured state inside a snapshot.
const StateFile = "state.json"

// MaxStateJSON bounds the structured state of a snapshot.
const MaxStateJSON = 1 << 20

// EntryName checks a tar entry's name ("./a/b" is "a/b") and returns it
// clean; a directory's trailing slash is dropped.
func EntryName(name string) (string, error) {
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimSuffix(n, "/")
	if err := persistence.CheckArtifactName(n); err != nil {
		return "", stroem.Errorf(stroem.CodeInvalid, "tarball entry %q: %s", name, stroem.ErrorMessage(err))
	}
	return n, nil
}

// Walk calls fn for every regular file of a gzip tarball, with its checked
// name. Directories are skipped; links and devices are refused.
func Walk(r io.Reader, fn func(name string, size int64, body io.Reader) error) error {
	zr, err := gzip.NewReader(r)
	if errors.Is(err, io.EOF) {
		return nil // an empty body is an empty tarball
	}
	if err != nil {
		return stroem.Errorf(stroem.CodeInvalid, "not a gzip tarball: %v", err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return stroem.Errorf(stroem.CodeInvalid, "read tarball: %v", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if _, err := EntryName(h.Name); err != nil && strings.Trim(h.Name, "./") != "" {
				return err
			}
			continue
		case tar.TypeReg:
		default:
			return stroem.Errorf(stroem.CodeInvalid, "tarball entry %q is not a regular file or directory (links are not allowed)", h.Name)
		}
		name, err := EntryName(h.Name)
		if err != nil {
			return err
		}
		if err := fn(name, h.Size, tr); err != nil {
			return err
		}
	}
}

// Writer writes a gzip tarball.
type Writer struct {
	zw *gzip.Writer
	tw *tar.Writer
}

// NewWriter writes a gzip tarball to w; Close finishes it.
func NewWriter(w io.Writer) *Writer {
	zw := gzip.NewWriter(w)
	return &Writer{zw: zw, tw: tar.NewWriter(zw)}
}

// Add writes one regular file.
func (w *Writer) Add(name string, size int64, body io.Reader) error {
	if err := w.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if _, err := io.CopyN(w.tw, body, size); err != nil {
		return fmt.Errorf("add %s to tarball: %w", name, err)
	}
	return nil
}

// Close finishes the tarball.
func (w *Writer) Close() error {
	if err := w.tw.Close(); err != nil {
		return err
	}
	return w.zw.Close()
}

// Finish closes the tarball and rewinds f, the file it was written to, for
// reading (an upload): it returns the tarball's size.
func (w *Writer) Finish(f io.Seeker) (int64, error) {
	if err := w.Close(); err != nil {
		return 0, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	return size, nil
}

// Extract writes the regular files of a gzip tarball below dir (which
// must exist), at most limit bytes in all (0: no limit), and returns the
// content of StateFile when there is one.
func Extract(r io.Reader, dir string, limit int64) ([]byte, error) {
	var total int64
	var state []byte
	err := Walk(r, func(name string, size int64, body io.Reader) error {
		total += size
		if limit > 0 && total > limit {
			return TooLarge("state snapshot", limit)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		var dst io.Writer = f
		var buf strings.Builder
		if name == StateFile && size <= MaxStateJSON {
			dst = io.MultiWriter(f, &buf)
		}
		_, err = io.CopyN(dst, body, size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if name == StateFile {
			state = []byte(buf.String())
		}
		return err
	})
	return state, err
}

// Pack writes every regular file below dir into w as a tarball, then
// extra files (name → content) at the root. Links are skipped and told to
// skipped; a name that cannot be stored is an error.
func Pack(w *Writer, dir string, skipped func(name, why string)) (files int, err error) {
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Clean(filepath.ToSlash(rel))
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			skipped(name, "not a regular file")
			return nil
		}
		if err := persistence.CheckArtifactName(name); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		files++
		return w.Add(name, st.Size(), f)
	})
	return files, err
}
