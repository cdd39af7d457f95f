package stroem

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Stream names the output a log line came from.
type Stream string

// Streams of a step's process.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Valid reports whether s is stdout or stderr.
func (s Stream) Valid() bool { return s == Stdout || s == Stderr }

// LogLine is one line a step printed. Seq is assigned by the server when the
// line is stored: it increases by one per line within a job, starting at 1, and
// is the SSE event id clients resume from.
type LogLine struct {
	Seq     int64     `json:"seq"`
	Step    string    `json:"step"`
	Attempt int       `json:"attempt"`
	TS      time.Time `json:"ts"`
	Stream  Stream    `json:"stream"`
	Text    string    `json:"text"`
}

// SanitizeText makes arbitrary process output safe to store as JSON and as
// text in PostgreSQL: invalid UTF-8 sequences become U+FFFD and NUL bytes
// become the two characters `\0`, so a line can never break a log file, a
// JSON column or an SSE frame. Valid text is returned unchanged.
func SanitizeText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", `\0`)
}
