package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
	"github.com/stroem/stroem/persistence/dbtest"
)

func TestWorkers(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
	ctx := context.Background()

	w1, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "host-1", Capabilities: []string{"shell"}, Tags: []string{"linux"}})
	require.NoError(t, err)
	_, err = uuid.Parse(w1.ID)
	require.NoError(t, err)
	require.Equal(t, "active", w1.Status)
	again, err := s.WorkerRegister(ctx, stroem.WorkerRegistration{Name: "host-1\u0000", Capabilities: []string{"shell", "docker"}})
	require.NoError(t, err)
	require.NotEqual(t, w1.ID, again.ID, "a new id at every registration")
	require.Equal(t, `host-1\0`, again.Name)

	// w1 has not been heard of for a minute: stale.
	_, err = s.Pool().Exec(ctx, `UPDATE workers SET last_heartbeat_at = now() - interval '1 minute' WHERE id = $1`, w1.ID)
	require.NoError(t, err)
	list, err := s.WorkerList(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, again.ID, list[0].ID, "most recently seen first")
	require.Equal(t, "active", list[0].Status)
	require.Equal(t, []string{"shell", "docker"}, list[0].Capabilities)
	require.Equal(t, []string{}, list[0].Tags)
	require.Equal(t, w1.ID, list[1].ID)
	require.Equal(t, "stale", list[1].Status)
	require.Equal(t, []string{"linux"}, list[1].Tags)

	// A heartbeat makes it active again.
	_, err = s.LeasesRenew(ctx, w1.ID, nil, testLease)
	require.NoError(t, err)
	list, err = s.WorkerList(ctx)
	require.NoError(t, err)
	for _, w := range list {
		require.Equal(t, "active", w.Status, w.ID)
	}
}

func TestWorkspaceArchive(t *testing.T) {
	t.Parallel()
	s := dbtest.Store(t)
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
}
