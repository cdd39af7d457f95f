package actors

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"

	"github.com/stroem/stroem"
)

// Per-worker credentials. The shared worker token only registers a worker;
// registration answers a credential of the worker's own, bound to its id
// (the store keeps only its sha256). Every later call authenticates with
// it (Authenticate), and every worker_id a call names must be the caller's
// (callerIs): a worker can only renew, start, log to and complete the steps
// it holds, and rotating the shared token does not stop running workers.

// credentialPrefix marks a worker credential (to tell it from the shared
// token in a config or a log line).
const credentialPrefix = "stroem_wc_"

// newCredential returns a fresh credential and its hash.
func newCredential() (string, []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	c := credentialPrefix + base64.RawURLEncoding.EncodeToString(b)
	return c, credentialHash(c)
}

func credentialHash(c string) []byte {
	h := sha256.Sum256([]byte(c))
	return h[:]
}

// credentialCache maps credential hashes to worker ids: credentials never
// change once issued, so a hit needs no store round trip.
type credentialCache struct {
	m sync.Map // string(hash) → worker id
}

// Authenticate returns the worker a credential belongs to. An unknown or
// empty credential is CodeUnauthorized (a worker that registered before
// credentials existed must register again).
func (w *Workers) Authenticate(ctx context.Context, credential string) (string, error) {
	if credential == "" {
		return "", stroem.Errorf(stroem.CodeUnauthorized, "missing worker credential (Authorization: Bearer …)")
	}
	h := credentialHash(credential)
	if id, ok := w.creds.m.Load(string(h)); ok {
		return id.(string), nil
	}
	id, err := w.store.WorkerByCredential(ctx, h)
	if err != nil {
		if stroem.ErrorCode(err) == stroem.CodeNotFound {
			return "", stroem.Errorf(stroem.CodeUnauthorized, "unknown worker credential: register first")
		}
		return "", err
	}
	w.creds.m.Store(string(h), id)
	return id, nil
}

type callerKey struct{}

// WithCaller returns ctx carrying the authenticated worker's id: every
// Workers method called with it checks that the worker_id it is given is
// the caller's. The HTTP layer sets it on every worker route but register.
func WithCaller(ctx context.Context, workerID string) context.Context {
	return context.WithValue(ctx, callerKey{}, workerID)
}

// callerIs checks *id (canonicalised) against the caller of ctx, and fills
// it in when empty. Without a caller in ctx (an in-process caller that
// authenticated the worker itself) only the id's form is checked.
func callerIs(ctx context.Context, id *string) error {
	caller, ok := ctx.Value(callerKey{}).(string)
	if ok && *id == "" {
		*id = caller
	}
	if err := checkWorkerID(id); err != nil {
		return err
	}
	if ok && *id != caller {
		return stroem.Errorf(stroem.CodeForbidden, "worker_id %s is not the caller's: a worker may only act for itself", *id)
	}
	return nil
}

// ArchiveAllowed reports whether the calling worker may download the
// archive of a workspace revision: only while it holds a running step of a
// job at that revision.
func (w *Workers) ArchiveAllowed(ctx context.Context, revision string) error {
	caller, ok := ctx.Value(callerKey{}).(string)
	if !ok {
		return nil
	}
	held, err := w.store.WorkerHoldsRevision(ctx, caller, revision)
	if err != nil {
		return err
	}
	if !held {
		return stroem.Errorf(stroem.CodeForbidden, "workspace revision %s: this worker holds no running step of it", revision)
	}
	return nil
}
