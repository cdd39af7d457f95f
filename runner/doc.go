// Package runner is the worker side of Strøm (SPEC §7, §8): the worker
// process loop (Worker), the Runner interface that executes one step, its
// first backend ShellRunner, and the cache of workspace files downloaded from
// the server (WorkspaceCache).
//
// The worker talks to the server only through package http/client. This
// package must never import pgx, protoactor or the server packages: CI checks
// `go list -deps ./runner/...`.
//
// Processes are handled the way Nomad's executor and dagu do: every step runs
// in its own process group, and cancellation, timeouts and the end of a step
// signal the whole group, so no grandchild outlives its step.
package runner
