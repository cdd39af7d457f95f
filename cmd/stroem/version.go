package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// commit and buildDate are stamped at build time, like version:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD) \
//	  -X main.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/stroem
//
// Unstamped builds fall back to what the Go toolchain recorded: the module
// version for `go install …@version`, the VCS revision and time for a build
// in a git checkout.
var (
	commit    = ""
	buildDate = ""
)

// buildInfo is what `stroem version` prints.
type buildInfo struct {
	Version, Commit, Date, Go, Platform string
	Modified                            bool
}

func currentBuild() buildInfo {
	return resolveBuild(version, commit, buildDate, debug.ReadBuildInfo)
}

func resolveBuild(v, c, d string, read func() (*debug.BuildInfo, bool)) buildInfo {
	b := buildInfo{Version: v, Commit: c, Date: d, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	info, ok := read()
	if !ok {
		return b
	}
	if (b.Version == "" || b.Version == "dev") && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value
			}
		case "vcs.time":
			if b.Date == "" {
				b.Date = s.Value
			}
		case "vcs.modified":
			b.Modified = s.Value == "true" && c == ""
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

func (b buildInfo) String() string {
	commit, date := b.Commit, b.Date
	if commit == "" {
		commit = "unknown"
	} else if b.Modified {
		commit += " (modified)"
	}
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("stroem %s\n  commit: %s\n  built:  %s\n  go:     %s %s\n", b.Version, commit, date, b.Go, b.Platform)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), currentBuild())
			return err
		},
	}
}
