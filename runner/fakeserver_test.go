package runner

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// fakeServer implements the server side of the worker protocol (SPEC §7) in
// memory, with knobs to misbehave: answers to completions, 409 on log
// pushes, cancellations, forgetting workers, and going down entirely (its
// listener closes, so requests get "connection refused") and coming back on
// the same address.
type fakeServer struct {
	t     *testing.T
	token string

	mu  sync.Mutex
	srv *http.Server
	// addr stays fixed across stop/start.
	addr string

	heartbeatMS int64
	// idleHeartbeatMS is the registration's idle period (0: none said, like
	// an older server); soonMS, when set, is every heartbeat answer's
	// request for the next one sooner. beats records each heartbeat: how
	// many steps it listed, and the soonMS it was answered.
	idleHeartbeatMS, soonMS int64
	beats                   []int
	beatsSoon               []int64
	workerSeq               int
	workers                 map[string]bool
	registers               int
	heartbeats              int
	claimIDs                []string

	queue          chan stroem.Assignment
	outstanding    int
	maxOutstanding int

	logs         map[stroem.StepRef][]stroem.PushLine
	logAnomalies []string // gaps in offsets
	aheads       int      // ordered pushes answered Ahead
	// slowPush delays the slowPushNo-th push request (from 1) by slowPush,
	// so the pushes after it overtake it.
	slowPush   time.Duration
	slowPushNo int
	pushesSeen int
	// oldServer answers like a server from before Ordered: it never echoes
	// it (and stores what it gets).
	oldServer    bool
	pushes       int
	loseAckOnce  map[string]bool // step → store the push but answer 503 once
	pushConflict map[string]bool // step → 409 on log pushes
	pushDelay    time.Duration   // how long each push takes: a slow server
	pushGate     chan struct{}   // when set, pushes are answered once it is closed

	startAnswers map[string][]int // step → statuses to answer in turn, then 200
	startCalls   map[string]int
	linesAtStart map[string]int // step → log lines stored when its start was accepted

	completeAnswers map[string][]int // step → statuses to answer in turn, then 200
	completeCalls   map[string]int
	completions     map[string]stroem.Completion // step → the accepted one
	// noNext answers like a server from before Completion.Next: never a
	// step in a completion's answer. Otherwise an accepted completion that
	// asks gets the next queued step, if one is queued.
	noNext bool
	// nextAsked lists the claims completions carried; handedBy says, by
	// step, which request handed it out ("claim" or "complete").
	nextAsked []stroem.NextClaim
	handedBy  map[string]string

	cancel map[stroem.StepRef]bool

	archives       map[string][]byte
	archiveFetches int

	// stateAnswers are statuses to answer state downloads with in turn
	// (then 204: no state yet); stateCalls counts the downloads.
	stateAnswers []int
	stateCalls   int
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{
		t: t, token: "tok", addr: "127.0.0.1:0", heartbeatMS: 100,
		workers: map[string]bool{}, queue: make(chan stroem.Assignment, 100),
		logs: map[stroem.StepRef][]stroem.PushLine{}, loseAckOnce: map[string]bool{}, pushConflict: map[string]bool{},
		startAnswers: map[string][]int{}, startCalls: map[string]int{}, linesAtStart: map[string]int{},
		completeAnswers: map[string][]int{}, completeCalls: map[string]int{}, completions: map[string]stroem.Completion{},
		cancel: map[stroem.StepRef]bool{}, archives: map[string][]byte{}, handedBy: map[string]string{},
	}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *fakeServer) url() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "http://" + f.addr
}

// start listens (again) on the server's address.
func (f *fakeServer) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to be free again
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(f.t, err)
	f.addr = ln.Addr().String()
	srv := &http.Server{Handler: f.routes()}
	f.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection: the server is down.
func (f *fakeServer) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (f *fakeServer) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /worker/register", f.register)
	mux.HandleFunc("POST /worker/heartbeat", f.heartbeat)
	mux.HandleFunc("POST /worker/jobs/claim", f.claim)
	mux.HandleFunc("POST /worker/jobs/{id}/steps/{step}/start", f.stepStart)
	mux.HandleFunc("POST /worker/jobs/{id}/steps/{step}/logs", f.pushLogs)
	mux.HandleFunc("POST /worker/jobs/{id}/steps/{step}/complete", f.complete)
	mux.HandleFunc("GET /worker/workspaces/{ws}/{file}", f.archive)
	mux.HandleFunc("GET /worker/jobs/{id}/steps/{step}/state", f.stepState)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The shared token registers; every other route wants the
		// worker's own credential (issued as "cred-" + its id).
		auth := r.Header.Get("Authorization")
		if r.URL.Path == "/worker/register" && auth != "Bearer "+f.token ||
			r.URL.Path != "/worker/register" && !strings.HasPrefix(auth, "Bearer cred-") {
			fail(w, 401, "invalid worker token")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"error": msg})
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decode(r *http.Request, v any) bool { return json.NewDecoder(r.Body).Decode(v) == nil }

func (f *fakeServer) register(w http.ResponseWriter, r *http.Request) {
	var reg stroem.WorkerRegistration
	if !decode(r, &reg) || reg.Name == "" || len(reg.Capabilities) == 0 {
		fail(w, 400, "bad registration")
		return
	}
	f.mu.Lock()
	f.workerSeq++
	id := "w" + strconv.Itoa(f.workerSeq)
	f.workers[id] = true
	f.registers++
	hb, idle := f.heartbeatMS, f.idleHeartbeatMS
	f.mu.Unlock()
	reply(w, 200, stroem.WorkerRegistered{WorkerID: id, LeaseMS: hb * 5, HeartbeatMS: hb, IdleHeartbeatMS: idle, Credential: "cred-" + id})
}

func (f *fakeServer) heartbeat(w http.ResponseWriter, r *http.Request) {
	var hb stroem.Heartbeat
	if !decode(r, &hb) {
		fail(w, 400, "bad heartbeat")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.workers[hb.WorkerID] {
		fail(w, 404, "unknown worker")
		return
	}
	f.heartbeats++
	f.beats = append(f.beats, len(hb.Running))
	f.beatsSoon = append(f.beatsSoon, f.soonMS)
	resp := stroem.HeartbeatResponse{Cancel: []stroem.StepRef{}, HeartbeatMS: f.soonMS}
	for _, ref := range hb.Running {
		if f.cancel[ref] {
			resp.Cancel = append(resp.Cancel, ref)
		}
	}
	reply(w, 200, resp)
}

func (f *fakeServer) claim(w http.ResponseWriter, r *http.Request) {
	var req stroem.ClaimRequest
	if !decode(r, &req) || req.WaitMS > 30000 {
		fail(w, 400, "bad claim")
		return
	}
	f.mu.Lock()
	if !f.workers[req.WorkerID] {
		f.mu.Unlock()
		fail(w, 404, "unknown worker")
		return
	}
	f.claimIDs = append(f.claimIDs, req.WorkerID)
	f.outstanding++
	f.maxOutstanding = max(f.maxOutstanding, f.outstanding)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.outstanding--
		f.mu.Unlock()
	}()
	t := time.NewTimer(time.Duration(req.WaitMS) * time.Millisecond)
	defer t.Stop()
	select {
	case a := <-f.queue:
		f.mu.Lock()
		known := f.workers[req.WorkerID]
		f.mu.Unlock()
		if r.Context().Err() != nil || !known {
			f.queue <- a // the poller left or was forgotten: give the step back
			if !known {
				fail(w, 404, "unknown worker")
			}
			return
		}
		f.mu.Lock()
		f.handedBy[a.StepName] = "claim"
		f.mu.Unlock()
		reply(w, 200, a)
	case <-t.C:
		w.WriteHeader(http.StatusNoContent)
	case <-r.Context().Done():
	}
}

func (f *fakeServer) pushLogs(w http.ResponseWriter, r *http.Request) {
	var p stroem.LogPush
	if !decode(r, &p) {
		fail(w, 400, "bad push")
		return
	}
	ref := stroem.StepRef{JobID: r.PathValue("id"), Step: r.PathValue("step"), Attempt: p.Attempt}
	f.mu.Lock()
	delay, gate := f.pushDelay, f.pushGate
	f.pushesSeen++
	if f.slowPush > 0 && f.pushesSeen == f.slowPushNo {
		delay = f.slowPush
	}
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pushes++
	if f.pushConflict[ref.Step] {
		fail(w, 409, "attempt no longer running")
		return
	}
	stored := f.logs[ref]
	switch {
	case p.Ordered && !f.oldServer && p.Offset > int64(len(stored)):
		f.aheads++ // an earlier push is still on its way, as the stores answer
		reply(w, 200, stroem.LogPushResponse{Ahead: true, Cancel: f.cancel[ref], Ordered: true})
		return
	case p.Offset > int64(len(stored)):
		f.logAnomalies = append(f.logAnomalies, "gap at "+strconv.FormatInt(p.Offset, 10))
	case p.Offset < int64(len(stored)):
		skip := min(int(int64(len(stored))-p.Offset), len(p.Lines))
		p.Lines = p.Lines[skip:] // already stored: a retried push
	}
	f.logs[ref] = append(stored, p.Lines...)
	if f.loseAckOnce[ref.Step] && len(p.Lines) > 0 {
		delete(f.loseAckOnce, ref.Step)
		fail(w, 503, "ack lost")
		return
	}
	reply(w, 200, stroem.LogPushResponse{Stored: len(p.Lines), Cancel: f.cancel[ref], Ordered: p.Ordered && !f.oldServer})
}

// nextAnswer takes the next scripted status for step from answers (200
// once none is left). Callers hold f.mu.
func nextAnswer(answers map[string][]int, step string) int {
	a := answers[step]
	if len(a) == 0 {
		return 200
	}
	answers[step] = a[1:]
	return a[0]
}

// stepStart answers a start acknowledgement; a step's start must come
// before any of its log lines.
func (f *fakeServer) stepStart(w http.ResponseWriter, r *http.Request) {
	var st stroem.StepStart
	if !decode(r, &st) || st.WorkerID == "" || st.Attempt < 1 {
		fail(w, 400, "bad start")
		return
	}
	step := r.PathValue("step")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.startCalls[step]++
	if code := nextAnswer(f.startAnswers, step); code != 200 {
		fail(w, code, "not now")
		return
	}
	f.linesAtStart[step] = len(f.logs[stroem.StepRef{JobID: r.PathValue("id"), Step: step, Attempt: st.Attempt}])
	reply(w, 200, map[string]any{})
}

func (f *fakeServer) complete(w http.ResponseWriter, r *http.Request) {
	var c stroem.Completion
	if !decode(r, &c) {
		fail(w, 400, "bad completion")
		return
	}
	step := r.PathValue("step")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.completeCalls[step]++
	if code := nextAnswer(f.completeAnswers, step); code != 200 {
		fail(w, code, "not now")
		return
	}
	f.completions[step] = c
	var resp stroem.CompletionResponse
	if c.Next != nil {
		f.nextAsked = append(f.nextAsked, *c.Next)
	}
	if c.Next != nil && !f.noNext && f.workers[c.Next.WorkerID] {
		select {
		case a := <-f.queue:
			resp.Next = &a
			f.handedBy[a.StepName] = "complete"
		default: // nothing ready: never a wait
		}
	}
	reply(w, 200, resp)
}

func (f *fakeServer) archive(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	b, ok := f.archives[strings.TrimSuffix(r.PathValue("file"), ".tar.gz")]
	f.archiveFetches++
	f.mu.Unlock()
	if !ok {
		fail(w, 404, "unknown revision")
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(b)
}

// Accessors for assertions.

func (f *fakeServer) enqueue(a stroem.Assignment) {
	if a.Attempt == 0 {
		a.Attempt = 1
	}
	if a.ActionType == "" {
		a.ActionType = "shell"
	}
	if a.Workspace == "" {
		a.Workspace = "default"
	}
	f.queue <- a
}

func (f *fakeServer) completion(step string) (stroem.Completion, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.completions[step]
	return c, ok
}

func (f *fakeServer) handedOutBy(step string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handedBy[step]
}

func (f *fakeServer) calls(step string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.completeCalls[step]
}

func (f *fakeServer) texts(jobID, step string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, l := range f.logs[stroem.StepRef{JobID: jobID, Step: step, Attempt: 1}] {
		out = append(out, l.Text)
	}
	return out
}

func (f *fakeServer) with(fn func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// stallLimit is how long waitCompletion waits without progress.
const stallLimit = 20 * time.Second

// waitCompletion waits for the accepted completion of step. It fails when
// stallLimit passes with no completion and no new stored log line of the
// step: a step shipping thousands of lines may take much longer than that
// on a loaded machine (with -race, each push costs milliseconds of CPU), but
// as long as its log grows it is not stuck.
func (f *fakeServer) waitCompletion(step string) stroem.Completion {
	f.t.Helper()
	lines, progress := f.storedLines(step), time.Now()
	for {
		if c, ok := f.completion(step); ok {
			return c
		}
		if n := f.storedLines(step); n != lines {
			lines, progress = n, time.Now()
		}
		if time.Since(progress) > stallLimit {
			f.t.Fatalf("no completion for step %s, and no new log line for %s (%d stored)", step, stallLimit, lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// storedLines counts the stored log lines of step, of any job and attempt.
func (f *fakeServer) storedLines(step string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for ref, ls := range f.logs {
		if ref.Step == step {
			n += len(ls)
		}
	}
	return n
}

var errTestDone = errors.New("test done")

// startWorker runs a Worker against f until the test ends (or stop is
// called) and checks that Run returned nil.
func startWorker(t *testing.T, f *fakeServer, mutate func(*WorkerConfig)) (w *Worker, stop func()) {
	t.Helper()
	c := newClient(t, f.url(), f.token)
	cfg := WorkerConfig{
		Name: "test-worker", MaxConcurrent: 1, WorkDir: t.TempDir(),
		ClaimWait: 300 * time.Millisecond, MaxRetryWait: 100 * time.Millisecond,
		ShutdownGrace: 5 * time.Second, ReportTimeout: 2 * time.Second,
	}
	cfg.Runner = &ShellRunner{WorkDir: cfg.WorkDir + "/steps", Grace: 200 * time.Millisecond, DrainTimeout: 500 * time.Millisecond}
	if mutate != nil {
		mutate(&cfg)
	}
	w, err := NewWorker(c, cfg, testLogger(t))
	require.NoError(t, err)
	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel(errTestDone)
			select {
			case err := <-errc:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("Worker.Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

// stepState answers a state download: the next of stateAnswers, then 204.
func (f *fakeServer) stepState(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.stateCalls++
	code := http.StatusNoContent
	if len(f.stateAnswers) > 0 {
		code, f.stateAnswers = f.stateAnswers[0], f.stateAnswers[1:]
	}
	f.mu.Unlock()
	w.WriteHeader(code)
}
