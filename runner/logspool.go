package runner

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/stroem/stroem"
)

// errSpoolFull says a line does not fit in the spool.
var errSpoolFull = errors.New("log spool full")

// spool is a bounded FIFO of log lines in a file (JSON lines), used by a
// shipper while the server cannot be reached, so a step that prints a lot
// during an outage costs disk, not memory. Lines are appended at the end and
// read from the front; once every written line has been read the file is
// truncated, so its size is bounded by max however long the step runs.
// Not safe for concurrent use (the shipper holds its mutex).
type spool struct {
	path string
	max  int64

	f       *os.File
	w       *bufio.Writer
	r       *bufio.Reader
	written int64 // bytes appended since the last truncation
	read    int64 // bytes consumed from the front
	lines   int   // lines written but not yet read
}

func newSpool(path string, max int64) (*spool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create log spool: %w", err)
	}
	return &spool{path: path, max: max, f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// len is the number of lines waiting in the spool.
func (s *spool) len() int { return s.lines }

// put appends one line, or returns errSpoolFull when it would make the
// file larger than max.
func (s *spool) put(l stroem.PushLine) error {
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode spooled line: %w", err)
	}
	if s.written+int64(len(b))+1 > s.max {
		return errSpoolFull
	}
	if s.lines == 0 && s.written > 0 {
		// Everything was read: start the file over.
		if err := s.reset(); err != nil {
			return err
		}
	}
	if _, err := s.f.Seek(s.written, io.SeekStart); err != nil {
		return fmt.Errorf("log spool: %w", err)
	}
	s.w.Reset(s.f)
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write log spool: %w", err)
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write log spool: %w", err)
	}
	s.written += int64(len(b)) + 1
	s.lines++
	return nil
}

// take reads up to n lines (and about maxBytes of text) from the front.
func (s *spool) take(n, maxBytes int) ([]stroem.PushLine, error) {
	if s.lines == 0 || n <= 0 {
		return nil, nil
	}
	if _, err := s.f.Seek(s.read, io.SeekStart); err != nil {
		return nil, fmt.Errorf("log spool: %w", err)
	}
	if s.r == nil {
		s.r = bufio.NewReaderSize(s.f, 64<<10)
	} else {
		s.r.Reset(s.f)
	}
	var out []stroem.PushLine
	size := 0
	for len(out) < n && s.lines > 0 {
		raw, err := s.r.ReadBytes('\n')
		if err != nil {
			return out, fmt.Errorf("read log spool: %w", err)
		}
		var l stroem.PushLine
		if err := json.Unmarshal(raw, &l); err != nil {
			return out, fmt.Errorf("decode log spool: %w", err)
		}
		out = append(out, l)
		s.read += int64(len(raw))
		s.lines--
		size += len(l.Text)
		if size >= maxBytes {
			break
		}
	}
	if s.lines == 0 {
		if err := s.reset(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// reset empties the file once every line in it has been read.
func (s *spool) reset() error {
	s.written, s.read = 0, 0
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate log spool: %w", err)
	}
	return nil
}

// remove closes and deletes the file.
func (s *spool) remove() {
	_ = s.f.Close()
	_ = os.Remove(s.path)
}
