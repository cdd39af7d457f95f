package client

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// decodeLogLine must read every event as encoding/json does: the same line,
// or an error where it gives one.
func TestDecodeLogLineAsEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := []string{
		`{"seq":1,"step":"a","attempt":1,"ts":"2026-12-06T17:22:31.123456789Z","stream":"stdout","text":"hello"}`,
		`{"text":"tab\tquote\"back\\slash \u00e9 \ud83d\ude00 \u2028 <&>","stream":"stderr","seq":9007199254740993}`,
		`{"seq":2,"step":"s[3]","attempt":2,"ts":"2026-12-06T17:22:31+02:00","stream":"stdout","text":"nul:\\0:end","extra":{"x":[1,2]}}`,
		`{"seq":3,"text":""}`,
		`{"SEQ":4,"Text":"keys match case-insensitively"}`,
		`{}`,
		`{"seq":"5"}`,
		`{"seq":1.5}`,
		`{"ts":"yesterday"}`,
		`{"text":"\xff"}`,
		`{"seq":1,`,
		`[1,2]`,
		`null`,
		``,
	}
	for _, c := range cases {
		var want stroem.LogLine
		wantErr := json.Unmarshal([]byte(c), &want)
		got, err := decodeLogLine([]byte(c))
		if wantErr != nil {
			require.Error(t, err, "%s", c)
			continue
		}
		require.NoError(t, err, "%s", c)
		require.Equal(t, want, got, "%s", c)
	}
}

func FuzzDecodeLogLine(f *testing.F) {
	f.Add(`{"seq":1,"step":"a","attempt":1,"ts":"2026-12-06T17:22:31.123456789Z","stream":"stdout","text":"hello"}`)
	f.Add(`{"text":"\u00e9\n","seq":-1}`)
	f.Fuzz(func(t *testing.T, c string) {
		var want stroem.LogLine
		wantErr := json.Unmarshal([]byte(c), &want)
		got, err := decodeLogLine([]byte(c))
		if wantErr != nil {
			return // the fast decoder may be more lenient than encoding/json
		}
		require.NoError(t, err, "%q", c)
		require.Equal(t, want, got, "%q", c)
	})
}
