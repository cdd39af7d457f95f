package workspace

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The upstream's scheduler reads cron with croner, whose extensions its
// triggers guide documents: L (the last day of the month; 5L the last
// Friday), # (5#2 the second Friday), W (15W the weekday nearest the 15th),
// 7 for Sunday, and an optional seventh field, the year. A trigger using
// them loads and fires on the days croner gives.
func TestCronCronerExtensions(t *testing.T) {
	t.Parallel()
	day := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	cases := []struct {
		spec string
		from time.Time
		want []time.Time
	}{
		// The guide's examples.
		{"0 0 12 * * 5L", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 1, 30, 12, 0), day(2026, 2, 27, 12, 0), day(2026, 3, 27, 12, 0)}},
		{"0 0 12 * * 5#2", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 1, 9, 12, 0), day(2026, 2, 13, 12, 0), day(2026, 3, 13, 12, 0)}},
		// 15 Feb 2026 is a Sunday (→ Monday 16th), 15 Mar a Sunday, 15 Aug a Saturday (→ Friday 14th).
		{"0 0 12 15W * *", day(2026, 2, 1, 0, 0), []time.Time{day(2026, 2, 16, 12, 0), day(2026, 3, 16, 12, 0), day(2026, 4, 15, 12, 0)}},
		{"0 12 15W 8 *", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 8, 14, 12, 0), day(2027, 8, 16, 12, 0)}},
		// 1W never leaves the month: 1 Nov 2025 is a Saturday → Monday 3rd.
		{"0 0 1W 11 *", day(2025, 10, 1, 0, 0), []time.Time{day(2025, 11, 3, 0, 0)}},
		{"0 0 12 L * *", day(2026, 1, 31, 13, 0), []time.Time{day(2026, 2, 28, 12, 0), day(2026, 3, 31, 12, 0)}},
		{"0 0 L 2 *", day(2027, 3, 1, 0, 0), []time.Time{day(2028, 2, 29, 0, 0)}},
		// Names, ranges and # together: the first Friday; MON-FRI#2 the second weekday of each name.
		{"0 12 * * FRI#1", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 1, 2, 12, 0), day(2026, 2, 6, 12, 0)}},
		{"0 9 * 1 MON-WED#2", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 1, 12, 9, 0), day(2026, 1, 13, 9, 0), day(2026, 1, 14, 9, 0), day(2027, 1, 11, 9, 0)}},
		{"0 9 * * 5#L", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 1, 30, 9, 0)}},
		// 7 is Sunday, as 0; MON-SUN is every day.
		{"0 9 * * 7", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 1, 4, 9, 0), day(2026, 1, 11, 9, 0)}},
		{"0 9 * * MON-SUN", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 1, 1, 9, 0), day(2026, 1, 2, 9, 0)}},
		// Day of month and day of week both restricted: either matches (as Vixie cron and robfig).
		{"0 9 13 * FRI", day(2026, 2, 1, 0, 0), []time.Time{day(2026, 2, 6, 9, 0), day(2026, 2, 13, 9, 0), day(2026, 2, 20, 9, 0)}},
		{"0 9 L * 1#1", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 1, 5, 9, 0), day(2026, 1, 31, 9, 0), day(2026, 2, 2, 9, 0)}},
		// "+" asks for both: Friday the 13th.
		{"0 9 13 * +FRI", day(2026, 1, 1, 0, 0), []time.Time{day(2026, 2, 13, 9, 0), day(2026, 3, 13, 9, 0)}},
		// The year field.
		{"0 0 0 1 1 * 2030", day(2026, 6, 1, 0, 0), []time.Time{day(2030, 1, 1, 0, 0), {}}},
		{"0 30 9 ? * MON-FRI 2026-2099/2", day(2027, 1, 1, 0, 0), []time.Time{day(2028, 1, 3, 9, 30)}},
		// Plain expressions keep robfig's reading.
		{"0 30 9 * * MON-FRI", day(2026, 1, 2, 10, 0), []time.Time{day(2026, 1, 5, 9, 30)}},
		{"*/10 * * * * *", day(2026, 1, 2, 10, 0), []time.Time{time.Date(2026, 1, 2, 10, 0, 10, 0, time.UTC)}},
	}
	for _, c := range cases {
		t.Run(c.spec, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, checkCron(c.spec))
			s, err := CronSchedule(c.spec, time.UTC)
			require.NoError(t, err)
			at := c.from
			for _, w := range c.want {
				at = s.Next(at)
				require.Equal(t, w, at, "after %s", at)
			}
		})
	}
}

// Days are read in the trigger's time zone: the last day of the month in
// Auckland starts before it does in UTC.
func TestCronExtensionsTimezone(t *testing.T) {
	t.Parallel()
	akl, err := time.LoadLocation("Pacific/Auckland")
	require.NoError(t, err)
	s, err := CronSchedule("0 0 8 L * *", akl)
	require.NoError(t, err)
	next := s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	require.Equal(t, time.Date(2026, 1, 31, 8, 0, 0, 0, akl), next)
}

// Extensions in the wrong place are problems naming the field.
func TestCronExtensionsRefused(t *testing.T) {
	t.Parallel()
	for spec, want := range map[string]string{
		"0 0 12 * * 5#6":      "day of week",
		"0 0 12 * * 5W":       "day of week",
		"0 0 12 5L * *":       "day of month",
		"0 0 12 5#1 * *":      "day of month",
		"0 0 12 32W * *":      "day of month",
		"0 0 12 LW * *":       "day of month",
		"0 0 12 * * 8":        "day of week",
		"0 0 12 * * 5-3":      "day of week",
		"0 0 0 1 1 * 1999/0":  "year",
		"0 0 0 1 1 * 6000":    "year",
		"0 0 0 1 1 * 2030 x":  "8 fields",
		"0 0 12 * * */0":      "day of week",
		"0 0 12L * * *":       "12L",
		"0 0 12 * * 5#2,MON#": "day of week",
	} {
		err := checkCron(spec)
		require.Error(t, err, spec)
		require.Contains(t, err.Error(), want, spec)
	}
}

// Clock changes, as the upstream's triggers guide describes them: a time
// the spring change skips fires at the first time after the gap (a fixed
// time) or not at all (an interval: its next time after the gap comes);
// a time the autumn change repeats fires once, at its first occurrence.
func TestCronDaylightSaving(t *testing.T) {
	t.Parallel()
	akl, err := time.LoadLocation("Pacific/Auckland") // 27 Sep 2026: 02:00 → 03:00
	require.NoError(t, err)
	ny, err := time.LoadLocation("America/New_York") // 1 Nov 2026: 02:00 EDT → 01:00 EST
	require.NoError(t, err)
	edt, est := time.FixedZone("EDT", -4*3600), time.FixedZone("EST", -5*3600)
	cases := []struct {
		spec string
		loc  *time.Location
		from time.Time
		want []time.Time
	}{
		{"0 30 2 * * *", akl, time.Date(2026, 9, 26, 12, 0, 0, 0, akl), []time.Time{
			time.Date(2026, 9, 27, 3, 0, 0, 0, akl), time.Date(2026, 9, 28, 2, 30, 0, 0, akl)}},
		{"30 2 * * SUN", akl, time.Date(2026, 9, 26, 12, 0, 0, 0, akl), []time.Time{
			time.Date(2026, 9, 27, 3, 0, 0, 0, akl), time.Date(2026, 10, 4, 2, 30, 0, 0, akl)}},
		{"0 */30 * * * *", akl, time.Date(2026, 9, 27, 1, 40, 0, 0, akl), []time.Time{
			time.Date(2026, 9, 27, 3, 0, 0, 0, akl), time.Date(2026, 9, 27, 3, 30, 0, 0, akl)}},
		{"@daily", akl, time.Date(2026, 9, 26, 12, 0, 0, 0, akl), []time.Time{time.Date(2026, 9, 27, 0, 0, 0, 0, akl)}},
		{"0 30 1 * * *", ny, time.Date(2026, 11, 1, 0, 0, 0, 0, edt), []time.Time{
			time.Date(2026, 11, 1, 1, 30, 0, 0, edt), time.Date(2026, 11, 2, 1, 30, 0, 0, est)}},
		// A server started in the repeated hour does not fire a time that
		// already came in its first pass.
		{"0 30 1 * * *", ny, time.Date(2026, 11, 1, 1, 10, 0, 0, est), []time.Time{time.Date(2026, 11, 2, 1, 30, 0, 0, est)}},
		{"0 */30 * * * *", ny, time.Date(2026, 11, 1, 1, 10, 0, 0, edt), []time.Time{
			time.Date(2026, 11, 1, 1, 30, 0, 0, edt), time.Date(2026, 11, 1, 2, 0, 0, 0, est)}},
	}
	for _, c := range cases {
		t.Run(c.spec+" "+c.loc.String(), func(t *testing.T) {
			t.Parallel()
			s, err := CronSchedule(c.spec, c.loc)
			require.NoError(t, err)
			at := c.from
			for _, w := range c.want {
				at = s.Next(at)
				require.True(t, w.Equal(at), "want %s, got %s", w, at)
			}
		})
	}
}
