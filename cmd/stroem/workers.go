package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

func newWorkersCmd() *cobra.Command {
	var flags *clientFlags
	cmd := &cobra.Command{
		Use:   "workers [WORKER]",
		Short: "List the registered workers and their last heartbeat",
		Long: `Workers lists the registered workers: id, name, status (active, or stale
when it sent no heartbeat lately), capabilities, tags and last heartbeat.
WORKER shows only the workers whose id starts with it (like git, e.g. the
8 characters stroem status shows) or whose name it is.`,
		Example: `  stroem workers
  stroem workers 9a1b2c3d
  stroem workers worker-1 --output json`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError("workers takes at most one WORKER (an id prefix or a name), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			workers, err := request(cmd, flags, func(c *client.Client) ([]stroem.Worker, error) { return c.Workers(cmd.Context()) })
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if workers = matchWorkers(workers, args[0]); len(workers) == 0 {
					return fmt.Errorf("no worker id starts with %s and no worker is named so (`stroem workers` lists them)", args[0])
				}
			}
			return printList(cmd.OutOrStdout(), flags, nonNilSlice(workers), "WORKER\tNAME\tSTATUS\tCAPABILITIES\tTAGS\tLAST HEARTBEAT", func(w stroem.Worker) string {
				last := "-"
				if !w.LastHeartbeatAt.IsZero() {
					last = time.Since(w.LastHeartbeatAt).Round(time.Second).String() + " ago"
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", w.ID, w.Name, orDash(w.Status),
					orDash(strings.Join(w.Capabilities, ",")), workerTags(w), last)
			})
		},
	}
	flags = addClientFlags(cmd, true)
	return cmd
}

// workerTags is a worker's TAGS column: its tags, marked exclusive when it
// takes only steps that require all of them.
func workerTags(w stroem.Worker) string {
	tags := orDash(strings.Join(w.Tags, ","))
	if w.Exclusive && len(w.Tags) > 0 {
		tags += " (exclusive)"
	}
	return tags
}

// matchWorkers keeps the workers whose id starts with arg (any case) or
// whose name is arg.
func matchWorkers(workers []stroem.Worker, arg string) []stroem.Worker {
	var out []stroem.Worker
	for _, w := range workers {
		if w.Name == arg || strings.HasPrefix(strings.ToLower(w.ID), strings.ToLower(arg)) {
			out = append(out, w)
		}
	}
	return out
}
