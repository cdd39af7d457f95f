package actors

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

func mustSchedule(t *testing.T, cronSpec, tz string) (sched interface{ Next(time.Time) time.Time }) {
	t.Helper()
	s, _, err := triggerSchedule(&workspace.Trigger{Cron: cronSpec, Timezone: tz})
	require.NoError(t, err)
	return s
}

func TestLatestTick(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return v
	}
	cases := []struct {
		name, cron, tz string
		after, now     string
		want           string // "" = none
	}{
		{"per second, one due", "* * * * * *", "", "2026-03-01T10:00:00Z", "2026-03-01T10:00:01.2Z", "2026-03-01T10:00:01Z"},
		{"per second, several due: the latest", "* * * * * *", "", "2026-03-01T10:00:00Z", "2026-03-01T10:00:07.9Z", "2026-03-01T10:00:07Z"},
		{"per second, none yet", "* * * * * *", "", "2026-03-01T10:00:00Z", "2026-03-01T10:00:00.9Z", ""},
		{"tick exactly at now is due", "* * * * * *", "", "2026-03-01T10:00:00Z", "2026-03-01T10:00:01Z", "2026-03-01T10:00:01Z"},
		{"the tick at after is not due again", "0 * * * *", "", "2026-03-01T10:00:00Z", "2026-03-01T10:30:00Z", ""},
		{"5 fields: a day of missed minutes fires the latest", "*/5 * * * *", "", "2026-03-01T10:00:00Z", "2026-03-02T10:07:00Z", "2026-03-02T10:05:00Z"},
		{"yearly, years later", "0 0 1 1 *", "", "2020-01-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z"},
		{"time zone", "0 0 9 * * *", "Europe/Oslo", "2026-03-01T00:00:00Z", "2026-03-01T12:00:00Z", "2026-03-01T08:00:00Z"},
		{"now before after", "* * * * * *", "", "2026-03-01T10:00:05Z", "2026-03-01T10:00:01Z", ""},
		{"@every is aligned", "@every 10s", "", "2026-03-01T10:00:00Z", "2026-03-01T10:00:35Z", "2026-03-01T10:00:30Z"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := latestTick(mustSchedule(t, c.cron, c.tz), at(c.after), at(c.now))
			if c.want == "" {
				require.True(t, got.IsZero(), "got %s", got)
				return
			}
			require.True(t, at(c.want).Equal(got), "want %s, got %s", c.want, got)
		})
	}
}

func TestLatestTickHugeGapIsCheap(t *testing.T) {
	t.Parallel()
	s := mustSchedule(t, "* * * * * *", "")
	now := time.Date(2026, 3, 1, 10, 0, 0, 500, time.UTC)
	got := latestTick(s, now.Add(-3*365*24*time.Hour), now)
	require.Equal(t, now.Truncate(time.Second), got)
	got = latestTick(s, time.Time{}, now) // never fired: bounded by the look-back
	require.Equal(t, now.Truncate(time.Second), got)
}

func TestAlignedEverySameTicksFromAnyStart(t *testing.T) {
	t.Parallel()
	s := mustSchedule(t, "@every 15m", "")
	a := s.Next(time.Date(2026, 3, 1, 10, 3, 1, 0, time.UTC))
	b := s.Next(time.Date(2026, 3, 1, 10, 14, 59, 999, time.UTC))
	require.Equal(t, time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC), a.UTC())
	require.Equal(t, a, b, "two servers starting at different times agree on the ticks")
}

func TestTriggerScheduleSpecChangesWithTimezone(t *testing.T) {
	t.Parallel()
	_, a, err := triggerSchedule(&workspace.Trigger{Cron: "0 9 * * *"})
	require.NoError(t, err)
	_, b, err := triggerSchedule(&workspace.Trigger{Cron: "0 9 * * *", Timezone: "Europe/Oslo"})
	require.NoError(t, err)
	_, c, err := triggerSchedule(&workspace.Trigger{Cron: "0 9 * * *", Timezone: "UTC"})
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.Equal(t, a, c, "the default time zone is UTC")
	_, _, err = triggerSchedule(&workspace.Trigger{Cron: "0 9 * * *", Timezone: "Mars/Olympus"})
	require.Error(t, err)
}

func TestWebhookContextReachesTemplates(t *testing.T) {
	t.Parallel()
	s := &persistence.JobState{Context: map[string]any{"webhook": map[string]any{"query": map[string]any{"ref": "main"}}}}
	require.Equal(t, map[string]any{"query": map[string]any{"ref": "main"}}, webhookContext(s))
	require.Nil(t, webhookContext(&persistence.JobState{}))
}

// schedStore is a store for the scheduler alone: JobInsert records ticks
// and fails with the store unavailable while down > 0.
type schedStore struct {
	mu    sync.Mutex
	down  int
	tries int
	ticks []time.Time
	last  time.Time // what TriggerLastTick answers
}

func (f *schedStore) JobInsert(_ context.Context, nj persistence.NewJob) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries++
	if f.down > 0 {
		f.down--
		return stroem.Errorf(stroem.CodeUnavailable, "database unavailable")
	}
	if nj.Tick == nil {
		return errors.New("a scheduler job without a tick")
	}
	if n := len(f.ticks); n > 0 && !nj.Tick.At.After(f.ticks[n-1]) {
		return persistence.ErrTickFired
	}
	f.ticks = append(f.ticks, nj.Tick.At)
	return nil
}

func (f *schedStore) fired() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ticks)
}

func (f *schedStore) SnapshotGet(context.Context, string) ([]byte, error) {
	return nil, stroem.ErrNotFound
}
func (f *schedStore) JobUpdate(context.Context, string, func(*persistence.JobState) error) (*persistence.JobState, error) {
	return nil, stroem.ErrUnavailable
}
func (f *schedStore) JobState(context.Context, string) (*persistence.JobState, error) {
	return nil, stroem.ErrUnavailable
}
func (f *schedStore) JobsUnfinished(context.Context) ([]string, error) { return nil, nil }
func (f *schedStore) StepsClaim(context.Context, persistence.ClaimParams) ([]persistence.ClaimedStep, error) {
	return nil, nil
}
func (f *schedStore) StepUnclaim(context.Context, string, string, int, string) error { return nil }
func (f *schedStore) StepUnclaimHanded(context.Context, string, string, int, string, string) error {
	return nil
}
func (f *schedStore) StepsHandedFor(context.Context, string, string) ([]persistence.ClaimedStep, error) {
	return nil, nil
}
func (f *schedStore) StepLease(context.Context, string, string) (persistence.StepLease, error) {
	return persistence.StepLease{}, stroem.ErrNotFound
}
func (f *schedStore) LeasesExtendAll(context.Context, time.Duration) (int64, error) { return 0, nil }
func (f *schedStore) LeasesExpired(context.Context, int) ([]stroem.StepRef, error)  { return nil, nil }
func (f *schedStore) StepsRunning(context.Context) ([]persistence.HeldStep, error)  { return nil, nil }
func (f *schedStore) StepsGiveBackUnstarted(context.Context, time.Duration, int) ([]persistence.HeldStep, error) {
	return nil, nil
}
func (f *schedStore) Ping(context.Context) error { return nil }
func (f *schedStore) TriggerLastTick(context.Context, string, string) (time.Time, error) {
	return f.last, nil
}
func (f *schedStore) TriggerJobsUnfinished(context.Context, string, string, time.Time) ([]string, error) {
	return nil, nil
}

type oneWorkspace struct {
	ws atomic.Pointer[workspace.Workspace]
}

func (o *oneWorkspace) Get(name string) *workspace.Workspace {
	if ws := o.ws.Load(); ws.Name == name {
		return ws
	}
	return nil
}
func (o *oneWorkspace) List() []*workspace.Workspace { return []*workspace.Workspace{o.ws.Load()} }

const schedWorkflow = `
actions:
  noop: { type: shell, cmd: "true" }
tasks:
  t:
    flow:
      only: { action: noop }
triggers:
  every-second:
    type: scheduler
    cron: "* * * * * *"
    task: t
    enabled: ENABLED
`

func startScheduler(t *testing.T, store *schedStore, ws *workspace.Workspace) (*Scheduler, *oneWorkspace) {
	t.Helper()
	o, wss := startOrchestrator(t, Config{}, store, ws)
	s := NewScheduler(o, store, wss, nil)
	require.NoError(t, s.Start())
	t.Cleanup(s.Stop)
	return s, wss
}

// TestSchedulerRetriesTickWhileStoreDown: the latest missed tick of an
// hourly trigger is due at start; the store refuses it twice (down), and
// the scheduler tries again until it is stored, instead of waiting an hour.
func TestSchedulerRetriesTickWhileStoreDown(t *testing.T) {
	t.Parallel()
	hour := time.Now().UTC().Truncate(time.Hour)
	store := &schedStore{down: 2, last: hour.Add(-2 * time.Hour)}
	yaml := strings.Replace(strings.Replace(schedWorkflow, "ENABLED", "true", 1), `"* * * * * *"`, `"0 0 * * * *"`, 1)
	startScheduler(t, store, loadWorkspace(t, yaml))
	require.Eventually(t, func() bool { return len(store.fired()) == 1 }, 30*time.Second, 20*time.Millisecond)
	if now := time.Now().UTC().Truncate(time.Hour); !now.Equal(hour) {
		t.Skip("the hour changed during the test")
	}
	require.Equal(t, []time.Time{hour}, slicesUTC(store.fired()), "the latest missed tick, once")
	store.mu.Lock()
	require.Equal(t, 3, store.tries, "two refused tries, then stored")
	store.mu.Unlock()
}

func slicesUTC(ts []time.Time) []time.Time {
	out := make([]time.Time, len(ts))
	for i, t := range ts {
		out[i] = t.UTC()
	}
	return out
}

// TestSchedulerReloadStopsDisabledTrigger: a per-second trigger fires in
// order, and stops when a reload disables it.
func TestSchedulerReloadStopsDisabledTrigger(t *testing.T) {
	t.Parallel()
	store := &schedStore{}
	s, wss := startScheduler(t, store, loadWorkspace(t, strings.Replace(schedWorkflow, "ENABLED", "true", 1)))
	require.Eventually(t, func() bool { return len(store.fired()) >= 2 }, 30*time.Second, 20*time.Millisecond)
	next, ok := s.NextFire("default", "every-second")
	require.True(t, ok)
	require.WithinDuration(t, time.Now(), next, 3*time.Second)

	off := loadWorkspace(t, strings.Replace(schedWorkflow, "ENABLED", "false", 1))
	wss.ws.Store(off)
	s.Reload(off)
	_, ok = s.NextFire("default", "every-second")
	require.False(t, ok, "a disabled trigger is not armed")
	// A tick being fired when the reload came may still land: wait for it
	// (Reload returned, so no fire starts any more).
	s.fires.Wait()
	n := len(store.fired())
	require.Never(t, func() bool { return len(store.fired()) > n }, 1500*time.Millisecond, 50*time.Millisecond)

	ticks := store.fired()
	for i := 1; i < len(ticks); i++ {
		require.True(t, ticks[i].After(ticks[i-1]), "ticks in order")
	}
	s.Stop()
	s.Stop()      // twice is fine
	s.Reload(off) // after Stop: a no-op, not a hang
}
