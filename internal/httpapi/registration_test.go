package httpapi_test

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

// Dynamic client registration (RFC 7591) and client ID metadata documents:
// how MCP clients get a client without anyone setting one up.

const regPath = oaBase + "/register"

func regPost(e *apitest.Env, path, bearer string, body any) apitest.Response {
	e.T.Helper()
	return e.Do(apitest.Request{Method: "POST", Path: path, Token: bearer, Body: body,
		Headers: map[string]string{"Content-Type": "application/json"}})
}

// regErr checks an RFC 7591 error answer.
func regErr(t *testing.T, r apitest.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil || m["error"] != code {
		t.Fatalf("error %v, want %s: %s", m["error"], code, r.Body)
	}
	if d, _ := m["error_description"].(string); d == "" {
		t.Fatalf("no error_description: %s", r.Body)
	}
}

func TestDynamicRegistration(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		meta := e.Get("/.well-known/oauth-authorization-server", "").Expect(t, http.StatusOK, "").JSON(t)
		if meta["registration_endpoint"] != e.Config.Provider.Issuer+regPath || meta["client_id_metadata_document_supported"] != true {
			t.Fatalf("metadata: registration_endpoint %v, client_id_metadata_document_supported %v",
				meta["registration_endpoint"], meta["client_id_metadata_document_supported"])
		}

		t.Run("public client, unknown metadata ignored, then a code flow", func(t *testing.T) {
			r := regPost(e, regPath, "", map[string]any{"redirect_uris": []string{"http://127.0.0.1:9999/cb"},
				"token_endpoint_auth_method": "none", "client_name": "My Tool", "application_type": "native",
				"logo_uri": "https://tool.example/logo.png", "software_statement": map[string]any{"x": 1}, "scope": "openid read:users admin"})
			if r.Status != http.StatusCreated {
				t.Fatalf("register: %d %s", r.Status, r.Body)
			}
			oaNoStore(t, r)
			m := r.JSON(t)
			id, _ := m["client_id"].(string)
			if id == "" || m["client_secret"] != nil || m["token_endpoint_auth_method"] != "none" || m["client_name"] != "My Tool" ||
				m["scope"] != "openid read:users" || m["application_type"] != "native" {
				t.Fatalf("registration response %v", m)
			}
			if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_id = $1 AND registration_type = 'dynamic' AND client_secret_hash IS NULL`, id); n != 1 {
				t.Fatalf("%d dynamic rows for the new client", n)
			}
			c := oaClient{ID: id, Redirect: "http://127.0.0.1:9999/cb"}
			tok := oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"read:users"}, "resource": {e.Config.Provider.APIResource}})
			e.Get("/api/v1/users/me", tok.AccessToken).Expect(t, http.StatusOK, "")
			// PKCE is required of it.
			v := oaParams(c, "", url.Values{"scope": {"read:users"}})
			oaWantRedirectError(t, e, oaAuthorize(e, s.alice.Access, v), http.StatusFound, v, "invalid_request", "PKCE")
		})

		t.Run("confidential client by default", func(t *testing.T) {
			m := regPost(e, regPath, "", map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}}).
				Expect(t, http.StatusCreated, "").JSON(t)
			secret, _ := m["client_secret"].(string)
			if secret == "" || m["token_endpoint_auth_method"] != "client_secret_basic" || m["client_secret_expires_at"] != float64(0) {
				t.Fatalf("registration response %v", m)
			}
			c := oaClient{ID: m["client_id"].(string), Secret: secret, Redirect: "https://app.example.com/cb"}
			oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"openid"}})
			if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_secret_hash = $1`, secret); n != 0 {
				t.Fatal("the client secret is stored in clear")
			}
		})

		t.Run("hostile metadata", func(t *testing.T) {
			many := make([]string, 10000)
			for i := range many {
				many[i] = fmt.Sprintf("https://app.example.com/cb/%d", i)
			}
			before := e.Snapshot()
			for _, tc := range []struct {
				name, code string
				body       any
			}{
				{"script in the name", "invalid_client_metadata", map[string]any{"client_name": "<script>alert(1)</script>", "redirect_uris": []string{"https://a.example/cb"}}},
				{"javascript: redirect", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}},
				{"data: redirect", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"data:text/html,hi"}}},
				{"plain http to a remote host", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}},
				{"fragment", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"https://a.example/cb#x"}}},
				{"10 000 redirect URIs", "invalid_client_metadata", map[string]any{"redirect_uris": many}},
				{"no redirect URIs", "invalid_redirect_uri", map[string]any{"client_name": "x"}},
				{"control characters in the name", "invalid_client_metadata", map[string]any{"client_name": "a\u0000b", "redirect_uris": []string{"https://a.example/cb"}}},
				{"overlong name", "invalid_client_metadata", map[string]any{"client_name": strings.Repeat("n", 300), "redirect_uris": []string{"https://a.example/cb"}}},
				{"only the admin scope", "invalid_client_metadata", map[string]any{"scope": "admin", "redirect_uris": []string{"https://a.example/cb"}}},
				{"unsupported auth method", "invalid_client_metadata", map[string]any{"token_endpoint_auth_method": "private_key_jwt", "redirect_uris": []string{"https://a.example/cb"}}},
				{"implicit grant", "invalid_client_metadata", map[string]any{"grant_types": []string{"implicit"}, "redirect_uris": []string{"https://a.example/cb"}}},
				{"token response type", "invalid_client_metadata", map[string]any{"response_types": []string{"token"}, "redirect_uris": []string{"https://a.example/cb"}}},
				{"unknown application type", "invalid_client_metadata", map[string]any{"application_type": "toaster", "redirect_uris": []string{"https://a.example/cb"}}},
				{"redirect_uris not a list", "invalid_client_metadata", map[string]any{"redirect_uris": "https://a.example/cb"}},
				{"not an object", "invalid_client_metadata", []string{"https://a.example/cb"}},
				{"not JSON", "invalid_client_metadata", "redirect_uris=https://a.example/cb"},
			} {
				t.Run(tc.name, func(t *testing.T) { regErr(t, regPost(e, regPath, "", tc.body), http.StatusBadRequest, tc.code) })
			}
			r := e.Do(apitest.Request{Method: "POST", Path: regPath, Body: `{"redirect_uris":["https://a.example/cb"]}`,
				Headers: map[string]string{"Content-Type": "text/plain"}})
			regErr(t, r, http.StatusBadRequest, "invalid_client_metadata")
			if after := e.Snapshot(); after != before {
				t.Fatalf("refused registrations changed the database:\n%s\n%s", before, after)
			}
		})

		t.Run("2025-03-26 default paths at the root", func(t *testing.T) {
			m := regPost(e, "/register", "", map[string]any{"redirect_uris": []string{"http://localhost:7000/cb"}, "token_endpoint_auth_method": "none"}).
				Expect(t, http.StatusCreated, "").JSON(t)
			c := oaClient{ID: m["client_id"].(string), Redirect: "http://localhost:7000/cb"}
			verifier, challenge := oaPKCE()
			v := oaParams(c, challenge, url.Values{"scope": {"openid"}})
			r := e.Do(apitest.Request{Method: "GET", Path: "/authorize?" + v.Encode()})
			if r.Status != http.StatusFound || r.Header.Get("Location") != oaBase+"/authorize?"+v.Encode() {
				t.Fatalf("/authorize: %d → %q", r.Status, r.Header.Get("Location"))
			}
			code := oaCode(t, e, s.alice.Access, v)
			f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.Redirect},
				"code_verifier": {verifier}, "client_id": {c.ID}}
			tok := oaOK(t, oaPost(e, "/token", "", f, nil))
			if tok.AccessToken == "" || tok.RefreshToken == "" {
				t.Fatalf("root /token: %+v", tok)
			}
		})
	})
}

func TestDynamicRegistrationModes(t *testing.T) {
	const initial = "initial-access-token-0123456789"
	body := map[string]any{"redirect_uris": []string{"https://app.example.com/cb"}}
	t.Run("token", func(t *testing.T) {
		oaEach(t, func(t *testing.T, e *apitest.Env) {
			before := e.Snapshot()
			for _, bearer := range []string{"", "wrong-token-0123456789abcdef", initial + "x"} {
				r := regPost(e, regPath, bearer, body)
				regErr(t, r, http.StatusUnauthorized, "invalid_token")
				if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("401 without a Bearer challenge: %q", r.Header.Get("WWW-Authenticate"))
				}
			}
			if e.Snapshot() != before {
				t.Fatal("refused registrations changed the database")
			}
			regPost(e, regPath, initial, body).Expect(t, http.StatusCreated, "")
			regPost(e, "/register", initial, body).Expect(t, http.StatusCreated, "")
		}, apitest.WithEnv("OAUTH_REGISTRATION", "token"), apitest.WithEnv("OAUTH_REGISTRATION_TOKEN", initial))
	})
	t.Run("off", func(t *testing.T) {
		oaEach(t, func(t *testing.T, e *apitest.Env) {
			if _, ok := e.Get("/.well-known/oauth-authorization-server", "").JSON(t)["registration_endpoint"]; ok {
				t.Fatal("registration_endpoint advertised while registration is off")
			}
			before := e.Snapshot()
			regErr(t, regPost(e, regPath, "", body), http.StatusNotFound, "invalid_request")
			if e.Snapshot() != before {
				t.Fatal("a registration with registration off changed the database")
			}
		}, apitest.WithEnv("OAUTH_REGISTRATION", "off"))
	})
	t.Run("rate limited", func(t *testing.T) {
		oaEach(t, func(t *testing.T, e *apitest.Env) {
			var statuses []int
			apitest.FreshWindow(t, burstBudget, time.Minute)
			for range 12 {
				statuses = append(statuses, regPost(e, regPath, "", body).Status)
			}
			if statuses[9] != http.StatusCreated || statuses[10] != http.StatusTooManyRequests || statuses[11] != http.StatusTooManyRequests {
				t.Fatalf("statuses %v, want 10 × 201 then 429", statuses)
			}
			if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE registration_type = 'dynamic'`); n != 10 {
				t.Fatalf("%d clients registered, want 10", n)
			}
		}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"), apitest.WithEnv("IS_TEST", "false"))
	})
}

// cimdServer serves client metadata documents over TLS, counting fetches.
type cimdServer struct {
	*httptest.Server
	fetches atomic.Int32
	closing chan struct{} // closed before the server, to end handlers still waiting
}

func newCIMDServer(t *testing.T) *cimdServer {
	cs := &cimdServer{closing: make(chan struct{})}
	doc := func(w http.ResponseWriter, self string, redirects ...string) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		_ = json.NewEncoder(w).Encode(map[string]any{"client_id": self, "client_name": "Metadata App",
			"redirect_uris": redirects, "token_endpoint_auth_method": "none"})
	}
	cs.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.fetches.Add(1)
		self := cs.URL + r.URL.Path
		switch r.URL.Path {
		case "/good.json":
			doc(w, self, "http://127.0.0.1:7777/cb")
		case "/redirect.json":
			http.Redirect(w, r, "/good.json", http.StatusFound)
		case "/slow.json":
			// Never answers, so the only way through is the fetch's
			// bound. (It used to write a valid document when its wait
			// ended; one CI run saw a fetch accept that document, which
			// made the test depend on when the wait ended.)
			select {
			case <-r.Context().Done():
			case <-cs.closing:
			}
		case "/huge.json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id": %q, "redirect_uris": ["http://127.0.0.1:7777/cb"], "client_name": %q}`, self, strings.Repeat("x", 100<<10))
		case "/html.json":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `{"client_id": %q, "redirect_uris": ["http://127.0.0.1:7777/cb"]}`, self)
		case "/notjson.json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, "this is not json")
		case "/other.json":
			doc(w, cs.URL+"/good.json", "http://127.0.0.1:7777/cb")
		case "/javascript.json":
			doc(w, self, "javascript:alert(1)")
		case "/noname.json", "/blankname.json", "/markupname.json":
			name := map[string]string{"/noname.json": "", "/blankname.json": " \t ", "/markupname.json": "<b>Bank</b>"}[r.URL.Path]
			w.Header().Set("Content-Type", "application/json")
			m := map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1:7777/cb"}, "token_endpoint_auth_method": "none"}
			if name != "" {
				m["client_name"] = name
			}
			_ = json.NewEncoder(w).Encode(m)
		case "/confidential.json":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id": %q, "redirect_uris": ["http://127.0.0.1:7777/cb"], "token_endpoint_auth_method": "client_secret_basic"}`, self)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { close(cs.closing); cs.Close() })
	return cs
}

func (cs *cimdServer) trust(e *apitest.Env) {
	pool := x509.NewCertPool()
	pool.AddCert(cs.Certificate())
	e.App.OAuth.MetadataFetcher().TrustRoots(pool)
}

func TestClientMetadataDocuments(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		cs := newCIMDServer(t)
		cs.trust(e)

		t.Run("a document's URL is the client_id", func(t *testing.T) {
			c := oaClient{ID: cs.URL + "/good.json", Redirect: "http://127.0.0.1:7777/cb"}
			tok := oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"read:users"}, "resource": {e.Config.Provider.APIResource}})
			e.Get("/api/v1/users/me", tok.AccessToken).Expect(t, http.StatusOK, "")
			// Cached per max-age: the second authorization does not fetch again.
			fetched := cs.fetches.Load()
			oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"read:users"}})
			if cs.fetches.Load() != fetched {
				t.Fatalf("the document was fetched again within its max-age (%d → %d)", fetched, cs.fetches.Load())
			}
			if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_id = $1 AND registration_type = 'metadata'`, c.ID); n != 1 {
				t.Fatalf("%d cached rows for the document client", n)
			}
			// Once the cached copy has expired, the next authorization fetches
			// the document again, and caches the new copy.
			e.Exec(`UPDATE oauth_clients SET metadata_expires_at = created_at WHERE client_id = $1`, c.ID)
			oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"read:users"}})
			if got := cs.fetches.Load(); got != fetched+1 {
				t.Fatalf("an expired cache entry led to %d fetches, want 1", got-fetched)
			}
			oaFlow(t, e, c, s.alice.Access, url.Values{"scope": {"read:users"}})
			if got := cs.fetches.Load(); got != fetched+1 {
				t.Fatalf("the document fetched again was not cached (%d fetches, want 1)", got-fetched)
			}
			// A redirect URI the document does not list is refused, to the user.
			_, ch := oaPKCE()
			v := oaParams(oaClient{ID: c.ID, Redirect: "http://127.0.0.1:7777/other"}, ch, url.Values{"scope": {"read:users"}})
			r := oaAuthorize(e, s.alice.Access, v)
			if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
				t.Fatalf("unlisted redirect_uri: %d → %q", r.Status, r.Header.Get("Location"))
			}
		})

		t.Run("unusable documents: invalid_client, nothing stored", func(t *testing.T) {
			// The reason the error names, where the test checks one.
			why := map[string]string{"noname": "client_name required", "blankname": "client_name required", "markupname": "client_name"}
			for _, name := range []string{"redirect", "slow", "huge", "html", "notjson", "other", "javascript", "confidential", "missing",
				"noname", "blankname", "markupname"} {
				t.Run(name, func(t *testing.T) {
					id := cs.URL + "/" + name + ".json"
					before := e.Snapshot()
					_, ch := oaPKCE()
					v := oaParams(oaClient{ID: id, Redirect: "http://127.0.0.1:7777/cb"}, ch, url.Values{"scope": {"read:users"}})
					r := oaAuthorize(e, s.alice.Access, v)
					if r.Status != http.StatusBadRequest || r.Header.Get("Location") != "" {
						t.Fatalf("authorize: %d → %q %s", r.Status, r.Header.Get("Location"), r.Body)
					}
					// The authorization endpoint shows the error (JSON callers get
					// the envelope); it never redirects to an unverified client.
					if _, msg, _ := r.ErrorCode(t); !strings.HasPrefix(msg, "invalid_client:") || !strings.Contains(msg, why[name]) {
						t.Fatalf("authorize error %q, want invalid_client mentioning %q", msg, why[name])
					}
					tr := oaPost(e, oaBase+"/token", "", url.Values{"grant_type": {"authorization_code"}, "code": {"x"},
						"client_id": {id}, "redirect_uri": {"http://127.0.0.1:7777/cb"}, "code_verifier": {strings.Repeat("v", 43)}}, nil)
					oaErr(t, tr, http.StatusUnauthorized, "invalid_client", "")
					if after := e.Snapshot(); after != before {
						t.Fatalf("an unusable document changed the database:\n%s\n%s", before, after)
					}
					if n := e.Count(`SELECT COUNT(*) FROM oauth_clients WHERE client_id = $1`, id); n != 0 {
						t.Fatalf("an unusable document was stored as a client (%d rows)", n)
					}
				})
			}
		})
	}, apitest.WithEnv("OAUTH_CIMD_ALLOW_PRIVATE", "true"))
}

// By default documents on private and loopback addresses are refused, also
// through a name that resolves to one.
func TestClientMetadataDocumentsRefusePrivateAddresses(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		cs := newCIMDServer(t)
		cs.trust(e)
		u, _ := url.Parse(cs.URL)
		for _, base := range []string{cs.URL, "https://localhost:" + u.Port()} {
			before := e.Snapshot()
			_, ch := oaPKCE()
			v := oaParams(oaClient{ID: base + "/good.json", Redirect: "http://127.0.0.1:7777/cb"}, ch, url.Values{"scope": {"read:users"}})
			r := oaAuthorize(e, s.alice.Access, v)
			if _, msg, _ := r.ErrorCode(t); r.Status != http.StatusBadRequest || !strings.HasPrefix(msg, "invalid_client:") || !strings.Contains(msg, "not public") {
				t.Fatalf("%s: %d %s", base, r.Status, msg)
			}
			if e.Snapshot() != before {
				t.Fatal("a refused document changed the database")
			}
		}
		if n := cs.fetches.Load(); n != 0 {
			t.Fatalf("the private server was contacted %d times", n)
		}
	})
}

// TestOAuthMetadataIssuerWithPath: behind a proxy under /auth, the metadata
// is also where clients look for an issuer with a path (RFC 8414 §3.1 and
// OpenID Connect path insertion), with that issuer and its endpoints.
func TestOAuthMetadataIssuerWithPath(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		const iss = "https://id.example.com/auth"
		for _, path := range []string{"/.well-known/oauth-authorization-server/auth", "/.well-known/openid-configuration/auth",
			"/.well-known/oauth-authorization-server"} {
			m := e.Get(path, "").Expect(t, http.StatusOK, "").JSON(t)
			if m["issuer"] != iss || m["token_endpoint"] != iss+oaBase+"/token" || m["registration_endpoint"] != iss+regPath {
				t.Fatalf("%s: issuer %v, token_endpoint %v, registration_endpoint %v", path, m["issuer"], m["token_endpoint"], m["registration_endpoint"])
			}
		}
		e.Get("/.well-known/oauth-authorization-server/other", "").Expect(t, http.StatusNotFound, "")
	}, oaOn(), apitest.WithEnv("OAUTH_ISSUER", "https://id.example.com/auth"))
}
