package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

// RFC 9700 checklist rows of docs/OAUTH.md §11 not covered elsewhere.

// Row 20: discovery, JWKS, token, revocation, introspection, userinfo and
// registration allow any origin without credentials (simple requests and
// preflights); the authorization endpoint, the consent API and the built-in
// pages get only the first-party CORS of BACKEND_CORS_ORIGINS.
func TestCORSOpenOnlyOnProtocolEndpoints(t *testing.T) {
	const spa = "https://spa.example" // in no CORS list
	form := map[string]string{"Content-Type": oaFormType}
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		type endpoint struct{ method, path string }
		open := []endpoint{
			{"GET", "/.well-known/oauth-authorization-server"},
			{"GET", "/.well-known/openid-configuration"},
			{"GET", "/.well-known/jwks.json"},
			{"POST", oaBase + "/token"},
			{"POST", oaBase + "/revoke"},
			{"POST", oaBase + "/introspect"},
			{"GET", oaBase + "/userinfo"},
			{"POST", oaBase + "/userinfo"},
			{"POST", oaBase + "/register"},
			{"POST", "/token"},
			{"POST", "/register"},
		}
		closed := []endpoint{
			{"GET", oaBase + "/authorize"},
			{"GET", "/authorize"},
			{"POST", oaBase + "/authorize/consent"},
			{"GET", "/oauth/login"},
			{"POST", "/oauth/login"},
			{"GET", "/oauth/consent"},
			{"POST", "/oauth/consent"},
			{"POST", "/oauth/logout"},
		}
		call := func(ep endpoint, origin string) apitest.Response {
			t.Helper()
			req := apitest.Request{Method: ep.method, Path: ep.path, Headers: map[string]string{"Origin": origin}}
			if ep.method == "POST" {
				req.Body, req.Headers["Content-Type"] = "", form["Content-Type"]
			}
			return e.Do(req)
		}
		preflight := func(ep endpoint, origin string) apitest.Response {
			t.Helper()
			return e.Do(apitest.Request{Method: "OPTIONS", Path: ep.path, Headers: map[string]string{"Origin": origin,
				"Access-Control-Request-Method": ep.method, "Access-Control-Request-Headers": "authorization, content-type"}})
		}
		for _, ep := range open {
			name := ep.method + " " + ep.path
			r := call(ep, spa)
			if r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s (status %d): Allow-Origin %q, Allow-Credentials %q; want * without credentials", name, r.Status,
					r.Header.Get("Access-Control-Allow-Origin"), r.Header.Get("Access-Control-Allow-Credentials"))
			}
			if r.Status >= 400 && !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
				t.Errorf("%s: error %d does not expose WWW-Authenticate to the page", name, r.Status)
			}
			p := preflight(ep, spa)
			if p.Status != http.StatusNoContent || p.Header.Get("Access-Control-Allow-Origin") != "*" || p.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s preflight: %d, Allow-Origin %q, Allow-Credentials %q", name, p.Status,
					p.Header.Get("Access-Control-Allow-Origin"), p.Header.Get("Access-Control-Allow-Credentials"))
			}
			if !strings.Contains(p.Header.Get("Access-Control-Allow-Methods"), ep.method) {
				t.Errorf("%s preflight: Allow-Methods %q", name, p.Header.Get("Access-Control-Allow-Methods"))
			}
			headers := strings.ToLower(p.Header.Get("Access-Control-Allow-Headers"))
			if !strings.Contains(headers, "authorization") || !strings.Contains(headers, "content-type") {
				t.Errorf("%s preflight: Allow-Headers %q", name, headers)
			}
		}
		for _, ep := range closed {
			name := ep.method + " " + ep.path
			r := call(ep, spa)
			for k := range r.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s (status %d) answers another origin with %s: %q", name, r.Status, k, r.Header.Get(k))
				}
			}
			if p := preflight(ep, spa); p.Status/100 == 2 || p.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%s: preflight from another origin answered %d, Allow-Origin %q", name, p.Status, p.Header.Get("Access-Control-Allow-Origin"))
			}
			// The first-party frontend gets its own origin back, never *.
			if got := call(ep, corsOrigin).Header.Get("Access-Control-Allow-Origin"); got != corsOrigin {
				t.Errorf("%s: Allow-Origin %q for the configured frontend, want %q", name, got, corsOrigin)
			}
		}
	})
}
