package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnect backoff of Listen: the first retry is quick (a restart of
// PostgreSQL takes seconds), later ones slow down to the cap.
const (
	listenBackoffMin = 250 * time.Millisecond
	listenBackoffMax = 5 * time.Second
)

// Listen blocks, calling onNotify with the payload of every notification on
// channel, until ctx is done (then it returns ctx.Err()). It holds a
// dedicated connection, never one of the pool's, and reconnects by itself
// with backoff when the connection is lost. After every (re)connect it calls
// onNotify("") once, after LISTEN took effect: notifications sent while it
// was disconnected are lost, so the consumer must re-scan. onNotify runs on
// Listen's goroutine; it should return quickly.
func (s *Store) Listen(ctx context.Context, channel string, onNotify func(payload string)) error {
	backoff := listenBackoffMin
	for {
		connected, err := s.listenOnce(ctx, channel, onNotify)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if connected {
			backoff = listenBackoffMin
		}
		s.log.Warn("listen connection lost; reconnecting", "channel", channel, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, listenBackoffMax)
	}
}

// listenOnce connects, listens and dispatches until the connection fails.
// connected reports whether LISTEN succeeded (to reset the backoff).
func (s *Store) listenOnce(ctx context.Context, channel string, onNotify func(string)) (connected bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("connect: %w", interpretError(err))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false, fmt.Errorf("listen %s: %w", channel, interpretError(err))
	}
	onNotify("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, interpretError(err)
		}
		onNotify(n.Payload)
	}
}
