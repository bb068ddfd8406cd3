package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// Scoped REST access (contract §4.4, docs/SCOPES.md): the authorization
// server's access tokens for the API audience call /api/v1 within their
// scopes; nothing else they carry gets them further.

const allAPIScopes = "openid read:users write:users read:organizations write:organizations admin"

// apiToken runs the code flow for the API resource with scope.
func apiToken(t *testing.T, e *apitest.Env, c oaClient, bearer, scope string) oaTokens {
	t.Helper()
	return oaFlow(t, e, c, bearer, url.Values{"scope": {scope}, "resource": {e.Config.Provider.APIResource}})
}

// wantScopeRefusal checks a 403 insufficient_scope answer: the envelope, and
// a challenge asking for the token's scopes plus need, pointing at the API's
// resource metadata.
func wantScopeRefusal(t *testing.T, e *apitest.Env, r apitest.Response, granted, need string) {
	t.Helper()
	r.Expect(t, http.StatusForbidden, "AUTH_004")
	ch := r.Header.Get("WWW-Authenticate")
	if !strings.Contains(ch, `error="insufficient_scope"`) ||
		!strings.Contains(ch, `resource_metadata="`+e.Config.Provider.Issuer+`/.well-known/oauth-protected-resource/api/v1"`) {
		t.Fatalf("challenge %q", ch)
	}
	i := strings.Index(ch, `scope="`)
	if i < 0 {
		t.Fatalf("challenge without scope: %q", ch)
	}
	asked := strings.Fields(strings.SplitN(ch[i+len(`scope="`):], `"`, 2)[0])
	for _, s := range append(strings.Fields(granted), need) {
		if !slices.Contains(asked, s) {
			t.Fatalf("challenge asks for %v, want %s and the granted %s", asked, need, granted)
		}
	}
}

func TestScopedAPIAccess(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		api := oaNewClient(t, e, s.admin.Access, oauth.Confidential, allAPIScopes)

		read := apiToken(t, e, api, s.alice.Access, "read:users read:organizations")
		if read.Scope != "read:users read:organizations" && read.Scope != "read:organizations read:users" {
			t.Fatalf("granted scope %q", read.Scope)
		}

		t.Run("within scope", func(t *testing.T) {
			me := e.Get("/api/v1/users/me", read.AccessToken).Expect(t, http.StatusOK, "").JSON(t)
			if me["email"] != "alice@example.com" || me["id"] != s.alice.UserID {
				t.Fatalf("users/me with a provider token: %v", me)
			}
			e.Get("/api/v1/organizations/me", read.AccessToken).Expect(t, http.StatusOK, "")
			e.Get("/api/v1/sessions/me", read.AccessToken).Expect(t, http.StatusOK, "")
		})

		t.Run("outside scope: 403 with step-up challenge, nothing changed", func(t *testing.T) {
			before := e.Snapshot()
			wantScopeRefusal(t, e, e.Patch("/api/v1/users/me", read.AccessToken, map[string]any{"first_name": "Mallory"}), read.Scope, "write:users")
			wantScopeRefusal(t, e, e.Post("/api/v1/organizations", read.AccessToken, map[string]any{"name": "Acme"}), read.Scope, "write:organizations")
			wantScopeRefusal(t, e, e.Get("/api/v1/admin/stats", read.AccessToken), read.Scope, "admin")
			if after := e.Snapshot(); after != before {
				t.Fatalf("refused requests changed the database:\n%s\n%s", before, after)
			}
			if me := e.Get("/api/v1/users/me", s.alice.Access).JSON(t); me["first_name"] == "Mallory" {
				t.Fatal("the refused PATCH was applied")
			}
		})

		t.Run("write scope", func(t *testing.T) {
			w := apiToken(t, e, api, s.alice.Access, "write:users")
			e.Patch("/api/v1/users/me", w.AccessToken, map[string]any{"first_name": "Alicia"}).Expect(t, http.StatusOK, "")
			if me := e.Get("/api/v1/users/me", s.alice.Access).JSON(t); me["first_name"] != "Alicia" {
				t.Fatalf("PATCH with write:users not applied: %v", me["first_name"])
			}
			// write does not imply read.
			wantScopeRefusal(t, e, e.Get("/api/v1/users/me", w.AccessToken), w.Scope, "read:users")
		})

		t.Run("credentials and sign-in state are never delegated", func(t *testing.T) {
			all := apiToken(t, e, api, s.alice.Access, "read:users write:users read:organizations write:organizations")
			before := e.Snapshot()
			for _, r := range []apitest.Response{
				e.Patch("/api/v1/users/me/password", all.AccessToken, map[string]any{"current_password": apitest.Password, "new_password": "An0ther!Passw0rd"}),
				e.Post("/api/v1/auth/logout-all", all.AccessToken, nil),
				e.Post("/api/v1/auth/logout", all.AccessToken, map[string]any{"refresh_token": s.alice.Refresh}),
				e.Delete(oaBase+"/consents/"+api.ID, all.AccessToken),
			} {
				r.Expect(t, http.StatusForbidden, "AUTH_004")
				if _, msg, _ := r.ErrorCode(t); !strings.Contains(msg, "does not accept OAuth access tokens") {
					t.Fatalf("refusal message %q", msg)
				}
			}
			if after := e.Snapshot(); after != before {
				t.Fatalf("refused requests changed the database:\n%s\n%s", before, after)
			}
			e.Login("alice@example.com", apitest.Password)
			e.Get("/api/v1/users/me", s.alice.Access).Expect(t, http.StatusOK, "")
		})

		t.Run("admin scope is for superusers, and superuser powers need it", func(t *testing.T) {
			// Alice asks for admin; the server grants the rest.
			tok := apiToken(t, e, api, s.alice.Access, "read:users admin")
			if tok.Scope != "read:users" {
				t.Fatalf("a regular user was granted %q", tok.Scope)
			}
			_, ch := oaPKCE()
			onlyAdmin := oaParams(api, ch, url.Values{"scope": {"admin"}, "resource": {e.Config.Provider.APIResource}})
			oaWantRedirectError(t, e, oaConsent(e, s.alice.Access, onlyAdmin, "true"), http.StatusSeeOther, onlyAdmin, "invalid_scope", "superusers")

			root := apiToken(t, e, api, s.admin.Access, "admin read:users")
			e.Get("/api/v1/admin/stats", root.AccessToken).Expect(t, http.StatusOK, "")
			e.Get("/api/v1/users", root.AccessToken).Expect(t, http.StatusOK, "")
			e.Get("/api/v1/users/"+s.alice.UserID, root.AccessToken).Expect(t, http.StatusOK, "")

			// The same superuser without the admin scope is a regular user.
			plain := apiToken(t, e, api, s.admin.Access, "read:users")
			e.Get("/api/v1/users/me", plain.AccessToken).Expect(t, http.StatusOK, "")
			if r := e.Get("/api/v1/users/"+s.alice.UserID, plain.AccessToken); r.Status != http.StatusForbidden {
				t.Fatalf("another user's profile without the admin scope: %d %s", r.Status, r.Body)
			}
			wantScopeRefusal(t, e, e.Get("/api/v1/users", plain.AccessToken), plain.Scope, "admin")
		})

		t.Run("audience and liveness", func(t *testing.T) {
			challenge := func(r apitest.Response) {
				t.Helper()
				r.Expect(t, http.StatusUnauthorized, "AUTH_006")
				ch := r.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) ||
					!strings.Contains(ch, `resource_metadata="`+e.Config.Provider.Issuer+`/.well-known/oauth-protected-resource/api/v1"`) ||
					!strings.Contains(ch, `scope="read:users"`) {
					t.Fatalf("challenge %q", ch)
				}
			}
			// A token for another resource, or for no resource, is not for the API.
			other := oaFlow(t, e, api, s.alice.Access, url.Values{"scope": {"read:users"}, "resource": {"https://mcp.example.com/mcp"}})
			challenge(e.Get("/api/v1/users/me", other.AccessToken))
			mcp := oaFlow(t, e, api, s.alice.Access, url.Values{"scope": {"read:users"}, "resource": {e.Config.Provider.MCPResource}})
			challenge(e.Get("/api/v1/users/me", mcp.AccessToken))
			none := oaFlow(t, e, api, s.alice.Access, url.Values{"scope": {"read:users"}})
			challenge(e.Get("/api/v1/users/me", none.AccessToken))

			// A revoked grant stops at once.
			tok := apiToken(t, e, api, s.alice.Access, "read:users")
			e.Get("/api/v1/users/me", tok.AccessToken).Expect(t, http.StatusOK, "")
			if r := oaRevoke(e, api, tok.RefreshToken, "refresh_token"); r.Status != http.StatusOK {
				t.Fatalf("revoke: %d %s", r.Status, r.Body)
			}
			challenge(e.Get("/api/v1/users/me", tok.AccessToken))

			// A tampered signature is a bad token, not a server error.
			good := apiToken(t, e, api, s.alice.Access, "read:users")
			challenge(e.Get("/api/v1/users/me", good.AccessToken[:len(good.AccessToken)-4]+"AAAA"))

			// Without a token, the challenge says where to find out how to get
			// one, and which scope the operation needs (RFC 6750 §3); an
			// operation that accepts no provider token names none.
			prm := `resource_metadata="` + e.Config.Provider.Issuer + `/.well-known/oauth-protected-resource/api/v1"`
			for _, tc := range []struct {
				r    apitest.Response
				want string
			}{
				{e.Get("/api/v1/users/me", ""), "Bearer " + prm + `, scope="read:users"`},
				{e.Patch("/api/v1/users/me", "", map[string]any{"first_name": "X"}), "Bearer " + prm + `, scope="write:users"`},
				{e.Get("/api/v1/organizations/me", ""), "Bearer " + prm + `, scope="read:organizations"`},
				{e.Get("/api/v1/admin/stats", ""), "Bearer " + prm + `, scope="admin"`},
				{e.Patch("/api/v1/users/me/password", "", map[string]any{"current_password": "x", "new_password": "y"}), "Bearer " + prm},
				{e.Get("/api/v1/organizations/me", "not-a-token"), `Bearer error="invalid_token", ` + prm + `, scope="read:organizations"`},
			} {
				tc.r.Expect(t, http.StatusUnauthorized, "AUTH_006")
				if got := tc.r.Header.Get("WWW-Authenticate"); got != tc.want {
					t.Fatalf("challenge %q, want %q", got, tc.want)
				}
			}
		})

		t.Run("deactivated user", func(t *testing.T) {
			bob := e.User("bob@example.com")
			tok := apiToken(t, e, api, bob.Access, "read:users")
			e.Post(adminUser(bob.UserID)+"/deactivate", s.admin.Access, nil).Expect(t, http.StatusOK, "")
			if r := e.Get("/api/v1/users/me", tok.AccessToken); r.Status != http.StatusUnauthorized {
				t.Fatalf("deactivated user's provider token: %d %s", r.Status, r.Body)
			}
		})
	})
}

// Without the authorization server, the 401 challenge is the reference's.
func TestAPIChallengeWithoutProvider(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		r := e.Get("/api/v1/users/me", "").Expect(t, http.StatusUnauthorized, "AUTH_006")
		if got := r.Header.Get("WWW-Authenticate"); got != "Bearer" {
			t.Fatalf("WWW-Authenticate %q, want Bearer", got)
		}
	})
}

// docs/SCOPES.md lists every authenticated /api/v1 operation with the scope
// the OpenAPI document (and so the server) requires of provider tokens.
func TestScopesDocMatchesServer(t *testing.T) {
	e := apitest.New(t, sqlstore.SQLite, oaOn())
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string                `json:"operationId"`
			Security    []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	e.Get("/api/v1/openapi.json", "").Expect(t, http.StatusOK, "").Decode(t, &doc)
	want := map[string]string{} // "METHOD path" -> scope or "—"
	for path, ops := range doc.Paths {
		for method, op := range ops {
			bearer, scope := false, "—"
			for _, req := range op.Security {
				if _, ok := req["bearer"]; ok {
					bearer = true
				}
				if s, ok := req["oauth"]; ok {
					scope = strings.Join(s, " ")
				}
			}
			// maybeSignedIn operations list an empty requirement too.
			optional := slices.ContainsFunc(op.Security, func(m map[string][]string) bool { return len(m) == 0 })
			if bearer && !optional {
				want[strings.ToUpper(method)+" "+path] = scope
			}
		}
	}
	if len(want) < 40 {
		t.Fatalf("only %d authenticated operations in the OpenAPI document", len(want))
	}
	f, err := os.Open("../../docs/SCOPES.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		cells := strings.Split(sc.Text(), "|")
		if len(cells) != 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		route := strings.Trim(strings.TrimSpace(cells[1]), "`")
		got[route] = strings.Trim(strings.TrimSpace(cells[2]), "`")
	}
	for route, scope := range want {
		if g, ok := got[route]; !ok {
			t.Errorf("docs/SCOPES.md does not list %s (scope %s)", route, scope)
		} else if g != scope {
			t.Errorf("docs/SCOPES.md: %s needs %q, the server requires %q", route, g, scope)
		}
	}
	for route := range got {
		if _, ok := want[route]; !ok {
			t.Errorf("docs/SCOPES.md lists %s, which is not an authenticated operation", route)
		}
	}
}

// golang.org/x/oauth2 with a resource indicator: the token it gets is for
// the API, its HTTP client calls the API with it, and its refresh keeps the
// audience.
func TestScopedAPIWithGoOAuth2(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		api := oaNewClient(t, e, s.admin.Access, oauth.Confidential, allAPIScopes)
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.Server.Client())
		resource := oauth2.SetAuthURLParam("resource", e.Config.Provider.APIResource)
		conf := &oauth2.Config{ClientID: api.ID, ClientSecret: api.Secret, RedirectURL: api.Redirect,
			Scopes:   []string{"read:users", "read:organizations"},
			Endpoint: oauth2.Endpoint{AuthURL: e.Server.URL + oaBase + "/authorize", TokenURL: e.Server.URL + oaBase + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		verifier := oauth2.GenerateVerifier()
		authURL := conf.AuthCodeURL("st-api", oauth2.S256ChallengeOption(verifier), resource)
		code := oaInteropCode(t, e.Server.URL, e.Config.Provider.Issuer, s.alice.Access, authURL, "st-api", api.Redirect)
		tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier), resource)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if _, c := oaJWT(t, tok.AccessToken); fmt.Sprint(c["aud"]) != "["+e.Config.Provider.APIResource+"]" {
			t.Fatalf("aud %v", c["aud"])
		}
		get := func(tok *oauth2.Token) map[string]any {
			t.Helper()
			resp, err := conf.Client(ctx, tok).Get(e.Server.URL + "/api/v1/users/me")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var m map[string]any
			if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil {
				t.Fatalf("GET /users/me through x/oauth2: %d", resp.StatusCode)
			}
			return m
		}
		if m := get(tok); m["id"] != s.alice.UserID {
			t.Fatalf("users/me %v", m)
		}
		// An expired token makes the library refresh; the new one still works
		// at the API, so the grant's audience survived the rotation.
		stale := &oauth2.Token{AccessToken: "expired", RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
		if m := get(stale); m["id"] != s.alice.UserID {
			t.Fatalf("users/me after refresh %v", m)
		}
		if oaRefresh(e, oaClient{ID: api.ID, Secret: api.Secret}, tok.RefreshToken, nil).Status == http.StatusOK {
			t.Fatal("the refresh token x/oauth2 rotated still works")
		}
	})
}
