package workspace

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		require.NoError(t, os.MkdirAll(filepath.Dir(full), 0o755))
		require.NoError(t, os.WriteFile(full, []byte(c), 0o755))
	}
	return dir
}

func archiveFiles(t *testing.T, ws *Workspace) map[string]string {
	t.Helper()
	b, err := Archive(ws)
	require.NoError(t, err)
	out := map[string]string{}
	for name, e := range readArchive(t, b) {
		out[name] = e.content
	}
	return out
}

// A library's actions and tasks join the workspace prefixed, its files
// travel under _libraries/NAME/, and its revision is part of the
// workspace's: a changed library is a new revision, an unchanged one is
// not (no reload loop).
func TestWithLibraries(t *testing.T) {
	t.Parallel()
	libDir := writeTree(t, map[string]string{
		".workflows/l.yaml": `
actions:
  notify:
    type: script
    source: bin/notify.sh
    input: { text: { type: string, required: true } }
tasks:
  ship:
    flow:
      a: { action: notify, input: { text: shipped } }
      b: { action: own, depends_on: [a] }
  broken:
    flow:
      c: { action: missing-everywhere }
`,
		"bin/notify.sh": "echo notify\n",
	})
	wsDir := writeTree(t, map[string]string{
		".workflows/w.yaml": `
actions:
  own: { type: script, script: echo own }
tasks:
  t:
    flow:
      n: { action: lib.notify, input: { text: hi } }
      bad: { action: lib.notify, input: { txt: hi } }
`,
		"own.txt": "mine\n",
	})
	lw, err := LoadLibrary(libDir)
	require.NoError(t, err)
	require.Empty(t, lw.Problems)
	base, err := Load(wsDir)
	require.NoError(t, err)
	ws := WithLibraries(base, []*Library{{Name: "lib", WS: lw}})

	require.Equal(t, "bin/notify.sh", lw.Actions["notify"].Source, "the library itself is unchanged")
	require.Equal(t, "_libraries/lib/bin/notify.sh", ws.Actions["lib.notify"].Source)
	require.Equal(t, "lib.notify", ws.Actions["lib.notify"].Name)
	require.Equal(t, "lib.notify", ws.Tasks["lib.ship"].Flow["a"].Action, "library references are prefixed")
	require.Equal(t, "own", ws.Tasks["lib.ship"].Flow["b"].Action, "others are left to the workspace")
	require.NotEqual(t, base.Revision, ws.Revision)

	var msgs []string
	for _, p := range ws.Problems {
		msgs = append(msgs, p.Message)
	}
	require.Contains(t, msgs, `library lib: task broken, step c: unknown action "missing-everywhere": neither the library nor workspace `+base.Name+` has it; the task is left out of this workspace`)
	require.Nil(t, ws.Tasks["lib.broken"], "a library task with a step nobody has is left out")
	refs := RefProblems(ws, nil)
	require.Len(t, refs, 2)
	require.Equal(t, `task t, step bad: action lib.notify has no input "txt" (did you mean "text"?)`, refs[0].Message)
	require.Equal(t, `task t, step bad: missing required input "text" of action lib.notify`, refs[1].Message)
	_, _, err = ResolveAction(ws, "lib.nope", nil)
	require.EqualError(t, err, `action "lib.nope": library lib has no action "nope"`)

	files := archiveFiles(t, ws)
	require.Equal(t, "echo notify\n", files["_libraries/lib/bin/notify.sh"])
	require.Equal(t, "mine\n", files["own.txt"])
	require.NotContains(t, files, "_libraries/lib/.workflows/l.yaml", "workflow files are not shipped")
	require.Equal(t, ws.Revision, currentRevision(ws), "nothing changed: no reload")

	require.NoError(t, os.WriteFile(filepath.Join(libDir, "bin", "notify.sh"), []byte("echo v2\n"), 0o755))
	lw2, err := LoadLibrary(libDir)
	require.NoError(t, err)
	ws2 := WithLibraries(base, []*Library{{Name: "lib", WS: lw2}})
	require.NotEqual(t, ws.Revision, ws2.Revision, "a changed library is a new revision")
	require.Equal(t, "echo v2\n", archiveFiles(t, ws2)["_libraries/lib/bin/notify.sh"])
}
