// Package apperr is the one error vocabulary shared by every domain package.
//
// Domains declare sentinel errors with a Kind and a stable code (the reference
// API's codes such as AUTH_001 or VAL_006); the HTTP edge maps the Kind to a
// status once, in httpapi/errors.go. apperr imports nothing but the standard
// library so every package may use it.
package apperr

import (
	"errors"
	"fmt"
)

// Kind classifies an error for the transport edge.
type Kind int

// The kinds, each mapped to exactly one HTTP status by httpapi.
const (
	Internal        Kind = iota // 500
	Invalid                     // 422: the input breaks a rule
	BadRequest                  // 400: the input is well formed but cannot be acted on
	Unauthenticated             // 401
	Forbidden                   // 403
	NotFound                    // 404
	Conflict                    // 409
	RateLimited                 // 429
	Unavailable                 // 503: a dependency is down or the service is saturated
)

// Error codes of the reference API (reference-behaviour.md §1.3) plus
// Gatehouse's additions (SYS_006).
const (
	CodeInvalidCredentials = "AUTH_001"
	CodeInsufficientPerms  = "AUTH_004"
	CodeAuthRequired       = "AUTH_006"
	CodeOperationForbidden = "AUTH_007"
	CodeUserExists         = "USER_002"
	CodeValidation         = "VAL_001"
	CodeInvalidInput       = "VAL_006"
	CodeInternal           = "SYS_001"
	CodeNotFound           = "SYS_002"
	CodeMethodNotAllowed   = "SYS_003"
	CodeRateLimited        = "SYS_004"
	CodeAlreadyExists      = "SYS_005"
	CodeServiceUnavailable = "SYS_006"
	CodeRequestTooLarge    = "REQUEST_TOO_LARGE"
	// CodeLastOwner: the change would leave an organization without an
	// active owner.
	CodeLastOwner = "ORG_001"
	// CodeTooManyTokens: the user holds the most live personal access
	// tokens allowed.
	CodeTooManyTokens = "PAT_001"
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string // JSON name of the field, "" when the whole input is meant
	Message string
}

// Error is a classified, client-safe error. Message is shown to clients; Err
// (the cause) is not.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Field   string       // optional single field
	Fields  []FieldError // several invalid fields (Kind Invalid)
	// RetryAfter, in seconds, for RateLimited and Unavailable errors.
	RetryAfter int
	Err        error
	// origin is the sentinel this error was copied from (WithField,
	// WithMessage, Wrap), so errors.Is still matches it.
	origin *Error
}

// New returns a sentinel-style error.
func New(kind Kind, code, msg string) *Error {
	return &Error{Kind: kind, Code: code, Message: msg}
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e is target or a copy made from it (with another
// field, message, cause or retry hint).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && (e == t || e.origin == t)
}

// copyOf returns a copy of e that remembers e's sentinel.
func (e *Error) copyOf() *Error {
	c := *e
	if c.origin == nil {
		c.origin = e
	}
	return &c
}

// WithField returns a copy of e naming the offending field.
func (e *Error) WithField(field string) *Error {
	c := e.copyOf()
	c.Field = field
	return c
}

// WithMessage returns a copy of e with another client message.
func (e *Error) WithMessage(format string, args ...any) *Error {
	c := e.copyOf()
	c.Message = fmt.Sprintf(format, args...)
	return c
}

// Wrap returns a copy of e that carries cause for the logs.
func (e *Error) Wrap(cause error) *Error {
	c := e.copyOf()
	c.Err = cause
	return c
}

// Validation builds a validation error (422 VAL_001) for one or more fields.
func Validation(fields ...FieldError) *Error {
	msg := "validation failed"
	if len(fields) > 0 {
		msg = fields[0].Message
	}
	return &Error{Kind: Invalid, Code: CodeValidation, Message: msg, Fields: fields}
}

// ValidationField is shorthand for Validation with one field.
func ValidationField(field, msg string) *Error {
	return Validation(FieldError{Field: field, Message: msg})
}

// KindOf reports the kind of err, Internal when err carries no *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
