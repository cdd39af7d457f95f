package persistence

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/stroem/stroem"
)

// CallbackError carries the error of a JobUpdate callback through a store's
// transaction machinery untouched: it is never retried and never
// reinterpreted, and JobUpdate returns Err as it is (callers use it for
// 409s).
type CallbackError struct{ Err error }

func (e CallbackError) Error() string { return e.Err.Error() }

// CallbackErr returns the callback's own error when err carries one.
func CallbackErr(err error) (error, bool) {
	var ce CallbackError
	if errors.As(err, &ce) {
		return ce.Err, true
	}
	return nil, false
}

// NewWorker is the worker a registration records: a fresh id, the name,
// capabilities and tags sanitized, active. The store sets the times.
func NewWorker(reg stroem.WorkerRegistration) stroem.Worker {
	return stroem.Worker{
		ID:            uuid.NewString(),
		Name:          stroem.SanitizeText(reg.Name),
		Capabilities:  SanitizeStrings(reg.Capabilities),
		Tags:          SanitizeStrings(reg.Tags),
		Exclusive:     reg.Exclusive,
		Status:        "active",
		MaxConcurrent: reg.MaxConcurrent,
	}
}

// CodedError is the part of translating a driver's error into a domain
// error that every store shares: nil stays nil, an error that already
// carries a stroem code passes through, and the driver's "no rows" becomes
// CodeNotFound. ok is false when the store must classify err itself.
func CodedError(err, noRows error) (_ error, ok bool) {
	if err == nil {
		return nil, true
	}
	var coded *stroem.Error
	if errors.As(err, &coded) {
		return err, true
	}
	if errors.Is(err, noRows) {
		return &stroem.Error{Code: stroem.CodeNotFound, Message: "not found", Err: err}, true
	}
	return err, false
}

// CheckTick applies the rules of JobInsert for a job with a tick (see
// TriggerTick), with the store's queries: fired reports whether the tick or
// a later one of the trigger is recorded, busy whether an earlier job of
// the trigger is unfinished (asked only with SkipIfUnfinished). The store
// serialises the check per trigger and records the tick when it passes.
func CheckTick(jobID string, t *TriggerTick, fired, busy func() (bool, error)) error {
	if t.Trigger == "" || t.At.IsZero() {
		return stroem.Errorf(stroem.CodeInvalid, "job %s: a trigger tick needs a trigger name and a time", jobID)
	}
	if f, err := fired(); err != nil || f {
		if err != nil {
			return err
		}
		return ErrTickFired
	}
	if t.SkipIfUnfinished {
		b, err := busy()
		if err != nil {
			return err
		}
		if b {
			return ErrTriggerBusy
		}
	}
	return nil
}

// ArchiveToStore checks a workspace archive before a store writes it: a
// revision is required; no files is an empty archive, not NULL.
func ArchiveToStore(revision string, tarball []byte) ([]byte, error) {
	if revision == "" {
		return nil, stroem.Errorf(stroem.CodeInvalid, "workspace archive: empty revision")
	}
	if tarball == nil {
		tarball = []byte{}
	}
	return tarball, nil
}

// Rows is what the result sets of both drivers offer.
type Rows interface {
	Next() bool
	Err() error
}

// CollectRows calls scan for every row of rows and returns the values,
// never nil. The caller closes rows.
func CollectRows[T any](rows Rows, scan func() (T, error)) ([]T, error) {
	out := []T{}
	for rows.Next() {
		v, err := scan()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// AuthMethods is what a stored user can sign in with, as both stores
// report it: "password" when a hash is set, then the linked providers.
func AuthMethods(passwordHash string, providers []string) []string {
	out := []string{}
	if passwordHash != "" {
		out = append(out, "password")
	}
	return append(out, providers...)
}

// Errors are the error skeletons both stores share, bound to a driver's
// "no rows" error and the store's Interpret (its translation of driver
// errors into stroem codes).
type Errors struct {
	NoRows    error
	Interpret func(error) error
}

// Row is the error of reading one row: nil stays nil; NoRows becomes
// missing (a CodeNotFound error that names what is missing); any other
// error is interpreted and wrapped with the message format and args, or,
// with format "", returned as it is (inside a transaction, whose caller
// interprets it).
func (e Errors) Row(err, missing error, format string, args ...any) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, e.NoRows):
		return missing
	case format == "":
		return err
	}
	return e.Wrap(err, format, args...)
}

// Wrap is the error of a store method's last step: nil stays nil; any
// other error is interpreted and wrapped with the message format and args
// (what was being done).
func (e Errors) Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), e.Interpret(err))
}

// Found is the outcome of reading an optional row: the driver's "no rows"
// is (false, nil), any other error is returned as it is (the read runs
// inside a transaction, whose caller interprets it).
func (e Errors) Found(err error) (bool, error) {
	if errors.Is(err, e.NoRows) {
		return false, nil
	}
	return err == nil, err
}

// Coded is Wrap for an error that may come from the store's own checks
// inside a transaction (a fence, a limit): an error that carries a stroem
// code is returned as it is, so its message reaches the caller unchanged;
// any other is interpreted and wrapped.
func (e Errors) Coded(err error, format string, args ...any) error {
	var coded *stroem.Error
	if errors.As(err, &coded) {
		return err
	}
	return e.Wrap(err, format, args...)
}

// Fence is the outcome of a fence's read of a step's row into h (see
// StepHolder.Fence): NoRows is an unknown step (CodeNotFound), any other
// read error is returned as it is (the fence runs inside a transaction),
// else h decides.
func (e Errors) Fence(err error, h StepHolder, f AttemptFence, what string) error {
	switch {
	case errors.Is(err, e.NoRows):
		return stroem.Errorf(stroem.CodeNotFound, "step %s of job %s not found", f.Step, f.JobID)
	case err != nil:
		return err
	}
	return h.Fence(f, what)
}
