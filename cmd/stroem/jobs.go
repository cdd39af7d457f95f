package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func newJobsCmd() *cobra.Command {
	var status string
	var filter client.JobFilter
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List recent jobs, newest first",
		Example: `  stroem jobs
  stroem jobs --status failed --limit 10
  stroem jobs --workspace default --task hello-world --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" {
				filter.Status = stroem.JobStatus(status)
				if !filter.Status.Valid() {
					valid := make([]string, len(stroem.JobStatuses))
					for i, s := range stroem.JobStatuses {
						valid[i] = string(s)
					}
					return usageError("--status %q: want one of %s", status, strings.Join(valid, ", "))
				}
			}
			if filter.Limit < 1 {
				return usageError("--limit %d: want at least 1", filter.Limit)
			}
			if filter.Offset < 0 {
				return usageError("--offset %d: want 0 or more", filter.Offset)
			}
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			jobs, err := c.Jobs(cmd.Context(), filter)
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), nonNilSlice(jobs))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "JOB\tTASK\tSTATUS\tCREATED\tDURATION\tSOURCE")
			for _, j := range jobs {
				fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\t%s\n", j.ID, j.Workspace, j.TaskName, j.Status,
					formatTime(&j.CreatedAt), formatDuration(j.StartedAt, j.CompletedAt), orDash(string(j.SourceType)))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only jobs with this status")
	cmd.Flags().IntVarP(&filter.Limit, "limit", "n", 20, "at most this many jobs")
	cmd.Flags().IntVar(&filter.Offset, "offset", 0, "skip this many jobs")
	cmd.Flags().StringVarP(&filter.Workspace, "workspace", "w", "", "only jobs of this workspace")
	cmd.Flags().StringVarP(&filter.Task, "task", "t", "", "only jobs of this task")
	flags = addClientFlags(cmd, true)
	return cmd
}
