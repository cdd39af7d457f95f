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
	out := make([]stroem.LogLine, len(pl))
	for i, l := range pl {
		out[i] = stroem.LogLine{Seq: int64(len(m.lines[jobID]) + 1), Step: a.Step, Attempt: a.Attempt, TS: l.TS, Stream: l.Stream, Text: l.Text}
		m.lines[jobID] = append(m.lines[jobID], out[i])
	}
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

// Scan reads in pages, like the stores, calling fn without the lock held.
func (m *memLogs) Scan(jobID string, afterSeq int64, step string, fn func(stroem.LogLine) error) error {
	for {
		m.mu.Lock()
		all := m.lines[jobID]
		var page []stroem.LogLine
		i := int(max(afterSeq, 0))
		for ; i < len(all) && len(page) < persistence.LogPageSize; i++ {
			if step == "" || all[i].Step == step {
				page = append(page, all[i])
			}
			afterSeq = all[i].Seq
		}
		end := i >= len(all)
		m.mu.Unlock()
		for _, l := range page {
			if err := fn(l); err != nil {
				return err
			}
		}
		if end {
			return nil
		}
	}
}

func (m *memLogs) Close() error { return nil }
