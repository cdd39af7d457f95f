// Package e2e holds Strøm's end-to-end tests (STYLE.md, third layer): the
// real `stroem` binary, built once per run, started as `stroem server` and
// `stroem worker` subprocesses on a fresh PostgreSQL database per test, and
// driven over HTTP and through the CLI exactly as a user would.
//
// The package has no code outside its tests. Decisions:
//
//   - The binary is built without -race: the race detector already covers
//     every package's own tests, and on a small CI machine a race-built
//     server, worker and CLI per test would cost more than the whole suite
//     may take. Set STROEM_E2E_RACE=1 to build it with -race anyway.
//   - Each test starts its own server (and one or two workers) on a free
//     port, with its own database (persistence/dbtest), log directory and
//     work directory. When a test fails, the output of every subprocess is
//     printed.
//   - Subprocesses run in their own process groups and are stopped with
//     SIGTERM (SIGKILL after a grace period). Every subprocess, and every
//     step process it starts, carries a marker in its environment; after
//     the run, TestMain fails if any process with the marker is left.
//   - Under -short the suite is skipped (it needs PostgreSQL and builds a
//     binary).
package e2e
