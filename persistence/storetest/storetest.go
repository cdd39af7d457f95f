// Package storetest is the conformance suite of Strøm's stores: the
// behaviour the orchestrator and the HTTP layer rely on, run against every
// implementation — the PostgreSQL store (package persistence/postgres) and the
// embedded SQLite store (package persistence/sqlite) — so the two cannot
// drift apart. It is for tests only.
//
// A store's test calls Run with a function that opens a fresh, empty,
// migrated store for one test. The suite only uses the persistence.Store interface: no
// SQL, no peeking at rows, so whatever it checks is what callers see. Checks
// that need a store's insides (PostgreSQL row versions, SQLite pragmas)
// stay in that store's own tests.
package storetest
