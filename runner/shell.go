package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Limits and defaults of ShellRunner.
const (
	// MaxLineBytes is the longest piece of output sent as one log line;
	// longer lines are split (at a UTF-8 boundary), never dropped.
	MaxLineBytes = 64 << 10
	// DefaultGrace is the time between SIGTERM and SIGKILL.
	DefaultGrace = 5 * time.Second
	// DefaultDrainTimeout bounds the wait for a step's pipes to close after
	// its process group is gone (a process that left the group may hold them).
	DefaultDrainTimeout = 2 * time.Second
	// maxOutputBytes bounds an OUTPUT line.
	maxOutputBytes = 4 << 20
	// stderrTailLines is how many stderr lines a failure message quotes.
	stderrTailLines = 5
	// maxTailLineBytes bounds each quoted stderr line.
	maxTailLineBytes = 512
	outputPrefix     = "OUTPUT:"
	// splitStartBytes is splitLines' first buffer: a step's pipe holds
	// one page (proc_linux.go), so one read fills at most this much.
	splitStartBytes = 4 << 10
)

// ShellRunner runs `shell` steps: `/bin/sh -c cmd`, or the workspace script,
// executed directly when it is executable; a script that lost its exec bit
// runs with the interpreter its `#!` line names, or else with `/bin/sh`.
//
// Each step runs in a directory under WorkDir holding a copy of the
// workspace files (a fresh one, or one an earlier step of the same revision
// left exactly as it got it: stepdir.go), with stdin from /dev/null, in its own process group. The
// environment is built fresh, never inherited (env.go): PATH, HOME, LANG,
// TMPDIR and PassEnv from the worker, then one INPUT_<NAME> per input field,
// then the rendered env, then STROEM_JOB_ID, STROEM_STEP and STROEM_ATTEMPT
// (later entries win). A timeout or cancellation sends SIGTERM to the group,
// waits Grace for the main process, then sends SIGKILL; when the main process
// has exited for any reason the rest of its group is killed too, so nothing a
// step started outlives it.
//
// The step's directory is removed when the step ends, also on failure (the
// logs and the error are on the server; a worker running thousands of steps
// must not fill its disk), unless it is kept for reuse (bounded; Drain
// removes those). Set KeepFailedDirs to keep failed steps' directories for
// debugging.
//
// The zero value is not usable: WorkDir must be set. A ShellRunner is safe
// for concurrent use.
type ShellRunner struct {
	// WorkDir holds the per-step directories; it is created if missing.
	WorkDir string
	// Grace is the time between SIGTERM and SIGKILL (default DefaultGrace).
	Grace time.Duration
	// DrainTimeout bounds the wait for output after the process group is
	// gone (default DefaultDrainTimeout).
	DrainTimeout time.Duration
	// KeepFailedDirs keeps the directory of a failed step.
	KeepFailedDirs bool
	// Environ is where the base variables (BaseEnvNames, PassEnv) are
	// looked up; nil means the worker's environment. It is never passed
	// whole: a step's environment is built fresh (see environment).
	Environ []string
	// PassEnv names further variables of the worker's environment that
	// steps get (a proxy, a locale); STROEM_* names are refused.
	PassEnv []string
	// Shell runs cmd and non-executable scripts (default /bin/sh).
	Shell string
	// NoSupervisor starts steps directly instead of under a supervising
	// process (supervise.go): a worker killed with SIGKILL then leaves them
	// running.
	NoSupervisor bool

	// dirs keeps working directories that came back as handed out, for
	// the next step of the same revision (stepdir.go).
	dirs dirPool
}

var _ Runner = (*ShellRunner)(nil)

// Run implements Runner.
func (r *ShellRunner) Run(ctx context.Context, step Step, sink func(stroem.PushLine)) Result {
	if err := context.Cause(ctx); err != nil {
		return Result{ExitCode: -1, Error: cancelMessage(err), Cancelled: true}
	}
	d, err := r.prepareStepDir(step) // a fresh copy, or an idle one (stepdir.go)
	if err != nil {
		return Result{ExitCode: -1, Error: "prepare the working directory: " + err.Error()}
	}
	swept := true // unless a process starts
	res := r.run(ctx, step, d.path, sink, &swept)
	if !swept {
		d.snap = nil // a process of the step may live on and hold it: never reused
		res.leftRunning = true
	}
	if res.Succeeded() || !r.KeepFailedDirs {
		res.Cleanup = func() { r.dirs.release(d) }
	}
	return res
}

// prepareDir creates the step's directory and copies the workspace into it.
// The directory is named after what it holds, not after the step: it may
// serve later steps of the revision (stepdir.go), which would otherwise
// run in a directory named after another job's step.
func (r *ShellRunner) prepareDir(step Step) (string, error) {
	if r.WorkDir == "" {
		return "", errors.New("ShellRunner.WorkDir is not set")
	}
	if err := os.MkdirAll(r.WorkDir, 0o755); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(r.WorkDir, stepDirPrefix(step.Workspace))
	if err != nil {
		return "", err
	}
	if step.Workspace != "" {
		if err := copyTree(step.Workspace, dir); err != nil {
			_ = removeDir(dir)
			return "", fmt.Errorf("copy the workspace files: %w", err)
		}
	}
	return dir, nil
}

// stepDirPrefix names a step's directory after the revision whose files it
// holds ("rev-<revision>-…", from the cache's directory of the revision),
// or "empty-…" without files.
func stepDirPrefix(workspace string) string {
	if workspace == "" {
		return "empty-"
	}
	return "rev-" + fileSafe(filepath.Base(workspace), 24) + "-"
}

// command builds the process for the step in dir.
func (r *ShellRunner) command(step Step, dir string) (*exec.Cmd, error) {
	shell := r.Shell
	if shell == "" {
		shell = "/bin/sh"
	}
	var cmd *exec.Cmd
	switch {
	case step.Spec.Script != "":
		rel := filepath.FromSlash(step.Spec.Script)
		if !filepath.IsLocal(rel) {
			return nil, fmt.Errorf("script %q is outside the workspace", step.Spec.Script)
		}
		path := filepath.Join(dir, rel)
		fi, err := os.Stat(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("script %q not found in the workspace", step.Spec.Script)
			}
			return nil, fmt.Errorf("script %q: %w", step.Spec.Script, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("script %q is not a regular file", step.Spec.Script)
		}
		switch interp := shebang(path); {
		case fi.Mode().Perm()&0o111 != 0:
			cmd = exec.Command(path)
		case len(interp) > 0:
			// Not executable (a checkout that lost the bit), but it names
			// its interpreter: honour it as the kernel would.
			cmd = exec.Command(interp[0], append(interp[1:], path)...)
		default:
			cmd = exec.Command(shell, path)
		}
		if step.Spec.Args != "" {
			// The arguments are shell words: let /bin/sh split and expand
			// them after the script's own argv.
			cmd = exec.Command(shell, append([]string{"-c", `exec "$@" ` + step.Spec.Args, "sh"}, cmd.Args...)...)
		}
	case step.Spec.Cmd != "":
		cmd = exec.Command(shell, "-c", step.Spec.Cmd)
	default:
		return nil, errors.New("nothing to run: the step has neither cmd nor script")
	}
	cmd.Dir = dir
	cmd.Env = r.environment(step)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd, nil
}

// shebang returns the interpreter and its optional argument named by the
// script's first line ("#!/bin/bash", "#!/usr/bin/env python3"), or nil.
func shebang(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := io.ReadFull(f, buf)
	line, _, _ := bytes.Cut(buf[:n], []byte("\n"))
	rest, ok := bytes.CutPrefix(line, []byte("#!"))
	if !ok {
		return nil
	}
	rest = bytes.TrimSpace(bytes.TrimSuffix(rest, []byte("\r")))
	interp, arg, _ := bytes.Cut(rest, []byte(" "))
	if len(interp) == 0 || interp[0] != '/' {
		return nil
	}
	if arg = bytes.TrimSpace(arg); len(arg) > 0 {
		return []string{string(interp), string(arg)} // Linux passes the rest as one argument
	}
	return []string{string(interp)}
}

// run starts the process and supervises it until its group is gone; once
// a process ran, *swept tells whether a supervisor reported every process
// of it killed.
func (r *ShellRunner) run(ctx context.Context, step Step, dir string, sink func(stroem.PushLine), swept *bool) Result {
	var cmd *exec.Cmd
	var err error
	if step.Spec.Language != "" {
		// A type: script action (runner/language.go).
		var extra []string
		cmd, extra, err = r.languageCommand(ctx, step, dir, sink)
		if cmd != nil {
			cmd.Env = append(r.environment(step), extra...)
		}
	} else {
		cmd, err = r.command(step, dir)
		if err == nil && step.Spec.Workdir != "" {
			cmd.Dir, err = workdir(dir, step.Spec.Workdir)
		}
	}
	if err != nil {
		return Result{ExitCode: -1, Error: err.Error()}
	}
	outR, outW, err := outputPipe() // proc_linux.go: small, a full pipe is latency
	if err != nil {
		return Result{ExitCode: -1, Error: "create pipe: " + err.Error()}
	}
	errR, errW, err := outputPipe()
	if err != nil {
		closeAll(outR, outW)
		return Result{ExitCode: -1, Error: "create pipe: " + err.Error()}
	}
	cmd.Stdout, cmd.Stderr = outW, errW // stdin stays nil: /dev/null
	proc, err := r.start(cmd, step)     // see supervise.go
	closeAll(outW, errW)                // the child holds its own copies
	var died errSupervisorDied          // the step may have run: its output is read below
	if err != nil && !errors.As(err, &died) {
		closeAll(outR, errR)
		return Result{ExitCode: -1, Error: err.Error()}
	}

	out := &outputTracker{}
	tail := &tailTracker{}
	var sinkMu sync.Mutex
	// Time the readers spend waiting on the sink (backpressure), not on
	// the pipes: drain does not count it.
	var inSink atomic.Int32
	var sinkTime atomic.Int64
	emit := func(stream stroem.Stream, piece []byte) {
		now := time.Now()
		line := stroem.PushLine{TS: now.UTC(), Stream: stream, Text: stroem.SanitizeText(string(piece))}
		inSink.Add(1)
		sinkMu.Lock()
		sink(line)
		sinkMu.Unlock()
		sinkTime.Add(int64(time.Since(now)))
		inSink.Add(-1)
	}
	readers := newOutputReaders(2)
	go func() {
		defer readers.end()
		_ = splitLines(outR, MaxLineBytes, maskPieces(step.Mask, MaxLineBytes, logPieces(out.piece, func(p []byte) { emit(stroem.Stdout, p) })))
	}()
	go func() {
		defer readers.end()
		_ = splitLines(errR, MaxLineBytes, maskPieces(step.Mask, MaxLineBytes, logPieces(tail.piece, func(p []byte) { emit(stroem.Stderr, p) })))
	}()

	if err != nil { // died: no process to wait for, only output to read
		*swept = false // what the step started was not swept: its directory is not reused
		r.drain(readers, func() (bool, time.Duration) { return inSink.Load() > 0, time.Duration(sinkTime.Load()) }, outR, errR)
		return Result{ExitCode: -1, Error: err.Error()}
	}

	var timeout <-chan time.Time
	if d := step.Spec.Timeout.D(); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	var cancelled, timedOut bool
	select {
	case <-proc.exited():
	case <-ctx.Done():
		cancelled = true
		r.terminate(proc)
	case <-timeout:
		timedOut = true
		r.terminate(proc)
	}
	// The main process is gone: nothing else of the step may stay behind.
	st := proc.finish()
	*swept = st.swept
	r.drain(readers, func() (bool, time.Duration) { return inSink.Load() > 0, time.Duration(sinkTime.Load()) }, outR, errR)

	res := Result{ExitCode: st.code}
	switch {
	case timedOut:
		res.TimedOut = true
		res.Error = "timed out after " + step.Spec.Timeout.D().String()
	case cancelled:
		res.Cancelled = true
		res.Error = cancelMessage(context.Cause(ctx))
	case res.ExitCode != 0:
		res.Error = "exit code " + strconv.Itoa(res.ExitCode)
		if st.signal != "" {
			res.Error += " (killed by " + st.signal + ")"
		}
		if st.err != nil {
			res.Error += " (" + st.err.Error() + ")"
		}
		if lines := tail.lines(); len(lines) > 0 {
			res.Error += ": " + strings.Join(lines, "\n")
		}
	default:
		output, err := out.result()
		if err != nil {
			res.Error = err.Error()
		} else {
			res.Output = output
		}
	}
	if note := out.note(); note != "" {
		emit(stroem.Stderr, []byte(note))
	}
	return res
}

// terminate sends SIGTERM to the group, and SIGKILL when the main process
// has not exited within the grace period. It returns once it has exited.
func (r *ShellRunner) terminate(proc stepProcess) {
	exited := proc.exited()
	proc.signal(syscall.SIGTERM)
	grace := r.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		proc.signal(syscall.SIGKILL)
		<-exited
	}
}

// drain waits for the output readers. Once the group is dead only a process
// that left it (setsid) can still hold the pipes; after DrainTimeout the
// pipes are closed under it so the step can end. Time the readers spend
// waiting on the sink (sinkWait: whether one waits now, and the total so
// far) does not count: what is still in the pipes is read out however
// slowly the log is shipped.
func (r *ShellRunner) drain(readers *outputReaders, sinkWait func() (bool, time.Duration), files ...*os.File) {
	done := readers.done
	select {
	case <-done: // the usual case: the pipes closed with the step
		closeAll(files...)
		return
	default:
	}
	d := r.DrainTimeout
	if d <= 0 {
		d = DefaultDrainTimeout
	}
	_, counted := sinkWait()
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-done:
		case <-t.C:
			waiting, total := sinkWait()
			if waiting {
				t.Reset(d)
				continue
			}
			if extra := total - counted; extra > 0 {
				counted = total
				t.Reset(extra)
				continue
			}
			closeAll(files...) // unblocks the readers' Read
			<-done
		}
		break
	}
	closeAll(files...)
}

// outputReaders tells when the goroutines reading a step's pipes have
// ended, without a goroutine waiting for them (a WaitGroup needed one per
// step).
type outputReaders struct {
	left atomic.Int32
	done chan struct{} // closed when the last one ends
}

func newOutputReaders(n int) *outputReaders {
	o := &outputReaders{done: make(chan struct{})}
	o.left.Store(int32(n))
	return o
}

// end is called by each reader when it ends.
func (o *outputReaders) end() {
	if o.left.Add(-1) == 0 {
		close(o.done)
	}
}

// cancelMessage is the Error of a cancelled step.
func cancelMessage(cause error) string {
	if cause == nil || errors.Is(cause, context.Canceled) && cause.Error() == context.Canceled.Error() {
		return "cancelled"
	}
	return "cancelled: " + cause.Error()
}

// splitLines reads r and calls emit once per line, or per piece of at most
// max bytes of a longer line (cut at a UTF-8 boundary when the text is
// UTF-8), with end set on a line's last piece. The line terminator ("\n",
// "\r\n") is not included; a last line without one is still emitted. The
// slice passed to emit is only valid during the call.
//
// The buffer starts at splitStartBytes and doubles, up to max, only while
// an unfinished line fills it: most steps print little, and two buffers of
// max bytes per step were 7% of the worker's CPU (allocation and GC) in the
// bench's fan-out of trivial steps (issue 23).
func splitLines(r io.Reader, max int, emit func(piece []byte, end bool)) error {
	buf := make([]byte, min(max, splitStartBytes))
	n := 0 // bytes of an unfinished line at buf[:n]
	for {
		if n == len(buf) && n < max { // an unfinished line fills it: grow
			grown := make([]byte, min(max, 2*len(buf)))
			copy(grown, buf[:n])
			buf = grown
		}
		m, err := r.Read(buf[n:])
		n += m
		start := 0
		for {
			i := bytes.IndexByte(buf[start:n], '\n')
			if i < 0 {
				break
			}
			emit(bytes.TrimSuffix(buf[start:start+i], []byte("\r")), true)
			start += i + 1
		}
		if start == 0 && n == max { // a full buffer of max bytes with no newline: split
			cut := runeBoundary(buf[:n])
			emit(buf[:cut], false)
			start = cut
		}
		n = copy(buf, buf[start:n])
		if err != nil {
			if n > 0 {
				emit(bytes.TrimSuffix(buf[:n], []byte("\r")), true)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, os.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// logPieces passes every piece of splitLines to track, and sends each one
// as a log line, except an empty piece that only ends a line already sent in
// full pieces: a line of exactly k·MaxLineBytes bytes is k log lines, not k
// and a blank one.
func logPieces(track func(p []byte, end bool), send func(p []byte)) func([]byte, bool) {
	split := false // the current line was cut at least once
	return func(p []byte, end bool) {
		track(p, end)
		if !(end && split && len(p) == 0) {
			send(p)
		}
		split = !end
	}
}

// runeBoundary returns len(b), or less when b ends inside a UTF-8 sequence
// that would be complete with more bytes.
func runeBoundary(b []byte) int {
	for k := 1; k <= utf8.UTFMax-1 && k <= len(b); k++ {
		if utf8.RuneStart(b[len(b)-k]) {
			if !utf8.FullRune(b[len(b)-k:]) {
				return len(b) - k
			}
			break
		}
	}
	return len(b)
}

// outputTracker keeps the value of the last `OUTPUT:` line of stdout that
// holds JSON (any JSON value, as upstream). A line whose text is not JSON is
// skipped, as upstream does; the step's log says so (skipped).
type outputTracker struct {
	inLine bool // a piece of the current line was seen
	cand   bool // the current line starts with OUTPUT:
	buf    []byte
	over   bool
	value  any // of the last OUTPUT line that is JSON; nil: none (or null)
	// lastOver: the last OUTPUT line was over maxOutputBytes (an error:
	// skipping it would pass on an older value as the step's output).
	lastOver bool
	skipped  int    // OUTPUT lines that are not JSON
	bad      string // the last of them, sanitized and shortened
}

func (o *outputTracker) piece(p []byte, end bool) {
	if !o.inLine {
		o.cand = bytes.HasPrefix(p, []byte(outputPrefix))
		o.buf, o.over = o.buf[:0], false
	}
	if o.cand && !o.over {
		if len(o.buf)+len(p) > maxOutputBytes {
			o.over = true
		} else {
			o.buf = append(o.buf, p...)
		}
	}
	o.inLine = !end
	if end && o.cand {
		o.line()
	}
}

// line takes a complete OUTPUT line.
func (o *outputTracker) line() {
	if o.over {
		o.lastOver = true
		return
	}
	raw := bytes.TrimSpace(o.buf[len(outputPrefix):])
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	if err == nil && dec.InputOffset() != int64(len(raw)) {
		err = errors.New("unexpected data after the JSON value")
	}
	if err != nil {
		o.skipped++
		o.bad = stroem.SanitizeText(string(raw))
		if len(o.bad) > 200 {
			o.bad = o.bad[:200] + "…"
		}
		return
	}
	o.value, o.lastOver = v, false
}

// note is what the step's log says about skipped OUTPUT lines; "" when
// none was skipped.
func (o *outputTracker) note() string {
	if o.skipped == 0 {
		return ""
	}
	lines := "an OUTPUT line that is"
	if o.skipped > 1 {
		lines = strconv.Itoa(o.skipped) + " OUTPUT lines that are"
	}
	return fmt.Sprintf("stroem: skipped %s not JSON (the last: %s)", lines, o.bad)
}

// result is the step's output: the value of the last OUTPUT line that is
// JSON (nil when none was, or when it was JSON null); an error when the
// last OUTPUT line was longer than the limit.
func (o *outputTracker) result() (any, error) {
	if o.lastOver {
		return nil, fmt.Errorf("malformed OUTPUT line: longer than %d bytes", maxOutputBytes)
	}
	if o.value == nil {
		return nil, nil
	}
	// A `\u0000` escape decodes to a NUL, which the server refuses in a
	// completion: the step would never be reported. Sanitized as log lines.
	return persistence.SanitizeValue(o.value), nil
}

// tailTracker keeps the first bytes of the last few stderr lines.
type tailTracker struct {
	inLine bool
	ring   []string
}

func (t *tailTracker) piece(p []byte, end bool) {
	if !t.inLine {
		s := p
		suffix := ""
		if len(s) > maxTailLineBytes {
			s, suffix = s[:runeBoundary(s[:maxTailLineBytes])], "…"
		}
		t.ring = append(t.ring, stroem.SanitizeText(string(s))+suffix)
		if len(t.ring) > stderrTailLines {
			t.ring = t.ring[1:]
		}
	}
	t.inLine = !end
}

func (t *tailTracker) lines() []string {
	// Trailing blank lines say nothing.
	l := t.ring
	for len(l) > 0 && strings.TrimSpace(l[len(l)-1]) == "" {
		l = l[:len(l)-1]
	}
	return l
}

// InputEnvName is the environment variable of input field name: INPUT_ and
// the name upper-cased, every character other than A–Z and 0–9 turned into
// "_" (`dry-run` → INPUT_DRY_RUN).
func InputEnvName(name string) string {
	b := []byte("INPUT_" + strings.ToUpper(name))
	for i := len("INPUT_"); i < len(b); i++ {
		if c := b[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// EnvValue formats an input value for the environment the way templates
// print it: strings raw, numbers as written (2, not 2.0), booleans
// true/false, null empty, arrays and objects as JSON.
func EnvValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func shellOf(s string) string {
	if s == "" {
		return "/bin/sh"
	}
	return s
}

func closeAll(files ...*os.File) {
	for _, f := range files {
		_ = f.Close()
	}
}

// fileSafe keeps a name usable in a directory name.
func fileSafe(s string, max int) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > max {
		b = b[:max]
	}
	if len(b) == 0 {
		return "step"
	}
	return string(b)
}
