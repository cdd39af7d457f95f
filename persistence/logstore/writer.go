package logstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/stroem/stroem"
)

// maxParallelSyncs bounds the fsyncs of one batch that run at once (one per
// job file in the batch); the file system merges concurrent fsyncs into few
// journal commits.
const maxParallelSyncs = 8

type request struct {
	st      *jobState // pinned; the writer releases it
	step    string
	attempt int
	offset  int64
	lines   []stroem.PushLine
	done    chan result // buffered: the writer never blocks on a gone caller
}

type result struct {
	lines []stroem.LogLine
	err   error
}

// jobBatch is what one group commit writes to one job file.
type jobBatch struct {
	st        *jobState
	reqs      []*request
	out       [][]stroem.LogLine // per request
	buf       bytes.Buffer
	enc       *json.Encoder
	startSize int64
	lastSeq   int64
	counts    map[attemptKey]int64 // overlay on st.counts, applied on success
	index     []indexEntry
	err       error
}

// run is the writer: it takes every Append waiting at that moment, writes
// each job file once, fsyncs the files (in parallel) and the directory if a
// file is new, and only then makes the lines visible and answers. Pushes
// that arrive during an fsync wait and form the next batch, so the number of
// fsyncs grows with time, not with the number of pushes.
func (s *Store) run() {
	defer close(s.done)
	for {
		var batch []*request
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-s.quit:
			// Answer the Appends already handed over, then stop.
			for {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				s.commit(batch)
			}
			return
		}
	collect:
		for len(batch) < maxBatchRequests {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []*request) {
	s.nBatches.Add(1)
	s.nAppends.Add(int64(len(batch)))
	var jobs []*jobBatch
	byState := make(map[*jobState]*jobBatch)
	for _, r := range batch {
		jb := byState[r.st]
		if jb == nil {
			r.st.mu.Lock()
			jb = &jobBatch{st: r.st, startSize: r.st.size, lastSeq: r.st.lastSeq, counts: map[attemptKey]int64{}}
			r.st.mu.Unlock()
			if r.st.broken {
				jb.err = fmt.Errorf("log file of job %s failed earlier and is being reopened", r.st.id)
			}
			jb.enc = json.NewEncoder(&jb.buf)
			jb.enc.SetEscapeHTML(false)
			byState[r.st] = jb
			jobs = append(jobs, jb)
		}
		jb.reqs = append(jb.reqs, r)
		jb.out = append(jb.out, jb.encode(r))
	}

	// Write each file once, then make the writes durable.
	var toSync []*jobBatch
	dirSync := false
	for _, jb := range jobs {
		if jb.buf.Len() == 0 || jb.err != nil {
			continue
		}
		if jb.st.f == nil {
			jb.err = fmt.Errorf("log file of job %s is closed", jb.st.id)
			continue
		}
		if _, err := jb.st.f.WriteAt(jb.buf.Bytes(), jb.startSize); err != nil {
			jb.err = err
			continue
		}
		toSync = append(toSync, jb)
		dirSync = dirSync || jb.st.dirSync
	}
	s.syncAll(toSync)
	if dirSync {
		s.nFsyncs.Add(1)
		if err := s.syncDir(); err != nil {
			for _, jb := range toSync {
				if jb.st.dirSync && jb.err == nil {
					jb.err = fmt.Errorf("sync log directory: %w", err)
				}
			}
		} else {
			for _, jb := range toSync {
				if jb.err == nil {
					jb.st.dirSync = false
				}
			}
		}
	}

	for _, jb := range jobs {
		s.finish(jb)
	}
}

// encode assigns seqs to r's new lines and appends their records to the
// batch's buffer.
func (jb *jobBatch) encode(r *request) []stroem.LogLine {
	k := attemptKey{r.step, r.attempt}
	stored, ok := jb.counts[k]
	if !ok {
		stored = jb.st.counts[k]
	}
	var out []stroem.LogLine
	for i, pl := range r.lines {
		idx := r.offset + int64(i)
		if idx < stored {
			continue // already stored by an earlier push
		}
		jb.lastSeq++
		rec := record{Seq: jb.lastSeq, Step: r.step, Attempt: r.attempt, Index: idx, TS: pl.TS, Stream: pl.Stream, Text: pl.Text}
		if rec.Seq%indexEvery == 1 {
			jb.index = append(jb.index, indexEntry{seq: rec.Seq, off: jb.startSize + int64(jb.buf.Len())})
		}
		_ = jb.enc.Encode(&rec) // cannot fail: plain fields, sanitized text
		out = append(out, rec.logLine())
		stored = idx + 1
	}
	jb.counts[k] = stored
	return out
}

// syncAll fsyncs the written files, several at a time.
func (s *Store) syncAll(jobs []*jobBatch) {
	if len(jobs) == 0 {
		return
	}
	s.nFsyncs.Add(int64(len(jobs)))
	if len(jobs) == 1 {
		jobs[0].err = s.syncFile(jobs[0].st.f)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, maxParallelSyncs)
	for _, jb := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			jb.err = s.syncFile(jb.st.f)
		})
	}
	wg.Wait()
}

// finish commits a job's part of the batch (or rolls it back) and answers
// its Appends.
func (s *Store) finish(jb *jobBatch) {
	st := jb.st
	if jb.err != nil {
		// Cut what may have been written so the file ends on the last
		// durable line and the seqs are reused by the next append.
		if !st.broken && (st.f == nil || st.f.Truncate(jb.startSize) != nil) {
			st.broken = true
			s.mu.Lock()
			s.forgetLocked(st) // reloaded from the file on next use
			s.mu.Unlock()
		}
		err := &stroem.Error{Code: stroem.CodeUnavailable, Message: fmt.Sprintf("cannot store log lines of job %s", st.id), Err: jb.err}
		for _, r := range jb.reqs {
			r.done <- result{err: err}
			s.release(st)
		}
		return
	}
	for k, v := range jb.counts {
		st.counts[k] = v
	}
	n := int64(jb.buf.Len())
	st.mu.Lock()
	st.size += n
	st.lastSeq = jb.lastSeq
	st.index = append(st.index, jb.index...)
	st.mu.Unlock()
	for i, r := range jb.reqs {
		s.nLines.Add(int64(len(jb.out[i])))
		r.done <- result{lines: jb.out[i]}
		s.release(st)
	}
}
