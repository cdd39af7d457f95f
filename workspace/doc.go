// Package workspace owns Strøm's workflow definitions: loading a workspace
// from YAML with the file, line and column of every node, validating it,
// the DAG logic of a task's flow, job input checking, templates (gonja),
// secret references and masking, the registry of the workspaces a server
// serves (reload, file watching), and a workspace's revision and archive.
//
// It must not do I/O other than reading workspace files and secret
// references, and it imports nothing of Strøm but the root package: no
// database, no HTTP, no actors.
//
// # Loading
//
// Load takes a folder (every .workflows/*.yaml and *.yml, in name order,
// merged) or a single workflow file. Its error is only for what stops
// loading altogether: the path is missing or unreadable, or a folder has no
// .workflows folder. Everything wrong inside the files becomes a Problem,
// all of them at once, sorted by file, line and column. A problem's file is
// the path as the user gave it joined with the file's relative name, so
// `stroem validate ../x` prints `../x/.workflows/a.yaml:3:5: …`. Problems
// about a whole file (a symlink left out of the archive, an unreadable
// file) have no line.
//
// Defaults are applied by the loader, so consumers never see an empty enum:
// action type shell (`script` is an alias of shell); task mode distributed;
// trigger enabled true; scheduler timezone UTC and concurrency allow;
// webhook mode async, timeout_secs 30 in sync mode; an input field without
// a type is a string. A retry block fills in max_attempts 3, backoff 1s and
// backoff_strategy fixed; `retry: 3` is short for `{max_attempts: 3}`;
// `jitter: true` is 0.2; max_backoff 0 means no cap.
//
// Values are plain Go data: nil, bool, int, float64, string, []any and
// map[string]any; defaults and enum values of integer fields are int64, as
// CheckInput normalises them. YAML anchors, aliases and `<<` merge keys
// work; an alias that contains itself, or a file that expands past 200,000
// nodes, is a problem rather than a hang. A schema has at most 1000 fields,
// and "did you mean" suggestions stop for very long names and after a
// million comparisons, so no workspace makes loading quadratic.
//
// # Decisions
//
// Drop what is invalid. A server serves the valid parts (SPEC §2): an
// action, task, trigger or secret with any problem is left out of the
// Workspace maps, never half-kept. A task whose step names a left-out
// action is left out too, and so is a trigger naming a left-out task; each
// gets its own problem saying why. A name defined twice (in one file or
// two) leaves every definition of it out, since which one was meant is
// unknown; the problem names both places.
//
// Inputs are declared. A step may pass only the inputs its action declares
// in `input:`; an action without an `input:` key takes none, so passing any
// is a problem. A required action input without a default must be given by
// every step using the action. A trigger's input is checked against its
// task's schema as a job's would be (for webhooks, required fields may come
// from the request, so only unknown fields and types are checked).
//
// Scripts. `script: PATH [ARGS]` names a file relative to the workspace
// root; the first word is the path (no spaces, no templates), the rest are
// arguments rendered like cmd (SplitScript). The path must stay inside the
// root, also after resolving symlinks, and be an existing regular file.
// Docker and pod actions need an image and may have neither cmd nor
// script; shell actions need exactly one of them. Local mode and the
// docker and pod types are parsed and kept for later phases, without a
// problem.
//
// Names. A step's template name ("-" → "_") must not be input, secret or
// job, nor the same as another step's. Webhook trigger names are part of a
// URL: letters, digits, '_', '.' and '-' only. Cron expressions have 5
// fields, 6 with seconds first, or are descriptors (@daily, @every 1h); the
// time zone goes in `timezone`, an IANA name.
//
// # Revision and archive
//
// A folder workspace's revision is the hex sha256 over every file under
// its root, in path order (each path, permission bits and content); .git
// folders are skipped, and so are sockets, pipes and devices. A symlink
// counts as its target, rewritten relative to the link, when it resolves
// inside the root; one that leaves the root or does not resolve is left
// out with a problem. A single-file workspace's root is the file's folder,
// but its revision and archive hold only that file and the scripts its
// valid actions run (symlinks followed), not the rest of the folder.
// Archive returns those files as a deterministic tar.gz (relative paths,
// permission bits, a fixed modification time); it fails with
// ErrRevisionChanged when the files changed since Load.
//
// # Registry
//
// A Registry holds the named workspaces a server serves. Get and List are
// lock-free (atomic pointers); Reload swaps a workspace in whole and calls
// the OnReload hooks. Watch reloads folder workspaces on change using
// fsnotify on every folder of the workspace (a new folder is watched as it
// appears), with a 200 ms settle time and a revision re-check every 30 s;
// if fsnotify is unavailable it polls the revision every 2 s.
package workspace
