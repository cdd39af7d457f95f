package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/workspace"
)

func newValidateCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "validate PATH",
		Short: "Validate a workspace folder or a workflow file",
		Long: `Validate loads a workspace folder (every .workflows/*.yaml and *.yml) or a
single workflow file and prints every problem as FILE:LINE:COL: MESSAGE,
sorted, then a summary line.

Exit codes: 0 valid, 1 problems found, 2 usage or I/O error.`,
		Example: `  stroem validate ./workspace
  stroem validate ./workspace/.workflows/hello.yaml
  stroem validate ./workspace --output json`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("validate needs exactly one PATH (a workspace folder or a workflow file), got %d arguments (see 'stroem validate --help')", len(args))
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usageError("--output must be text or json, not %q", output)
			}
			ws, err := loadInterruptibly(c.Context(), args[0])
			if c.Context().Err() != nil {
				return exitCode(130, nil) // Ctrl-C
			}
			if err != nil {
				return exitCode(2, err)
			}
			ws.Warnings = append(ws.Warnings, webhookSecretWarnings(ws)...)
			out := c.OutOrStdout()
			if output == "json" {
				err = writeValidateJSON(out, ws)
			} else {
				err = writeValidateText(out, ws)
			}
			if err != nil {
				return exitCode(2, err)
			}
			if len(ws.Problems) > 0 {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// loadInterruptibly loads the workspace at path, or returns as soon as ctx
// is cancelled: main turns Ctrl-C into a cancelled context, which Load
// does not watch, so a large workspace was validated to the end whatever
// was pressed. The load is left behind; the process is about to exit.
func loadInterruptibly(ctx context.Context, path string) (*workspace.Workspace, error) {
	type result struct {
		ws  *workspace.Workspace
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ws, err := workspace.Load(path)
		ch <- result{ws, err}
	}()
	select {
	case r := <-ch:
		return r.ws, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// formatProblem prints a problem as FILE:LINE:COL: MESSAGE; a problem about
// a whole file (no line) as FILE: MESSAGE.
func formatProblem(p workspace.Problem) string {
	if p.Pos.Line == 0 {
		return p.Pos.File + ": " + p.Message
	}
	return fmt.Sprintf("%s:%d:%d: %s", p.Pos.File, p.Pos.Line, max(p.Pos.Col, 1), p.Message)
}

func writeValidateText(w io.Writer, ws *workspace.Workspace) error {
	for _, p := range ws.Warnings {
		if _, err := fmt.Fprintln(w, formatProblem(workspace.Problem{Pos: p.Pos, Message: "warning: " + p.Message})); err != nil {
			return err
		}
	}
	for _, p := range ws.Problems {
		if _, err := fmt.Fprintln(w, formatProblem(p)); err != nil {
			return err
		}
	}
	var err error
	switch n := len(ws.Problems); n {
	case 0:
		_, err = fmt.Fprintf(w, "ok: %s, %s, %s\n",
			plural(len(ws.Actions), "action"), plural(len(ws.Tasks), "task"), plural(len(ws.Triggers), "trigger"))
	default:
		_, err = fmt.Fprintln(w, plural(n, "problem"))
	}
	return err
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// validateJSON is the --output json document.
type validateJSON struct {
	Valid    bool                  `json:"valid"`
	Problems []validateJSONProblem `json:"problems"`
	Warnings []validateJSONProblem `json:"warnings"`
	Actions  int                   `json:"actions"`
	Tasks    int                   `json:"tasks"`
	Triggers int                   `json:"triggers"`
}

type validateJSONProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Message string `json:"message"`
}

func writeValidateJSON(w io.Writer, ws *workspace.Workspace) error {
	doc := validateJSON{
		Valid:    len(ws.Problems) == 0,
		Problems: make([]validateJSONProblem, 0, len(ws.Problems)),
		Warnings: make([]validateJSONProblem, 0, len(ws.Warnings)),
		Actions:  len(ws.Actions),
		Tasks:    len(ws.Tasks),
		Triggers: len(ws.Triggers),
	}
	for _, p := range ws.Problems {
		doc.Problems = append(doc.Problems, validateJSONProblem{File: p.Pos.File, Line: p.Pos.Line, Col: p.Pos.Col, Message: p.Message})
	}
	for _, p := range ws.Warnings {
		doc.Warnings = append(doc.Warnings, validateJSONProblem{File: p.Pos.File, Line: p.Pos.Line, Col: p.Pos.Col, Message: p.Message})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
