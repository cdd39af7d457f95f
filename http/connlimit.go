package http

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxConnections is the default cap on the HTTP server's open
// connections (docs/operations.md "http.max_connections"). Every SSE client
// and every worker slot's long poll holds one, so it is far above what a
// deployment needs, and far below the file descriptors a process may open.
const DefaultMaxConnections = 4096

// rejectTimeout bounds the time a connection over the cap is given to take
// its 503 before it is closed.
const rejectTimeout = time.Second

// maxRejecting bounds the over-the-cap connections being answered at once;
// beyond it they are closed without an answer (a flood gets no goroutine
// per connection).
const maxRejecting = 64

// rejectResponse is what a connection over the cap gets, whatever it asked:
// a complete HTTP/1.1 response that closes the connection, with the JSON
// error body every other error has.
var rejectResponse = func() []byte {
	body := `{"error":"the server has too many open connections (http.max_connections); retry later"}` + "\n"
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s", len(body), body)
}()

// LimitConnections returns a listener that keeps at most max connections
// open at once. A connection accepted over the cap is answered 503 with
// Retry-After and closed, instead of waiting unanswered in the kernel's
// backlog (as golang.org/x/net/netutil.LimitListener would leave it): a
// client, or a load balancer's health check, learns at once that this
// server is full. max < 1 means DefaultMaxConnections.
func LimitConnections(ln net.Listener, max int, log *slog.Logger) net.Listener {
	if max < 1 {
		max = DefaultMaxConnections
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: ln, max: int64(max), log: log}
}

type limitListener struct {
	net.Listener
	max       int64
	log       *slog.Logger
	open      atomic.Int64 // connections handed to the server, not yet closed
	rejecting atomic.Int64
	warned    atomic.Int64 // unix seconds of the last warning
}

// Accept returns the next connection under the cap; connections over it are
// answered and closed here, never returned.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.reject(c)
	}
}

// reject answers c with 503 and closes it, off the accept loop.
func (l *limitListener) reject(c net.Conn) {
	if now := time.Now().Unix(); l.warned.Swap(now) != now {
		l.log.Warn("connection refused: too many open connections", "max_connections", l.max, "remote", c.RemoteAddr().String())
	}
	if l.rejecting.Add(1) > maxRejecting {
		l.rejecting.Add(-1)
		_ = c.Close()
		return
	}
	go func() {
		defer l.rejecting.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(rejectTimeout))
		// Wait for the request's head first: an HTTP client discards a
		// response that comes before its request.
		br := bufio.NewReaderSize(io.LimitReader(c, 16<<10), 4096)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
			if len(bytes.TrimRight(line, "\r\n")) == 0 && err == nil {
				break
			}
		}
		if _, err := c.Write(rejectResponse); err != nil {
			return
		}
		// Close the sending side, then take what the client still sends
		// (a body): closing with unread data would reset the connection,
		// and the client might lose the 503.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, br)
	}()
}

// limitConn gives its slot back when closed (once, however often Close is
// called).
type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

// CloseWrite half-closes the connection when it can (a TCP connection):
// net/http ends a response to a body it does not read with it, so the
// client gets the answer rather than a reset.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
