// Command stroem is Strøm's single binary: the server, the worker, the
// development mode, workspace validation and the client commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/stroem/stroem"
	stroemhttp "github.com/stroem/stroem/http"
	"github.com/stroem/stroem/runner"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries a specific exit code out of a command. Commands that only
// need "failed" return a plain error (exit 1).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitCode returns an error that makes the process exit with code; a nil err
// prints nothing.
func exitCode(code int, err error) error { return &exitError{code: code, err: err} }

// usageError is exit code 2: bad flags, a missing or malformed config file.
func usageError(format string, args ...any) error {
	return exitCode(2, fmt.Errorf(format, args...))
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "stroem",
		Short:         "Strøm runs workflows described in YAML on a fleet of workers",
		Version:       currentBuild().Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(currentBuild().String())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return exitCode(2, fmt.Errorf("%w (see '%s --help')", err, c.CommandPath()))
	})
	root.AddCommand(
		newValidateCmd(),
		newMigrateCmd(),
		newServerCmd(),
		newDevCmd(),
		newWorkerCmd(),
		newWorkspacesCmd(),
		newTasksCmd(),
		newTriggerCmd(),
		newTriggersCmd(),
		newStatusCmd(),
		newLogsCmd(),
		newJobsCmd(),
		newStatsCmd(),
		newCancelCmd(),
		newApproveCmd(),
		newWorkersCmd(),
		newLoginCmd(),
		newLogoutCmd(),
		newWhoamiCmd(),
		newAPIKeysCmd(),
		newBenchCmd(),
		newVersionCmd(),
		newAdminCmd(),
		newStateCmd(),
		newArtifactsCmd(),
	)
	groupArgs(root)
	usageArgs(root)
	interruptible(root)
	return root
}

// groupArgs makes an unknown command a usage error (exit 2), in one line,
// at the top level and under each command that only groups others (state,
// artifacts, api-keys, admin): cobra prints such a command's help and
// exits 0 whatever follows it, so a script took a typo for success.
func groupArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		groupArgs(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.SuggestionsMinimumDistance = 2
	c.Args = unknownCommand
	c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
}

// unknownCommand is the Args check of a command that groups others.
func unknownCommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	hint := ""
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		for i, name := range s {
			s[i] = strconv.Quote(name)
		}
		hint = fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	if !c.HasParent() {
		return usageError("unknown command %q%s; see 'stroem --help'", args[0], hint)
	}
	return usageError("unknown command %q for %q%s; see '%s --help'", args[0], c.CommandPath(), hint, c.CommandPath())
}

// interruptible makes Ctrl-C or SIGTERM during any client command (one
// with --server) exit 130 without an error line, as docs/operations.md
// says, whichever call it interrupted: wrapping each request is easy to
// forget (whoami, api-keys revoke and login did).
func interruptible(c *cobra.Command) {
	for _, sub := range c.Commands() {
		interruptible(sub)
	}
	run := c.RunE
	if run == nil || c.Flags().Lookup("server") == nil {
		return
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return interrupted(cmd.Context(), run(cmd, args))
	}
}

// usageArgs makes every argument check's error a usage error (exit 2), as
// docs/operations.md says: cobra's own checks (NoArgs, ExactArgs …) return
// plain errors.
func usageArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
	orig := c.Args
	if orig == nil {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		err := orig(cmd, args)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return exitCode(2, fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath()))
	}
}

func main() {
	// First: a worker re-executes this binary as each step's supervisor.
	runner.SupervisorMain()
	// Then: the daemons take their runtime setting (sysmon.go).
	reexecForSysmon(os.Args)
	stroemhttp.Version = version
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startCPUProfile(os.Getenv("STROEM_CPUPROFILE"))
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	stopProfile()
	os.Exit(report(err))
}

// startCPUProfile writes a CPU profile of the whole run to path (a
// debugging aid for any command, e.g. a worker under load); "" does nothing.
func startCPUProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stroem: STROEM_CPUPROFILE:", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// report prints err as one line on stderr and returns the exit code.
func report(err error) int {
	if err == nil {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	}
	fmt.Fprintln(os.Stderr, "stroem:", err)
	if hint := authHint(err); hint != "" {
		fmt.Fprintln(os.Stderr, "stroem:", hint)
	}
	return code
}

// authHint says what to do about a refused client command.
func authHint(err error) string {
	switch stroem.ErrorCode(err) {
	case stroem.CodeUnauthorized:
		return "log in with `stroem login` (add --server URL for another server), or set STROEM_TOKEN to an API key"
	case stroem.CodeForbidden:
		return "your account lacks this permission; `stroem whoami` shows who you are, an admin can grant access"
	}
	return ""
}
