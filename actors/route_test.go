package actors

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// covers is exact: r covers q if and only if every step q takes, r takes
// (checked over every tag set of a small universe). A Dispatcher claim
// that found nothing for r then proves nothing is ready for q; covers that
// said more would leave q's requests waiting while a step waits for them.
func TestRouteCoversExactlyWhatItTakes(t *testing.T) {
	t.Parallel()
	universe := []string{"a", "b", "c"}
	var sets [][]string
	for m := 0; m < 1<<len(universe); m++ {
		var s []string
		for i, x := range universe {
			if m&(1<<i) != 0 {
				s = append(s, x)
			}
		}
		sets = append(sets, s)
	}
	var routes []route
	for _, s := range sets {
		routes = append(routes, newRoute(s, false), newRoute(s, true))
	}
	for _, r := range routes {
		for _, q := range routes {
			want := true
			for _, st := range sets {
				if q.takes(st) && !r.takes(st) {
					want = false
				}
			}
			require.Equal(t, want, r.covers(q), "%+v covers %+v", r, q)
		}
	}
	require.Equal(t, newRoute(nil, true), route{}, "exclusive without tags is no reservation")
	require.Equal(t, newRoute([]string{"b", "a", "b"}, false).key(), newRoute([]string{"a", "b"}, false).key())
	require.NotEqual(t, newRoute([]string{"a"}, true).key(), newRoute([]string{"a"}, false).key())
}
