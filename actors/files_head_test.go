package actors

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

func TestJobHeadCache(t *testing.T) {
	var c jobHeadCache
	_, ok := c.get("a")
	require.False(t, ok)
	c.put("a", &stroem.Job{ID: "a", Workspace: "w", TaskName: "t"})
	j, ok := c.get("a")
	require.True(t, ok)
	require.Equal(t, stroem.Job{ID: "a", Workspace: "w", TaskName: "t"}, *j)
	j.TaskName = "changed by a caller"
	j, _ = c.get("a")
	require.Equal(t, "t", j.TaskName, "callers get copies")
	for i := range jobHeadCacheSize {
		c.put(strconv.Itoa(i), &stroem.Job{ID: strconv.Itoa(i)})
	}
	require.LessOrEqual(t, len(c.m), jobHeadCacheSize, "bounded")
}
