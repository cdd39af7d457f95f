package logstream

import (
	"context"
	"sync"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// logAppend is one push, as the worker API hands it to the store.
type logAppend struct {
	Step    string
	Attempt int
	Offset  int64
	Lines   []stroem.PushLine
	Mask    func(string) string
}

// memLogs is an in-memory log store with the guarantees the hub relies on
// (persistence/logs.go): gap-free seqs per job, visible in order, dedup by
// (step, attempt, offset). The stores themselves are tested by storetest.
type memLogs struct {
	mu    sync.Mutex
	lines map[string][]stroem.LogLine
	next  map[string]int64 // job/step/attempt → next offset
	scans []string         // the step of each Scan and Read
}

func newMemLogs() *memLogs {
	return &memLogs{lines: map[string][]stroem.LogLine{}, next: map[string]int64{}}
}

func (m *memLogs) Append(_ context.Context, jobID string, a logAppend) ([]stroem.LogLine, error) {
	pl, err := persistence.PrepareLogLines(a.Lines, a.Mask)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	key := jobID + "/" + a.Step + "/" + string(rune('0'+a.Attempt))
	if skip := m.next[key] - a.Offset; skip > 0 {
		pl = pl[min(int(skip), len(pl)):]
	}
	m.next[key] = max(m.next[key], a.Offset+int64(len(a.Lines)))
	out := persistence.StoredLines(persistence.LogAppend{Step: a.Step, Attempt: a.Attempt}, pl, int64(len(m.lines[jobID])+1))
	m.lines[jobID] = append(m.lines[jobID], out...)
	return out, nil
}

func (m *memLogs) Read(jobID string, afterSeq int64, step string) ([]stroem.LogLine, error) {
	out := []stroem.LogLine{}
	err := m.Scan(jobID, afterSeq, step, func(l stroem.LogLine) error {
		out = append(out, l)
		return nil
	})
	return out, err
}

// Scan reads in pages, like the stores (persistence.ScanLogPages), calling
// fn without the lock held.
func (m *memLogs) Scan(jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error {
	m.mu.Lock()
	m.scans = append(m.scans, step)
	m.mu.Unlock()
	return persistence.ScanLogPages(afterSeq, fn, func(after int64) ([]stroem.LogLine, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		all := m.lines[jobID] // the line with seq n is all[n-1]
		var page []stroem.LogLine
		for _, l := range all[min(int(max(after, 0)), len(all)):] {
			if len(page) == persistence.LogPageSize {
				break
			}
			if stroem.InStep(l.Step, step) {
				page = append(page, l)
			}
		}
		return page, nil
	})
}

// scanned returns the step of each Scan and Read since the last call.
func (m *memLogs) scanned() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.scans
	m.scans = nil
	return out
}

func (m *memLogs) Close() error { return nil }
