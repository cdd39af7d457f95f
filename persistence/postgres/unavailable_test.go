package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
	"github.com/stroem/stroem/persistence/dbtest"
	"github.com/stroem/stroem/persistence/postgres"
	"github.com/stroem/stroem/persistence/storetest"
)

// proxy forwards TCP connections to PostgreSQL and can be cut and restored
// on the same port, to play "the database went away".
type proxy struct {
	t       *testing.T
	addr    string
	target  string
	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
	wg      sync.WaitGroup
	stopped bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	p := &proxy{t: t, addr: "127.0.0.1:0", target: target}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	require.NoError(p.t, err)
	p.mu.Lock()
	p.ln, p.addr, p.stopped = ln, ln.Addr().String(), false
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// stop closes the listener and every forwarded connection.
func (p *proxy) stop() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		p.ln.Close()
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func TestUnavailable(t *testing.T) {
	t.Parallel()

	t.Run("OpenOnAClosedPort", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err = postgres.Open(ctx, "postgres://postgres@"+addr+"/postgres", nil)
		require.Error(t, err)
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err))
		require.ErrorContains(t, err, addr, "the message names the host")
		require.Less(t, time.Since(start), 5*time.Second, "fails fast")
	})

	t.Run("InvalidURL", func(t *testing.T) {
		t.Parallel()
		_, err := postgres.Open(context.Background(), "postgres://u:secret@host:notaport/db", nil)
		require.Equal(t, stroem.CodeInvalid, stroem.ErrorCode(err))
		require.NotContains(t, err.Error(), "secret")
	})

	t.Run("DatabaseGoneAndBack", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		direct := dbtest.URL(t)
		u, err := url.Parse(direct)
		require.NoError(t, err)
		p := newProxy(t, u.Host)
		u.Host = p.addr
		s, err := postgres.Open(ctx, u.String(), slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		defer s.Close()
		nj := storetest.InsertJob(t, s, storetest.Step{Name: "a"})

		payloads := listen(t, s)
		require.Equal(t, "", waitPayload(t, payloads))

		p.stop()
		opCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = s.JobGet(opCtx, nj.Job.ID)
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err), "%v", err)
		require.ErrorContains(t, err, "database unavailable")
		_, err = s.JobGet(opCtx, nj.Job.ID)
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err), "%v", err)
		_, err = s.JobUpdate(opCtx, nj.Job.ID, func(*persistence.JobState) error { return nil })
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err), "%v", err)
		_, err = s.StepsClaim(opCtx, persistence.ClaimParams{WorkerID: "w", Capabilities: []string{"shell"}, Limit: 1, Lease: time.Minute})
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err), "%v", err)
		_, err = s.LeasesRenew(opCtx, uuid.NewString(), nil, time.Minute)
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err), "%v", err)
		err = s.JobInsert(opCtx, storetest.NewJob(storetest.Step{Name: "a"}))
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err), "%v", err)
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(s.Ping(opCtx)))

		// PostgreSQL is back on the same address: the store recovers by
		// itself, and the listener reconnects and asks for a re-scan.
		p.start()
		require.Eventually(t, func() bool { return s.Ping(ctx) == nil }, 10*time.Second, 50*time.Millisecond)
		j, err := s.JobGet(ctx, nj.Job.ID)
		require.NoError(t, err)
		require.Equal(t, nj.Job.ID, j.ID)
		require.Equal(t, "", waitPayload(t, payloads))
	})

	t.Run("ClosedStore", func(t *testing.T) {
		t.Parallel()
		s := dbtest.Store(t)
		s.Close()
		_, err := s.JobGet(context.Background(), uuid.NewString())
		require.Equal(t, stroem.CodeUnavailable, stroem.ErrorCode(err), "%v", err)
	})
}
