package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

// errorItem is one entry of the error envelope.
type errorItem struct {
	Code    string  `json:"code" doc:"Stable error code, e.g. AUTH_001, VAL_001, SYS_002"`
	Message string  `json:"message" doc:"Human-readable message"`
	Field   *string `json:"field" doc:"The offending field, or null"`
}

// envelope is every error body of the /api/v1 API (contract §2):
// {"success": false, "errors": [{"code", "message", "field"}]}.
type envelope struct {
	status  int
	headers http.Header
	Success bool        `json:"success" doc:"Always false"`
	Errors  []errorItem `json:"errors"`
}

func (e *envelope) Error() string {
	if len(e.Errors) == 0 {
		return http.StatusText(e.status)
	}
	return e.Errors[0].Code + ": " + e.Errors[0].Message
}

// GetStatus implements huma.StatusError.
func (e *envelope) GetStatus() int { return e.status }

// GetHeaders implements huma.HeadersError (Retry-After, WWW-Authenticate).
func (e *envelope) GetHeaders() http.Header { return e.headers }

// ContentType makes huma send errors as application/json.
func (e *envelope) ContentType(string) string { return "application/json" }

func newEnvelope(status int, code, msg, field string) *envelope {
	it := errorItem{Code: code, Message: msg}
	if field != "" {
		it.Field = &field
	}
	return &envelope{status: status, Errors: []errorItem{it}}
}

// statusOf maps an error kind to its HTTP status: the one table.
func statusOf(k apperr.Kind) int {
	switch k {
	case apperr.Invalid:
		return http.StatusUnprocessableEntity
	case apperr.BadRequest:
		return http.StatusBadRequest
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.RateLimited:
		return http.StatusTooManyRequests
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// toEnvelope turns any error into the envelope, logging 5xx once with the
// request id. This is the one place errors become HTTP.
func (s *server) toEnvelope(ctx context.Context, err error) *envelope {
	var env *envelope
	if errors.As(err, &env) {
		return env
	}
	ae, ok := apperr.As(err)
	if !ok {
		if errors.Is(err, context.Canceled) {
			// The client went away; nobody reads this answer.
			return newEnvelope(499, apperr.CodeInternal, "Request cancelled", "")
		}
		s.logger.ErrorContext(ctx, "internal error", "err", err, "request_id", requestIDFrom(ctx))
		return newEnvelope(http.StatusInternalServerError, apperr.CodeInternal, s.internalMessage(err), "")
	}
	status := statusOf(ae.Kind)
	if status >= 500 {
		s.logger.ErrorContext(ctx, "request failed", "err", err, "request_id", requestIDFrom(ctx))
	}
	env = &envelope{status: status}
	if len(ae.Fields) > 0 {
		for _, f := range ae.Fields {
			env.Errors = append(env.Errors, newEnvelope(0, ae.Code, f.Message, f.Field).Errors[0])
		}
	} else {
		env.Errors = newEnvelope(0, ae.Code, ae.Message, ae.Field).Errors
	}
	if ae.RetryAfter > 0 {
		env.headers = http.Header{"Retry-After": {strconv.Itoa(ae.RetryAfter)}}
	}
	if status == http.StatusUnauthorized {
		if env.headers == nil {
			env.headers = http.Header{}
		}
		env.headers.Set("WWW-Authenticate", "Bearer")
	}
	return env
}

// internalMessage is the text of a 500: generic in production, the error
// itself elsewhere (reference §1.1).
func (s *server) internalMessage(err error) string {
	if s.production {
		return "An internal error occurred. Please try again later."
	}
	return "Internal error: " + err.Error()
}

func writeEnvelope(w http.ResponseWriter, env *envelope) {
	for k, vs := range env.headers {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(env.status)
	_ = json.NewEncoder(w).Encode(env)
}

// humaError builds the envelope for errors huma raises itself: request
// validation, unreadable or oversize bodies, bad parameters. It is installed
// as huma.NewError (a package-level hook of huma); it depends on nothing but
// its arguments, so every server in a process can share it.
func humaError(status int, msg string, errs ...error) huma.StatusError {
	for _, err := range errs {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(mbe.Limit)
		}
		if env, ok := err.(*envelope); ok {
			return env
		}
	}
	switch {
	case status == http.StatusRequestEntityTooLarge:
		var limit int64
		_, _ = fmt.Sscanf(msg, "request body is too large limit=%d bytes", &limit)
		return tooLarge(limit)
	case status == http.StatusUnprocessableEntity, status == http.StatusBadRequest:
		// Pydantic (the reference) answers every input problem with 422 VAL_001.
		env := &envelope{status: http.StatusUnprocessableEntity}
		for _, err := range errs {
			if err == nil {
				continue
			}
			loc, m := "", err.Error()
			var d *huma.ErrorDetail
			if errors.As(err, &d) {
				loc, m = d.Location, d.Message
			}
			field, m := fieldOf(loc, m)
			env.Errors = append(env.Errors, newEnvelope(0, apperr.CodeValidation, m, field).Errors[0])
		}
		if len(env.Errors) == 0 {
			env.Errors = newEnvelope(0, apperr.CodeValidation, capitalize(msg), "").Errors
		}
		return env
	case status == http.StatusUnsupportedMediaType:
		return newEnvelope(status, apperr.CodeInvalidInput, "Unsupported content type; send application/json", "")
	case status == http.StatusRequestTimeout:
		return newEnvelope(status, apperr.CodeInvalidInput, "Timed out reading the request body", "")
	case status == http.StatusNotAcceptable:
		return newEnvelope(status, apperr.CodeInvalidInput, "Cannot produce a response in an accepted content type", "")
	case status >= 500:
		return newEnvelope(http.StatusInternalServerError, apperr.CodeInternal, "An internal error occurred. Please try again later.", "")
	}
	return newEnvelope(status, codeForStatus(status), capitalize(msg), "")
}

func tooLarge(limit int64) *envelope {
	size := "the configured limit"
	if limit > 0 {
		size = fmt.Sprintf("%dMB", max(1, limit>>20))
		if limit%(1<<20) != 0 {
			size = fmt.Sprintf("%d bytes", limit)
		}
	}
	return newEnvelope(http.StatusRequestEntityTooLarge, apperr.CodeRequestTooLarge, "Request body too large. Maximum size is "+size, "")
}

// codeForStatus is the reference's code for plain HTTP errors (§1.1).
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return apperr.CodeInvalidInput
	case http.StatusUnauthorized:
		return apperr.CodeAuthRequired
	case http.StatusForbidden:
		return apperr.CodeInsufficientPerms
	case http.StatusNotFound:
		return apperr.CodeNotFound
	case http.StatusMethodNotAllowed:
		return apperr.CodeMethodNotAllowed
	case http.StatusTooManyRequests:
		return apperr.CodeRateLimited
	case http.StatusServiceUnavailable:
		return apperr.CodeServiceUnavailable
	}
	return apperr.CodeInternal
}

// fieldOf turns huma's location ("body.user_ids[0]", "query.page") into the
// reference's field ("user_ids.0", "page"), and names the missing property
// of a "required" error.
func fieldOf(loc, msg string) (string, string) {
	if name, ok := strings.CutPrefix(msg, "expected required property "); ok {
		if name, ok = strings.CutSuffix(name, " to be present"); ok {
			loc, msg = loc+"."+name, "Field required"
		}
	}
	if strings.HasPrefix(msg, "invalid character") || strings.HasPrefix(msg, "unexpected end of JSON") {
		msg = "Invalid JSON body: " + msg
	} else if rest, ok := strings.CutPrefix(msg, "json: "); ok {
		// encoding/json's own errors, e.g. a number out of float64 range.
		msg = "Invalid JSON body: " + rest
	}
	_, rest, found := strings.Cut(loc, ".")
	if !found {
		return "", capitalize(msg)
	}
	rest = strings.NewReplacer("[", ".", "]", "").Replace(rest)
	return rest, capitalize(msg)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func jsonEncode(w interface{ Write([]byte) (int, error) }, v any) error {
	return json.NewEncoder(w).Encode(v)
}
