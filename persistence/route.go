package persistence

import (
	"slices"

	"github.com/stroem/stroem"
)

// Route is what a worker's slot may be given: steps of its action types
// (Capabilities) whose tags match its tags (stroem.TagsMatch). An offer
// (JobState.Offer) carries the route of the claim it is made to.
type Route struct {
	Capabilities []string
	Tags         []string
	Exclusive    bool
}

// Takes reports whether a step of actionType requiring tags may go to r.
func (r Route) Takes(actionType string, tags []string) bool {
	return slices.Contains(r.Capabilities, actionType) && stroem.TagsMatch(tags, r.Tags, r.Exclusive)
}

// NormalTags is a tag list as the stores keep it: sorted, each tag once,
// empty strings dropped, nil for none (so a step or a worker without tags
// costs no allocation).
func NormalTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t = stroem.SanitizeText(t); t != "" {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// OfferBound is one route whose claim would take every step any of routes
// would: the action types and tags of all of them, exclusive only when
// every one is exclusive with the same tags. A store refuses the offers
// of an update when another job has a step ready since earlier that the
// bound takes (JobState.Offer): a superset of the steps the claims could
// take, so an offer a claim would not have made is refused, never one it
// would have made the other way round.
func OfferBound(routes []Route) Route {
	var b Route
	for i, r := range routes {
		for _, c := range r.Capabilities {
			if !slices.Contains(b.Capabilities, c) {
				b.Capabilities = append(b.Capabilities, c)
			}
		}
		tags := NormalTags(r.Tags)
		if i == 0 {
			b.Exclusive = r.Exclusive && len(tags) > 0
		} else if !r.Exclusive || !slices.Equal(tags, b.Tags) {
			b.Exclusive = false
		}
		b.Tags = NormalTags(append(slices.Clone(b.Tags), tags...))
	}
	if b.Capabilities == nil {
		b.Capabilities = []string{}
	}
	if b.Tags == nil {
		b.Tags = []string{}
	}
	return b
}
