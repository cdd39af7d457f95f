package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence"
)

func testWorkers(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()

	empty, err := s.WorkerList(ctx)
	require.NoError(t, err)
	require.NotNil(t, empty)
	require.Empty(t, empty)

	w1, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "host-1", Capabilities: []string{"shell"}, Tags: []string{"linux"}, MaxConcurrent: 4})
	require.NoError(t, err)
	_, err = uuid.Parse(w1.ID)
	require.NoError(t, err)
	require.Equal(t, strings.ToLower(w1.ID), w1.ID)
	require.Equal(t, "active", w1.Status)
	require.Equal(t, "host-1", w1.Name)
	require.Equal(t, w1.RegisteredAt, w1.LastHeartbeatAt)
	require.Equal(t, 4, w1.MaxConcurrent)
	time.Sleep(2 * time.Millisecond)
	w2, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "host-1\u0000\xff", Capabilities: []string{"shell", "docker"}})
	require.NoError(t, err)
	require.NotEqual(t, w1.ID, w2.ID, "a new id at every registration")
	require.Equal(t, "host-1\\0\uFFFD", w2.Name)

	list, err := s.WorkerList(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, w2.ID, list[0].ID, "most recently seen first")
	require.Equal(t, "host-1\\0\uFFFD", list[0].Name)
	require.Equal(t, []string{"shell", "docker"}, list[0].Capabilities)
	require.Equal(t, []string{}, list[0].Tags)
	require.Equal(t, "active", list[0].Status)
	require.Zero(t, list[0].MaxConcurrent, "a worker that did not say its slots")
	require.Equal(t, w1.ID, list[1].ID)
	require.Equal(t, []string{"linux"}, list[1].Tags)
	require.Equal(t, 4, list[1].MaxConcurrent, "the slots the worker said at registration")
	require.Equal(t, w1.RegisteredAt, list[1].RegisteredAt)

	// A heartbeat moves w1 to the front.
	time.Sleep(2 * time.Millisecond)
	_, err = s.LeasesRenew(ctx, w1.ID, nil, Lease)
	require.NoError(t, err)
	list, err = s.WorkerList(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{w1.ID, w2.ID}, []string{list[0].ID, list[1].ID})
	require.True(t, list[0].LastHeartbeatAt.After(list[0].RegisteredAt))
	for _, w := range list {
		require.Equal(t, "active", w.Status, w.ID)
	}

	// Idle heartbeats recorded together, at one time, later than any
	// before; what names no worker comes back, as given and in order.
	time.Sleep(2 * time.Millisecond)
	nobody := uuid.NewString()
	unknown, err := s.WorkersSeen(ctx, []string{nobody, strings.ToUpper(w2.ID), "not-a-uuid", w1.ID, ""})
	require.NoError(t, err)
	require.Equal(t, []string{nobody, "not-a-uuid", ""}, unknown)
	seen, err := s.WorkerList(ctx)
	require.NoError(t, err)
	require.Len(t, seen, 2)
	require.Equal(t, seen[0].LastHeartbeatAt, seen[1].LastHeartbeatAt, "one write")
	require.True(t, seen[0].LastHeartbeatAt.After(list[0].LastHeartbeatAt), "later than w1's last heartbeat")
	unknown, err = s.WorkersSeen(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, unknown)

	// Several servers recording overlapping groups at once, in any order:
	// none waits on another for ever (PostgreSQL locks the rows in id
	// order).
	ids := []string{w1.ID, w2.ID}
	for range 6 {
		w, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "fleet", Capabilities: []string{"shell"}})
		require.NoError(t, err)
		ids = append(ids, w.ID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*20)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := slices.Clone(ids)
			if g%2 == 1 {
				slices.Reverse(group)
			}
			for range 20 {
				unknown, err := s.WorkersSeen(ctx, group)
				if err == nil && len(unknown) > 0 {
					err = fmt.Errorf("known workers reported unknown: %v", unknown)
				}
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func testArchives(t *testing.T, open func(t *testing.T) persistence.Store) {
	s := open(t)
	ctx := context.Background()
	_, err := s.WorkspaceArchiveGet(ctx, "rev1")
	require.ErrorIs(t, err, stroem.ErrNotFound)
	tarball := []byte{0x1f, 0x8b, 0x00, 0xff, 0x00}
	require.NoError(t, s.WorkspaceArchivePut(ctx, "rev1", tarball))
	require.NoError(t, s.WorkspaceArchivePut(ctx, "rev1", []byte("other")), "a revision is immutable: no-op")
	got, err := s.WorkspaceArchiveGet(ctx, "rev1")
	require.NoError(t, err)
	require.Equal(t, tarball, got)
	require.ErrorIs(t, s.WorkspaceArchivePut(ctx, "", tarball), stroem.ErrInvalid)
	require.NoError(t, s.WorkspaceArchivePut(ctx, "empty", nil))
	got, err = s.WorkspaceArchiveGet(ctx, "empty")
	require.NoError(t, err)
	require.Empty(t, got)
}
