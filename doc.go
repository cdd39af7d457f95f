// Package stroem holds the runtime vocabulary of Strøm shared by every other
// package: jobs and steps with their statuses and allowed transitions, log
// lines, the worker protocol's messages, and the error codes the HTTP layer
// maps to status codes.
//
// It imports only the standard library. Workflow definitions (actions, tasks,
// flows, triggers, templates) live in package workspace; the store contract
// is package persistence. Nothing here does I/O.
package stroem
