package workspace

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Cron expressions are read as the upstream reads them (with croner):
// robfig/cron parses the second, minute, hour and month fields, and the day
// fields are parsed here, with croner's extensions — L (the last day of the
// month; 5L the last Friday), # (5#2 the second Friday), W (15W the weekday
// nearest the 15th), 7 for Sunday — and an optional seventh field, the
// year. Descriptors (@daily, @every 1h) stay robfig's.

const (
	cronYearMin = 1
	cronYearMax = 5000
	// dowEvery is a day-of-week bit for "every such weekday"; bits 1–5 are
	// its 1st–5th occurrence in the month (#1–#5), dowLast its last (L).
	dowEvery = 1 << 0
	dowLast  = 1 << 6
)

// cronDays is the day part of an expression: which days of a month match.
type cronDays struct {
	dom        [32]bool // 1–31
	domNearest [32]bool // 15W
	domLast    bool     // L
	dow        [7]uint8 // 0 = Sunday; dowEvery, nth bits, dowLast
	// starDOM and starDOW: the field is "*" (or "?"). When both fields are
	// restricted, a day matching either matches (Vixie cron's rule); a "+"
	// before the day of week asks for both.
	starDOM, starDOW, both bool
}

// cronSpec is a parsed expression other than @every.
type cronSpec struct {
	// clock matches seconds, minutes, hours and months on every day, read
	// in UTC: cronSpec searches wall-clock times (as croner does) and
	// places them in loc itself, so a clock change is handled as croner
	// handles it (Next).
	clock cron.Schedule
	days  cronDays
	years []bool // nil: every year; else indexed by year, cronYearMin…cronYearMax
	loc   *time.Location
	// fixed: one second, one minute and one hour (croner's fixed-time job).
	fixed bool
}

// cronNicknames are the descriptors croner knows, as the expressions they
// stand for; @every stays robfig's.
var cronNicknames = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// parseCron parses spec in loc. It is the one parser behind validation and
// the scheduler, so a trigger that loads fires as it was checked.
func parseCron(spec string, loc *time.Location) (cron.Schedule, error) {
	if expr, ok := cronNicknames[strings.ToLower(spec)]; ok {
		spec = expr
	} else if strings.HasPrefix(spec, "@") {
		return cronParser.Parse("CRON_TZ=" + loc.String() + " " + spec)
	}
	fields := strings.Fields(spec)
	switch len(fields) {
	case 5:
		fields = append([]string{"0"}, fields...)
	case 6, 7:
	default:
		return nil, fmt.Errorf("it has %d fields; want 5 (minute hour day month weekday), 6 (second first) or 7 (second first, year last)", len(fields))
	}
	clock, err := cronParser.Parse("CRON_TZ=UTC " + strings.Join([]string{fields[0], fields[1], fields[2], "*", fields[4], "*"}, " "))
	if err != nil {
		return nil, err
	}
	s := &cronSpec{clock: clock, loc: loc}
	if spec, ok := clock.(*cron.SpecSchedule); ok {
		one := func(bits uint64) bool { return bits&(1<<63) == 0 && bits&(bits-1) == 0 } // bit 63: robfig's "*"
		s.fixed = one(spec.Second) && one(spec.Minute) && one(spec.Hour)
	}
	if err := s.days.parseDOM(fields[3]); err != nil {
		return nil, fmt.Errorf("day of month %q: %w", fields[3], err)
	}
	if err := s.days.parseDOW(fields[5]); err != nil {
		return nil, fmt.Errorf("day of week %q: %w", fields[5], err)
	}
	if len(fields) == 7 && fields[6] != "*" && fields[6] != "?" {
		s.years = make([]bool, cronYearMax+1)
		err := eachCronItem(fields[6], cronYearMin, cronYearMax, func(v int) { s.years[v] = true })
		if err != nil {
			return nil, fmt.Errorf("year %q: %w", fields[6], err)
		}
	}
	return s, nil
}

// Next is the first time after t that matches. It searches wall-clock
// times (in UTC, where the clock never changes) from t's wall clock in
// loc, and places each match in loc, as croner does: a wall-clock time
// that a spring change skips fires at the first time after the gap when
// the expression is a fixed time of day, and not at all otherwise; one that
// an autumn change repeats fires once, at its first occurrence (not at all
// when that is not after t).
func (s *cronSpec) Next(t time.Time) time.Time {
	w := wallClock(t.In(s.loc))
	for range 100_000 { // each pass moves w on; a gap holds at most 3,600 per-second matches
		n := s.nextWall(w)
		if n.IsZero() {
			return n
		}
		if at, ok := s.place(n, t); ok {
			return at
		}
		w = n
	}
	return time.Time{}
}

// wallClock is t's wall clock as a time in UTC.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// yearOK reports whether the expression fires in year y.
func (s *cronSpec) yearOK(y int) bool {
	return s.years == nil || (y >= cronYearMin && y <= cronYearMax && s.years[y])
}

// nextWall is the first wall-clock time after w that matches: the clock's
// next time on a matching day. The search moves a day at a time (a year at
// a time over years the expression leaves out), and gives up after five
// years without a match, as robfig does.
func (s *cronSpec) nextWall(w time.Time) time.Time {
	limit := w.Year() + 5
	for {
		n := s.clock.Next(w)
		if n.IsZero() {
			return n
		}
		if !s.yearOK(n.Year()) {
			y := n.Year() + 1
			for y <= cronYearMax && !s.yearOK(y) {
				y++
			}
			if y > cronYearMax {
				return time.Time{}
			}
			limit = y + 5
			w = time.Date(y, time.January, 1, 0, 0, 0, 0, time.UTC).Add(-time.Second)
			continue
		}
		if n.Year() > limit {
			return time.Time{}
		}
		if s.days.match(n) {
			return n
		}
		w = time.Date(n.Year(), n.Month(), n.Day()+1, 0, 0, 0, 0, time.UTC).Add(-time.Second)
	}
}

// place returns the instant in loc of the wall-clock time w, when it fires
// after t (see Next).
func (s *cronSpec) place(w, t time.Time) (time.Time, bool) {
	at := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), 0, s.loc)
	if !wallClock(at.In(s.loc)).Equal(w) {
		// In a gap. A fixed time fires when the clock jumps (where the
		// zone after the gap starts), on a day the expression matches.
		if !s.fixed {
			return time.Time{}, false
		}
		start, _ := at.ZoneBounds()
		if start.Before(at) && !wallClock(start.In(s.loc)).After(w) {
			// at is before the gap in Go's choice; the zone after it starts later.
			_, start = at.ZoneBounds()
		}
		jumped := wallClock(start.In(s.loc))
		if start.IsZero() || !start.After(t) || !s.days.match(jumped) || !s.yearOK(jumped.Year()) {
			return time.Time{}, false
		}
		return start, true
	}
	// Repeated (an autumn change): the earliest instant of w.
	_, before := at.Add(-12 * time.Hour).Zone()
	_, after := at.Add(12 * time.Hour).Zone()
	if d := time.Duration(before-after) * time.Second; d != 0 {
		for _, c := range []time.Time{at.Add(-d), at.Add(d)} {
			if c.Before(at) && wallClock(c.In(s.loc)).Equal(w) {
				at = c
			}
		}
	}
	if !at.After(t) {
		return time.Time{}, false
	}
	return at, true
}

func (d *cronDays) match(t time.Time) bool {
	day, wd := t.Day(), int(t.Weekday())
	last := time.Date(t.Year(), t.Month()+1, 0, 12, 0, 0, 0, time.UTC).Day()
	domOK := d.dom[day] || (d.domLast && day == last) || d.nearestWeekday(t, last)
	bits := d.dow[wd]
	dowOK := bits&dowEvery != 0 || bits&(1<<((day-1)/7+1)) != 0 || (bits&dowLast != 0 && day+7 > last)
	switch {
	case d.starDOM && d.starDOW:
		return true
	case d.starDOW:
		return domOK
	case d.starDOM:
		return dowOK
	case d.both:
		return domOK && dowOK
	}
	return domOK || dowOK
}

// nearestWeekday reports whether t is the weekday nearest a day marked W:
// that day itself from Monday to Friday, else the Friday before a Saturday
// and the Monday after a Sunday, without leaving the month.
func (d *cronDays) nearestWeekday(t time.Time, last int) bool {
	for w := 1; w <= last; w++ {
		if !d.domNearest[w] {
			continue
		}
		target := w
		switch time.Date(t.Year(), t.Month(), w, 12, 0, 0, 0, time.UTC).Weekday() {
		case time.Saturday:
			if target--; target < 1 {
				target = w + 2
			}
		case time.Sunday:
			if target++; target > last {
				target = w - 2
			}
		}
		if target == t.Day() {
			return true
		}
	}
	return false
}

func (d *cronDays) parseDOM(field string) error {
	field = strings.ToUpper(field)
	if field == "*" || field == "?" {
		d.starDOM = true
		return nil
	}
	for _, item := range strings.Split(field, ",") {
		switch {
		case item == "L":
			d.domLast = true
		case strings.HasSuffix(item, "W"):
			n, err := strconv.Atoi(strings.TrimSuffix(item, "W"))
			if err != nil || n < 1 || n > 31 {
				return fmt.Errorf("%q: W follows a day from 1 to 31 (15W: the weekday nearest the 15th)", item)
			}
			d.domNearest[n] = true
		case strings.ContainsAny(item, "LW#"):
			return fmt.Errorf("%q: L stands alone here (the last day of the month), W follows a day (15W), and # is for the day of week", item)
		default:
			if err := eachCronItem(item, 1, 31, func(v int) { d.dom[v] = true }); err != nil {
				return err
			}
		}
	}
	return nil
}

var cronWeekdays = strings.NewReplacer("SUN", "0", "MON", "1", "TUE", "2", "WED", "3", "THU", "4", "FRI", "5", "SAT", "6")

func (d *cronDays) parseDOW(field string) error {
	field = strings.ToUpper(field)
	if strings.HasPrefix(field, "+") {
		d.both, field = true, field[1:]
	}
	if field == "*" || field == "?" {
		d.starDOW = true
		return nil
	}
	field = cronWeekdays.Replace(strings.ReplaceAll(field, "-SUN", "-7"))
	for _, item := range strings.Split(field, ",") {
		bit := uint8(dowEvery)
		if strings.HasSuffix(item, "L") {
			item, bit = strings.TrimSuffix(strings.TrimSuffix(item, "L"), "#"), dowLast
		} else if i := strings.IndexByte(item, '#'); i >= 0 {
			n, err := strconv.Atoi(item[i+1:])
			if err != nil || n < 1 || n > 5 {
				return fmt.Errorf("%q: # is followed by 1 to 5 (5#2: the second Friday) or L (the last)", item)
			}
			item, bit = item[:i], uint8(1)<<n
		}
		if item == "L" || item == "" {
			return fmt.Errorf("L follows a weekday here (5L: the last Friday)")
		}
		if strings.ContainsAny(item, "LW#") {
			return fmt.Errorf("%q: use 5L (the last Friday) or 5#2 (the second Friday); W is for the day of month", item)
		}
		if err := eachCronItem(item, 0, 7, func(v int) { d.dow[v%7] |= bit }); err != nil {
			return err
		}
	}
	return nil
}

// eachCronItem calls set for each value of one list item: N, A-B, */S,
// A/S or A-B/S (croner's forms), within lo…hi.
func eachCronItem(item string, lo, hi int, set func(int)) error {
	rng, stepText, stepped := strings.Cut(item, "/")
	step := 1
	if stepped {
		var err error
		if step, err = strconv.Atoi(stepText); err != nil || step < 1 {
			return fmt.Errorf("%q: the step must be a positive number", item)
		}
	}
	from, to := lo, hi
	if rng != "*" {
		a, b, isRange := strings.Cut(rng, "-")
		var err error
		if from, err = strconv.Atoi(a); err != nil {
			return fmt.Errorf("%q: %q is not a number", item, a)
		}
		to = from
		if isRange {
			if to, err = strconv.Atoi(b); err != nil {
				return fmt.Errorf("%q: %q is not a number", item, b)
			}
		} else if stepped {
			to = hi
		}
	} else if !stepped {
		return fmt.Errorf("%q: * stands alone", item)
	}
	if from < lo || to > hi || from > to {
		return fmt.Errorf("%q: out of range %d-%d", item, lo, hi)
	}
	for v := from; v <= to; v += step {
		set(v)
	}
	return nil
}
