package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/http/client"
)

func newStatsCmd() *cobra.Command {
	var workspace string
	var limit int
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "stats TASK",
		Short: "Duration statistics of a task's recent completed runs",
		Long: `Show how long a task's last --limit completed runs took, as a whole and per
step: the number of runs and the p50, p95, min and max durations. Failed and
cancelled runs are left out. Fewer than 5 runs are too few to trust.`,
		Example: `  stroem stats hello-world
  stroem stats release --limit 200 --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 500 {
				return usageError("--limit %d: want 1 to 500", limit)
			}
			st, err := request(cmd, flags, func(c *client.Client) (client.TaskStats, error) {
				return c.TaskStats(cmd.Context(), workspace, args[0], limit)
			})
			if err != nil {
				return err
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), st)
			}
			if st.Task.SampleSize == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s has no completed run yet\n", args[0])
				return nil
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "STEP\tRUNS\tP50\tP95\tMIN\tMAX")
			row := func(name string, d client.DurationStats) {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", name, d.SampleSize, fmtMS(d.P50MS), fmtMS(d.P95MS), fmtMS(d.MinMS), fmtMS(d.MaxMS))
			}
			row("(task)", st.Task.DurationStats)
			for _, s := range st.Steps {
				row(s.StepName, s.DurationStats)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&workspace, "workspace", "w", "default", "the task's workspace")
	cmd.Flags().IntVarP(&limit, "limit", "n", 50, "how many recent completed runs to summarise (1–500)")
	flags = addClientFlags(cmd, true)
	return cmd
}

func fmtMS(ms *float64) string {
	switch {
	case ms == nil:
		return "-"
	case *ms < 1000:
		return fmt.Sprintf("%.0fms", *ms)
	default:
		return fmt.Sprintf("%.2fs", *ms/1000)
	}
}
