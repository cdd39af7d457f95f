package actors

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// orderedSink stores pushes the way the stores do for one step attempt:
// by offset, exactly once, and an Ordered push past the stored lines is
// answered Ahead (persistence.LogAhead). hold, when set, keeps a push at
// that offset inside LogAppend until it is closed.
type orderedSink struct {
	mu        sync.Mutex
	next      int64
	texts     []string
	tries     int // LogAppend calls with lines
	ahead     int // of them answered Ahead
	published [][]string
	holdAt    int64
	hold      chan struct{}
	holding   chan struct{} // closed when the held push is inside
}

func (s *orderedSink) LogAppend(_ context.Context, a persistence.LogAppend) (persistence.LogAppended, error) {
	s.mu.Lock()
	if s.hold != nil && a.Offset == s.holdAt {
		hold := s.hold
		s.hold = nil
		close(s.holding)
		s.mu.Unlock()
		<-hold
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	var out persistence.LogAppended
	if len(a.Lines) == 0 {
		return out, nil
	}
	s.tries++
	if persistence.LogAhead(a, a.Attempt, s.next) {
		s.ahead++
		out.Ahead = true
		return out, nil
	}
	for i, l := range a.Lines {
		if a.Offset+int64(i) < s.next {
			continue // stored already
		}
		s.texts = append(s.texts, l.Text)
		out.Lines = append(out.Lines, stroem.LogLine{Seq: int64(len(s.texts)), Step: a.Step, Attempt: a.Attempt, Text: l.Text})
	}
	s.next = max(s.next, a.Offset+int64(len(a.Lines)))
	return out, nil
}

func (s *orderedSink) Publish(_ string, lines []stroem.LogLine) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var texts []string
	for _, l := range lines {
		texts = append(texts, l.Text)
	}
	s.published = append(s.published, texts)
}

func (s *orderedSink) count() (tries, ahead int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries, s.ahead
}

func (s *orderedSink) stored() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.texts...)
}

// newOrderTest returns the worker protocol over an orderedSink, with a
// job whose masker is known (no store behind it), and a push function.
func newOrderTest(t *testing.T, wait time.Duration) (*Workers, *orderedSink, func(ctx context.Context, offset int64, texts ...string) (stroem.LogPushResponse, error)) {
	t.Helper()
	f := &workerStore{}
	o := New(Config{Lease: 5 * time.Second}, f, nil, nil, nil)
	sink := &orderedSink{}
	w := NewWorkers(o, f, sink, sink)
	w.orderWait = wait
	job, worker := uuid.NewString(), uuid.NewString()
	o.masks.put(job, &jobRedaction{masker: stroem.NewMasker(nil)})
	push := func(ctx context.Context, offset int64, texts ...string) (stroem.LogPushResponse, error) {
		lines := make([]stroem.PushLine, len(texts))
		for i, s := range texts {
			lines[i] = stroem.PushLine{Text: s}
		}
		return w.PushLogs(ctx, job, "s", stroem.LogPush{WorkerID: worker, Attempt: 1, Offset: offset, Lines: lines, Ordered: true})
	}
	return w, sink, push
}

type pushAnswer struct {
	resp stroem.LogPushResponse
	err  error
}

func pushAsync(ctx context.Context, push func(context.Context, int64, ...string) (stroem.LogPushResponse, error), offset int64, texts ...string) <-chan pushAnswer {
	ch := make(chan pushAnswer, 1)
	go func() {
		resp, err := push(ctx, offset, texts...)
		ch <- pushAnswer{resp, err}
	}()
	return ch
}

// A push that reaches the server before the one ahead of it (the worker
// keeps two in flight) is held back until that one is stored, then stored
// itself: the worker never has to send its lines again.
func TestPushLogsOvertakingPushWaitsForTheOneBefore(t *testing.T) {
	t.Parallel()
	_, sink, push := newOrderTest(t, time.Minute)
	ctx := context.Background()

	second := pushAsync(ctx, push, 2, "c", "d")
	require.Eventually(t, func() bool { _, ahead := sink.count(); return ahead > 0 }, 10*time.Second, time.Millisecond,
		"the second push reaches the store first")
	resp, err := push(ctx, 0, "a", "b")
	require.NoError(t, err)
	require.Equal(t, stroem.LogPushResponse{Stored: 2, Ordered: true}, resp)
	got := <-second
	require.NoError(t, got.err)
	require.Equal(t, stroem.LogPushResponse{Stored: 2, Ordered: true}, got.resp, "stored once the first is, not answered ahead")
	require.Equal(t, []string{"a", "b", "c", "d"}, sink.stored())
	require.Equal(t, [][]string{{"a", "b"}, {"c", "d"}}, sink.published)
}

// A push whose predecessor is being handled by this server waits for it
// without asking the store.
func TestPushLogsWaitsForTheEarlierPushHandledHere(t *testing.T) {
	t.Parallel()
	w, sink, push := newOrderTest(t, time.Minute)
	ctx := context.Background()
	sink.holdAt, sink.hold, sink.holding = 0, make(chan struct{}), make(chan struct{})
	release := sink.hold
	holding := sink.holding

	first := pushAsync(ctx, push, 0, "a")
	<-holding // the first push is inside the store, not yet stored
	second := pushAsync(ctx, push, 1, "b")
	third := pushAsync(ctx, push, 2, "c")
	require.Eventually(t, func() bool { return w.order.handling() == 3 }, 10*time.Second, time.Millisecond,
		"all three pushes are being handled")
	close(release)
	for _, ch := range []<-chan pushAnswer{first, second, third} {
		got := <-ch
		require.NoError(t, got.err)
		require.Equal(t, stroem.LogPushResponse{Stored: 1, Ordered: true}, got.resp)
	}
	require.Equal(t, []string{"a", "b", "c"}, sink.stored())
	tries, ahead := sink.count()
	require.Zero(t, ahead, "no push reached the store before the one ahead of it")
	require.Equal(t, 3, tries)
}

// The push before may go to another server (a load balancer in front):
// the held push polls the store and is stored once it finds the lines
// before it there.
func TestPushLogsFindsThePushStoredByAnotherServer(t *testing.T) {
	t.Parallel()
	_, sink, push := newOrderTest(t, time.Minute)
	ctx := context.Background()

	second := pushAsync(ctx, push, 1, "b")
	require.Eventually(t, func() bool { _, ahead := sink.count(); return ahead > 0 }, 10*time.Second, time.Millisecond)
	_, err := sink.LogAppend(ctx, persistence.LogAppend{Step: "s", Attempt: 1, Offset: 0, Ordered: true,
		Lines: []stroem.PushLine{{Text: "a"}}}) // as another server stores it
	require.NoError(t, err)
	got := <-second
	require.NoError(t, got.err)
	require.Equal(t, stroem.LogPushResponse{Stored: 1, Ordered: true}, got.resp)
	require.Equal(t, []string{"a", "b"}, sink.stored())
}

// The wait is bounded: a push whose predecessor does not come is answered
// ahead, storing nothing, and the worker sends it again later; a push
// whose request ends while it waits stores nothing.
func TestPushLogsAheadAfterTheWait(t *testing.T) {
	t.Parallel()
	w, sink, push := newOrderTest(t, 20*time.Millisecond)
	resp, err := push(context.Background(), 3, "d")
	require.NoError(t, err)
	require.Equal(t, stroem.LogPushResponse{Ahead: true, Ordered: true}, resp)

	w.orderWait = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	got := pushAsync(ctx, push, 3, "d")
	require.Eventually(t, func() bool { _, ahead := sink.count(); return ahead > 1 }, 10*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, (<-got).err, context.Canceled)
	require.Empty(t, sink.stored())
	require.Empty(t, w.order.steps, "nothing is left behind")
}

// handling counts the pushes being handled.
func (o *logOrder) handling() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, p := range o.steps {
		for _, c := range p.offsets {
			n += c
		}
	}
	return n
}

// A worker cannot make the server hold more than a few pushes of one step
// attempt at once (each held push is woken, and scans the others, whenever
// one of them ends, under one lock for the whole server): past
// maxHeldLogPushes, a push that overtook its predecessor is answered Ahead
// at once, as without the holding. Nothing is left behind when they end.
func TestLogOrderHoldsFewPushesPerAttempt(t *testing.T) {
	t.Parallel()
	w, _, push := newOrderTest(t, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const extra = 5
	var mu sync.Mutex
	var aheadAnswers int
	var wg sync.WaitGroup
	for i := range maxHeldLogPushes + extra {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := push(ctx, int64(1+i), "x") // offset 0 never comes
			if err == nil && resp.Ahead {
				mu.Lock()
				aheadAnswers++
				mu.Unlock()
			}
		}()
	}
	held := func() int {
		w.order.mu.Lock()
		defer w.order.mu.Unlock()
		n := 0
		for _, p := range w.order.steps {
			for _, c := range p.offsets {
				n += c
			}
		}
		return n
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return aheadAnswers == extra && held() == maxHeldLogPushes
	}, 10*time.Second, time.Millisecond, "the pushes past the bound are answered at once, the others held")
	cancel()
	wg.Wait()
	require.Zero(t, held(), "every held push left")
	require.Empty(t, w.order.steps)
}

type panickingSink struct{ orderedSink }

func (s *panickingSink) LogAppend(context.Context, persistence.LogAppend) (persistence.LogAppended, error) {
	panic("store bug")
}

// A push whose store call panics (the HTTP server recovers it) leaves
// nothing behind: the pushes after it are not held for it.
func TestLogOrderLeavesOnPanic(t *testing.T) {
	t.Parallel()
	f := &workerStore{}
	o := New(Config{Lease: 5 * time.Second}, f, nil, nil, nil)
	sink := &panickingSink{}
	w := NewWorkers(o, f, sink, sink)
	func() {
		defer func() { require.NotNil(t, recover()) }()
		_, _, _ = w.appendOrdered(context.Background(), persistence.LogAppend{
			JobID: "j", Step: "s", Attempt: 1, Offset: 3, Ordered: true, Lines: []stroem.PushLine{{Text: "x"}},
		})
	}()
	w.order.mu.Lock()
	defer w.order.mu.Unlock()
	require.Empty(t, w.order.steps)
}
