package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem/http/client"
	"github.com/stroem/stroem/persistence"
)

// Short ids: like git, a command taking a JOB accepts a unique prefix of
// its id (at least minIDPrefix characters), so the 8-character ids that
// status and workers print can be typed back.

// minIDPrefix is the shortest prefix accepted (git's minimum too).
const minIDPrefix = 4

var fullUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// checkIDArg is the usage check of a JOB argument: a UUID or the start of
// one (exit 2 otherwise, before any request).
func checkIDArg(what, arg string) error {
	if fullUUID.MatchString(arg) {
		return nil
	}
	if _, _, ok := persistence.UUIDPrefixRange(arg); !ok || len(arg) < minIDPrefix {
		return usageError("%q is not a %s id: want its UUID or a unique prefix of at least %d characters (e.g. 0b7e2c1e)", arg, what, minIDPrefix)
	}
	return nil
}

// clientForJob is the client of a command about one job and the full id
// of the job its JOB argument names (a UUID or a unique prefix).
func (f *clientFlags) clientForJob(ctx context.Context, arg string) (*client.Client, string, error) {
	c, err := f.client(ctx)
	if err != nil {
		return nil, "", err
	}
	id, err := resolveJobID(ctx, c, arg)
	if err != nil {
		return nil, "", err
	}
	return c, id, nil
}

// resolveJobID returns the job id arg stands for: arg itself when it is a
// full UUID, else the one job whose id starts with it. No match is "not
// found" (exit 1); several list the candidates.
func resolveJobID(ctx context.Context, c *client.Client, arg string) (string, error) {
	if err := checkIDArg("job", arg); err != nil {
		return "", err
	}
	if fullUUID.MatchString(arg) {
		return strings.ToLower(arg), nil
	}
	page, err := c.JobPage(ctx, client.JobFilter{IDPrefix: arg, Limit: 5})
	if err != nil {
		return "", interrupted(ctx, err)
	}
	switch {
	case page.Total == 0:
		return "", fmt.Errorf("no job id starts with %s (`stroem jobs` lists recent jobs)", arg)
	case page.Total == 1 && len(page.Items) == 1:
		return page.Items[0].ID, nil
	}
	cands := make([]string, 0, len(page.Items))
	for _, j := range page.Items {
		cands = append(cands, fmt.Sprintf("%s (%s/%s, %s)", j.ID, j.Workspace, j.TaskName, j.Status))
	}
	more := ""
	if page.Total > len(page.Items) {
		more = fmt.Sprintf(" and %d more", page.Total-len(page.Items))
	}
	return "", usageError("job id prefix %s is ambiguous: %s%s; give more characters", arg, strings.Join(cands, ", "), more)
}

// jobArgs is the Args check of a command taking exactly one JOB.
func jobArgs(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 1 {
			return usageError("%s needs exactly one JOB id, got %d arguments", name, len(args))
		}
		return checkIDArg("job", args[0])
	}
}

// jobAndArg is the Args check of a command taking a JOB and one more
// argument, which what describes ("a STEP name").
func jobAndArg(name, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != 2 {
			return usageError("%s needs a JOB id and %s, got %d arguments", name, what, len(args))
		}
		return checkIDArg("job", args[0])
	}
}
