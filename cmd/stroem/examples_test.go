package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/workspace"
)

// The --help examples that name a task name one of the example workspace's
// (examples/workspace), so a new user can run them as shown.
func TestHelpExamplesNameRealTasks(t *testing.T) {
	t.Parallel()
	ws, err := workspace.Load(filepath.Join("..", "..", "examples", "workspace"))
	require.NoError(t, err)
	require.Empty(t, ws.Problems)
	taskArg := regexp.MustCompile(`stroem (?:trigger|stats) ([a-z][a-z0-9_-]*)`)
	seen := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, m := range taskArg.FindAllStringSubmatch(c.Example, -1) {
			seen++
			require.Contains(t, ws.Tasks, m[1], "%s --help names a task the example workspace lacks", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd())
	require.GreaterOrEqual(t, seen, 4, "the examples were found")
}
