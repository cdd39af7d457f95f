package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// maxJobsLimit is the most jobs GET /api/jobs returns at once.
const maxJobsLimit = 1000

func newJobsCmd() *cobra.Command {
	var status string
	var since time.Duration
	var filter client.JobFilter
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List recent jobs, newest first",
		Example: `  stroem jobs
  stroem jobs --status failed --limit 10 --since 24h
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
			if filter.Limit < 1 || filter.Limit > maxJobsLimit {
				return usageError("--limit %d: want 1 to %d", filter.Limit, maxJobsLimit)
			}
			if filter.Offset < 0 {
				return usageError("--offset %d: want 0 or more", filter.Offset)
			}
			if since < 0 {
				return usageError("--since %s: want a positive duration such as 30m or 24h", since)
			}
			if since > 0 {
				filter.Since = time.Now().Add(-since)
			}
			page, err := request(cmd, flags, func(c *client.Client) (client.JobPage, error) { return c.JobPage(cmd.Context(), filter) })
			if err != nil {
				return err
			}
			jobs := page.Items
			if err := printList(cmd.OutOrStdout(), flags, nonNilSlice(jobs), "JOB\tTASK\tSTATUS\tCREATED\tDURATION\tSOURCE", func(j stroem.Job) string {
				return fmt.Sprintf("%s\t%s/%s\t%s\t%s\t%s\t%s", j.ID, j.Workspace, j.TaskName, j.Status,
					formatTime(&j.CreatedAt), formatDuration(j.StartedAt, j.CompletedAt), orDash(string(j.SourceType)))
			}); err != nil || flags.json() {
				return err
			}
			if n := filter.Offset + len(jobs); n < page.Total {
				fmt.Fprintf(cmd.ErrOrStderr(), "(%d of %d jobs; --offset %d for more)\n", len(jobs), page.Total, n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "only jobs with this status")
	cmd.Flags().IntVarP(&filter.Limit, "limit", "n", 20, "at most this many jobs (1–1000)")
	cmd.Flags().IntVar(&filter.Offset, "offset", 0, "skip this many jobs")
	cmd.Flags().DurationVar(&since, "since", 0, "only jobs created within this long (e.g. 1h, 24h)")
	cmd.Flags().StringVarP(&filter.Workspace, "workspace", "w", "", "only jobs of this workspace")
	cmd.Flags().StringVarP(&filter.Task, "task", "t", "", "only jobs of this task")
	flags = addClientFlags(cmd, true)
	return cmd
}
