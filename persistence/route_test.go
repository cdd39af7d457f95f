package persistence_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
)

func TestNormalTags(t *testing.T) {
	t.Parallel()
	require.Nil(t, persistence.NormalTags(nil))
	require.Nil(t, persistence.NormalTags([]string{}))
	require.Nil(t, persistence.NormalTags([]string{""}), "no tag left: nil")
	require.Equal(t, []string{"a", "gpu"}, persistence.NormalTags([]string{"gpu", "a", "gpu"}))
}

// OfferBound takes at least every step any of the routes takes: the store
// refuses offers behind an older step the bound takes, so a bound that took
// less would let an offer overtake a step a claim would have taken first.
func TestOfferBoundTakesWhatEachRouteTakes(t *testing.T) {
	t.Parallel()
	steps := [][]string{nil, {"gpu"}, {"cpu"}, {"cpu", "gpu"}, {"big", "gpu"}}
	routes := []persistence.Route{
		{Capabilities: []string{"shell"}},
		{Capabilities: []string{"shell"}, Tags: []string{"gpu"}},
		{Capabilities: []string{"python"}, Tags: []string{"gpu"}, Exclusive: true},
		{Capabilities: []string{"shell"}, Tags: []string{"cpu", "gpu"}, Exclusive: true},
	}
	for i := range routes {
		for j := i; j < len(routes); j++ {
			set := routes[i : j+1]
			b := persistence.OfferBound(set)
			for _, r := range set {
				for _, typ := range []string{"shell", "python"} {
					for _, st := range steps {
						if r.Takes(typ, st) {
							require.True(t, b.Takes(typ, st), "bound %+v of %+v misses %s %v", b, set, typ, st)
						}
					}
				}
			}
		}
	}
	one := persistence.OfferBound(routes[2:3])
	require.True(t, one.Exclusive, "one exclusive route stays exclusive")
	require.False(t, one.Takes("python", nil))
	require.Equal(t, persistence.Route{Capabilities: []string{}, Tags: []string{}}, persistence.OfferBound(nil))
}
