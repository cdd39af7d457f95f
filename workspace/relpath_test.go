package workspace

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// API clients see workspace-relative paths only.
func TestPublicProblemsAreRelative(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, ".workflows/bad.yaml", "tasks:\n  t:\n    flow:\n      a: { action: missing }\n")
	ws := loaded(t, dir)
	require.NotEmpty(t, ws.Problems)
	for _, p := range ws.PublicProblems() {
		require.NotContains(t, p, dir)
		require.True(t, strings.HasPrefix(p, ".workflows/bad.yaml:"), p)
	}
	require.Equal(t, "open .workflows/x: denied; root .", ws.PublicText("open "+filepath.Join(dir, ".workflows/x")+": denied; root "+dir))

	// A workspace given by a relative path (as in a server config).
	wd, err := os.Getwd()
	require.NoError(t, err)
	rel, err := filepath.Rel(wd, dir)
	require.NoError(t, err)
	ws, err = Load(rel)
	require.NoError(t, err)
	for _, p := range ws.PublicProblems() {
		require.True(t, strings.HasPrefix(p, ".workflows/bad.yaml:"), p)
	}

	// A workspace that did not load at all.
	gone := unloaded("x", filepath.Join(dir, "nope"), pathErr("load workspace: stat "+filepath.Join(dir, "nope")+": no such file or directory"))
	require.Equal(t, []string{".:0:0: load workspace: stat .: no such file or directory"}, gone.PublicProblems())
	var nilWS *Workspace
	require.Equal(t, "x", nilWS.PublicText("x"))
}

type pathErr string

func (e pathErr) Error() string { return string(e) }
