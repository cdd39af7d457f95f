package http

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConnectionsOverTheCapAreAnswered503(t *testing.T) {
	t.Parallel()
	const max = 2
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(LimitConnections(ln, max, nil)) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()

	// keepOpen makes a request on a new connection and leaves the
	// connection open (kept alive), holding one slot.
	keepOpen := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return c
	}
	get := func() (*http.Response, string, error) {
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, string(body), err
	}

	held := []net.Conn{keepOpen(), keepOpen()}
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()

	// A third connection is answered at once, with a clear 503.
	resp, body, err := get()
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.Contains(t, body, "too many open connections (http.max_connections)")

	// The held connections still work.
	for _, c := range held {
		_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		r, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		_ = r.Body.Close()
		require.Equal(t, http.StatusOK, r.StatusCode)
	}

	// Closing one gives its slot back.
	require.NoError(t, held[0].Close())
	held = held[1:]
	require.Eventually(t, func() bool {
		resp, body, err := get()
		return err == nil && resp.StatusCode == http.StatusOK && body == "ok"
	}, 5*time.Second, 10*time.Millisecond)
}

func TestLimitConnectionsDefault(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	l := LimitConnections(ln, 0, nil).(*limitListener)
	require.EqualValues(t, DefaultMaxConnections, l.max)
}

// A connection under the cap keeps its TCP half-close: net/http uses it to
// end a response (a 413 to a body it will not read) without a reset that
// could make the client lose the answer.
func TestLimitedConnectionsCanCloseWrite(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := LimitConnections(ln, 1, nil)
	t.Cleanup(func() { _ = l.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	c, err := l.Accept()
	require.NoError(t, err)
	defer c.Close()
	cw, ok := c.(interface{ CloseWrite() error })
	require.True(t, ok, "the accepted connection has CloseWrite")
	require.NoError(t, cw.CloseWrite())
}
