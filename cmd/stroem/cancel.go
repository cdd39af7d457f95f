package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCancelCmd() *cobra.Command {
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "cancel JOB",
		Short: "Cancel a job: pending steps are skipped, running ones are stopped",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("cancel needs exactly one JOB id, got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			job, err := c.CancelJob(cmd.Context(), args[0])
			if err != nil {
				return interrupted(cmd.Context(), err)
			}
			if flags.json() {
				return printJSON(cmd.OutOrStdout(), job)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", job.ID, job.Status)
			return err
		},
	}
	flags = addClientFlags(cmd, true)
	return cmd
}
