package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// The protocol endpoints' error writers are the net under the checks at the
// edges: input a store refuses (apperr Invalid or BadRequest, as sqlstore
// reports text PostgreSQL cannot hold) is the client's invalid_request,
// never a server_error.
func TestOAuthErrorWritersMapInputErrorsToInvalidRequest(t *testing.T) {
	s := &server{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	unstorable := apperr.Validation(apperr.FieldError{Message: "The input contains characters that cannot be stored"})
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
		retry  string // Retry-After
	}{
		{"invalid", fmt.Errorf("save code: %w", unstorable), http.StatusBadRequest, "invalid_request", ""},
		{"bad request", &apperr.Error{Kind: apperr.BadRequest, Code: apperr.CodeInvalidInput, Message: "bad"}, http.StatusBadRequest, "invalid_request", ""},
		{"rate limited", &apperr.Error{Kind: apperr.RateLimited, Code: apperr.CodeRateLimited, Message: "slow", RetryAfter: 7}, http.StatusTooManyRequests, "temporarily_unavailable", "7"},
		{"unavailable", &apperr.Error{Kind: apperr.Unavailable, Code: apperr.CodeServiceUnavailable, Message: "down", RetryAfter: 3}, http.StatusServiceUnavailable, "temporarily_unavailable", "3"},
		{"unavailable without a delay", &apperr.Error{Kind: apperr.Unavailable, Code: apperr.CodeServiceUnavailable, Message: "down"}, http.StatusServiceUnavailable, "temporarily_unavailable", "5"},
		{"unknown", errors.New("boom"), http.StatusInternalServerError, "server_error", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			s.writeOAuthError(w, httptest.NewRequest("POST", "/token", nil), tc.err)
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %s: %v", w.Body, err)
			}
			if w.Code != tc.status || body["error"] != tc.code || len(body) != 2 {
				t.Fatalf("%d %v, want %d %s", w.Code, body, tc.status, tc.code)
			}
			if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Pragma") != "no-cache" || w.Header().Get("Retry-After") != tc.retry {
				t.Fatalf("headers %v", w.Header())
			}
		})
	}

	// The authorization endpoint shows such an error to the user (never a
	// redirect, never a 500).
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/authorize", nil)
	s.authorizeFailed(w, r, oauth.AuthRequest{RedirectURI: "https://client.example/cb"}, "", fmt.Errorf("approve: %w", unstorable))
	if w.Code != http.StatusBadRequest || w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "invalid_request") {
		t.Fatalf("authorize: %d Location %q %s", w.Code, w.Header().Get("Location"), w.Body)
	}
}
