package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/http/client"
)

// sseServer serves a job's log lines as SSE. Each connection is handled by
// the scenario function for its index, which gets the Last-Event-ID.
type sseServer struct {
	mu       sync.Mutex
	lastIDs  []string
	scenario func(conn int, w http.ResponseWriter, r *http.Request, after int64)
}

func (s *sseServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/jobs/job-1/logs/stream" {
		writeJSON(w, 404, map[string]string{"error": "job not found"})
		return
	}
	s.mu.Lock()
	s.lastIDs = append(s.lastIDs, r.Header.Get("Last-Event-ID"))
	conn := len(s.lastIDs) - 1
	s.mu.Unlock()
	after, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	s.scenario(conn, w, r, after)
}

func (s *sseServer) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lastIDs...)
}

func sendLine(w http.ResponseWriter, seq int64, text string) {
	b, _ := json.Marshal(stroem.LogLine{Seq: seq, Step: "s", Attempt: 1, Stream: stroem.Stdout, Text: text})
	fmt.Fprintf(w, "id: %d\ndata: %s\n\n", seq, b)
	w.(http.Flusher).Flush()
}

func sendDone(w http.ResponseWriter, status stroem.JobStatus) {
	fmt.Fprintf(w, "event: done\ndata: {\"status\":%q}\n\n", status)
	w.(http.Flusher).Flush()
}

func collect(t *testing.T, c *client.Client, opts client.StreamOptions) ([]int64, []string, stroem.JobStatus, error) {
	t.Helper()
	var seqs []int64
	var texts []string
	st, err := c.StreamLogs(context.Background(), "job-1", opts, func(l stroem.LogLine) error {
		seqs = append(seqs, l.Seq)
		texts = append(texts, l.Text)
		return nil
	})
	return seqs, texts, st, err
}

func TestStreamLogsReplayThenDone(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("\x01\"", 40000) // 80 KB of text, ~360 KB once JSON-escaped
	s := &sseServer{scenario: func(_ int, w http.ResponseWriter, _ *http.Request, _ int64) {
		fmt.Fprint(w, ": keep-alive\n\n")
		sendLine(w, 1, "one")
		sendLine(w, 2, big)
		fmt.Fprint(w, "event: future-kind\ndata: {}\n\n") // unknown events are ignored
		fmt.Fprint(w, "id: 3\r\ndata: {\"seq\":3,\r\ndata: \"text\":\"three\"}\r\n\r\n")
		sendDone(w, stroem.JobFailed)
	}}
	c := newServer(t, s)
	seqs, texts, st, err := collect(t, c, client.StreamOptions{})
	require.NoError(t, err)
	require.Equal(t, stroem.JobFailed, st)
	require.Equal(t, []int64{1, 2, 3}, seqs)
	require.Equal(t, []string{"one", big, "three"}, texts)
	require.Equal(t, []string{""}, s.ids())
}

func TestStreamLogsResumesAfterDisconnectWithoutDuplicates(t *testing.T) {
	t.Parallel()
	s := &sseServer{scenario: func(conn int, w http.ResponseWriter, _ *http.Request, after int64) {
		switch conn {
		case 0: // cut after three lines, as the server does to a slow client
			for i := int64(1); i <= 3; i++ {
				sendLine(w, i, "l"+strconv.FormatInt(i, 10))
			}
		case 1: // a sloppy server resends from one before the resume point
			for i := after - 1; i <= 5; i++ {
				sendLine(w, i, "l"+strconv.FormatInt(i, 10))
			}
		default:
			for i := after - 1; i <= 6; i++ {
				sendLine(w, i, "l"+strconv.FormatInt(i, 10))
			}
			sendDone(w, stroem.JobCompleted)
		}
	}}
	c := newServer(t, s)
	var reconnects int
	seqs, _, st, err := collect(t, c, client.StreamOptions{OnReconnect: func(error, time.Duration) { reconnects++ }})
	require.NoError(t, err)
	require.Equal(t, stroem.JobCompleted, st)
	require.Equal(t, []int64{1, 2, 3, 4, 5, 6}, seqs)
	require.Equal(t, []string{"", "3", "5"}, s.ids())
	require.Equal(t, 2, reconnects)
}

func TestStreamLogsAfterSeqAndStepFilter(t *testing.T) {
	t.Parallel()
	s := &sseServer{scenario: func(_ int, w http.ResponseWriter, r *http.Request, after int64) {
		require.Equal(t, "deploy app", r.URL.Query().Get("step"))
		for i := after + 1; i <= 4; i++ {
			sendLine(w, i, "x")
		}
		sendDone(w, stroem.JobCompleted)
	}}
	c := newServer(t, s)
	seqs, _, _, err := collect(t, c, client.StreamOptions{Step: "deploy app", AfterSeq: 2})
	require.NoError(t, err)
	require.Equal(t, []int64{3, 4}, seqs)
	require.Equal(t, []string{"2"}, s.ids())
}

func TestStreamLogsReconnectsWhenIdle(t *testing.T) {
	t.Parallel()
	s := &sseServer{scenario: func(conn int, w http.ResponseWriter, r *http.Request, after int64) {
		if conn == 0 {
			sendLine(w, 1, "then silence")
			<-r.Context().Done() // a half-open connection: no keep-alives
			return
		}
		sendDone(w, stroem.JobCancelled)
	}}
	c := newServer(t, s)
	seqs, _, st, err := collect(t, c, client.StreamOptions{IdleTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, stroem.JobCancelled, st)
	require.Equal(t, []int64{1}, seqs)
	require.Equal(t, []string{"", "1"}, s.ids())
}

func TestStreamLogsErrors(t *testing.T) {
	t.Parallel()
	s := &sseServer{scenario: func(_ int, w http.ResponseWriter, _ *http.Request, _ int64) {
		sendLine(w, 1, "a")
		sendLine(w, 2, "b")
		sendDone(w, stroem.JobCompleted)
	}}
	c := newServer(t, s)

	_, err := c.StreamLogs(context.Background(), "nope", client.StreamOptions{}, func(stroem.LogLine) error { return nil })
	require.ErrorIs(t, err, stroem.ErrNotFound)

	stop := errors.New("enough")
	n := 0
	_, err = c.StreamLogs(context.Background(), "job-1", client.StreamOptions{}, func(stroem.LogLine) error {
		n++
		return stop
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, n)

	down, err := client.New("http://127.0.0.1:1")
	require.NoError(t, err)
	_, err = down.StreamLogs(context.Background(), "job-1", client.StreamOptions{}, func(stroem.LogLine) error { return nil })
	require.ErrorIs(t, err, stroem.ErrUnavailable, "a server down at the start is reported at once")
}

func TestStreamLogsGivesUp(t *testing.T) {
	t.Parallel()
	s := &sseServer{scenario: func(int, http.ResponseWriter, *http.Request, int64) {}} // always ends at once
	c := newServer(t, s)
	_, _, _, err := collect(t, c, client.StreamOptions{GiveUp: 300 * time.Millisecond})
	require.ErrorContains(t, err, "gave up reconnecting")
}
