package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/social"
)

// metricsPath serves the Prometheus metrics (docs/METRICS.md). It is a
// plain route outside the OpenAPI document, without rate limit and without
// the API's authentication: METRICS_TOKEN, when set, is its only gate.
const metricsPath = "/metrics"

// serveMetrics answers scrapes, after checking the bearer token when
// METRICS_TOKEN is set. The token is compared through SHA-256 digests in
// constant time, so neither its content nor its length leaks by timing.
func (s *server) serveMetrics() http.HandlerFunc {
	h := s.Metrics.Handler()
	if s.Config.Metrics.Token == "" {
		return h.ServeHTTP
	}
	want := sha256.Sum256([]byte(s.Config.Metrics.Token))
	return func(w http.ResponseWriter, r *http.Request) {
		raw, _ := auth.BearerToken(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(raw))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			writeEnvelope(w, s.toEnvelope(r.Context(), auth.ErrNotAuthenticated))
			return
		}
		h.ServeHTTP(w, r)
	}
}

// routeLabel is the route label of a request: its route pattern, or one
// value for every path that matched no route.
func routeLabel(pattern string) string {
	if pattern == "" {
		return metrics.RouteUnmatched
	}
	return pattern
}

// loginOutcome names the result of a login for gatehouse_logins_total.
func loginOutcome(err error) string {
	switch {
	case err == nil:
		return metrics.OutcomeSuccess
	case errors.Is(err, auth.ErrInvalidCredentials):
		return metrics.OutcomeBadCredentials
	case errors.Is(err, auth.ErrAccountInactive), errors.Is(err, social.ErrInactive):
		return metrics.OutcomeInactive
	case errors.Is(err, auth.ErrTooManyAttempts):
		return metrics.OutcomeThrottled
	case errors.Is(err, password.ErrBusy):
		return metrics.OutcomeBusy
	}
	switch apperr.KindOf(err) {
	case apperr.Internal, apperr.Unavailable:
		return metrics.OutcomeError
	}
	// Social logins: an invalid or replayed state, a provider that refused
	// the code, an identity that cannot be linked.
	return metrics.OutcomeRejected
}

// countLogin counts a login attempt made through endpoint (the name its
// rate limit uses); a refusal by the per-account throttle is also a
// rate-limit rejection.
func (s *server) countLogin(method, endpoint string, err error) {
	outcome := loginOutcome(err)
	s.Metrics.Login(method, outcome)
	if outcome == metrics.OutcomeThrottled {
		s.Metrics.RateLimited(metrics.LimiterAccount, endpoint)
	}
}

// providerGrant is the grant label of a successful provider token request.
func providerGrant(grantType string) (string, bool) {
	switch grantType {
	case "authorization_code":
		return metrics.GrantAuthorizationCode, true
	case "refresh_token":
		return metrics.GrantRefreshToken, true
	}
	return "", false
}
