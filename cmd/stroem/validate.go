package main

import "github.com/spf13/cobra"

// newValidateCmd is a placeholder replaced by the workspace work.
func newValidateCmd() *cobra.Command {
	return &cobra.Command{Use: "validate PATH", Short: "Validate a workspace folder or a workflow file", Args: cobra.ExactArgs(1)}
}
