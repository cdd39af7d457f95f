package workspace

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The archive served to workers leaves out .git, .env*, .stroemignore and
// what it names, and workflow files no action runs; files an action runs
// are always shipped. The revision still covers every file.
func TestArchiveLeavesOutSecretsAndIgnored(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, ".workflows/w.yaml", `
secrets:
  hook: "literal-webhook-secret"
actions:
  run:
    type: shell
    script: scripts/run.sh
  tool:
    type: shell
    script: .workflows/tool.sh
tasks:
  t:
    flow:
      a: { action: run }
      b: { action: tool }
`)
	writeFile(t, dir, ".workflows/tool.sh", "#!/bin/sh\necho tool\n")
	writeFile(t, dir, "scripts/run.sh", "#!/bin/sh\necho run\n")
	writeFile(t, dir, "scripts/helper.py", "print(1)\n")
	writeFile(t, dir, ".env", "DB_PASSWORD=x\n")
	writeFile(t, dir, ".env.production", "DB_PASSWORD=y\n")
	writeFile(t, dir, "sub/.env.local", "K=z\n")
	writeFile(t, dir, ".git/config", "[core]\n")
	writeFile(t, dir, "build/out.bin", "bin\n")
	writeFile(t, dir, "notes/keep.md", "keep\n")
	writeFile(t, dir, "notes/draft.key", "key\n")
	writeFile(t, dir, "notes/public.key", "pub\n")
	writeFile(t, dir, IgnoreFile, "# local files\nbuild/\n*.key\n!public.key\n\n")

	ws := loaded(t, dir)
	require.Empty(t, problemStrings(ws))
	data, err := Archive(ws)
	require.NoError(t, err)
	require.Equal(t, []string{".workflows/tool.sh", "notes/keep.md", "notes/public.key", "scripts/helper.py", "scripts/run.sh"},
		loadSortedKeys(readArchive(t, data)))

	// An ignored file is still part of the revision.
	before := ws.Revision
	writeFile(t, dir, ".env", "DB_PASSWORD=changed\n")
	again, err := Load(dir)
	require.NoError(t, err)
	require.NotEqual(t, before, again.Revision)
}

func TestArchiveUnreadableIgnoreFile(t *testing.T) {
	t.Parallel()
	dir := copyCompat(t)
	require.NoError(t, os.Mkdir(filepath.Join(dir, IgnoreFile), 0o755)) // a folder: cannot be read as a file
	ws := loaded(t, dir)
	_, err := Archive(ws)
	require.ErrorContains(t, err, "read "+IgnoreFile)
}
