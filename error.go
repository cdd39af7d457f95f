package stroem

import (
	"errors"
	"fmt"
)

// Code classifies an error for the API: the HTTP layer maps each code to one
// status, in one place.
type Code string

// Error codes.
const (
	CodeInvalid      Code = "invalid"      // 400: the request is wrong
	CodeUnauthorized Code = "unauthorized" // 401: who you are is unknown
	CodeForbidden    Code = "forbidden"    // 403: known, but not allowed
	CodeUnsupported  Code = "unsupported"  // 415: body is not JSON
	CodeRateLimited  Code = "rate_limited" // 429: too many attempts
	CodeNotFound     Code = "not_found"    // 404
	CodeConflict     Code = "conflict"     // 409: stale report, state changed meanwhile
	CodeTooLarge     Code = "too_large"    // 413
	CodeUnavailable  Code = "unavailable"  // 503: database down, shutting down
	CodeInternal     Code = "internal"     // 500: a bug
)

// Error is an error with a code, a message meant for the user and, for
// validation failures, every problem found.
type Error struct {
	Code    Code
	Message string
	// Details lists individual problems (one per invalid input field, say).
	Details []string
	// Err is the underlying cause, if any; it is not shown to API users.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true for every *Error with the same
// code, so callers test the kind without comparing messages.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Details == nil && t.Code == e.Code
}

// Sentinels for errors.Is; each matches any *Error of its code.
var (
	ErrInvalid      = &Error{Code: CodeInvalid}
	ErrUnauthorized = &Error{Code: CodeUnauthorized}
	ErrForbidden    = &Error{Code: CodeForbidden}
	ErrRateLimited  = &Error{Code: CodeRateLimited}
	ErrNotFound     = &Error{Code: CodeNotFound}
	ErrConflict     = &Error{Code: CodeConflict}
	ErrTooLarge     = &Error{Code: CodeTooLarge}
	ErrUnavailable  = &Error{Code: CodeUnavailable}
)

// Errorf returns an *Error with the code and a formatted message. A %w verb
// keeps the cause reachable through errors.Is/As.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Code: code, Message: err.Error(), Err: errors.Unwrap(err)}
}

// Invalid returns a CodeInvalid error listing every problem.
func Invalid(message string, details ...string) error {
	return &Error{Code: CodeInvalid, Message: message, Details: details}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal when there is none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the user-facing message of err: the *Error's message
// when it has one, otherwise a generic text that leaks no internals.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "internal error"
}

// ErrorDetails returns the problem list of the first *Error in err's chain.
func ErrorDetails(err error) []string {
	var e *Error
	if errors.As(err, &e) {
		return e.Details
	}
	return nil
}
