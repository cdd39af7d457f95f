// Package logstream is the live log hub: it serves GET
// /api/jobs/{id}/logs/stream as Server-Sent Events (SPEC §6) — stored lines
// first, then live lines, then `event: done` with the job's final status —
// and fans lines out to any number of subscribers.
//
// It owns the subscriptions and nothing else. History always comes from the
// Source (the durable log store); the hub keeps no log in memory. It must not
// store lines, decide job status, or route requests: the HTTP server calls
// ServeHTTP with the job id, the push handler calls Publish after the lines
// are durably stored, and the orchestrator calls Finish after the terminal
// status is stored.
//
// r3labs/sse carries only the live tail (one stream per job with
// subscribers; AutoReplay and AutoStream off, see LIBRARIES.md §2). A new
// subscriber is registered with the stream first; once r3labs has taken it
// (its first Flush), the stored lines after Last-Event-ID are replayed from
// the Source, and live events at or below the last line handled are dropped.
// Because the store commits seqs in order and Publish follows the commit,
// every line is either in the replay or arrives live: no gap, no duplicate.
// Live lines that arrive with a hole before them (publishes that crossed, or
// an event r3labs could not take) are filled from the Source, so ordering
// never depends on the publishers' timing.
//
// Slow clients: r3labs writes each subscriber's events into a bounded
// in-memory queue (never to the network), and the request's own goroutine
// drains that queue to the client with a write deadline. A subscriber whose
// queue overflows, or whose write times out, is disconnected; it resumes with
// Last-Event-ID. Neither Publish, the r3labs stream goroutine nor other
// subscribers ever wait for a client.
package logstream
