package runner

import (
	"archive/zip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed on this machine", name)
	}
}

func codeStep(lang, code string, args ...string) Step {
	return Step{Spec: stroem.StepSpec{Language: lang, Code: code, ArgList: args}, Input: map[string]any{"name": "Ada"}}
}

func TestLanguageInlineShell(t *testing.T) {
	// Inline shell code runs with bash (when present) as a file, so a
	// multi-line script with a shebang line and positional arguments works.
	code := "#!/bin/bash\nset -e\necho \"args: $1 $2\"\necho \"name: $INPUT_NAME\"\necho 'OUTPUT: {\"ok\": true}'\n"
	res, c := run(t, newShell(t), codeStep("shell", code, "a b", "c"))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"args: a b c", "name: Ada", `OUTPUT: {"ok": true}`}, c.texts(stroem.Stdout))
	require.Equal(t, map[string]any{"ok": true}, res.Output)
}

func TestLanguagePython(t *testing.T) {
	needTool(t, "python3")
	code := "import os, sys, json\nprint('argv', sys.argv[1:])\nprint('OUTPUT: ' + json.dumps({'name': os.environ['INPUT_NAME']}))\n"
	res, c := run(t, newShell(t), codeStep("python", code, "x"))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, "argv ['x']", c.texts(stroem.Stdout)[0])
	require.Equal(t, map[string]any{"name": "Ada"}, res.Output)
}

func TestLanguagePythonFailureQuotesTraceback(t *testing.T) {
	needTool(t, "python3")
	res, _ := run(t, newShell(t), codeStep("python", "d = {}\nprint(d['missing_key'])\n"))
	require.False(t, res.Succeeded())
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Error, "KeyError: 'missing_key'")
}

func TestLanguageJavaScript(t *testing.T) {
	needTool(t, "node")
	// An ES module: top-level await works.
	code := "const v = await Promise.resolve(process.env.INPUT_NAME);\nconsole.log(`OUTPUT: ${JSON.stringify({v, args: process.argv.slice(2)})}`);\n"
	res, _ := run(t, newShell(t), codeStep("javascript", code, "p"))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"v": "Ada", "args": []any{"p"}}, res.Output)

	// CommonJS with require() works too.
	res, _ = run(t, newShell(t), codeStep("javascript", "const os = require('os');\nconsole.log('OUTPUT: ' + JSON.stringify({ok: typeof os.hostname() === 'string'}));\n"))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"ok": true}, res.Output)
}

func TestLanguageGo(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a program")
	}
	needTool(t, "go")
	code := "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Printf(\"OUTPUT: {\\\"result\\\": 42, \\\"arg\\\": %q}\\n\", os.Args[1])\n}\n"
	step := codeStep("go", code, "z")
	step.Spec.Timeout = stroem.Duration(2 * time.Minute)
	res, _ := run(t, newShell(t), step)
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"result": json.Number("42"), "arg": "z"}, res.Output)
}

func TestLanguageSourceFile(t *testing.T) {
	needTool(t, "python3")
	ws := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "scripts"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ws, "scripts", "hello.py"), []byte("import sys\nprint('OUTPUT: {\"a\": \"%s\"}' % sys.argv[1])\n"), 0o644))
	step := Step{Workspace: ws, Spec: stroem.StepSpec{Language: "python", Script: "scripts/hello.py", ArgList: []string{"one"}}}
	res, _ := run(t, newShell(t), step)
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"a": "one"}, res.Output)

	// A shell source with arguments.
	require.NoError(t, os.WriteFile(filepath.Join(ws, "scripts", "s.sh"), []byte("echo \"got $1\"\n"), 0o644))
	res, c := run(t, newShell(t), Step{Workspace: ws, Spec: stroem.StepSpec{Language: "shell", Script: "scripts/s.sh", ArgList: []string{"it"}}})
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"got it"}, c.texts(stroem.Stdout))

	res, _ = run(t, newShell(t), Step{Workspace: ws, Spec: stroem.StepSpec{Language: "shell", Script: "scripts/nope.sh"}})
	require.Equal(t, `source "scripts/nope.sh" not found in the workspace`, res.Error)
}

func TestLanguageWorkdir(t *testing.T) {
	ws := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(ws, "sub"), 0o755))
	step := codeStep("shell", "basename \"$PWD\"")
	step.Workspace = ws
	step.Spec.Workdir = "sub"
	res, c := run(t, newShell(t), step)
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, []string{"sub"}, c.texts(stroem.Stdout))

	step.Spec.Workdir = "../x"
	res, _ = run(t, newShell(t), step)
	require.Equal(t, `workdir "../x" is outside the workspace`, res.Error)
}

func TestLanguageMissingInterpreter(t *testing.T) {
	step := codeStep("python", "print(1)")
	step.Spec.Interpreter = "python9.99-not-here"
	res, _ := run(t, newShell(t), step)
	require.Equal(t, -1, res.ExitCode)
	require.Equal(t, `interpreter "python9.99-not-here" not found on this worker`, res.Error)

	if _, err := exec.LookPath("bun"); err != nil {
		if _, err := exec.LookPath("deno"); err != nil {
			res, _ = run(t, newShell(t), codeStep("typescript", "console.log(1)"))
			require.Equal(t, "no typescript interpreter on this worker: install one of bun, deno, or set the action's interpreter", res.Error)
		}
	}
	res, _ = run(t, newShell(t), codeStep("cobol", "x"))
	require.Contains(t, res.Error, `unknown language "cobol"`)
}

// Without access to a package registry, installing dependencies fails the
// step quickly with a clear error, and nothing is cached.
func TestLanguageDependenciesWithoutNetwork(t *testing.T) {
	needTool(t, "python3")
	if _, err := exec.LookPath("uv"); err == nil {
		t.Skip("uv is installed: the offline index below is pip's")
	}
	r := newShell(t)
	// An index nobody listens on: the install cannot reach a registry.
	r.Environ = append(os.Environ(), "PIP_INDEX_URL=http://127.0.0.1:9/simple", "PIP_NO_CACHE_DIR=1")
	step := codeStep("python", "import requests\n")
	step.Spec.Dependencies = []string{"requests"}
	step.Spec.Timeout = stroem.Duration(90 * time.Second)
	start := time.Now()
	res, c := run(t, r, step)
	require.False(t, res.Succeeded())
	require.Contains(t, res.Error, "installing dependencies (requests) failed")
	require.Contains(t, res.Error, "access to the package registry")
	require.Less(t, time.Since(start), 80*time.Second)
	require.Contains(t, strings.Join(c.texts(stroem.Stderr), "\n"), "installing dependencies: requests")
	entries, _ := os.ReadDir(filepath.Join(r.WorkDir, ".deps"))
	for _, e := range entries {
		require.NotContains(t, e.Name(), "python-", "a failed install must not be cached: %s", e.Name())
	}
}

// Installed dependencies are found by the script and reused by the next
// step with the same set (the installer runs once).
func TestLanguageDependenciesCached(t *testing.T) {
	needTool(t, "python3")
	if _, err := exec.LookPath("uv"); err == nil {
		t.Skip("uv is installed")
	}
	// A local wheel stands in for a registry: pip installs it without the
	// network.
	pkg := filepath.Join(t.TempDir(), "stroemdemo-1.0-py3-none-any.whl")
	writeWheel(t, pkg)
	r := newShell(t)
	r.Environ = append(os.Environ(), "PIP_NO_INDEX=1")
	step := codeStep("python", "import stroemdemo\nprint('OUTPUT: {\"v\": %d}' % stroemdemo.VALUE)\n")
	step.Spec.Dependencies = []string{pkg}
	step.Spec.Timeout = stroem.Duration(2 * time.Minute)
	res, c := run(t, r, step)
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"v": json.Number("7")}, res.Output)
	require.Contains(t, strings.Join(c.texts(stroem.Stderr), "\n"), "installing dependencies")

	res, c = run(t, r, step)
	require.True(t, res.Succeeded(), res.Error)
	require.NotContains(t, strings.Join(c.texts(stroem.Stderr), "\n"), "installing dependencies", "the second run reuses the cache")
}

// writeWheel writes a minimal pure-Python wheel of a package stroemdemo
// whose VALUE is 7.
func writeWheel(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	files := map[string]string{
		"stroemdemo/__init__.py":            "VALUE = 7\n",
		"stroemdemo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: stroemdemo\nVersion: 1.0\n",
		"stroemdemo-1.0.dist-info/WHEEL":    "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
		"stroemdemo-1.0.dist-info/RECORD":   "stroemdemo/__init__.py,,\nstroemdemo-1.0.dist-info/METADATA,,\nstroemdemo-1.0.dist-info/WHEEL,,\nstroemdemo-1.0.dist-info/RECORD,,\n",
	}
	for name, body := range files {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte(body))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
}
