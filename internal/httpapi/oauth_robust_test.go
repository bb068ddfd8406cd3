package httpapi_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

// Bad input on every protocol endpoint: text PostgreSQL cannot store (NUL,
// invalid UTF-8) and control characters never reach the database as a
// server error; each parameter gets the answer its RFC prescribes.

// oaBadValues are the values sent in place of each parameter.
var oaBadValues = []struct{ name, v string }{
	{"nul", "a\x00b"},
	{"invalid-utf8", "\xff\xfe"},
	{"control", "a\x01b"},
}

// oaNo5xx fails on a server error, whatever the endpoint.
func oaNo5xx(t *testing.T, what string, r apitest.Response) {
	t.Helper()
	if r.Status >= 500 {
		t.Fatalf("%s: status %d: %s", what, r.Status, r.Body)
	}
}

func TestOAuthUnstorableInputAtTheTokenRevocationAndIntrospectionEndpoints(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		verifier, challenge := oaPKCE()
		tok := oaFlow(t, e, s.conf, s.alice.Access, nil)
		for _, bad := range oaBadValues {
			t.Run(bad.name, func(t *testing.T) {
				basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(bad.v)+":secret"))
				code := oaCode(t, e, s.alice.Access, oaParams(s.pub, challenge, nil))
				for _, tc := range []struct {
					name, path string
					form       url.Values
					headers    map[string]string
					status     int
					code, desc string
				}{
					{"token client_id", "/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {oaRedirect}, "client_id": {bad.v}},
						nil, 401, "invalid_client", "Unknown client_id"},
					{"token client_id (refresh)", "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {bad.v}, "client_secret": {"x"}},
						nil, 401, "invalid_client", "Unknown client_id"},
					{"token Basic client_id", "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}},
						map[string]string{"Authorization": basic}, 401, "invalid_client", "Unknown client_id"},
					{"token client_secret", "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {s.conf.ID}, "client_secret": {bad.v}},
						nil, 401, "invalid_client", "Invalid client secret"},
					{"token grant_type", "/token", oaWithClient(s.conf, url.Values{"grant_type": {bad.v}}),
						nil, 400, "unsupported_grant_type", ""},
					{"token code", "/token", oaWithClient(s.conf, url.Values{"grant_type": {"authorization_code"}, "code": {bad.v}, "redirect_uri": {oaRedirect}}),
						nil, 400, "invalid_grant", "Invalid authorization code"},
					{"token redirect_uri", "/token", oaWithClient(s.pub, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.pub.Redirect + bad.v}, "code_verifier": {verifier}}),
						nil, 400, "invalid_request", "redirect_uri"},
					{"token code_verifier", "/token", oaWithClient(s.pub, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.pub.Redirect}, "code_verifier": {verifier + bad.v}}),
						nil, 400, "invalid_grant", "code_verifier"},
					{"token refresh_token", "/token", oaWithClient(s.conf, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bad.v}}),
						nil, 400, "invalid_grant", "Invalid refresh token"},
					{"token scope", "/token", oaWithClient(s.conf, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "scope": {"openid " + bad.v}}),
						nil, 400, "invalid_request", "scope"},
					{"token resource", "/token", oaWithClient(s.conf, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "resource": {"https://mcp.example.com/mcp" + bad.v}}),
						nil, 400, "invalid_target", ""},
					{"revoke client_id", "/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {bad.v}},
						nil, 401, "invalid_client", "Unknown client_id"},
					{"revoke Basic client_id", "/revoke", url.Values{"token": {tok.RefreshToken}},
						map[string]string{"Authorization": basic}, 401, "invalid_client", "Unknown client_id"},
					{"introspect client_id", "/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {bad.v}, "client_secret": {"x"}},
						nil, 401, "invalid_client", "Unknown client_id"},
					{"introspect Basic client_id", "/introspect", url.Values{"token": {tok.RefreshToken}},
						map[string]string{"Authorization": basic}, 401, "invalid_client", "Unknown client_id"},
				} {
					r := oaPost(e, oaBase+tc.path, "", tc.form, tc.headers)
					oaNo5xx(t, tc.name, r)
					oaErr(t, r, tc.status, tc.code, tc.desc)
				}

				// RFC 7009 §2.2: an invalid token is not an error of revocation.
				for _, f := range []url.Values{{"token": {bad.v}}, {"token": {bad.v}, "token_type_hint": {"access_token"}}, {"token": {"x"}, "token_type_hint": {bad.v}}} {
					r := oaPost(e, oaBase+"/revoke", "", oaWithClient(s.conf, f), nil)
					oaNo5xx(t, "revoke", r)
					if r.Status != http.StatusOK {
						t.Fatalf("revoke %q: %d %s", f, r.Status, r.Body)
					}
					oaNoStore(t, r)
				}
				// RFC 7662 §2.2: a token that is not one is inactive.
				for _, f := range []url.Values{{"token": {bad.v}}, {"token": {bad.v}, "token_type_hint": {"refresh_token"}}, {"token": {"x"}, "token_type_hint": {bad.v}}} {
					r := oaPost(e, oaBase+"/introspect", "", oaWithClient(s.conf, f), nil)
					oaNo5xx(t, "introspect", r)
					if r.Status != http.StatusOK || r.JSON(t)["active"] != false {
						t.Fatalf("introspect %q: %d %s", f, r.Status, r.Body)
					}
					oaNoStore(t, r)
				}
				// Userinfo (POST form): invalid_token.
				r := oaPost(e, oaBase+"/userinfo", "", url.Values{"access_token": {bad.v}}, nil)
				if r.Status != http.StatusUnauthorized || r.JSON(t)["error"] != "invalid_token" {
					t.Fatalf("userinfo: %d %s", r.Status, r.Body)
				}

				// None of it spent the grant: the refresh token still works
				// once, and the code once.
				if !oaActive(t, e, s.conf, tok.RefreshToken) {
					t.Fatal("a refused request spent the refresh token")
				}
				oaOK(t, oaExchange(e, s.pub, code, verifier, nil))
			})
		}

		// A User-Agent header may carry bytes that are not UTF-8 (obs-text);
		// the token is still issued, and the device is stored without them.
		f := oaWithClient(s.conf, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		oaOK(t, oaPost(e, oaBase+"/token", "", f, map[string]string{"User-Agent": "ua-\xff\xfe-1"}))
		if n := e.Count(`SELECT COUNT(*) FROM oauth_provider_refresh_tokens WHERE device_info = 'ua--1'`); n != 1 {
			t.Fatalf("%d refresh tokens with the cleaned User-Agent", n)
		}
	})
}

// At the authorization endpoint and the consent API: a bad client_id or
// redirect_uri is shown to the user and never redirected to; any other bad
// parameter goes back to the client as invalid_request (or the code the
// parameter's own rule gives).
func TestOAuthUnstorableInputAtTheAuthorizationEndpoint(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		_, challenge := oaPKCE()
		// Alice has consented, so a good request would issue a code (and
		// store its parameters).
		oaFlow(t, e, s.conf, s.alice.Access, nil)
		for _, bad := range oaBadValues {
			t.Run(bad.name, func(t *testing.T) {
				for _, tc := range []struct {
					param, code string
					redirect    bool
				}{
					{"client_id", "invalid_client", false},
					{"redirect_uri", "invalid_request", false},
					{"state", "invalid_request", true},
					{"nonce", "invalid_request", true},
					{"scope", "invalid_request", true},
					{"code_challenge", "invalid_request", true},
					{"code_challenge_method", "invalid_request", true},
					{"response_type", "unsupported_response_type", true},
					{"prompt", "invalid_request", true},
					{"resource", "invalid_target", true},
				} {
					v := oaParams(s.conf, challenge, url.Values{"scope": {"openid"}, "nonce": {"n-1"}})
					switch tc.param {
					case "redirect_uri", "scope":
						v.Set(tc.param, v.Get(tc.param)+bad.v)
					default:
						v.Set(tc.param, bad.v)
					}
					if tc.param == "client_id" || tc.param == "redirect_uri" {
						// Shown to the user: an error page for a browser, the
						// envelope for an API client; never a redirect.
						r := e.Do(apitest.Request{Method: "GET", Path: oaBase + "/authorize?" + v.Encode(), Token: s.alice.Access, Headers: map[string]string{"Accept": "text/html"}})
						oaNo5xx(t, "authorize "+tc.param, r)
						if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), tc.code) {
							t.Fatalf("authorize with a bad %s: %d Location %q; body %s", tc.param, r.Status, r.Header.Get("Location"), r.Body)
						}
						r = oaConsent(e, s.alice.Access, v, "true")
						oaNo5xx(t, "consent "+tc.param, r)
						if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" || !strings.Contains(string(r.Body), tc.code) {
							t.Fatalf("consent with a bad %s: %d Location %q; body %s", tc.param, r.Status, r.Header.Get("Location"), r.Body)
						}
						continue
					}
					r := oaAuthorize(e, s.alice.Access, v)
					oaNo5xx(t, "authorize "+tc.param, r)
					oaWantRedirectError(t, e, r, http.StatusFound, v, tc.code, "")
					if tc.param == "response_type" {
						continue // the consent API has no response_type
					}
					r = oaConsent(e, s.alice.Access, v, "true")
					oaNo5xx(t, "consent "+tc.param, r)
					oaWantRedirectError(t, e, r, http.StatusSeeOther, v, tc.code, "")
				}
			})
		}
		if n := e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes WHERE nonce <> 'n-1' AND nonce <> ''`); n != 0 {
			t.Fatalf("%d codes stored with a bad nonce", n)
		}
	})
}

// Client management reads stored clients only: an id that looks like a
// client metadata document's URL is never fetched (no outbound request, no
// 500 when the fetch fails); unknown is the reference's 404.
func TestOAuthClientManagementLooksUpStoredClientsOnly(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		var fetches atomic.Int32
		doc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetches.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=60")
			_ = json.NewEncoder(w).Encode(map[string]any{"client_id": "https://" + r.Host + r.URL.Path, "client_name": "Doc App",
				"redirect_uris": []string{"http://127.0.0.1:7777/cb"}, "token_endpoint_auth_method": "none"})
		}))
		t.Cleanup(doc.Close)
		pool := x509.NewCertPool()
		pool.AddCert(doc.Certificate())
		e.App.OAuth.MetadataFetcher().TrustRoots(pool)

		clients := oaBase + "/clients/"
		for _, id := range []string{"https://127.0.0.1/x", doc.URL + "/never-fetched.json", "a\x00b", "\xff\xfe"} {
			expectError(t, e.Delete(clients+url.PathEscape(id), s.admin.Access), http.StatusNotFound, "SYS_002", "Client not found", "")
		}
		if n := fetches.Load(); n != 0 {
			t.Fatalf("deleting unknown clients fetched %d metadata documents", n)
		}
		for _, id := range []string{"a\x00b", "\xff\xfe"} {
			expectError(t, e.Delete(oaBase+"/consents/"+url.PathEscape(id), s.alice.Access), http.StatusNotFound, "SYS_002", "No consent found for this client", "")
		}

		// A metadata-document client cached by an authorization is a stored
		// client: listed, and deleted without a fetch.
		id := doc.URL + "/app.json"
		_, challenge := oaPKCE()
		oaAuthorize(e, s.alice.Access, oaParams(oaClient{ID: id, Redirect: "http://127.0.0.1:7777/cb"}, challenge, nil))
		if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_id = $1`, id); n != 1 {
			t.Fatalf("the metadata client was not cached (%d rows)", n)
		}
		fetched := fetches.Load()
		e.Delete(clients+url.PathEscape(id), s.admin.Access).Expect(t, http.StatusNoContent, "")
		if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_id = $1`, id); n != 0 || fetches.Load() != fetched {
			t.Fatalf("after the delete: %d rows, %d fetches (was %d)", n, fetches.Load(), fetched)
		}
		expectError(t, e.Delete(clients+url.PathEscape(id), s.admin.Access), http.StatusNotFound, "SYS_002", "Client not found", "")
		if fetches.Load() != fetched {
			t.Fatal("deleting a deleted metadata client fetched its document")
		}
	}, apitest.WithEnv("OAUTH_CIMD_ALLOW_PRIVATE", "true"))
}

// A rate-limited request to the token, revocation, introspection or registration endpoint
// is an RFC 6749 error (429 temporarily_unavailable, Retry-After, no-store),
// not the API's envelope: those clients read only the RFC's format.
func TestOAuthRateLimitAnswersInTheRFCFormat(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		bogus := url.Values{"token": {"not-a-token"}}
		for _, tc := range []struct {
			path  string
			limit int
			form  url.Values
		}{
			{"/revoke", 30, oaWithClient(s.conf, bogus)},
			{"/introspect", 120, oaWithClient(s.conf, bogus)},
			{"/token", 60, oaWithClient(s.conf, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"not-a-token"}})},
		} {
			for i := 0; i < tc.limit; i++ {
				if r := oaPost(e, oaBase+tc.path, "", tc.form, nil); r.Status == http.StatusTooManyRequests {
					t.Fatalf("%s: limited after %d of %d requests", tc.path, i, tc.limit)
				}
			}
			r := oaPost(e, oaBase+tc.path, "", tc.form, nil)
			oaErr(t, r, http.StatusTooManyRequests, "temporarily_unavailable", "Rate limit exceeded")
			if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > 60 {
				t.Fatalf("%s: Retry-After %q", tc.path, r.Header.Get("Retry-After"))
			}
			if r.Header.Get("X-RateLimit-Remaining") != "0" {
				t.Fatalf("%s: X-RateLimit-Remaining %q", tc.path, r.Header.Get("X-RateLimit-Remaining"))
			}
		}
		// The root /token (MCP 2025-03-26 default path) shares the bucket.
		r := oaPost(e, "/token", "", url.Values{"grant_type": {"refresh_token"}}, nil)
		oaErr(t, r, http.StatusTooManyRequests, "temporarily_unavailable", "")

		// Dynamic registration (RFC 7591 errors have the same shape), at
		// both of its paths, which share one bucket of 10.
		reg := map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "client_name": "Limited"}
		for i := range 10 {
			path := oaBase + "/register"
			if i%2 == 1 {
				path = "/register"
			}
			if r := e.Post(path, "", reg); r.Status != http.StatusCreated {
				t.Fatalf("registration %d: %d %s", i, r.Status, r.Body)
			}
		}
		for _, path := range []string{oaBase + "/register", "/register"} {
			r := e.Post(path, "", reg)
			oaErr(t, r, http.StatusTooManyRequests, "temporarily_unavailable", "Rate limit exceeded")
			if r.Header.Get("Retry-After") == "" {
				t.Fatalf("%s: no Retry-After", path)
			}
		}
	}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
}

// Registration (by a superuser and dynamic) allows http redirect URIs on
// the three loopback hosts only.
func TestOAuthRegistrationLoopbackRedirectHosts(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		admin := e.Superuser(oaAdminEmail)
		for _, u := range []string{"http://127.0.0.1:8080/cb", "http://[::1]/cb", "http://localhost:3000/cb"} {
			oaNewClient(t, e, admin.Access, "public", "", u)
			r := e.Post(oaBase+"/register", "", map[string]any{"redirect_uris": []string{u}, "token_endpoint_auth_method": "none"})
			if r.Status != http.StatusCreated {
				t.Fatalf("dynamic registration of %s: %d %s", u, r.Status, r.Body)
			}
		}
		for _, u := range []string{"http://127.0.0.2/cb", "http://127.1:8080/cb", "http://[::ffff:127.0.0.1]/cb", "http://[0:0:0:0:0:0:0:1]/cb"} {
			r := oaRegister(e, admin.Access, url.Values{"client_name": {"Loop"}, "redirect_uris": {u}})
			if _, msg, field := r.Expect(t, http.StatusUnprocessableEntity, "VAL_001").ErrorCode(t); field != "redirect_uris" || !strings.Contains(msg, "https") {
				t.Fatalf("registration of %s: %s %v", u, msg, field)
			}
			r = e.Post(oaBase+"/register", "", map[string]any{"redirect_uris": []string{u}, "token_endpoint_auth_method": "none"})
			if r.Status != http.StatusBadRequest || r.JSON(t)["error"] != "invalid_redirect_uri" {
				t.Fatalf("dynamic registration of %s: %d %s", u, r.Status, r.Body)
			}
		}
	})
}

// auth_time is when the user logged in, not when the client asked: on the
// bearer-token path that is the creation of the token's session, for codes
// issued by the consent API and by the authorization endpoint alike.
func TestOAuthAuthTimeIsTheLoginTimeOfTheBearerSession(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		loggedIn := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
		e.Exec(`UPDATE user_sessions SET created_at = $1 WHERE user_id = $2`, loggedIn, s.alice.UserID)
		set := oaJWKS(t, e)
		// The first flow consents through the consent API; the second is
		// answered by the authorization endpoint itself.
		for i, path := range []string{"consent API", "authorization endpoint"} {
			tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid email"}})
			_, id := oaVerify(t, set, tok.IDToken)
			_, access := oaVerify(t, set, tok.AccessToken)
			for name, claims := range map[string]jwt.MapClaims{"ID token": id, "access token": access} {
				at, ok := claims["auth_time"].(float64)
				if !ok || math.Abs(at-float64(loggedIn.Unix())) > 1 {
					t.Fatalf("%s (%s, flow %d): auth_time %v, want the login time %d", name, path, i, claims["auth_time"], loggedIn.Unix())
				}
			}
			// Refreshes keep it.
			ref := oaOK(t, oaRefresh(e, s.conf, tok.RefreshToken, nil))
			if _, c := oaVerify(t, set, ref.IDToken); c["auth_time"] != id["auth_time"] {
				t.Fatalf("refresh changed auth_time: %v → %v", id["auth_time"], c["auth_time"])
			}
		}
	})
}

// An empty scope on the consent API is an absent one: the client's allowed
// scopes, as at the authorization endpoint (reference §6B.3 step 4), not
// invalid_scope.
func TestOAuthConsentWithEmptyScopeGrantsTheAllowedScopes(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		for _, scope := range []string{"", "   "} {
			verifier, challenge := oaPKCE()
			v := oaParams(s.conf, challenge, url.Values{"scope": {scope}})
			q := oaBackAtClient(t, e, oaLocation(t, oaConsent(e, s.alice.Access, v, "true"), http.StatusSeeOther), v)
			if q.Get("error") != "" || q.Get("code") == "" {
				t.Fatalf("scope %q: %v", scope, q)
			}
			tok := oaOK(t, oaExchange(e, s.conf, q.Get("code"), verifier, nil))
			if tok.Scope != "email openid profile" {
				t.Fatalf("scope %q granted %q, want the client's allowed scopes", scope, tok.Scope)
			}
		}
		// A non-empty scope still narrows, and one the client may not have
		// is still invalid_scope.
		_, challenge := oaPKCE()
		v := oaParams(s.conf, challenge, url.Values{"scope": {"admin"}})
		oaWantRedirectError(t, e, oaConsent(e, s.alice.Access, v, "true"), http.StatusSeeOther, v, "invalid_scope", "")
	})
}

// The authorization endpoint is where browsers land: past its rate limit a
// browser gets a page (429 with Retry-After), and other clients the envelope.
func TestOAuthAuthorizeRateLimitAnswersBrowsersWithAPage(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		apitest.FreshWindow(t, burstBudget, time.Minute)
		path := oaBase + "/authorize?client_id=unknown-client&response_type=code"
		html := map[string]string{"Accept": "text/html,application/xhtml+xml"}
		for i := range 30 {
			if r := e.Do(apitest.Request{Method: "GET", Path: path, Headers: html}); r.Status == http.StatusTooManyRequests {
				t.Fatalf("limited after %d of 30 requests", i)
			}
		}
		r := e.Do(apitest.Request{Method: "GET", Path: path, Headers: html})
		if r.Status != http.StatusTooManyRequests || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
			!strings.Contains(string(r.Body), "Too many requests") {
			t.Fatalf("browser past the limit: %d %s\n%s", r.Status, r.Header.Get("Content-Type"), r.Body)
		}
		if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > 60 {
			t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
		}
		e.Get(path, "").Expect(t, http.StatusTooManyRequests, "SYS_004")
	}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
}
