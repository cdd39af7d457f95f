package main

import (
	"encoding/json"
	"fmt"
	"strings"

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
			tasks, err := request(cmd, flags, func(c *client.Client) ([]client.Task, error) { return c.Tasks(cmd.Context(), workspace) })
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), flags, nonNilSlice(tasks), "NAME\tMODE\tINPUT\tDESCRIPTION", func(t client.Task) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s", t.Name, orDash(t.Mode), orDash(inputSummary(t.Input)), firstLine(t.Description, 60))
			})
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
