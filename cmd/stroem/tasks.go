package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/http/client"
)

func newTasksCmd() *cobra.Command {
	var workspace string
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "List the tasks of a workspace",
		Long: `List the tasks of a workspace with their mode, input and description.
In the INPUT column a * marks a required field and =VALUE its default.`,
		Example: `  stroem tasks
  stroem tasks --workspace ops --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			tasks, err := c.Tasks(cmd.Context(), workspace)
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), nonNilSlice(tasks))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tMODE\tINPUT\tDESCRIPTION")
			for _, t := range tasks {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, orDash(t.Mode), orDash(inputSummary(t.Input)), firstLine(t.Description, 60))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&workspace, "workspace", "w", "default", "workspace name")
	flags = addClientFlags(cmd, true)
	return cmd
}

// inputSummary prints a task's input schema compactly:
// `name*:string, count:integer=3`.
func inputSummary(fields []client.InputField) string {
	parts := make([]string, 0, len(fields))
	for _, f := range fields {
		s := f.Name
		if f.Required {
			s += "*"
		}
		if f.Type != "" {
			s += ":" + f.Type
		}
		if f.Default != nil {
			b, err := json.Marshal(f.Default)
			if err == nil {
				s += "=" + string(b)
			}
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// nonNilSlice makes an empty list print as [] rather than null.
func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
