package logstore

import (
	"bufio"
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stroem/stroem"
)

// Defaults of Options.
const (
	DefaultMaxOpenFiles = 256
	// maxBatchRequests bounds how many pushes one group commit takes, so one
	// batch never holds an unbounded amount of memory or delays its first
	// push behind an arbitrarily long write.
	maxBatchRequests = 1024
	// indexEvery is the distance, in lines, between two entries of a job's
	// in-memory seek index: Read(afterSeq) starts at most this many lines
	// before the first line it returns instead of at the top of the file.
	indexEvery = 1024
)

// Options tunes a Store. The zero value gives the defaults.
type Options struct {
	// MaxOpenFiles bounds the job files kept open (LRU). Files pinned by an
	// Append in flight are never closed, so the bound can be exceeded by the
	// number of jobs being appended to at the same instant.
	MaxOpenFiles int
}

func (o Options) withDefaults() Options {
	if o.MaxOpenFiles <= 0 {
		o.MaxOpenFiles = DefaultMaxOpenFiles
	}
	return o
}

// Append is one push of log lines from a step attempt.
type Append struct {
	Step    string
	Attempt int
	// Offset is the index of Lines[0] among all lines the attempt printed
	// (stroem.LogPush.Offset).
	Offset int64
	Lines  []stroem.PushLine
	// Mask replaces secret values in a line's text; nil leaves it as is.
	Mask func(string) string
}

// Stats counts what the store did since Open, to measure group commit.
type Stats struct {
	Appends int64 // Append calls that reached the writer
	Lines   int64 // lines stored (after dedup)
	Batches int64 // group commits
	Fsyncs  int64 // fsync calls on job files and on the directory
}

// Store is the log store. It is safe for concurrent use.
type Store struct {
	dir  string
	log  *slog.Logger
	opts Options

	reqs      chan *request // unbuffered: the writer collects blocked senders into a batch
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu     sync.Mutex
	closed bool
	jobs   map[string]*jobState
	lru    *list.List // of *jobState, most recently used first

	// syncFile and syncDir make data durable; tests replace them to inject
	// slow or failing disks.
	syncFile func(*os.File) error
	syncDir  func() error

	nAppends, nLines, nBatches, nFsyncs atomic.Int64
}

// Open opens (creating it if needed) the log directory and starts the
// writer. Call Close to stop it.
func Open(dir string, log *slog.Logger) (*Store, error) {
	return OpenWithOptions(dir, log, Options{})
}

// OpenWithOptions is Open with tuning.
func OpenWithOptions(dir string, log *slog.Logger, opts Options) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if dir == "" {
		return nil, errors.New("open log store: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open log store: %w", err)
	}
	s := &Store{
		dir:  dir,
		log:  log,
		opts: opts.withDefaults(),
		reqs: make(chan *request),
		quit: make(chan struct{}),
		done: make(chan struct{}),
		jobs: make(map[string]*jobState),
		lru:  list.New(),
	}
	s.syncFile = func(f *os.File) error { return f.Sync() }
	s.syncDir = func() error {
		d, err := os.Open(s.dir)
		if err != nil {
			return err
		}
		err = d.Sync()
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		return err
	}
	go s.run()
	return s, nil
}

// Close stops the writer and closes every file. Appends waiting for the
// writer when Close is called either complete or fail with a CodeUnavailable
// error; later calls fail the same way. Close is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.quit)
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, st := range s.jobs {
			st.evicted = true
			if st.f != nil {
				if cerr := st.f.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("close log file of job %s: %w", st.id, cerr)
				}
				st.f = nil
			}
		}
		clear(s.jobs)
		s.lru.Init()
	})
	return err
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Appends: s.nAppends.Load(),
		Lines:   s.nLines.Load(),
		Batches: s.nBatches.Load(),
		Fsyncs:  s.nFsyncs.Load(),
	}
}

var errClosed = &stroem.Error{Code: stroem.CodeUnavailable, Message: "log storage is shut down"}

// Append stores the push's new lines durably and returns them with their
// seq, in order. Lines already stored by an earlier push of the same
// (step, attempt) are dropped, so the result may be shorter than p.Lines or
// empty. It returns only once the lines are fsynced. If ctx ends first it
// returns ctx's error; the lines may or may not have been stored, and a
// retry of the same push stores nothing twice.
func (s *Store) Append(ctx context.Context, jobID string, p Append) ([]stroem.LogLine, error) {
	id, err := canonicalID(jobID)
	if err != nil {
		return nil, err
	}
	if p.Step == "" {
		return nil, stroem.Invalid("log push without a step name")
	}
	if p.Attempt < 0 || p.Offset < 0 {
		return nil, stroem.Invalid(fmt.Sprintf("log push with a negative attempt (%d) or offset (%d)", p.Attempt, p.Offset))
	}
	if len(p.Lines) == 0 {
		return nil, ctx.Err()
	}
	lines, err := prepare(p)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := s.acquire(id, true)
	if err != nil {
		return nil, err
	}
	req := &request{
		st:      st,
		step:    p.Step,
		attempt: p.Attempt,
		offset:  p.Offset,
		lines:   lines,
		done:    make(chan result, 1),
	}
	select {
	case s.reqs <- req: // the writer now owns the pin on st
	case <-s.quit:
		s.release(st)
		return nil, errClosed
	case <-ctx.Done():
		s.release(st)
		return nil, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.lines, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// prepare masks and sanitizes the texts and fills defaults, in the caller's
// goroutine so the writer does as little as possible.
func prepare(p Append) ([]stroem.PushLine, error) {
	out := make([]stroem.PushLine, len(p.Lines))
	var now time.Time
	for i, l := range p.Lines {
		switch {
		case l.Stream == "":
			l.Stream = stroem.Stdout
		case !l.Stream.Valid():
			return nil, stroem.Invalid(fmt.Sprintf("log line %d: unknown stream %q (want stdout or stderr)", i, stroem.SanitizeText(string(l.Stream))))
		}
		if l.TS.IsZero() {
			if now.IsZero() {
				now = time.Now().UTC()
			}
			l.TS = now
		}
		if p.Mask != nil {
			l.Text = p.Mask(l.Text)
		}
		l.Text = stroem.SanitizeText(l.Text)
		out[i] = l
	}
	return out, nil
}

// Read returns the stored lines of the job with seq > afterSeq (all when
// afterSeq is 0), only those of step when step is not empty, in seq order.
// A job without logs yields an empty slice.
func (s *Store) Read(jobID string, afterSeq int64, step string) ([]stroem.LogLine, error) {
	out := []stroem.LogLine{}
	err := s.Scan(jobID, afterSeq, step, func(l stroem.LogLine) error {
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Scan is Read without holding every line in memory: it calls fn for each
// line in order and stops at the first error fn returns, which Scan
// returns. It reads through its own file handle and holds no lock while fn
// runs, so a slow fn (a slow HTTP client) delays nobody else.
func (s *Store) Scan(jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error {
	id, err := canonicalID(jobID)
	if err != nil {
		return err
	}
	st, err := s.acquire(id, false)
	if err != nil || st == nil {
		return err
	}
	st.mu.Lock()
	size, last, off := st.size, st.lastSeq, st.seekOffset(afterSeq+1)
	st.mu.Unlock()
	s.release(st)
	if afterSeq >= last || off >= size {
		return nil
	}

	f, err := os.Open(s.path(id))
	if err != nil {
		return fmt.Errorf("read logs of job %s: %w", id, err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(io.NewSectionReader(f, off, size-off), 64<<10)
	var rec record
	stepPrefix := stepFieldPrefix(step)
	for {
		line, err := readLine(r)
		if len(line) > 0 && line[len(line)-1] == '\n' && !skipLine(line, afterSeq, stepPrefix) {
			rec = record{}
			if json.Unmarshal(line, &rec) == nil && rec.Seq > afterSeq && (step == "" || rec.Step == step) {
				if ferr := fn(rec.logLine()); ferr != nil {
					return ferr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read logs of job %s: %w", id, err)
		}
	}
}

// Lines are written as {"seq":N,"step":"…",…}. skipLine uses that layout to
// pass over lines Scan does not want without decoding them (the seek index
// lands up to indexEvery lines early, and a step filter skips most lines);
// a line in any other layout is left to the full decoder.
func skipLine(line []byte, afterSeq int64, stepPrefix []byte) bool {
	const seqKey = `{"seq":`
	if !bytes.HasPrefix(line, []byte(seqKey)) {
		return false
	}
	rest := line[len(seqKey):]
	var seq int64
	i := 0
	for ; i < len(rest) && i < 19 && '0' <= rest[i] && rest[i] <= '9'; i++ {
		seq = seq*10 + int64(rest[i]-'0')
	}
	if i == 0 || i == len(rest) || rest[i] != ',' {
		return false
	}
	if seq <= afterSeq {
		return true
	}
	rest = rest[i+1:]
	return stepPrefix != nil && bytes.HasPrefix(rest, []byte(`"step":`)) && !bytes.HasPrefix(rest, stepPrefix)
}

// stepFieldPrefix is `"step":<step as JSON>,` as the writer encodes it, or
// nil for no step filter.
func stepFieldPrefix(step string) []byte {
	if step == "" {
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(step)
	return append(append([]byte(`"step":`), bytes.TrimSuffix(b.Bytes(), []byte("\n"))...), ',')
}

// LastSeq returns the seq of the job's last stored line, 0 when it has none.
func (s *Store) LastSeq(jobID string) (int64, error) {
	id, err := canonicalID(jobID)
	if err != nil {
		return 0, err
	}
	st, err := s.acquire(id, false)
	if err != nil || st == nil {
		return 0, err
	}
	defer s.release(st)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.lastSeq, nil
}

func (s *Store) path(id string) string { return filepath.Join(s.dir, id+".jsonl") }

// canonicalID accepts a job id only in the canonical UUID form (any case)
// and returns it in lower case, so the id is safe as a file name and the
// same job always maps to the same file.
func canonicalID(id string) (string, error) {
	ok := len(id) == 36
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			ok = c == '-'
		default:
			ok = '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
		}
	}
	if !ok {
		if len(id) > 64 {
			id = id[:64] + "…"
		}
		return "", stroem.Invalid(fmt.Sprintf("invalid job id %q: not a UUID", stroem.SanitizeText(id)))
	}
	return strings.ToLower(id), nil
}

// readLine returns the next line including its '\n'; a final line without
// '\n' is returned as is, with io.EOF.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	buf := append([]byte(nil), line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = r.ReadSlice('\n')
		buf = append(buf, line...)
	}
	return buf, err
}
