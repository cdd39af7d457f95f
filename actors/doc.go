// Package actors is Strøm's orchestrator, built on protoactor-go.
//
// The Orchestrator actor owns one JobActor per unfinished job; a JobActor
// applies every change of its job (a worker's report, a cancel, an expired
// lease, a retry) through one transaction in the store, using the DAG logic of
// package workspace, and owns one StepActor per running or backing-off step
// (lease deadline, timeout backstop, retry wake-up). The Dispatcher answers
// workers' long-poll claims the moment steps become ready.
//
// PostgreSQL is the truth: actors keep only what can be rebuilt from it (the
// compiled task definition and timers). Receive never blocks on I/O: store
// calls run on their own goroutines and report back as messages.
//
// This package must not run SQL (it goes through the Store interface) nor
// know about HTTP.
package actors
