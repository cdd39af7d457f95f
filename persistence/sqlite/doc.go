// Package sqlite is Strøm's embedded store: the whole store contract of
// package persistence — jobs, JobUpdate, claims, leases, workers,
// snapshots, workspace archives — on one SQLite file, through the pure-Go
// driver modernc.org/sqlite (no cgo). `stroem dev` runs on it, so trying
// Strøm needs no PostgreSQL.
//
// *Store implements persistence.Store with the same semantics as the
// PostgreSQL store (persistence/postgres, a sibling it never imports),
// checked by the shared conformance suite in persistence/storetest: the same statuses, transition checks,
// automatic timestamps, attempt records, fencing, sanitizing of NUL and
// invalid UTF-8, and the same stroem error codes (missing rows are
// CodeNotFound, duplicates CodeConflict, a closed or locked database
// CodeUnavailable).
//
// How SQLite stands in for PostgreSQL:
//
//   - One writer. Every write runs in a transaction on a *sql.DB of exactly
//     one connection, begun with BEGIN IMMEDIATE, so it holds SQLite's write
//     lock from its first statement: a claim's select-then-update is
//     exclusive without SKIP LOCKED, and JobUpdate's load-decide-write
//     needs no row locks. Reads go to a separate pool of query-only
//     connections; in WAL mode they see the last commit and never block
//     the writer or each other.
//   - Durability. WAL with synchronous=FULL: a commit is fsynced before it
//     returns, so a job the API acknowledged survives a crash of the process
//     and a power loss, as the log store's lines do (they are fsynced before
//     a push is acknowledged). NORMAL would survive only a process crash.
//   - The clock. Leases, ready times and JobState.Now come from the Go
//     clock of this process (there is no database server with a clock of
//     its own); times are stored as INTEGER Unix nanoseconds in UTC, so
//     they round-trip exactly.
//   - Notifications. Listen has no other process to hear from: the
//     orchestrator wakes its own dispatcher. It reports "" once, like the
//     PostgreSQL store after connecting, and blocks until its context ends.
//   - Row versions. A transition reads only the step rows of its job
//     written since its last read, as PostgreSQL's does, but SQLite has
//     no transaction ids: a counter (step_clock) that each JobUpdate moves
//     on stands in for them, and every write of a step row stamps the row
//     with it (migration 00210).
//   - Prepared statements. database/sql prepares a statement at every
//     call, and SQLite compiles it each time (with the row triggers of the
//     table it writes): a transaction's statements are kept prepared after
//     their first run (stmtCache), which cut the CPU of a claim and a
//     completion by a third.
//   - One process. Open takes an exclusive advisory lock on a file beside
//     the database, so a second process on the same file fails fast
//     instead of running a second orchestrator over the same jobs.
//
// The schema is this package's own goose migrations (migrations/, embedded),
// applied by Open. They deliberately mirror the PostgreSQL migrations
// table for table (the same columns and constraints in SQLite's types), and
// they stay a versioned history rather than one consolidated schema file:
// Open upgrades an existing `stroem dev` database file in place
// (TestGatesMigrationWidensChecks applies 00120 to a file at 00070), which a
// consolidated file could not do. The logic both stores share lives in
// package persistence; only SQL and column encodings are written twice.
package sqlite
