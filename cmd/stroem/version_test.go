package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolveBuild(t *testing.T) {
	t.Parallel()
	vcs := func(v string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: v}, Settings: settings}, true
		}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "abc123"}
	at := debug.BuildSetting{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}

	stamped := resolveBuild("v1.2.3", "deadbeef", "2026-12-06T08:00:00Z", vcs("(devel)", rev, at, dirty))
	require.Equal(t, "v1.2.3", stamped.Version)
	require.Equal(t, "deadbeef", stamped.Commit, "stamped values win over the toolchain's")
	require.Equal(t, "2026-12-06T08:00:00Z", stamped.Date)
	require.False(t, stamped.Modified)
	require.Contains(t, stamped.String(), "stroem v1.2.3\n  commit: deadbeef\n  built:  2026-12-06T08:00:00Z\n  go:     go")

	checkout := resolveBuild("dev", "", "", vcs("(devel)", rev, at, dirty))
	require.Equal(t, "dev", checkout.Version)
	require.Equal(t, "abc123", checkout.Commit)
	require.Equal(t, "2026-12-01T10:00:00Z", checkout.Date)
	require.Contains(t, checkout.String(), "commit: abc123 (modified)")

	installed := resolveBuild("dev", "", "", vcs("v0.9.0"))
	require.Equal(t, "v0.9.0", installed.Version, "go install …@v0.9.0 records the module version")
	require.Contains(t, installed.String(), "commit: unknown\n  built:  unknown")

	none := resolveBuild("dev", "", "", func() (*debug.BuildInfo, bool) { return nil, false })
	require.Equal(t, "dev", none.Version)
}
