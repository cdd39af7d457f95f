package logstore

import (
	"bufio"
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/stroem/stroem"
)

// record is one line of a job file. Index is the line's position among all
// lines its step attempt printed (push offset + i); it is stored so the dedup
// state can be rebuilt after a restart even when a push skipped lines.
type record struct {
	Seq     int64         `json:"seq"`
	Step    string        `json:"step"`
	Attempt int           `json:"attempt"`
	Index   int64         `json:"index"`
	TS      time.Time     `json:"ts"`
	Stream  stroem.Stream `json:"stream"`
	Text    string        `json:"text"`
}

func (r *record) logLine() stroem.LogLine {
	return stroem.LogLine{Seq: r.Seq, Step: r.Step, Attempt: r.Attempt, TS: r.TS, Stream: r.Stream, Text: r.Text}
}

// attemptKey names a step attempt, the scope of push offsets.
type attemptKey struct {
	step    string
	attempt int
}

type indexEntry struct {
	seq int64 // seq of the line starting at off
	off int64
}

// jobState is what the store keeps in memory about a job whose file is open.
type jobState struct {
	id    string
	ready chan struct{} // closed when load has finished
	err   error         // load error, set before ready is closed

	// Guarded by Store.mu.
	refs    int // pins: Appends in flight, reads copying the state
	elem    *list.Element
	evicted bool // removed from the cache; f is closed when refs drops to 0

	// f is written and synced only by the writer goroutine.
	f *os.File
	// dirSync is set when the file was created and its directory entry has
	// not been made durable yet. Only the writer reads it after load.
	dirSync bool
	// broken is set by the writer when a failed write could not be undone;
	// the state is then dropped from the cache and every Append still
	// pinned to it fails, so only a freshly loaded state writes the file.
	broken bool
	// counts is, per step attempt, one more than the highest line index
	// stored. Only the writer touches it after load.
	counts map[attemptKey]int64

	// Guarded by mu; changed only after an fsync (committed state).
	mu      sync.Mutex
	size    int64 // bytes of complete, durable lines
	lastSeq int64
	index   []indexEntry
}

// seekOffset returns the file offset from which the line with seq target,
// and every later line, can be found. Callers hold st.mu.
func (st *jobState) seekOffset(target int64) int64 {
	i := sort.Search(len(st.index), func(i int) bool { return st.index[i].seq > target })
	if i == 0 {
		return 0
	}
	return st.index[i-1].off
}

// acquire returns the job's state, loading it (and opening its file) if it
// is not cached, pinned until release. With create false, a job without a
// file yields (nil, nil) and no file is created.
func (s *Store) acquire(id string, create bool) (*jobState, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	if st := s.jobs[id]; st != nil {
		st.refs++
		s.lru.MoveToFront(st.elem)
		s.mu.Unlock()
		<-st.ready
		if st.err != nil {
			s.release(st)
			return nil, st.err
		}
		return st, nil
	}
	if !create {
		if _, err := os.Lstat(s.path(id)); errors.Is(err, fs.ErrNotExist) {
			s.mu.Unlock()
			return nil, nil
		}
	}
	st := &jobState{id: id, ready: make(chan struct{}), refs: 1}
	st.elem = s.lru.PushFront(st)
	s.jobs[id] = st
	s.evictLocked()
	s.mu.Unlock()

	err := s.load(st)
	s.mu.Lock()
	if err == nil && s.closed {
		err = errClosed
	}
	if err != nil {
		st.err = err
		if st.f != nil {
			_ = st.f.Close()
			st.f = nil
		}
		s.forgetLocked(st)
	}
	s.mu.Unlock()
	close(st.ready)
	if err != nil {
		s.release(st)
		return nil, err
	}
	return st, nil
}

// release unpins st, closing its file if it was evicted meanwhile.
func (s *Store) release(st *jobState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.refs--
	if st.refs > 0 {
		return
	}
	if st.evicted && st.f != nil {
		if err := st.f.Close(); err != nil {
			s.log.Warn("close job log file", "job_id", st.id, "err", err)
		}
		st.f = nil
	}
	if s.lru.Len() > s.opts.MaxOpenFiles {
		s.evictLocked() // the bound was exceeded while files were pinned
	}
}

// forgetLocked removes st from the cache; its file is closed by the last
// release. Callers hold s.mu.
func (s *Store) forgetLocked(st *jobState) {
	if st.evicted {
		return
	}
	st.evicted = true
	if s.jobs[st.id] == st {
		delete(s.jobs, st.id)
	}
	s.lru.Remove(st.elem)
}

// evictLocked closes the least recently used unpinned files until at most
// MaxOpenFiles remain. Callers hold s.mu.
func (s *Store) evictLocked() {
	for e := s.lru.Back(); e != nil && s.lru.Len() > s.opts.MaxOpenFiles; {
		st := e.Value.(*jobState)
		e = e.Prev()
		if st.refs > 0 {
			continue
		}
		s.forgetLocked(st)
		if st.f != nil {
			if err := st.f.Close(); err != nil {
				s.log.Warn("close job log file", "job_id", st.id, "err", err)
			}
			st.f = nil
		}
	}
}

// load opens the job's file (creating it) and rebuilds the state from it: the
// last seq, the per-attempt counts and the seek index. Anything after the last
// complete, valid line — a line torn by a crash, never acknowledged — is cut
// off. Invalid lines in the middle (which this store never writes) are
// skipped with a warning.
func (s *Store) load(st *jobState) error {
	path := s.path(st.id)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	switch {
	case err == nil:
		st.dirSync = true
	case errors.Is(err, fs.ErrExist):
		f, err = os.OpenFile(path, os.O_RDWR, 0)
	}
	if err != nil {
		return fmt.Errorf("open log file of job %s: %w", st.id, err)
	}
	st.f = f
	st.counts = make(map[attemptKey]int64)
	if st.dirSync {
		return nil
	}

	r := bufio.NewReaderSize(f, 256<<10)
	var (
		off, validEnd int64
		bad, pending  int // invalid lines before / after the last valid one
		rec           struct {
			Seq     int64  `json:"seq"`
			Step    string `json:"step"`
			Attempt int    `json:"attempt"`
			Index   int64  `json:"index"`
		}
	)
	for {
		line, rerr := readLine(r)
		if n := len(line); n > 0 {
			rec.Seq, rec.Step, rec.Attempt, rec.Index = 0, "", 0, 0
			if line[n-1] == '\n' && json.Unmarshal(line, &rec) == nil && rec.Seq > 0 {
				if rec.Seq > st.lastSeq {
					st.lastSeq = rec.Seq
				}
				k := attemptKey{rec.Step, rec.Attempt}
				if rec.Index+1 > st.counts[k] {
					st.counts[k] = rec.Index + 1
				}
				if rec.Seq%indexEvery == 1 {
					st.index = append(st.index, indexEntry{seq: rec.Seq, off: off})
				}
				validEnd = off + int64(n)
				bad += pending
				pending = 0
			} else if line[n-1] == '\n' {
				pending++
			}
			off += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read log file of job %s: %w", st.id, rerr)
		}
	}
	if off > validEnd {
		// A torn tail: the writer never acknowledged it. Cut it off so the
		// next append starts on a line boundary.
		s.log.Warn("cutting torn tail of job log file", "job_id", st.id, "bytes", off-validEnd)
		if err := f.Truncate(validEnd); err != nil {
			return fmt.Errorf("truncate torn tail of job %s: %w", st.id, err)
		}
	}
	if bad > 0 {
		s.log.Warn("skipping invalid lines in job log file", "job_id", st.id, "lines", bad)
	}
	st.size = validEnd
	return nil
}
