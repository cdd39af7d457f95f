package runner

import (
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// TypeScript runs with the interpreters the reference names (bun, else
// deno); without either the step fails with a clear error
// (TestLanguageMissingInterpreter). Code with type annotations, an
// interface and top-level await runs as written.
func TestLanguageTypeScript(t *testing.T) {
	_, bun := exec.LookPath("bun")
	_, deno := exec.LookPath("deno")
	if bun != nil && deno != nil {
		t.Skip("neither bun nor deno is installed on this machine")
	}
	code := "interface Greeting { who: string; args: string[] }\n" +
		"const who: string = await Promise.resolve(process.env.INPUT_NAME ?? '');\n" +
		"const g: Greeting = { who, args: process.argv.slice(2) };\n" +
		"console.log(`OUTPUT: ${JSON.stringify(g)}`);\n"
	res, _ := run(t, newShell(t), codeStep("typescript", code, "p"))
	require.True(t, res.Succeeded(), res.Error)
	require.Equal(t, map[string]any{"who": "Ada", "args": []any{"p"}}, res.Output)

	// A type error is not checked (as bun and deno run code), a thrown
	// error fails the step.
	res, _ = run(t, newShell(t), codeStep("typescript", "const n: number = 1;\nthrow new Error(`boom ${n}`);\n"))
	require.False(t, res.Succeeded())
	require.Contains(t, res.Error, "boom 1")
}
