package actors

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/workspace"
)

// A loop of the largest size expands in one transition, every instance
// ready with its own input.
func TestForEachLargestLoopExpands(t *testing.T) {
	t.Parallel()
	b := newBundle(t, loopWorkflow)
	p, s := b.newJob(t, "loop", nil)
	items := make([]any, workspace.MaxLoopItems)
	for i := range items {
		items[i] = i
	}
	start := time.Now()
	run(t, p, s, "fetch", true, map[string]any{"items": items})
	t.Logf("expanding %d items took %s", len(items), time.Since(start))
	require.Equal(t, 3+len(items), s.Len())
	last := s.Find(stroem.LoopInstanceName("each-item", len(items)-1))
	require.Equal(t, stroem.StepReady, last.Status)
	require.Equal(t, map[string]any{"value": "9999-9999"}, last.Input)
}
