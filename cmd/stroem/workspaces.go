package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/http/client"
)

func newWorkspacesCmd() *cobra.Command {
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "workspaces",
		Short: "List the server's workspaces",
		Long: `Workspaces lists the workspaces the server has loaded: name, revision,
number of tasks and actions, and how many problems their last load had
(stroem validate on the workspace's files says what they are; a workspace
with problems keeps its last good revision).`,
		Example: `  stroem workspaces
  stroem workspaces --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := request(cmd, flags, func(c *client.Client) ([]client.Workspace, error) { return c.Workspaces(cmd.Context()) })
			if err != nil {
				return err
			}
			return printList(cmd.OutOrStdout(), flags, nonNilSlice(list), "NAME\tREVISION\tTASKS\tACTIONS\tPROBLEMS", func(w client.Workspace) string {
				problems := "-"
				if len(w.Errors) > 0 {
					problems = strconv.Itoa(len(w.Errors))
				}
				return fmt.Sprintf("%s\t%s\t%d\t%d\t%s", w.Name, orDash(shortRevision(w.Revision)), w.TasksCount, w.ActionsCount, problems)
			})
		},
	}
	flags = addClientFlags(cmd, true)
	return cmd
}

// shortRevision is a revision's first 12 characters, as a table shows it.
func shortRevision(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}
