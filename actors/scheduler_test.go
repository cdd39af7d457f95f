package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
