package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem/persistence"
)

func testListenAndPing(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	require.NoError(t, s.Ping(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	payloads := make(chan string, 10)
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, persistence.ChannelStepsReady, func(p string) { payloads <- p }) }()
	select {
	case p := <-payloads:
		require.Equal(t, "", p, "after connecting, a re-scan hint")
	case <-time.After(30 * time.Second):
		t.Fatal("Listen did not report it is listening")
	}
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("Listen did not return when its context ended")
	}
}
