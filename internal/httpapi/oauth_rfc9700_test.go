package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
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

// Row 15: a client cannot choose its identifier. RFC 7591 registration
// ignores a client_id (and a client_secret) in the body: the server picks
// both, and an existing client's id cannot be taken over.
func TestOAuthRegistrationIgnoresClientChosenID(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		for _, chosen := range []string{"my-own-client-id", s.conf.ID, "https://evil.example/client.json"} {
			r := regPost(e, regPath, "", map[string]any{"client_id": chosen, "client_secret": "my-own-secret-0123456789",
				"redirect_uris": []string{"https://app.example.com/cb"}, "client_name": "Chooser", "token_endpoint_auth_method": "client_secret_basic"})
			if r.Status != http.StatusCreated {
				t.Fatalf("client_id %q: %d %s", chosen, r.Status, r.Body)
			}
			m := r.JSON(t)
			id, _ := m["client_id"].(string)
			secret, _ := m["client_secret"].(string)
			if id == chosen || len(id) != 43 || secret == "" || secret == "my-own-secret-0123456789" {
				t.Fatalf("client_id %q: registered as %q with secret %q", chosen, id, secret)
			}
			if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_id = $1 AND registration_type = 'dynamic' AND client_name = 'Chooser'`, id); n != 1 {
				t.Fatalf("client_id %q: %d rows under the server's id %q", chosen, n, id)
			}
			// The chosen secret does not authenticate the new client.
			oaErr(t, oaIntrospect(e, oaClient{ID: id, Secret: "my-own-secret-0123456789"}, "x"), http.StatusUnauthorized, "invalid_client", "")
		}
		if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_id = $1 OR client_id = $2`, "my-own-client-id", "https://evil.example/client.json"); n != 0 {
			t.Fatalf("%d clients under ids chosen by the client", n)
		}
		// The existing client whose id was sent is untouched and still works.
		if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_id = $1 AND client_name = $2 AND registration_type = 'admin' AND client_secret_hash = $3`,
			s.conf.ID, "App "+oauth.Confidential, oauth.HashSecret(s.conf.Secret)); n != 1 {
			t.Fatal("registering with an existing client's id changed that client")
		}
		oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}})
	})
}
