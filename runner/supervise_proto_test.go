package runner

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStatusLinesRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []supervisorMsg{
		{PID: 4242},
		{StartError: "start: fork/exec /x: no such file or directory"},
		{StartError: "two\nlines \"quoted\" \x00 ü"},
		{Done: true},
		{Done: true, Status: 7 << 8},
		{Done: true, Status: 9}, // killed by SIGKILL
		{Done: true, Status: 255 << 8, StartError: "wait: no child processes"},
	} {
		line := appendStatusLine(nil, m)
		require.Equal(t, byte('\n'), line[len(line)-1])
		require.NotContains(t, string(line[:len(line)-1]), "\n", "one line")
		got, err := parseStatusLine(line[:len(line)-1])
		require.NoError(t, err)
		require.Equal(t, m, got)
	}
	for _, bad := range []string{"", "P", "P x", "P -1", "P 0", "E ", "E unquoted", "D", "D x", "D 1 unquoted", "X 1", "{\"pid\":1}"} {
		_, err := parseStatusLine([]byte(bad))
		require.Error(t, err, "%q", bad)
	}
}
