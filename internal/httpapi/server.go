// Package httpapi is the HTTP edge: the router, the middleware chain, the
// /api/v1 operations (huma, with an OpenAPI 3.1 document), and the one place
// that turns errors into responses (errors.go). Handlers translate between
// JSON and the domain services and hold no business rules.
package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humachi"
	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/pat"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/social"
	"github.com/gatehouse-dev/gatehouse/internal/stats"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Deps are the services and settings the HTTP edge needs.
type Deps struct {
	Logger  *slog.Logger
	Config  config.Config
	Users   *user.Service
	Auth    *auth.Service
	Orgs    *org.Service
	Social  *social.Service
	OAuth   *oauth.Service
	Keys    *keys.Manager
	Stats   *stats.Service
	PATs    *pat.Service
	Limiter *ratelimit.Limiter
	// Ping checks the database for /health.
	Ping func(ctx context.Context) error
	// RedisPing checks Redis for /health; nil when REDIS_URL is not set.
	RedisPing func(ctx context.Context) error
	// Metrics counts requests, logins, tokens and rejections and serves
	// /metrics; nil when metrics are off (every call is then a no-op).
	Metrics *metrics.Metrics
	Now     func() time.Time
	// PagesKey (32 bytes derived from SECRET_KEY) keys the built-in pages'
	// CSRF tokens and signed cookies; every instance must share it. A
	// random per-process key is used when it is empty.
	PagesKey []byte
}

// installHumaError guards the one process-wide hook of the huma library.
var installHumaError sync.Once

type server struct {
	Deps
	logger     *slog.Logger
	production bool
	router     *chi.Mux
	api        huma.API
}

// New returns the complete HTTP handler.
func New(d Deps) http.Handler {
	s := newServer(d)
	return s.router
}

// OpenAPI returns the OpenAPI document of the API (for `gatehouse openapi`).
func OpenAPI(d Deps) *huma.OpenAPI {
	return newServer(d).api.OpenAPI()
}

func newServer(d Deps) *server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if len(d.PagesKey) == 0 {
		d.PagesKey = make([]byte, 32)
		_, _ = rand.Read(d.PagesKey)
	}
	s := &server{Deps: d, logger: d.Logger, production: d.Config.Production()}
	// huma builds its own errors through a package-level hook. Ours depends
	// only on its arguments; it is installed once per process so that
	// servers started concurrently (tests) do not race on the assignment.
	installHumaError.Do(func() { huma.NewError = humaError })

	r := chi.NewRouter()
	r.Use(requestID, clientIP(d.Config.HTTP.TrustedProxies), accessLog(d.Logger, d.Metrics),
		securityHeaders(d.Config.HTTP.CSPMode, s.production), s.recoverPanic,
		cors(d.Config.HTTP.CORSOrigins), limitBody(d.Config.HTTP.MaxBodyBytes), deadline(d.Config.DB.PoolTimeout))
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed)
	s.router = r

	cfg := huma.DefaultConfig(d.Config.ProjectName, d.Config.Version)
	cfg.OpenAPIPath = "/api/v1/openapi"
	cfg.DocsPath = ""
	cfg.SchemasPath = ""
	cfg.CreateHooks = nil
	cfg.Formats = maps.Clone(huma.DefaultFormats)
	// The reference ignores unknown JSON fields; so do we.
	cfg.AllowAdditionalPropertiesByDefault = true
	cfg.Info.Description = "Gatehouse: accounts, sessions, organizations and an OAuth 2.1 authorization server. " +
		"Errors use the envelope {\"success\": false, \"errors\": [{\"code\", \"message\", \"field\"}]}."
	cfg.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", BearerFormat: "JWT",
			Description: "Access token from POST /api/v1/auth/login"},
		"password": {Type: "oauth2", Flows: &huma.OAuthFlows{Password: &huma.OAuthFlow{
			TokenURL: "/api/v1/auth/login/oauth", Scopes: map[string]string{}}}},
		// Access tokens of Gatehouse's own authorization server with the
		// API as audience (docs/SCOPES.md).
		"oauth": {Type: "oauth2", Description: "Authorization-server access token with resource=" + d.Config.Provider.APIResource,
			Flows: &huma.OAuthFlows{AuthorizationCode: &huma.OAuthFlow{
				AuthorizationURL: providerPrefix + "/authorize", TokenURL: providerPrefix + "/token",
				Scopes: map[string]string{
					"read:users":          "Read the user's profile, sessions, linked accounts and consents",
					"write:users":         "Update the user's profile and revoke their sessions",
					"read:organizations":  "Read the user's organizations, members and invitations",
					"write:organizations": "Create and manage the user's organizations",
					"admin":               "Superusers only: the admin API and every superuser route",
				}}}},
	}
	s.api = humachi.New(r, cfg)
	s.api.UseMiddleware(s.authenticate)
	s.routes()
	return s
}

// notFound answers unknown routes with the envelope; a path that exists
// without its trailing slash is redirected there (307), as the reference.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		trimmed := strings.TrimRight(p, "/")
		if trimmed != "" && s.routeExists(trimmed) {
			u := *r.URL
			u.Path = trimmed
			http.Redirect(w, r, u.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
	}
	writeEnvelope(w, newEnvelope(http.StatusNotFound, apperr.CodeNotFound, "Not Found", ""))
}

var routeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func (s *server) routeExists(path string) bool {
	for _, m := range routeMethods {
		if s.router.Match(chi.NewRouteContext(), m, path) {
			return true
		}
	}
	return false
}

// methodNotAllowed answers 405 in the envelope with the Allow header.
func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	for _, m := range routeMethods {
		if s.router.Match(chi.NewRouteContext(), m, r.URL.Path) {
			w.Header().Add("Allow", m)
		}
	}
	writeEnvelope(w, newEnvelope(http.StatusMethodNotAllowed, apperr.CodeMethodNotAllowed, "Method Not Allowed", ""))
}
