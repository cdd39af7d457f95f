package actors

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stroem/stroem"
)

// credentials of the fake store: hash → worker id; revisions each worker
// holds a running step of.
type fakeCreds struct {
	byHash  map[string]string
	holds   map[string]string // worker id → revision
	lookups int
}

func (f *workerStore) WorkerCredentialSet(_ context.Context, workerID string, hash []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.creds.byHash == nil {
		f.creds.byHash = map[string]string{}
	}
	f.creds.byHash[string(hash)] = workerID
	return nil
}

func (f *workerStore) WorkerByCredential(_ context.Context, hash []byte) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creds.lookups++
	if id, ok := f.creds.byHash[string(hash)]; ok {
		return id, nil
	}
	return "", stroem.Errorf(stroem.CodeNotFound, "no worker holds this credential")
}

func (f *workerStore) WorkerHoldsRevision(_ context.Context, workerID, revision string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creds.holds[workerID] == revision, nil
}

const otherWorker = "5e2b8f7c-1111-4c2d-9e3f-aaaaaaaaaaaa"

// Registration answers a credential bound to the worker's id; every later
// call made as that worker may only name that worker.
func TestWorkerCredentials(t *testing.T) {
	t.Parallel()
	w, f, _ := newTestWorkers(t)
	ctx := context.Background()
	reg, err := w.Register(ctx, stroem.WorkerRegistration{Name: "w", Capabilities: []string{"shell"}})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(reg.Credential, credentialPrefix), reg.Credential)
	require.Greater(t, len(reg.Credential), 40)
	for _, hash := range f.creds.byHash {
		require.NotContains(t, hash, reg.Credential, "only the hash is stored")
	}

	id, err := w.Authenticate(ctx, reg.Credential)
	require.NoError(t, err)
	require.Equal(t, reg.WorkerID, id)
	require.Equal(t, 0, f.creds.lookups, "a credential issued here is cached")

	// Another server process knows it from the store, once.
	w2 := NewWorkers(w.o, f, nil, nil)
	for range 2 {
		id, err = w2.Authenticate(ctx, reg.Credential)
		require.NoError(t, err)
		require.Equal(t, reg.WorkerID, id)
	}
	require.Equal(t, 1, f.creds.lookups)

	for _, bad := range []string{"", "stroem_wc_forged", strings.ToUpper(reg.Credential)} {
		_, err = w.Authenticate(ctx, bad)
		require.Equal(t, stroem.CodeUnauthorized, stroem.ErrorCode(err), "%q: %v", bad, err)
	}

	// As the caller: its own id (or none) passes, another worker's is
	// refused before anything is touched.
	as := WithCaller(ctx, reg.WorkerID)
	_, err = w.Heartbeat(as, stroem.Heartbeat{})
	require.NoError(t, err)
	require.Equal(t, []string{reg.WorkerID}, f.renewed, "an empty worker_id is the caller's")
	forbidden := func(err error) {
		t.Helper()
		require.Equal(t, stroem.CodeForbidden, stroem.ErrorCode(err), "%v", err)
	}
	_, err = w.Heartbeat(as, stroem.Heartbeat{WorkerID: otherWorker})
	forbidden(err)
	_, err = w.Claim(as, stroem.ClaimRequest{WorkerID: otherWorker, Capabilities: []string{"shell"}})
	forbidden(err)
	job := "7f1c9a52-3b1e-4c8a-9d2f-0123456789ab"
	forbidden(w.Start(as, job, "s", stroem.StepStart{WorkerID: otherWorker, Attempt: 1}))
	_, err = w.PushLogs(as, job, "s", stroem.LogPush{WorkerID: otherWorker, Attempt: 1, Lines: []stroem.PushLine{{Text: "forged"}}})
	forbidden(err)
	_, err = w.Complete(as, job, "s", stroem.Completion{WorkerID: otherWorker, Attempt: 1})
	forbidden(err)
	require.Len(t, f.renewed, 1)
	require.Empty(t, f.fenced, "a refused call touches no step")
	require.Empty(t, f.started, "a refused call touches no step")

	// The caller's own id in another form is still the caller's.
	require.NoError(t, w.Start(as, job, "s", stroem.StepStart{WorkerID: strings.ToUpper(reg.WorkerID), Attempt: 1}))
	require.Equal(t, []string{job + "/s/1/" + reg.WorkerID}, f.started, "acknowledged as the caller")

	// Archives: only a revision the caller holds a running step of.
	f.mu.Lock()
	f.creds.holds = map[string]string{reg.WorkerID: "abc123abc"}
	f.mu.Unlock()
	require.NoError(t, w.ArchiveAllowed(as, "abc123abc"))
	forbidden(w.ArchiveAllowed(as, "def456def"))
	forbidden(w.ArchiveAllowed(WithCaller(ctx, otherWorker), "abc123abc"))
}
