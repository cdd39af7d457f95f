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
// signal the whole group, so no grandchild outlives its step. The group
// leader is waited for without being reaped (waitid WNOWAIT) until the group
// has been killed, so the group id cannot be recycled under the signal.
// Each step runs under a small supervising process — the worker's own binary
// re-executed (SupervisorMain) — which kills the step's group and every
// other descendant when the worker dies, however it dies; supervise.go says
// why this mechanism and what its limits are.
//
// Decisions worth knowing:
//
//   - Each step runs in a directory of its own under work_dir/steps holding a copy
//     of the workspace files (copied, not linked, so a step cannot change the
//     cached revision other steps use) — all but the workflow definitions in
//     .workflows/, which steps have no use for and which would only cost a
//     copy per step. It is removed when the step ends, failed or not;
//     ShellRunner.KeepFailedDirs keeps failed ones. A directory the step
//     left exactly as it got it (by content, or by inode change times a
//     step cannot set) serves the next step of the revision instead of a
//     new copy (stepdir.go; a bounded number are kept) — so it is named
//     after the revision it holds (rev-<revision>-<random>), never after
//     the job or step that first ran in it.
//   - Workspace revisions are cached under work_dir/workspaces/<revision>,
//     downloaded once per revision, extracted into a temporary directory,
//     verified and renamed into place; the 8 most recent unused revisions
//     are kept.
//   - Output lines are split at 64 KiB (at a UTF-8 boundary) and sanitized
//     with stroem.SanitizeText on the worker, so what is sent is what is
//     stored.
//   - Log lines are pushed as they come: a line is pushed at once when the
//     step's previous push started at least 20 ms ago, otherwise it waits
//     until then (or until 256 lines or 1 MiB wait) and goes with the others;
//     up to two pushes of a step are in flight, sent Ordered so the server
//     stores them in order whichever arrives first. Nothing
//     is dropped while the server answers: each step holds at most 512
//     lines / 8 MiB in memory, and beyond that the step's output blocks (its
//     pipe fills) until lines are stored — backpressure. While the server
//     cannot be reached, lines go to a spool file under work_dir/spool (at
//     most 256 MiB per step, log_spool_bytes), shipped in order when the
//     server is back; only when that is full are lines dropped, and one
//     marker line says exactly how many. A line gets its index within the
//     attempt (the push's Offset) when the runner hands it over, and a failed
//     batch is retried unchanged, so offsets stay contiguous and the server's
//     dedup works. The time readers wait on the shipper does not count
//     towards DrainTimeout.
//   - Order of stdout and stderr: the two are separate pipes read by two
//     goroutines, and a line's index is taken when its reader hands it over,
//     so lines of one stream keep their order exactly, and lines of the two
//     streams are ordered as they were read. Two writes to different pipes
//     that happen closer together than the readers are scheduled (tens of
//     microseconds) may swap; and a program that buffers its stdout (C stdio
//     and Python do when stdout is a pipe) writes it later than its stderr.
//     Use `2>&1` (one pipe) or unbuffered output (`stdbuf -oL`,
//     PYTHONUNBUFFERED=1) where the exact interleaving matters.
//   - Every retry (registration, claims, log pushes, completions, workspace
//     downloads) uses cenkalti/backoff/v5: exponential from 100 ms, capped at
//     5 s, with jitter, without a time limit while the worker runs. A
//     completion is retried until the server answers 2xx or 409.
package runner
