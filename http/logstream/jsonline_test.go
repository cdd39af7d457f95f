package logstream

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

func TestAppendLineJSONIsWhatEncodingJSONWrites(t *testing.T) {
	t.Parallel()
	texts := []string{"", "plain", `quote " and \ backslash`, "tab\tcr\rnl\nbs\bff\f", "\x00\x01\x1f\x7f",
		"<html> & 'x'", "ünïcødé ✓ 🎉", "bad \xff\xfe utf8 \xe2\x82", "sep \u2028 and \u2029", "emoji at end 🎉"}
	times := []time.Time{time.Unix(1700000000, 0).UTC(), time.Unix(1700000000, 123456000).UTC(),
		time.Date(2026, 12, 6, 10, 0, 0, 1, time.UTC), time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i, text := range texts {
		for j, ts := range times {
			l := stroem.LogLine{Seq: int64(i*10 + j), Step: "step " + text, Attempt: j + 1, TS: ts, Stream: stroem.Stderr, Text: text}
			buf.Reset()
			require.NoError(t, enc.Encode(&l))
			require.Equal(t, buf.String(), string(appendLineJSON(nil, &l)), "text %q, ts %s", text, ts)
		}
	}
}

func BenchmarkAppendLineJSON(b *testing.B) {
	l := stroem.LogLine{Seq: 123456, Step: "flood", Attempt: 1, TS: time.Now().UTC(), Stream: stroem.Stdout, Text: "1733470000.123456"}
	var dst []byte
	for b.Loop() {
		dst = appendLineJSON(dst[:0], &l)
	}
}
