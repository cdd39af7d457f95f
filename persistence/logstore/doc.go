// Package logstore is the durable storage of job logs: one append-only
// JSON-lines file per job (<dir>/<job id>.jsonl), the job's sequence numbers
// (1, 2, 3 … per job, gap-free) and the deduplication of worker pushes by
// their offset within a step attempt.
//
// It owns the files and nothing else: it knows nothing of SSE, HTTP, leases
// or fencing (callers check that the pushing worker holds the attempt before
// appending) and it never publishes lines itself — the caller publishes what
// Append returned, after Append returned.
//
// Guarantees:
//
//   - Append returns only after the new lines are on disk (fsync), so an
//     acknowledged push is never lost. Concurrent Appends, to one job or to
//     many, are group-committed by a single writer goroutine: one write and
//     one fsync per job file per batch, however many pushes the batch holds.
//   - Sequence numbers are committed in order: when a line with seq n is
//     visible to Read (or returned by Append), every line of the job with a
//     smaller seq is visible too. The SSE hub relies on this to close the gap
//     between replay and live tail.
//   - A push is identified by (step, attempt, offset): a line whose index
//     (offset + i) within its step attempt was already stored is dropped, so
//     a push retried after a lost acknowledgement stores nothing twice. An
//     offset beyond what was stored (the worker dropped lines) is accepted.
//   - The state needed for this (last seq, per-attempt counts) is rebuilt
//     from the file when a job is first used after a restart; an incomplete
//     last line left by a crash (never acknowledged) is cut off.
//   - At most Options.MaxOpenFiles job files are open at once (LRU), so
//     thousands of jobs do not exhaust file descriptors.
//
// Every text is passed through the push's Mask (secrets → ***) and then
// stroem.SanitizeText before it is stored, so a NUL byte or invalid UTF-8
// can never break the file or anything that reads it.
package logstore
