package logstream

import (
	"math"

	"github.com/stroem/stroem"
)

// remoteBatch bounds the lines Wake publishes at once.
const remoteBatch = 1000

// Wake tells the hub that another server stored lines of the job, up to
// seq (its NOTIFY on persistence.ChannelLogs). If the job has subscribers
// on this server, the lines after the highest seq this hub has published
// are read from the Source — once per job, however many subscribers — and
// published like local ones. Without subscribers it does nothing: a later
// subscriber replays from the Source anyway. Wake never blocks.
func (h *Hub) Wake(jobID string, seq int64) {
	h.mu.Lock()
	e := h.jobs[jobKey(jobID)]
	h.mu.Unlock()
	if e == nil {
		return
	}
	e.mu.Lock()
	if e.removed || seq <= e.seen {
		e.mu.Unlock()
		return
	}
	e.want = max(e.want, seq)
	if e.fetching {
		e.mu.Unlock()
		return
	}
	e.fetching = true
	e.mu.Unlock()
	go h.fetch(jobID, e)
}

// WakeAll wakes every job with subscribers up to its newest stored line:
// after the notification connection was re-established, when
// notifications may have been missed.
func (h *Hub) WakeAll() {
	h.mu.Lock()
	ids := make([]string, 0, len(h.jobs))
	for key := range h.jobs {
		ids = append(ids, key)
	}
	h.mu.Unlock()
	for _, id := range ids {
		h.Wake(id, math.MaxInt64)
	}
}

// fetch reads and publishes the lines other servers stored until it has
// caught up with the highest seq announced.
func (h *Hub) fetch(jobID string, e *jobEntry) {
	for {
		e.mu.Lock()
		from, want := e.seen, e.want
		if e.removed || want <= from {
			e.fetching = false
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		batch := make([]stroem.LogLine, 0, 64)
		err := h.scan(jobID, from, "", func(l stroem.LogLine) error {
			batch = append(batch, l)
			if len(batch) >= remoteBatch {
				h.Publish(jobID, batch)
				batch = make([]stroem.LogLine, 0, 64)
			}
			return nil
		})
		if len(batch) > 0 {
			h.Publish(jobID, batch)
		}
		e.mu.Lock()
		if err != nil {
			// Subscribers fill holes from the store themselves; the next
			// notification tries again.
			h.log.Warn("read other servers' log lines", "job_id", jobID, "err", err)
		}
		if err != nil || e.want == want {
			// Nothing announced during the scan, which read everything
			// committed before it began — the announced lines included.
			e.want = e.seen
			e.fetching = false
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
	}
}
