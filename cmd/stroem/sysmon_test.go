package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSysmonEnv(t *testing.T) {
	t.Parallel()
	const set = "GODEBUG=schedtrace=2147483647"
	cases := []struct {
		name    string
		command string
		env     []string
		want    []string // nil: run as it is
	}{
		{"added", "server", []string{"A=1"}, []string{"A=1", set}},
		{"worker", "worker", nil, []string{set}},
		{"dev", "dev", []string{"GODEBUG="}, []string{set}},
		{"a user's GODEBUG kept", "server", []string{"GODEBUG=madvdontneed=1", "B=2"},
			[]string{"B=2", "GODEBUG=madvdontneed=1,schedtrace=2147483647"}},
		{"the first GODEBUG is the one read, others dropped", "worker",
			[]string{"GODEBUG=http2client=0", "GODEBUG=schedtrace=0"},
			[]string{"GODEBUG=http2client=0,schedtrace=2147483647"}},
		{"the user's schedtrace wins", "server", []string{"GODEBUG=schedtrace=0"}, nil},
		{"among others, spaced", "server", []string{"GODEBUG=x=1, schedtrace=5000"}, nil},
		{"already re-executed", "worker", []string{set}, nil},
		{"a client command", "trigger", []string{"A=1"}, nil},
		{"no command", "", nil, nil},
	}
	for _, c := range cases {
		in := append([]string(nil), c.env...)
		require.Equal(t, c.want, sysmonEnv(c.command, in), c.name)
		require.Equal(t, c.env, in, "%s: the environment given is not changed", c.name)
	}
}
