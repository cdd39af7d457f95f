package main

import (
	"os"
	"slices"
	"strings"
	"syscall"
)

// Go's system monitor (sysmon) is a runtime thread that sleeps deeply while
// every P is idle, and the first system call after that wakes it: it then
// polls every 20 µs, for at least a millisecond, before it backs off. A
// server or a worker idles between a step's short bursts of work many times
// a second, and each burst paid for such a wake. On the bench's machine,
// where a system call is dear, sysmon was a sixth of the server's and of a
// worker's CPU samples in the fan-out (issue 23). The runtime keeps sysmon
// out of that deep sleep when GODEBUG has schedtrace set, and has no other
// switch for it: so `stroem server`, `stroem worker` and `stroem dev`
// re-execute themselves once, at start, with schedtrace set to its largest
// value (a scheduler summary on stderr every 24.8 days of the host's uptime;
// see docs/operations.md, "Go runtime"). A GODEBUG that names schedtrace
// (schedtrace=0: Go's default) is the user's choice, and is left as it is.

// sysmonSetting is what the daemons add to GODEBUG: the largest period the
// runtime accepts (an int32 of milliseconds).
const sysmonSetting = "schedtrace=2147483647"

// sysmonCommands are the commands that run long enough to gain from it.
var sysmonCommands = []string{"server", "worker", "dev"}

// sysmonEnv is the environment command (the subcommand's name) re-executes
// with, or nil when it runs as it is: a command not in sysmonCommands, or a
// GODEBUG that already names schedtrace (the user's, or this process after
// its re-execution).
func sysmonEnv(command string, environ []string) []string {
	if !slices.Contains(sysmonCommands, command) {
		return nil
	}
	i := slices.IndexFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	if i < 0 {
		return append(slices.Clip(environ), "GODEBUG="+sysmonSetting)
	}
	// The runtime and os.Getenv read the first GODEBUG of the environment;
	// any others are dropped with it, and one takes their place.
	godebug := strings.TrimPrefix(environ[i], "GODEBUG=")
	for _, s := range strings.Split(godebug, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(s), "="); k == "schedtrace" {
			return nil
		}
	}
	env := slices.DeleteFunc(slices.Clone(environ), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	if godebug == "" {
		return append(env, "GODEBUG="+sysmonSetting)
	}
	return append(env, "GODEBUG="+godebug+","+sysmonSetting)
}

// reexecForSysmon re-executes this binary with sysmonEnv's environment when
// it gives one; it returns only when it does not, or when the re-execution
// failed (the binary was replaced or removed: the process then runs as it
// is, with Go's default).
func reexecForSysmon(args []string) {
	name := ""
	if cmd, _, err := newRootCmd().Find(args[1:]); err == nil && cmd != nil {
		name = cmd.Name()
	}
	env := sysmonEnv(name, os.Environ())
	if env == nil {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, args, env)
}
