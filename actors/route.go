package actors

import (
	"strings"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

// Worker tags route steps (stroem.TagsMatch): a claim takes a step only if
// the step's tags are among the worker's and, for an exclusive worker, the
// worker's are among the step's. Every path that gives a step to a worker
// applies it: the claim statement (persistence.ClaimParams), a hand-off to
// a waiting long poll (the Dispatcher reserves only requests whose route
// takes the step), a completion's own claim (handoff.assignReady, offer),
// and the checks that fail a step no worker can run (unmatched.go,
// checkRunnable).

// route is the tag half of what a claim request can take (the action
// types are the other): the worker's tags, sorted and each once, and
// whether it is exclusive. An exclusive worker without tags takes what a
// worker without tags takes, so it is not marked exclusive: equal routes
// are equal values.
type route struct {
	tags      []string
	exclusive bool
}

// newRoute is the route of a claim that names tags and exclusive.
func newRoute(tags []string, exclusive bool) route {
	t := persistence.NormalTags(tags)
	return route{tags: t, exclusive: exclusive && len(t) > 0}
}

// takes reports whether a step requiring stepTags may go to the route.
func (r route) takes(stepTags []string) bool {
	return stroem.TagsMatch(stepTags, r.tags, r.exclusive)
}

// covers reports whether every step q takes, r takes too: then a claim of
// r that found nothing proves that nothing is ready for q either (for the
// same action types).
func (r route) covers(q route) bool {
	if !r.exclusive {
		return isSubset(q.tags, r.tags)
	}
	// r takes only steps asking for exactly its tags; q takes those only
	// if it is reserved for the same tags (otherwise it also takes steps
	// without tags).
	return q.exclusive && isSubset(q.tags, r.tags) && isSubset(r.tags, q.tags)
}

// key is the route's part of a group's key.
func (r route) key() string {
	if len(r.tags) == 0 {
		return ""
	}
	k := strings.Join(r.tags, ",")
	if r.exclusive {
		return "!" + k
	}
	return "+" + k
}

// persistenceRoute is the route of a claim of action types caps, for an
// offer (persistence.JobState.Offer).
func (r route) persistenceRoute(caps []string) persistence.Route {
	return persistence.Route{Capabilities: caps, Tags: r.tags, Exclusive: r.exclusive}
}

// checkTags applies the bounds of a registration to a list of tags (or
// capabilities) a worker sends: at most maxWorkerList entries, each
// non-empty and at most maxWorkerField bytes.
func checkTags(what string, list []string) error {
	if len(list) > maxWorkerList {
		return stroem.Errorf(stroem.CodeInvalid, "%s must list at most %d entries", what, maxWorkerList)
	}
	for _, v := range list {
		if strings.TrimSpace(v) == "" || len(v) > maxWorkerField {
			return stroem.Errorf(stroem.CodeInvalid, "%s: every entry must be non-empty and at most %d bytes", what, maxWorkerField)
		}
	}
	return nil
}
