package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/http/client"
)

func newTasksCmd() *cobra.Command {
	return workspaceListCmd(&cobra.Command{
		Use:   "tasks",
		Short: "List the tasks of a workspace",
		Long: `List the tasks of a workspace with their mode, input and description.
In the INPUT column a * marks a required field and =VALUE its default.`,
		Example: `  stroem tasks
  stroem tasks --workspace ops --output json`,
	}, (*client.Client).Tasks, "NAME\tMODE\tINPUT\tDESCRIPTION", func(t client.Task) string {
		return fmt.Sprintf("%s\t%s\t%s\t%s", t.Name, orDash(t.Mode), orDash(inputSummary(t.Input)), firstLine(t.Description, 60))
	})
}

// workspaceListCmd makes cmd list what list returns for a workspace
// (--workspace, default "default"): a table of header and one row per item,
// or JSON under --output json.
func workspaceListCmd[T any](cmd *cobra.Command, list func(c *client.Client, ctx context.Context, ws string) ([]T, error),
	header string, row func(T) string) *cobra.Command {
	var workspace string
	var flags *clientFlags
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		items, err := request(cmd, flags, func(c *client.Client) ([]T, error) { return list(c, cmd.Context(), workspace) })
		if err != nil {
			return err
		}
		return printList(cmd.OutOrStdout(), flags, nonNilSlice(items), header, row)
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
