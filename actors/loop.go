package actors

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/workspace"
)

// A for_each step ("deploy") expands, when its dependencies are done and
// its condition holds, into one instance per item: steps "deploy[0]",
// "deploy[1]", … appended to the job in the same JobUpdate transaction that
// stores the item list on the loop step (its input, {"items": […]}). The
// loop step stays pending while its instances run — all at once, or one
// after another when sequential — and ends when they all have: completed
// (failed when an instance failed without continue_on_failure, cancelled
// when one was cancelled). Its output, for its dependents' templates and
// the job's output, is the list of its instances' outputs in index order
// (null for an instance that did not complete).
//
// Expansion is idempotent by construction: the decision is taken from the
// stored state, and a stored expansion (the items on the loop step, its
// instances) is never taken again.

// loopItemsKey is the key of a loop step's input holding its items.
const loopItemsKey = "items"

// expandLoop renders the loop's list and appends its instances, or fails
// or skips the loop step.
func expandLoop(p *plan, s *persistence.JobState, st *persistence.StepState, fc *flowControl) {
	items := fc.items
	if fc.forEach != nil {
		v, err := fc.forEach.Render(templateContext(p, s, st.Name))
		if err != nil {
			failStep(p, st, p.renderError("for_each", err))
			return
		}
		if items, err = loopList(v); err != nil {
			failStep(p, st, err)
			return
		}
	}
	if len(items) > workspace.MaxLoopItems {
		failStep(p, st, fmt.Errorf("for_each: %d items; at most %d are allowed", len(items), workspace.MaxLoopItems))
		return
	}
	if len(items) == 0 {
		skipStep(st, stroem.SkipEmptyLoop, "for_each has no items")
		return
	}
	st.Input = map[string]any{loopItemsKey: items}
	st.ReadyAt = nil
	now := s.Now
	st.StartedAt = &now // the loop's duration runs from its expansion
	for i := range items {
		s.Append(&persistence.StepState{
			Name: stroem.LoopInstanceName(st.Name, i), Position: s.Len(),
			ActionName: st.ActionName, ActionType: st.ActionType, Image: st.Image, Tags: st.Tags,
			DependsOn: st.DependsOn, ContinueOnFailure: st.ContinueOnFailure, MaxAttempts: st.MaxAttempts,
			Status: stroem.StepPending,
		})
	}
	insts := instances(s, st)
	for i, in := range insts {
		if fc.sequential && i > 0 {
			break
		}
		startInstance(p, s, s.MutAt(in))
	}
}

// loopList accepts a rendered for_each: a list, or a string holding a
// JSON list (a template that printed one).
func loopList(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case string:
		t := strings.TrimSpace(x)
		if strings.HasPrefix(t, "[") {
			var l []any
			if err := json.Unmarshal([]byte(t), &l); err == nil {
				return l, nil
			}
		}
		if t == "" {
			return nil, fmt.Errorf("for_each rendered to an empty string, want a list")
		}
		return nil, fmt.Errorf("for_each rendered to a string, want a list")
	case nil:
		return nil, fmt.Errorf("for_each rendered to null, want a list")
	}
	return nil, fmt.Errorf("for_each rendered to %s, want a list", describeValue(v))
}

func describeValue(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case bool:
		return "a boolean"
	case int, int64, float64, json.Number:
		return "a number"
	}
	return fmt.Sprintf("a %T", v)
}

// startInstance makes a pending instance ready with its input rendered
// (each.* bound), or fails it when the input does not render.
func startInstance(p *plan, s *persistence.JobState, in *persistence.StepState) {
	if s.CancelRequested {
		in.Status = stroem.StepCancelled
		in.ErrorMessage = "cancelled"
		return
	}
	input, err := renderStepInput(p, s, in.Name)
	if err != nil {
		failStep(p, in, err)
		return
	}
	now := s.Now
	in.Input = input
	in.Status = stroem.StepReady
	in.ReadyAt = &now
}

// isExpanded reports whether st is a loop step whose instances exist.
func isExpanded(p *plan, st *persistence.StepState) bool {
	ps := p.steps[st.Name]
	if ps == nil || ps.flowCtl == nil || !ps.flowCtl.loop {
		return false
	}
	_, ok := st.Input[loopItemsKey].([]any)
	return ok
}

// loopItems returns the items an expanded loop step stored.
func loopItems(st *persistence.StepState) []any {
	l, _ := st.Input[loopItemsKey].([]any)
	return l
}

// instances returns the positions of an expanded loop's instances in index
// order. They were appended together, so they are consecutive from
// instance 0.
func instances(s *persistence.JobState, loop *persistence.StepState) []int {
	first, n := instanceRange(s, loop)
	if n == 0 {
		return nil
	}
	out := make([]int, n)
	for k := range out {
		out[k] = first + k
	}
	return out
}

// instanceRange returns the position of an expanded loop's instance 0 and
// the number of instances (0 when they are not there): the instances were
// appended together, so they are consecutive and the first and the last
// are found by name.
func instanceRange(s *persistence.JobState, loop *persistence.StepState) (first, n int) {
	n = len(loopItems(loop))
	if n == 0 {
		return 0, 0
	}
	first = s.Index(stroem.LoopInstanceName(loop.Name, 0))
	if first < 0 || first+n > s.Len() || s.At(first+n-1).Name != stroem.LoopInstanceName(loop.Name, n-1) {
		return 0, 0
	}
	return first, n
}

// instancesDone reports whether every instance of an expanded loop ended.
func instancesDone(s *persistence.JobState, g *progress, loop *persistence.StepState) bool {
	first, n := instanceRange(s, loop)
	return g.openFrom(s, first) >= first+n
}

// advanceLoops moves the named loops on, those expanded: the next instance
// of a sequential loop starts when the one before it completed (the rest
// are skipped when it did not), and a loop whose instances all ended ends.
// It reports whether it changed anything.
func advanceLoops(p *plan, s *persistence.JobState, g *progress, loops []string) bool {
	changed := false
	for _, name := range loops {
		ps := p.steps[name]
		if ps == nil || ps.flowCtl == nil || !ps.flowCtl.loop {
			continue
		}
		st := s.Find(name)
		if st == nil || !isExpanded(p, st) || st.Status.Terminal() {
			continue
		}
		first, n := instanceRange(s, st)
		if ps.flowCtl.sequential && advanceSequential(p, s, g, first, n) {
			changed = true
		}
		if g.openFrom(s, first) < first+n {
			continue // an instance is unfinished
		}
		failed, cancelled := 0, 0
		for i := first; i < first+n; i++ {
			switch s.StatusAt(i) {
			case stroem.StepFailed:
				failed++
			case stroem.StepCancelled:
				cancelled++
			}
		}
		changed = true
		st = s.Mut(name)
		switch {
		case failed > 0 && !st.ContinueOnFailure:
			st.Status = stroem.StepFailed
			st.ErrorMessage = fmt.Sprintf("%d of %d instances failed", failed, n)
		case cancelled > 0 || s.CancelRequested:
			st.Status = stroem.StepCancelled
			st.ErrorMessage = "cancelled"
		default:
			st.Status = stroem.StepCompleted
			st.ErrorMessage = ""
			if failed > 0 {
				st.ErrorMessage = fmt.Sprintf("%d of %d instances failed (continue_on_failure)", failed, n)
			}
		}
	}
	return changed
}

// advanceSequential starts the first pending instance of a sequential loop
// (its n instances from position first) once the one before it completed
// (or failed with continue_on_failure), or skips every pending instance
// when it did not.
func advanceSequential(p *plan, s *persistence.JobState, g *progress, first, n int) bool {
	pos := g.openFrom(s, first) // the first unfinished instance
	if pos >= first+n {
		return false
	}
	if s.StatusAt(pos) != stroem.StepPending || pos == first {
		return false // one is running (or ready)
	}
	prev := s.At(pos - 1)
	if prev.Status == stroem.StepCompleted || (prev.Status == stroem.StepFailed && prev.ContinueOnFailure) {
		startInstance(p, s, s.MutAt(pos))
		return true
	}
	for r := pos; r < first+n; r++ {
		if s.StatusAt(r) == stroem.StepPending {
			rest := s.MutAt(r)
			rest.Status = stroem.StepSkipped
			rest.ErrorMessage = fmt.Sprintf("skipped: instance %s %s", prev.Name, prev.Status)
		}
	}
	return true
}

// loopOutput is an expanded loop's output: its instances' outputs in index
// order, null for an instance that did not complete.
func loopOutput(s *persistence.JobState, loop *persistence.StepState) []any {
	insts := instances(s, loop)
	out := make([]any, len(insts))
	for i, pos := range insts {
		in := s.At(pos)
		if in.Status != stroem.StepCompleted {
			continue
		}
		if in.Output == nil {
			out[i] = map[string]any{}
		} else {
			out[i] = in.Output
		}
	}
	return out
}

// loopContext completes a step's template variables: each upstream loop's
// output is its list of instance outputs, and an instance sees each.item
// and each.index.
func loopContext(p *plan, s *persistence.JobState, name string, m map[string]any) map[string]any {
	ps := p.step(name)
	if ps == nil {
		return m
	}
	for _, a := range ps.reads {
		st := s.Find(a)
		if st != nil && st.Status.Terminal() && isExpanded(p, st) {
			m[workspace.TemplateName(a)] = map[string]any{"output": loopOutput(s, st)}
		}
	}
	if each := eachOf(p, s, name); each != nil {
		m["each"] = each
		// An instance sees the upstream outputs its input names (by their
		// template name); the others are left out of what each of
		// thousands of renders copies.
		for _, a := range ps.reads {
			if tn := workspace.TemplateName(a); !strings.Contains(ps.flowCtl.inputSrc, tn) {
				delete(m, tn)
			}
		}
	}
	return m
}

// eachOf is a loop instance's each variable, nil for other steps.
func eachOf(p *plan, s *persistence.JobState, name string) map[string]any {
	loop, i, ok := stroem.ParseLoopInstance(name)
	if !ok {
		return nil
	}
	st := s.Find(loop)
	if st == nil || !isExpanded(p, st) {
		return nil
	}
	items := loopItems(st)
	if i >= len(items) {
		return nil
	}
	return map[string]any{"item": items[i], "index": i}
}

// claimEach sets a claimed instance's each variable when its action's
// templates use it, reading the loop's items from the store.
func (o *Orchestrator) claimEach(ctx context.Context, p *plan, cs *persistence.ClaimedStep) error {
	ps := p.step(cs.StepName)
	if ps == nil || ps.flowCtl == nil || !ps.flowCtl.eachInAction || p.steps[cs.StepName] != nil {
		return nil
	}
	loop, i, ok := stroem.ParseLoopInstance(cs.StepName)
	if !ok {
		return nil
	}
	key := cs.JobID + "\x00" + loop
	items, ok := o.loopItems.get(key)
	if !ok {
		// A stored expansion never changes: read it once, not the whole
		// job per claim of each of its instances.
		s, err := o.store.JobState(ctx, cs.JobID)
		if err != nil {
			return err
		}
		st := s.Find(loop)
		if st == nil || !isExpanded(p, st) {
			return nil
		}
		items = loopItems(st)
		o.loopItems.put(key, items)
	}
	if i < len(items) {
		cs.Each = map[string]any{"item": items[i], "index": i}
	}
	return nil
}

// loopItemsCache holds the items of recently claimed loops, by job id and
// loop step (bounded; the oldest entry goes first). Its zero value is
// ready. A loop's items never change once expanded: a second put of a key
// stores what the first did.
type loopItemsCache struct{ boundedCache[[]any] }

const loopItemsCacheSize = 64

func (c *loopItemsCache) put(key string, items []any) {
	c.boundedCache.put(key, items, loopItemsCacheSize)
}
