package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newWorkersCmd() *cobra.Command {
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List the registered workers and their last heartbeat",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			workers, err := c.Workers(cmd.Context())
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), nonNilSlice(workers))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WORKER\tNAME\tSTATUS\tCAPABILITIES\tTAGS\tLAST HEARTBEAT")
			for _, w := range workers {
				last := "-"
				if !w.LastHeartbeatAt.IsZero() {
					last = time.Since(w.LastHeartbeatAt).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, w.Name, orDash(w.Status),
					orDash(strings.Join(w.Capabilities, ",")), orDash(strings.Join(w.Tags, ",")), last)
			}
			return tw.Flush()
		},
	}
	flags = addClientFlags(cmd, true)
	return cmd
}
