// Package metrics owns Strøm's Prometheus metrics: their names and labels,
// the registry of a server or worker process, and the small decorators
// that observe the rest of the system from the outside — a persistence.Store
// wrapper (jobs created and finished, steps started and finished, claim,
// hop and step latency, lease expiries, store errors), an HTTP wrapper
// (requests by route, webhook calls), a log hub wrapper (SSE clients, log
// lines and bytes) and a runner wrapper for workers. Gauges shared by every
// server (jobs in flight, ready steps, running steps, workers) are read
// from the store at scrape time.
//
// It must not contain job logic or SQL, and it observes only: a decorator
// passes every call through unchanged, whatever it records.
//
// Names follow the upstream Strøm where it has them
// (stroem_jobs_created_total, stroem_jobs_completed_total,
// stroem_http_requests_total, stroem_http_request_duration_seconds,
// stroem_workers_active, stroem_jobs_in_flight, stroem_steps_ready);
// docs/operations/metrics.md lists every metric.
package metrics
