package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/seal"
	"github.com/gatehouse-dev/gatehouse/internal/socialtest"
)

// Social login end to end (reference §5.7, §6A; fixes 8, 9, 10, 11, 14, 27,
// 29): the real service on every engine against fake providers that speak
// OpenID Connect and GitHub's OAuth protocol over HTTP.

const (
	socRedirect     = "https://app.example.com/auth/callback"
	socGoogleClient = "gatehouse-test.apps.googleusercontent.com"
	socGoogleSecret = "google-client-secret"
	socGitHubClient = "Iv1.gatehouse-test"
	socGitHubSecret = "github-client-secret"
	socAcmeClient   = "acme-client"
	socAcmeSecret   = "acme-client-secret"

	socProviders = "/api/v1/oauth/providers"
	socAccounts  = "/api/v1/oauth/accounts"
	socMe        = "/api/v1/users/me"
	socRefresh   = "/api/v1/auth/refresh"
	socLoginPath = "/api/v1/auth/login"
	socSessions  = "/api/v1/sessions/me"

	socStateMsg = "Invalid or expired OAuth state"
	socExchange = "Failed to exchange authorization code"
)

// socFakes are the providers of one service: Google and a generic OIDC
// provider ("acme") are fake OpenID Connect providers, GitHub a fake GitHub.
type socFakes struct {
	Google *socialtest.OIDC
	GitHub *socialtest.GitHub
	Acme   *socialtest.OIDC
}

func socNewFakes(t *testing.T) *socFakes {
	return &socFakes{
		Google: socialtest.NewOIDC(t, socGoogleClient, socGoogleSecret),
		GitHub: socialtest.NewGitHub(t, socGitHubClient, socGitHubSecret),
		Acme:   socialtest.NewOIDC(t, socAcmeClient, socAcmeSecret),
	}
}

// env configures all three providers only by environment variables.
func (f *socFakes) env() []apitest.Option {
	return []apitest.Option{
		apitest.WithEnv("OAUTH_ENABLED", "true"),
		apitest.WithEnv("OAUTH_GOOGLE_ISSUER", f.Google.Issuer()),
		apitest.WithEnv("OAUTH_GOOGLE_CLIENT_ID", socGoogleClient),
		apitest.WithEnv("OAUTH_GOOGLE_CLIENT_SECRET", socGoogleSecret),
		apitest.WithEnv("OAUTH_GITHUB_URL", f.GitHub.URL()),
		apitest.WithEnv("OAUTH_GITHUB_API_URL", f.GitHub.APIURL()),
		apitest.WithEnv("OAUTH_GITHUB_CLIENT_ID", socGitHubClient),
		apitest.WithEnv("OAUTH_GITHUB_CLIENT_SECRET", socGitHubSecret),
		apitest.WithEnv("OAUTH_OIDC_PROVIDERS", "acme"),
		apitest.WithEnv("OAUTH_OIDC_ACME_ISSUER", f.Acme.Issuer()),
		apitest.WithEnv("OAUTH_OIDC_ACME_CLIENT_ID", socAcmeClient),
		apitest.WithEnv("OAUTH_OIDC_ACME_CLIENT_SECRET", socAcmeSecret),
		apitest.WithEnv("OAUTH_OIDC_ACME_DISPLAY_NAME", "Acme SSO"),
		apitest.WithEnv("OAUTH_OIDC_ACME_SCOPES", "email profile groups"),
	}
}

// socialEach runs fn on every engine with fresh fakes and a service
// configured for them (opts come last and may override).
func socialEach(t *testing.T, fn func(t *testing.T, e *apitest.Env, f *socFakes), opts ...apitest.Option) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			f := socNewFakes(t)
			fn(t, apitest.New(t, engine, append(f.env(), opts...)...), f)
		})
	}
}

type socUser struct {
	ID          string  `json:"id"`
	Email       string  `json:"email"`
	FirstName   string  `json:"first_name"`
	LastName    *string `json:"last_name"`
	IsActive    bool    `json:"is_active"`
	IsSuperuser bool    `json:"is_superuser"`
}

type socLogin struct {
	AccessToken  string  `json:"access_token"`
	RefreshToken string  `json:"refresh_token"`
	TokenType    string  `json:"token_type"`
	ExpiresIn    int     `json:"expires_in"`
	IsNewUser    *bool   `json:"is_new_user"`
	User         socUser `json:"user"`
}

// socOK checks a successful callback answer and decodes it.
func socOK(t *testing.T, r apitest.Response) socLogin {
	t.Helper()
	r.Expect(t, http.StatusOK, "")
	var l socLogin
	r.Decode(t, &l)
	if l.AccessToken == "" || l.RefreshToken == "" || l.TokenType != "bearer" || l.ExpiresIn <= 0 || l.IsNewUser == nil || l.User.ID == "" {
		t.Fatalf("incomplete login answer: %s", r.Body)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Fatalf("Cache-Control %q on a token response", cc)
	}
	return l
}

// socErr checks status, code and the exact message of an error answer.
func socErr(t *testing.T, r apitest.Response, status int, code, msg string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%s); body %s", r.Status, status, msg, r.Body)
	}
	gotCode, gotMsg, _ := r.ErrorCode(t)
	if gotCode != code || gotMsg != msg {
		t.Fatalf("error %s %q, want %s %q", gotCode, gotMsg, code, msg)
	}
}

// socDB is what a failed social login must not change: every table's row
// count (e.Snapshot) and the whole contents, every column, of the tables a
// social login writes: users, user_sessions and oauth_accounts (with the
// sealed provider tokens). oauth_states is left out: a callback consumes
// its state whatever happens next.
func socDB(t *testing.T, e *apitest.Env) string {
	t.Helper()
	return strings.Join([]string{e.Snapshot(), e.Rows("users"), e.Rows("user_sessions"), e.Rows("oauth_accounts")}, "\n")
}

// socUnchanged fails the test when the database differs from before (a
// socDB taken earlier).
func socUnchanged(t *testing.T, e *apitest.Env, before string) {
	t.Helper()
	if after := socDB(t, e); after != before {
		t.Fatalf("a failed request changed the database:\nbefore %s\nafter  %s", before, after)
	}
}

// socFinishFails posts the callback of l and checks it fails with status,
// code and msg without changing the database.
func socFinishFails(t *testing.T, e *apitest.Env, l *socialtest.Login, status int, code, msg string) {
	t.Helper()
	before := socDB(t, e)
	socErr(t, l.Finish(), status, code, msg)
	socUnchanged(t, e, before)
}

func socBox(t *testing.T) *seal.Box {
	t.Helper()
	box, err := seal.New(apitest.Secret, "provider-tokens")
	if err != nil {
		t.Fatal(err)
	}
	return box
}

type socLink struct {
	ID            string  `json:"id"`
	Provider      string  `json:"provider"`
	ProviderEmail *string `json:"provider_email"`
	CreatedAt     string  `json:"created_at"`
}

func socLinks(t *testing.T, e *apitest.Env, access string) []socLink {
	t.Helper()
	r := e.Get(socAccounts, access).Expect(t, http.StatusOK, "")
	var body struct {
		Accounts []socLink `json:"accounts"`
	}
	r.Decode(t, &body)
	return body.Accounts
}

func socProvidersOf(links []socLink) []string {
	var out []string
	for _, l := range links {
		out = append(out, l.Provider)
	}
	return out
}

func socCount(t *testing.T, e *apitest.Env, query string, args ...any) int {
	t.Helper()
	return e.Count(query, args...)
}

type socSession struct {
	ID         string  `json:"id"`
	DeviceName *string `json:"device_name"`
	DeviceID   *string `json:"device_id"`
	IPAddress  *string `json:"ip_address"`
	IsCurrent  bool    `json:"is_current"`
}

func socCurrentSession(t *testing.T, e *apitest.Env, access string) socSession {
	t.Helper()
	var body struct {
		Sessions []socSession `json:"sessions"`
	}
	e.Get(socSessions, access).Expect(t, http.StatusOK, "").Decode(t, &body)
	for _, s := range body.Sessions {
		if s.IsCurrent {
			return s
		}
	}
	t.Fatalf("no current session in %+v", body.Sessions)
	return socSession{}
}

func socStr(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// --- providers and the authorize endpoint --------------------------------

func TestSocialProvidersList(t *testing.T) {
	type provider struct {
		Provider string `json:"provider"`
		Name     string `json:"name"`
		Icon     string `json:"icon"`
	}
	type listing struct {
		Enabled   bool       `json:"enabled"`
		Providers []provider `json:"providers"`
	}
	all := []provider{{"google", "Google", "google"}, {"github", "GitHub", "github"}, {"acme", "Acme SSO", "acme"}, {"beta", "beta", "beta"}}
	betaEnv := []apitest.Option{
		apitest.WithEnv("OAUTH_OIDC_PROVIDERS", "acme, Beta"),
		apitest.WithEnv("OAUTH_OIDC_BETA_ISSUER", "https://idp.beta.example"),
		apitest.WithEnv("OAUTH_OIDC_BETA_CLIENT_ID", "beta-id"),
		apitest.WithEnv("OAUTH_OIDC_BETA_CLIENT_SECRET", "beta-secret"),
	}

	t.Run("enabled: google, github, then the OIDC providers in their order", func(t *testing.T) {
		socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
			var got listing
			e.Get(socProviders, "").Expect(t, http.StatusOK, "").Decode(t, &got)
			if !got.Enabled || !slices.Equal(got.Providers, all) {
				t.Fatalf("providers %+v, want enabled %+v", got, all)
			}
			if f.Google.DiscoveryRequests() != 0 {
				t.Fatal("listing providers contacted a provider")
			}
		}, betaEnv...)
	})

	t.Run("OAUTH_ENABLED=false: listed but not enabled, and every flow refused", func(t *testing.T) {
		socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
			var got listing
			e.Get(socProviders, "").Expect(t, http.StatusOK, "").Decode(t, &got)
			if got.Enabled || !slices.Equal(got.Providers, all) {
				t.Fatalf("providers %+v, want disabled %+v", got, all)
			}
			for _, p := range []string{"google", "github", "acme", "nope"} {
				socErr(t, socialtest.StartResponse(e, p, socRedirect), http.StatusBadRequest, "VAL_006", "OAuth is not enabled")
			}
			cb := e.Post(socialtest.CallbackPath("google", socRedirect), "", map[string]string{"code": "c", "state": "s"})
			socErr(t, cb, http.StatusBadRequest, "VAL_006", "OAuth is not enabled")
			// Accounts still work (reference: even when OAuth is disabled).
			u := e.User("disabled@example.com")
			if links := socLinks(t, e, u.Access); len(links) != 0 {
				t.Fatalf("links %+v", links)
			}
			if len(f.Google.Authorizations())+len(f.GitHub.Authorizations()) != 0 {
				t.Fatal("a provider was contacted")
			}
		}, append(betaEnv, apitest.WithEnv("OAUTH_ENABLED", "false"))...)
	})

	t.Run("no provider configured: not enabled, empty list", func(t *testing.T) {
		apitest.Each(t, func(t *testing.T, e *apitest.Env) {
			var got listing
			e.Get(socProviders, "").Expect(t, http.StatusOK, "").Decode(t, &got)
			if got.Enabled || got.Providers == nil || len(got.Providers) != 0 {
				t.Fatalf("providers %s", e.Get(socProviders, "").Body)
			}
		}, apitest.WithEnv("OAUTH_ENABLED", "true"))
	})
}

func TestSocialAuthorizeRefusals(t *testing.T) {
	t.Run("unknown and configured-but-not-enabled providers", func(t *testing.T) {
		apitest.Each(t, func(t *testing.T, e *apitest.Env) {
			socErr(t, socialtest.StartResponse(e, "x", socRedirect), http.StatusBadRequest, "VAL_006", "Unknown OAuth provider: x")
			// GitHub has an id but no secret; Google nothing at all.
			socErr(t, socialtest.StartResponse(e, "github", socRedirect), http.StatusBadRequest, "VAL_006", "OAuth provider github is not enabled")
			socErr(t, socialtest.StartResponse(e, "google", socRedirect), http.StatusBadRequest, "VAL_006", "OAuth provider google is not enabled")
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 0 {
				t.Fatalf("%d states stored for refused requests", n)
			}
			var got struct {
				Enabled   bool              `json:"enabled"`
				Providers []json.RawMessage `json:"providers"`
			}
			e.Get(socProviders, "").Expect(t, http.StatusOK, "").Decode(t, &got)
			if got.Enabled || len(got.Providers) != 0 {
				t.Fatalf("half-configured providers listed: %+v", got)
			}
		}, apitest.WithEnv("OAUTH_ENABLED", "true"), apitest.WithEnv("OAUTH_GITHUB_CLIENT_ID", "only-an-id"))
	})

	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		const (
			listed    = "https://mobile.example.org/oauth/done"
			listedApp = "com.example.app:/oauth2redirect"
		)
		t.Run("redirect_uri must be under FRONTEND_URL or listed", func(t *testing.T) {
			bad := []string{
				"https://evil.example.com/cb",
				"https://app.example.com.evil.com/cb",
				"https://app.example.com.evil.com",
				"https://app.example.com@evil.com/cb",
				"https://user:pw@app.example.com/cb",
				"https://app.example.com/cb#fragment",
				"https://app.example.com#",
				"http://app.example.com/cb",
				"https://app.example.com:8443/cb",
				"//app.example.com/cb",
				"/auth/callback",
				"javascript:alert(1)//https://app.example.com/",
				"https://evil.example.com/?next=https://app.example.com/cb",
				"https://app.example.comevil/cb",
				listed + "/more",
				listed + "?x=1",
			}
			for _, uri := range bad {
				for _, p := range []string{"google", "github"} {
					r := socialtest.StartResponse(e, p, uri)
					if r.Status != http.StatusBadRequest {
						t.Fatalf("%s with redirect_uri %q: status %d, want 400; body %s", p, uri, r.Status, r.Body)
					}
					code, msg, field := r.ErrorCode(t)
					if code != "VAL_006" || field != "redirect_uri" || !strings.Contains(msg, "FRONTEND_URL") {
						t.Fatalf("redirect_uri %q: %s %q field %v", uri, code, msg, field)
					}
				}
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 0 {
				t.Fatalf("%d states stored for refused redirect URIs", n)
			}
			for _, uri := range []string{"https://app.example.com", "https://app.example.com/", "https://app.example.com/auth/callback?next=%2Fhome", listed} {
				socialtest.Begin(t, e, "google", uri)
			}
		})

		t.Run("a listed redirect_uri of a native app (private-use scheme) is allowed", func(t *testing.T) {
			// README: OAUTH_ALLOWED_REDIRECT_URIS are "redirect URIs allowed
			// besides those under FRONTEND_URL"; RFC 8252 §7.1 apps use them.
			socialtest.Begin(t, e, "github", listedApp)
			r := socialtest.StartResponse(e, "github", "com.example.other:/oauth2redirect")
			if r.Status != http.StatusBadRequest {
				t.Fatalf("unlisted private-use scheme: %d %s", r.Status, r.Body)
			}
		})

		t.Run("redirect_uri is required", func(t *testing.T) {
			for _, path := range []string{"/api/v1/oauth/authorize/google", "/api/v1/oauth/callback/google"} {
				method := "GET"
				if strings.Contains(path, "callback") {
					method = "POST"
				}
				r := e.Do(apitest.Request{Method: method, Path: path, Body: map[string]string{"code": "c", "state": "s"}})
				if r.Status != http.StatusUnprocessableEntity {
					t.Fatalf("%s %s without redirect_uri: %d %s", method, path, r.Status, r.Body)
				}
				if code, _, _ := r.ErrorCode(t); code != "VAL_001" {
					t.Fatalf("code %s", code)
				}
			}
		})

		t.Run("link needs a signed-in user", func(t *testing.T) {
			r := e.Post(socialtest.LinkPath("google", socRedirect), "", nil)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("anonymous link: %d %s", r.Status, r.Body)
			}
			if r := e.Get(socAccounts, ""); r.Status != http.StatusUnauthorized {
				t.Fatalf("anonymous accounts: %d", r.Status)
			}
			if r := e.Delete(socAccounts+"/google", ""); r.Status != http.StatusUnauthorized {
				t.Fatalf("anonymous unlink: %d", r.Status)
			}
		})
	}, apitest.WithEnv("OAUTH_ALLOWED_REDIRECT_URIS", "https://mobile.example.org/oauth/done,com.example.app:/oauth2redirect"))
}

// --- the happy paths -----------------------------------------------------

func TestSocialGoogleLogin(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		f.Google.SetUser(socialtest.OIDCUser{Subject: "google-sub-1", Email: "New.Person@Example.COM", EmailVerified: true,
			GivenName: "Nadia", FamilyName: "Person", Name: "Nadia Person"})

		l := socialtest.Begin(t, e, "google", socRedirect)
		if !l.HasPrefix(f.Google.URL()) {
			t.Fatalf("authorization URL %s is not the provider's", l.AuthorizationURL)
		}

		// What is stored: one state, hashed; the verifier sealed.
		var storedVerifier string
		t.Run("the state is stored hashed and the verifier not in clear", func(t *testing.T) {
			var hash, verifier, nonce, redirect, provider string
			err := e.App.Store.DB().QueryRow(`SELECT state_hash, COALESCE(code_verifier, ''), COALESCE(nonce, ''), redirect_uri, provider
				FROM oauth_states`).Scan(&hash, &verifier, &nonce, &redirect, &provider)
			if err != nil {
				t.Fatal(err)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 1 {
				t.Fatalf("%d states", n)
			}
			for _, col := range []string{hash, verifier, nonce, redirect} {
				if strings.Contains(col, l.State) {
					t.Fatalf("the raw state is stored: %q", col)
				}
			}
			if hash == "" || verifier == "" || redirect != socRedirect || provider != "google" {
				t.Fatalf("state row: hash %q verifier %q redirect %q provider %q", hash, verifier, redirect, provider)
			}
			storedVerifier = verifier
		})

		t.Run("PKCE S256 and a nonce are sent to the provider", func(t *testing.T) {
			q := l.Query(t)
			if q.Get("state") != l.State || q.Get("response_type") != "code" {
				t.Fatalf("authorization URL %s", l.AuthorizationURL)
			}
			l.Approve(t)
			got := f.Google.Authorizations()
			if len(got) != 1 {
				t.Fatalf("%d authorization requests", len(got))
			}
			a := got[0]
			if a.ClientID != socGoogleClient || a.RedirectURI != socRedirect || a.State != l.State || a.ResponseType != "code" {
				t.Fatalf("authorization request %+v", a)
			}
			if scopes := strings.Fields(a.Scope); !slices.Equal(scopes, []string{"openid", "email", "profile"}) {
				t.Fatalf("scope %q", a.Scope)
			}
			if a.CodeChallengeMethod != "S256" || len(a.CodeChallenge) != 43 || len(a.Nonce) < 22 {
				t.Fatalf("PKCE/nonce: method %q challenge %q nonce %q", a.CodeChallengeMethod, a.CodeChallenge, a.Nonce)
			}
		})

		var first socLogin
		t.Run("a new user: user object, no password, names from the provider, email lower-cased", func(t *testing.T) {
			first = socOK(t, l.Finish())
			if !*first.IsNewUser {
				t.Fatal("is_new_user false for a new user")
			}
			u := first.User
			if u.Email != "new.person@example.com" || u.FirstName != "Nadia" || socStr(u.LastName) != "Person" || !u.IsActive || u.IsSuperuser {
				t.Fatalf("user %+v", u)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM users WHERE id = $1 AND password_hash IS NULL`, u.ID); n != 1 {
				t.Fatal("the new user has a password")
			}
			// The code went to the token endpoint with the PKCE verifier.
			trs := f.Google.TokenRequests()
			if len(trs) != 1 || trs[0].Error != "" || trs[0].ClientID != socGoogleClient || trs[0].ClientAuth == "" {
				t.Fatalf("token requests %+v", trs)
			}
			a := f.Google.Authorizations()[0]
			if socialtest.S256(trs[0].CodeVerifier) != a.CodeChallenge {
				t.Fatal("the verifier sent does not match the challenge")
			}
			if strings.Contains(storedVerifier, trs[0].CodeVerifier) || socialtest.S256(storedVerifier) == a.CodeChallenge {
				t.Fatalf("the PKCE verifier was stored in clear: %q", storedVerifier)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 0 {
				t.Fatalf("%d states left after the callback", n)
			}
		})

		t.Run("the tokens work: /users/me, /auth/refresh; the session is named after the provider", func(t *testing.T) {
			var me socUser
			e.Get(socMe, first.AccessToken).Expect(t, http.StatusOK, "").Decode(t, &me)
			if me.ID != first.User.ID || me.Email != "new.person@example.com" {
				t.Fatalf("/users/me %+v", me)
			}
			s := socCurrentSession(t, e, first.AccessToken)
			if socStr(s.DeviceName) != "OAuth (google)" {
				t.Fatalf("device name %q, want %q (Go's User-Agent says nothing better)", socStr(s.DeviceName), "OAuth (google)")
			}
			r := e.Post(socRefresh, "", map[string]string{"refresh_token": first.RefreshToken}).Expect(t, http.StatusOK, "")
			if m := r.JSON(t); m["access_token"] == "" || m["refresh_token"] == "" {
				t.Fatalf("refresh answer %s", r.Body)
			}
			// No password: a password login fails like a wrong password.
			e.Post(socLoginPath, "", map[string]string{"email": "new.person@example.com", "password": apitest.Password}).
				Expect(t, http.StatusUnauthorized, "AUTH_001")
		})

		t.Run("provider tokens are stored sealed", func(t *testing.T) {
			issued := f.Google.Issued()[0]
			var access, refresh string
			if err := e.App.Store.DB().QueryRow(`SELECT COALESCE(access_token, ''), COALESCE(refresh_token, '') FROM oauth_accounts
				WHERE user_id = $1 AND provider = 'google' AND provider_user_id = 'google-sub-1'`, first.User.ID).Scan(&access, &refresh); err != nil {
				t.Fatal(err)
			}
			if access == "" || strings.Contains(access, issued.AccessToken) || refresh == "" || strings.Contains(refresh, issued.RefreshToken) {
				t.Fatalf("provider tokens stored in clear: %q %q", access, refresh)
			}
			box := socBox(t)
			if a, err := box.Open(access); err != nil || a != issued.AccessToken {
				t.Fatalf("sealed access token opens to %q, %v", a, err)
			}
			if r, err := box.Open(refresh); err != nil || r != issued.RefreshToken {
				t.Fatalf("sealed refresh token opens to %q, %v", r, err)
			}
		})

		t.Run("a replayed state is refused", func(t *testing.T) {
			before := socDB(t, e)
			socErr(t, l.Finish(), http.StatusUnauthorized, "AUTH_006", socStateMsg)
			socUnchanged(t, e, before)
		})

		t.Run("the same identity logs into the same account and refreshes the stored tokens", func(t *testing.T) {
			second := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
			if *second.IsNewUser || second.User.ID != first.User.ID {
				t.Fatalf("second login: new=%v id=%s, want the account %s", *second.IsNewUser, second.User.ID, first.User.ID)
			}
			box := socBox(t)
			sealed := func() (string, string) {
				var a, r string
				if err := e.App.Store.DB().QueryRow(`SELECT COALESCE(access_token, ''), COALESCE(refresh_token, '') FROM oauth_accounts
					WHERE user_id = $1`, first.User.ID).Scan(&a, &r); err != nil {
					t.Fatal(err)
				}
				a, _ = box.Open(a)
				r, _ = box.Open(r)
				return a, r
			}
			iss := f.Google.Issued()
			if a, r := sealed(); a != iss[1].AccessToken || r != iss[1].RefreshToken {
				t.Fatal("stored provider tokens were not refreshed")
			}
			// A provider that sends no new refresh token keeps the old one.
			f.Google.SetNoRefreshToken(true)
			defer f.Google.SetNoRefreshToken(false)
			socOK(t, socialtest.Dance(t, e, "google", socRedirect))
			iss = f.Google.Issued()
			if a, r := sealed(); a != iss[2].AccessToken || r != iss[1].RefreshToken {
				t.Fatal("a login without refresh token lost the stored one or kept the old access token")
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM users`); n != 1 {
				t.Fatalf("%d users after three logins", n)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_accounts`); n != 1 {
				t.Fatalf("%d links after three logins", n)
			}
		})

		t.Run("the session records the client like a password login (fix 14)", func(t *testing.T) {
			r := socialtest.Begin(t, e, "google", socRedirect).Approve(t).Finish(map[string]string{
				"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.10", "X-Device-Id": "phone-7"})
			s := socCurrentSession(t, e, socOK(t, r).AccessToken)
			if socStr(s.IPAddress) != "127.0.0.1" || socStr(s.DeviceID) != "phone-7" {
				t.Fatalf("session ip %q device %q: forwarding headers of an untrusted peer must be ignored", socStr(s.IPAddress), socStr(s.DeviceID))
			}
		})

		t.Run("no provider token, secret or verifier reaches the logs", func(t *testing.T) {
			logs := e.Logs.String()
			secrets := []string{socGoogleSecret, l.State}
			for _, iss := range f.Google.Issued() {
				secrets = append(secrets, iss.AccessToken, iss.IDToken)
				if iss.RefreshToken != "" {
					secrets = append(secrets, iss.RefreshToken)
				}
			}
			for _, tr := range f.Google.TokenRequests() {
				secrets = append(secrets, tr.CodeVerifier, tr.Code)
			}
			for _, sec := range secrets {
				if sec != "" && strings.Contains(logs, sec) {
					t.Fatalf("a secret reached the logs: %.20s…", sec)
				}
			}
		})

		t.Run("no or an uninformative User-Agent: the provider names the session", func(t *testing.T) {
			for _, ua := range []string{"", "curl/8.4.0"} {
				r := socialtest.Begin(t, e, "google", socRedirect).Approve(t).Finish(map[string]string{"User-Agent": ua})
				if s := socCurrentSession(t, e, socOK(t, r).AccessToken); socStr(s.DeviceName) != "OAuth (google)" {
					t.Fatalf("User-Agent %q: device name %q", ua, socStr(s.DeviceName))
				}
			}
		})

		t.Run("a browser's User-Agent names the session", func(t *testing.T) {
			const chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
			r := socialtest.Begin(t, e, "google", socRedirect).Approve(t).Finish(map[string]string{"User-Agent": chrome})
			s := socCurrentSession(t, e, socOK(t, r).AccessToken)
			if socStr(s.DeviceName) != "Chrome on Mac" {
				t.Fatalf("device name %q", socStr(s.DeviceName))
			}
		})
	})
}

func TestSocialStateRules(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		t.Run("an expired state is refused", func(t *testing.T) {
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			e.Exec(`UPDATE oauth_states SET expires_at = $1`, time.Now().Add(-time.Minute).UTC())
			socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", socStateMsg)
			if n := len(f.Google.TokenRequests()); n != 0 {
				t.Fatalf("the code was redeemed for an expired state (%d token requests)", n)
			}
		})

		t.Run("a redirect_uri that differs from the authorize call is refused", func(t *testing.T) {
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			before := socDB(t, e)
			socErr(t, l.FinishAt("google", "https://app.example.com/other", l.Code, l.ReturnedState), http.StatusUnauthorized, "AUTH_006", "Redirect URI mismatch")
			socUnchanged(t, e, before)
			// The state is spent even so (reference: consumed before the check).
			socErr(t, l.Finish(), http.StatusUnauthorized, "AUTH_006", socStateMsg)
		})

		t.Run("a state is bound to its provider", func(t *testing.T) {
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			socErr(t, l.FinishAt("github", socRedirect, l.Code, l.ReturnedState), http.StatusUnauthorized, "AUTH_006", socStateMsg)
		})

		t.Run("unknown or empty states are refused", func(t *testing.T) {
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			socErr(t, l.FinishAt("google", socRedirect, l.Code, l.State+"x"), http.StatusUnauthorized, "AUTH_006", socStateMsg)
			socErr(t, l.FinishAt("google", socRedirect, l.Code, ""), http.StatusUnauthorized, "AUTH_006", socStateMsg)
			// The real state still works once.
			socOK(t, l.Finish())
		})

		t.Run("a wrong code fails at the provider", func(t *testing.T) {
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			l.Code = "not-the-code"
			socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", socExchange)
		})

		if len(f.Google.TokenRequests()) != 3 {
			t.Fatalf("token requests %+v", f.Google.TokenRequests())
		}

		t.Run("concurrent callbacks with one state: exactly one logs in", func(t *testing.T) {
			f.Google.SetUser(socialtest.OIDCUser{Subject: "racer", Email: "racer@example.com", EmailVerified: true})
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			statuses := socParallel(8, func(int) int { return l.Finish().Status })
			if socTally(statuses, http.StatusOK) != 1 || socTally(statuses, http.StatusUnauthorized) != 7 {
				t.Fatalf("statuses %v, want one 200 and seven 401", statuses)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM users WHERE email = 'racer@example.com'`); n != 1 {
				t.Fatalf("%d users", n)
			}
		})

		t.Run("two first logins of one identity at once make one account, and no 500", func(t *testing.T) {
			f.Google.SetUser(socialtest.OIDCUser{Subject: "twin", Email: "twin@example.com", EmailVerified: true})
			ls := []*socialtest.Login{socialtest.Begin(t, e, "google", socRedirect).Approve(t), socialtest.Begin(t, e, "google", socRedirect).Approve(t)}
			statuses := socParallel(2, func(i int) int { return ls[i].Finish().Status })
			if socTally(statuses, http.StatusOK) < 1 || slices.ContainsFunc(statuses, func(s int) bool { return s >= 500 }) {
				t.Fatalf("statuses %v", statuses)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM users WHERE email = 'twin@example.com'`); n != 1 {
				t.Fatalf("%d accounts for one identity", n)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_accounts WHERE provider_user_id = 'twin'`); n != 1 {
				t.Fatalf("%d links for one identity", n)
			}
		})

		t.Run("malformed callbacks are 4xx", func(t *testing.T) {
			for _, body := range []any{"{", `{"code": 1, "state": "s"}`, map[string]string{"code": strings.Repeat("c", 5000), "state": "s"},
				map[string]string{"code": "c", "state": strings.Repeat("s", 600)}, "[]"} {
				r := e.Do(apitest.Request{Method: "POST", Path: socialtest.CallbackPath("google", socRedirect), Body: body})
				if r.Status < 400 || r.Status >= 500 {
					t.Fatalf("body %.40v: status %d %s", body, r.Status, r.Body)
				}
				r.ErrorCode(t)
			}
		})
	})
}

// socParallel runs fn n times at once and returns the results.
func socParallel(n int, fn func(i int) int) []int {
	out := make([]int, n)
	done := make(chan struct{})
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			out[i] = fn(i)
			done <- struct{}{}
		}()
	}
	close(start)
	for range n {
		<-done
	}
	return out
}

func socTally(list []int, v int) int {
	n := 0
	for _, x := range list {
		if x == v {
			n++
		}
	}
	return n
}

func TestSocialGitHubLogin(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		f.GitHub.SetUser(socialtest.GitHubUser{ID: 4242, Login: "mona", Name: "Mona Lisa Octocat", Email: "public@mona.example",
			Emails: []socialtest.GitHubEmail{
				{Email: "old@mona.example", Primary: false, Verified: true},
				{Email: "Mona@Primary.Example", Primary: true, Verified: true},
			}})

		t.Run("no PKCE, no nonce; primary verified email; names split", func(t *testing.T) {
			l := socialtest.Begin(t, e, "github", socRedirect)
			if !strings.HasPrefix(l.AuthorizationURL, f.GitHub.URL()+"/login/oauth/authorize?") {
				t.Fatalf("authorization URL %s", l.AuthorizationURL)
			}
			l.Approve(t)
			a := f.GitHub.Authorizations()[0]
			if a.ClientID != socGitHubClient || a.RedirectURI != socRedirect || a.State != l.State || a.Scope != "read:user user:email" {
				t.Fatalf("authorization request %+v", a)
			}
			if a.CodeChallenge != "" || a.CodeChallengeMethod != "" || a.Nonce != "" {
				t.Fatalf("GitHub got PKCE or a nonce: %+v", a)
			}
			var verifier string
			if err := e.App.Store.DB().QueryRow(`SELECT COALESCE(code_verifier, '') FROM oauth_states`).Scan(&verifier); err != nil || verifier != "" {
				t.Fatalf("a verifier was stored for GitHub: %q %v", verifier, err)
			}
			got := socOK(t, l.Finish())
			if !*got.IsNewUser || got.User.Email != "mona@primary.example" || got.User.FirstName != "Mona" || socStr(got.User.LastName) != "Lisa Octocat" {
				t.Fatalf("user %+v", got.User)
			}
			tr := f.GitHub.TokenRequests()
			if len(tr) != 1 || tr[0].Error != "" || tr[0].CodeVerifier != "" {
				t.Fatalf("token requests %+v", tr)
			}
			if api := f.GitHub.APIRequests(); !slices.Contains(api, "GET /user OK") || !slices.Contains(api, "GET /user/emails OK") {
				t.Fatalf("API requests %v", api)
			}
			links := socLinks(t, e, got.AccessToken)
			if len(links) != 1 || links[0].Provider != "github" || socStr(links[0].ProviderEmail) != "mona@primary.example" {
				t.Fatalf("links %+v", links)
			}
			var access string
			if err := e.App.Store.DB().QueryRow(`SELECT COALESCE(access_token, '') FROM oauth_accounts`).Scan(&access); err != nil {
				t.Fatal(err)
			}
			if raw := f.GitHub.Issued()[0].AccessToken; strings.Contains(access, raw) {
				t.Fatal("GitHub token stored in clear")
			} else if opened, err := socBox(t).Open(access); err != nil || opened != raw {
				t.Fatalf("sealed GitHub token opens to %q %v", opened, err)
			}
			if s := socCurrentSession(t, e, got.AccessToken); socStr(s.DeviceName) != "OAuth (github)" {
				t.Fatalf("device name %q", socStr(s.DeviceName))
			}
			again := socOK(t, socialtest.Dance(t, e, "github", socRedirect))
			if *again.IsNewUser || again.User.ID != got.User.ID {
				t.Fatal("second GitHub login made another account")
			}
		})

		t.Run("without a name the login is the first name", func(t *testing.T) {
			f.GitHub.SetUser(socialtest.GitHubUser{ID: 4343, Login: "noname",
				Emails: []socialtest.GitHubEmail{{Email: "noname@example.com", Primary: true, Verified: true}}})
			got := socOK(t, socialtest.Dance(t, e, "github", socRedirect))
			if got.User.FirstName != "noname" || got.User.LastName != nil {
				t.Fatalf("user %+v", got.User)
			}
		})

		t.Run("no verified primary email: no account and no link", func(t *testing.T) {
			existing := e.Register("public@unverified.example")
			msgs := map[string]string{
				"public@unverified.example": "An account with the email public@unverified.example already exists. Log in to it and link GitHub from your account instead.",
				"fresh@unverified.example":  "GitHub did not confirm that the email address fresh@unverified.example is verified. Verify it with GitHub and try again.",
			}
			for _, public := range []string{"public@unverified.example", "fresh@unverified.example"} {
				f.GitHub.SetUser(socialtest.GitHubUser{ID: 5151, Login: "unverified", Name: "Un Verified", Email: public,
					Emails: []socialtest.GitHubEmail{
						{Email: public, Primary: true, Verified: false},
						{Email: "other@verified.example", Primary: false, Verified: true},
					}})
				l := socialtest.Begin(t, e, "github", socRedirect).Approve(t)
				socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", msgs[public])
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_accounts WHERE user_id = $1`, existing); n != 0 {
				t.Fatal("an unverified GitHub email was linked")
			}
		})

		t.Run("no email at all", func(t *testing.T) {
			f.GitHub.SetUser(socialtest.GitHubUser{ID: 6161, Login: "private"})
			socFinishFails(t, e, socialtest.Begin(t, e, "github", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006",
				"Email is required for registration. Please grant email permission to github.")
		})
	})
}

// --- auto-link, link mode, unlink ----------------------------------------

func TestSocialAutoLinkByEmail(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		alice := e.User("alice@example.com")

		t.Run("an unverified email never links (fix 9)", func(t *testing.T) {
			for _, v := range []any{false, "false", nil} {
				f.Google.SetUser(socialtest.OIDCUser{Subject: "alice-google", Email: "ALICE@Example.com", EmailVerified: v, GivenName: "Mallory"})
				socFinishFails(t, e, socialtest.Begin(t, e, "google", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006",
					"An account with the email alice@example.com already exists. Log in to it and link Google from your account instead.")
			}
		})

		t.Run("a verified email links, case-insensitively", func(t *testing.T) {
			f.Google.SetUser(socialtest.OIDCUser{Subject: "alice-google", Email: "ALICE@Example.com", EmailVerified: "true", GivenName: "Alice"})
			got := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
			if *got.IsNewUser || got.User.ID != alice.UserID {
				t.Fatalf("login went to %s (new=%v), want alice %s", got.User.ID, *got.IsNewUser, alice.UserID)
			}
			links := socLinks(t, e, alice.Access)
			if len(links) != 1 || links[0].Provider != "google" || socStr(links[0].ProviderEmail) != "alice@example.com" {
				t.Fatalf("links %+v", links)
			}
			e.Login("alice@example.com", apitest.Password) // the password still works
		})

		t.Run("a second identity of a provider the user has just logs in", func(t *testing.T) {
			f.GitHub.SetUser(socialtest.GitHubUser{ID: 777, Login: "alice-work",
				Emails: []socialtest.GitHubEmail{{Email: "alice.work@example.com", Primary: true, Verified: true}}})
			socOK(t, socialtest.Dance(t, e, "github", socRedirect, socialtest.WithBearer(alice.Access)))
			// Another GitHub identity whose verified email is alice's.
			f.GitHub.SetUser(socialtest.GitHubUser{ID: 778, Login: "alice-home",
				Emails: []socialtest.GitHubEmail{{Email: "Alice@example.com", Primary: true, Verified: true}}})
			got := socOK(t, socialtest.Dance(t, e, "github", socRedirect))
			if *got.IsNewUser || got.User.ID != alice.UserID {
				t.Fatalf("login went to %s (new=%v), want alice", got.User.ID, *got.IsNewUser)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_accounts WHERE user_id = $1 AND provider = 'github'`, alice.UserID); n != 1 {
				t.Fatalf("alice has %d github links", n)
			}
		})

		t.Run("an inactive account is not auto-linked", func(t *testing.T) {
			e.Register("dormant@example.com")
			e.Exec(`UPDATE users SET is_active = FALSE WHERE email = 'dormant@example.com'`)
			f.Google.SetUser(socialtest.OIDCUser{Subject: "dormant-google", Email: "dormant@example.com", EmailVerified: true})
			socFinishFails(t, e, socialtest.Begin(t, e, "google", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006", "User account is inactive")
		})
	})

	t.Run("OAUTH_AUTO_LINK_BY_EMAIL=false", func(t *testing.T) {
		socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
			bob := e.Register("bob@example.com")
			f.Google.SetUser(socialtest.OIDCUser{Subject: "bob-google", Email: "bob@example.com", EmailVerified: true})
			socFinishFails(t, e, socialtest.Begin(t, e, "google", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006",
				"An account with the email bob@example.com already exists. Log in to it and link Google from your account instead.")
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_accounts WHERE user_id = $1`, bob); n != 0 {
				t.Fatal("auto-linked although disabled")
			}
		}, apitest.WithEnv("OAUTH_AUTO_LINK_BY_EMAIL", "false"))
	})
}

func TestSocialLinkMode(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		bob := e.User("bob@example.com")
		carol := e.User("carol@example.com")

		t.Run("POST /oauth/link links to the caller whatever the provider's email", func(t *testing.T) {
			f.Google.SetUser(socialtest.OIDCUser{Subject: "bob-google", Email: "bobby@gmail.example", EmailVerified: false, GivenName: "Bobby"})
			got := socOK(t, socialtest.Dance(t, e, "google", socRedirect, socialtest.ViaLink(bob.Access)))
			if *got.IsNewUser || got.User.ID != bob.UserID || got.User.Email != "bob@example.com" {
				t.Fatalf("link answer %+v", got)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 0 {
				t.Fatalf("%d states left", n)
			}
		})

		t.Run("GET /oauth/authorize with a bearer token links too", func(t *testing.T) {
			f.GitHub.SetUser(socialtest.GitHubUser{ID: 9001, Login: "bob-gh", Emails: []socialtest.GitHubEmail{{Email: "bob@github.example", Primary: true, Verified: true}}})
			l := socialtest.Begin(t, e, "github", socRedirect, socialtest.WithBearer(bob.Access))
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states WHERE user_id = $1`, bob.UserID); n != 1 {
				t.Fatalf("%d states of bob, want the link-mode state", n)
			}
			got := socOK(t, l.Approve(t).Finish())
			if got.User.ID != bob.UserID {
				t.Fatalf("linked to %s", got.User.ID)
			}
		})

		t.Run("GET /oauth/accounts: newest first, no tokens", func(t *testing.T) {
			r := e.Get(socAccounts, bob.Access).Expect(t, http.StatusOK, "")
			if strings.Contains(strings.ToLower(string(r.Body)), "token") {
				t.Fatalf("tokens in the account list: %s", r.Body)
			}
			for _, raw := range append(f.Google.Issued(), f.GitHub.Issued()...) {
				if strings.Contains(string(r.Body), raw.AccessToken) {
					t.Fatal("provider token returned")
				}
			}
			var body struct {
				Accounts []map[string]any `json:"accounts"`
			}
			r.Decode(t, &body)
			if len(body.Accounts) != 2 {
				t.Fatalf("accounts %s", r.Body)
			}
			for _, a := range body.Accounts {
				keys := make([]string, 0, len(a))
				for k := range a {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				if !slices.Equal(keys, []string{"created_at", "id", "provider", "provider_email"}) {
					t.Fatalf("account fields %v", keys)
				}
			}
			links := socLinks(t, e, bob.Access)
			if got := socProvidersOf(links); !slices.Equal(got, []string{"github", "google"}) {
				t.Fatalf("order %v, want newest first", got)
			}
			if socStr(links[1].ProviderEmail) != "bobby@gmail.example" || socStr(links[0].ProviderEmail) != "bob@github.example" {
				t.Fatalf("provider emails %+v", links)
			}
			c0, err0 := time.Parse(time.RFC3339Nano, links[0].CreatedAt)
			c1, err1 := time.Parse(time.RFC3339Nano, links[1].CreatedAt)
			if err0 != nil || err1 != nil || c0.Before(c1) {
				t.Fatalf("created_at %q %q", links[0].CreatedAt, links[1].CreatedAt)
			}
			if links := socLinks(t, e, carol.Access); len(links) != 0 {
				t.Fatalf("carol sees %+v", links)
			}
		})

		t.Run("a provider the caller has already is refused at the start", func(t *testing.T) {
			for _, opt := range []socialtest.BeginOption{socialtest.ViaLink(bob.Access), socialtest.WithBearer(bob.Access)} {
				for _, p := range []string{"google", "github"} {
					socErr(t, socialtest.StartResponse(e, p, socRedirect, opt), http.StatusBadRequest, "VAL_006",
						"You already have a "+p+" account linked")
				}
			}
		})

		t.Run("an identity linked to another user is refused and nothing changes", func(t *testing.T) {
			f.Google.SetUser(socialtest.OIDCUser{Subject: "bob-google", Email: "bobby@gmail.example", EmailVerified: true})
			l := socialtest.Begin(t, e, "google", socRedirect, socialtest.ViaLink(carol.Access)).Approve(t)
			socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", "This Google account is already linked to another user")
			if links := socLinks(t, e, carol.Access); len(links) != 0 {
				t.Fatalf("carol got %+v", links)
			}
			if got := socProvidersOf(socLinks(t, e, bob.Access)); !slices.Equal(got, []string{"github", "google"}) {
				t.Fatalf("bob's links %v", got)
			}
		})

		t.Run("a caller deleted before the callback gets nothing linked", func(t *testing.T) {
			admin := e.Superuser("root@example.com")
			gone := e.User("gone@example.com")
			f.Google.SetUser(socialtest.OIDCUser{Subject: "gone-google", Email: "gone@gmail.example", EmailVerified: true})
			l := socialtest.Begin(t, e, "google", socRedirect, socialtest.ViaLink(gone.Access)).Approve(t)
			e.Delete("/api/v1/users/"+gone.UserID, admin.Access).Expect(t, http.StatusOK, "")
			socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", "User not found for account linking")
		})

		t.Run("an invalid bearer token on authorize means an ordinary login", func(t *testing.T) {
			l := socialtest.Begin(t, e, "acme", socRedirect, socialtest.WithBearer("not-a-token"))
			var n int
			if err := e.App.Store.DB().QueryRow(`SELECT COUNT(*) FROM oauth_states WHERE user_id IS NULL`).Scan(&n); err != nil || n != 1 {
				t.Fatalf("states without user: %d %v", n, err)
			}
			f.Acme.SetUser(socialtest.OIDCUser{Subject: "anon-acme", Email: "anon@acme.example", EmailVerified: true})
			if got := socOK(t, l.Approve(t).Finish()); !*got.IsNewUser {
				t.Fatal("not a new user")
			}
		})
	})
}

func TestSocialUnlink(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		const cannot = "Cannot unlink OAuth account. You must have either a password set or at least one other OAuth provider linked."
		f.Google.SetUser(socialtest.OIDCUser{Subject: "only-google", Email: "only@example.com", EmailVerified: true, GivenName: "Only"})
		only := socOK(t, socialtest.Dance(t, e, "google", socRedirect))

		t.Run("the only way in of an account without password stays", func(t *testing.T) {
			before := socDB(t, e)
			socErr(t, e.Delete(socAccounts+"/google", only.AccessToken), http.StatusBadRequest, "VAL_006", cannot)
			socErr(t, e.Delete(socAccounts+"/github", only.AccessToken), http.StatusBadRequest, "VAL_006", cannot)
			socUnchanged(t, e, before)
		})

		t.Run("with a second link one can go, then the last stays", func(t *testing.T) {
			f.GitHub.SetUser(socialtest.GitHubUser{ID: 31337, Login: "only", Emails: []socialtest.GitHubEmail{{Email: "only@gh.example", Primary: true, Verified: true}}})
			socOK(t, socialtest.Dance(t, e, "github", socRedirect, socialtest.ViaLink(only.AccessToken)))
			r := e.Delete(socAccounts+"/google", only.AccessToken).Expect(t, http.StatusOK, "")
			if m := r.JSON(t); m["success"] != true || m["message"] != "Google account unlinked successfully" {
				t.Fatalf("unlink answer %s", r.Body)
			}
			if got := socProvidersOf(socLinks(t, e, only.AccessToken)); !slices.Equal(got, []string{"github"}) {
				t.Fatalf("links %v", got)
			}
			socErr(t, e.Delete(socAccounts+"/github", only.AccessToken), http.StatusBadRequest, "VAL_006", cannot)
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_accounts WHERE provider = 'google'`); n != 0 {
				t.Fatal("the Google link is still stored")
			}
			// The unlinked identity's verified email is the account's: it
			// logs in by auto-link, which links it again.
			got := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
			if got.User.ID != only.User.ID || *got.IsNewUser {
				t.Fatalf("login went to %s (new=%v)", got.User.ID, *got.IsNewUser)
			}
			if got := socProvidersOf(socLinks(t, e, only.AccessToken)); !slices.Equal(got, []string{"google", "github"}) {
				t.Fatalf("links %v", got)
			}
		})

		t.Run("with a password every link can go", func(t *testing.T) {
			dave := e.User("dave@example.com")
			socErr(t, e.Delete(socAccounts+"/github", dave.Access), http.StatusBadRequest, "VAL_006", "No github account found to unlink")
			socErr(t, e.Delete(socAccounts+"/acme", dave.Access), http.StatusBadRequest, "VAL_006", "No acme account found to unlink")
			f.GitHub.SetUser(socialtest.GitHubUser{ID: 4040, Login: "dave", Emails: []socialtest.GitHubEmail{{Email: "dave@gh.example", Primary: true, Verified: true}}})
			socOK(t, socialtest.Dance(t, e, "github", socRedirect, socialtest.ViaLink(dave.Access)))
			r := e.Delete(socAccounts+"/github", dave.Access).Expect(t, http.StatusOK, "")
			if m := r.JSON(t); m["message"] != "Github account unlinked successfully" {
				t.Fatalf("unlink answer %s", r.Body)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_accounts WHERE user_id = $1`, dave.UserID); n != 0 {
				t.Fatal("link not deleted")
			}
			socErr(t, e.Delete(socAccounts+"/github", dave.Access), http.StatusBadRequest, "VAL_006", "No github account found to unlink")
		})
	})
}

// --- failures --------------------------------------------------------------

func TestSocialProviderFailures(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		g := f.Google
		// One good login first, so discovery and the JWKS are cached and an
		// existing link exists.
		g.SetUser(socialtest.OIDCUser{Subject: "known", Email: "known@example.com", EmailVerified: true, GivenName: "Known"})
		known := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
		fresh := socialtest.OIDCUser{Subject: "fresh", Email: "fresh@example.com", EmailVerified: true, GivenName: "Fresh"}

		claims := func(k string, v any) func() {
			return func() {
				g.SetClaims(func(c map[string]any) {
					if v == nil {
						delete(c, k)
					} else {
						c[k] = v
					}
				})
			}
		}
		tests := []struct {
			name  string
			setup func()
			msg   string
		}{
			{"slow token endpoint (timeout)", func() { g.SetDelay("token", 5*time.Second) }, socExchange},
			{"garbage token response", func() { g.SetTokenMode(socialtest.TokenGarbage) }, socExchange},
			{"error JSON from the token endpoint", func() { g.SetTokenMode(socialtest.TokenErrorJSON) }, socExchange},
			{"no access token", func() { g.SetTokenMode(socialtest.TokenNoAccessToken) }, socExchange},
			{"no ID token (fix 10)", func() { g.SetTokenMode(socialtest.TokenNoIDToken) }, "The provider returned no ID token"},
			{"wrong audience", claims("aud", "someone-else"), "ID token audience mismatch"},
			{"wrong audience list", claims("aud", []string{"someone-else", "another"}), "ID token audience mismatch"},
			{"wrong issuer", claims("iss", "https://evil.example"), "ID token issuer mismatch"},
			{"wrong nonce", claims("nonce", "replayed-nonce"), "ID token nonce mismatch"},
			{"no nonce", claims("nonce", nil), "ID token nonce mismatch"},
			{"expired", claims("exp", time.Now().Add(-time.Minute).Unix()), "ID token has expired"},
			{"no expiry", claims("exp", nil), "ID token has expired"},
			{"issued in the future", claims("iat", time.Now().Add(time.Hour).Unix()), "ID token has an invalid issue time"},
			{"no issue time", claims("iat", nil), "ID token has an invalid issue time"},
			{"signed by another key under the right kid", func() { g.SetSignMode(socialtest.SignWrongKey) }, "Invalid ID token signature"},
			{"signed by an unknown kid", func() { g.SetSignMode(socialtest.SignUnknownKid) }, "Invalid ID token signature"},
			{"unsigned (alg none)", func() { g.SetSignMode(socialtest.SignNone) }, "Invalid ID token signature"},
			{"missing subject (fix 11)", func() { g.SetUser(socialtest.OIDCUser{Email: "nosub@example.com", EmailVerified: true}) }, "Provider did not return user ID"},
			{"no email", func() { g.SetUser(socialtest.OIDCUser{Subject: "noemail", GivenName: "No"}) },
				"Email is required for registration. Please grant email permission to google."},
			{"email_verified false for a new account", func() {
				g.SetUser(socialtest.OIDCUser{Subject: "unverified", Email: "unverified@example.com", EmailVerified: false})
			}, "Google did not confirm that the email address unverified@example.com is verified. Verify it with Google and try again."},
			{"email_verified missing for a new account", func() {
				g.SetUser(socialtest.OIDCUser{Subject: "unverified", Email: "unverified@example.com"})
			}, "Google did not confirm that the email address unverified@example.com is verified. Verify it with Google and try again."},
			{"inactive user with an existing link", func() {
				g.SetUser(socialtest.OIDCUser{Subject: "known", Email: "known@example.com", EmailVerified: true})
				e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, known.User.ID)
			}, "User account is inactive"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				g.SetUser(fresh)
				tc.setup() // before the login: the fake captures the user at authorization
				l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
				defer func() {
					g.SetDelay("token", 0)
					g.SetTokenMode(socialtest.TokenOK)
					g.SetClaims(nil)
					g.SetSignMode(socialtest.SignCurrent)
					e.Exec(`UPDATE users SET is_active = TRUE`)
				}()
				socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", tc.msg)
			})
		}

		t.Run("the provider works again afterwards", func(t *testing.T) {
			g.SetUser(fresh)
			if got := socOK(t, socialtest.Dance(t, e, "google", socRedirect)); !*got.IsNewUser {
				t.Fatal("fresh user not new")
			}
		})

		t.Run("email only in userinfo", func(t *testing.T) {
			g.SetUser(socialtest.OIDCUser{Subject: "info-only", Email: "Info@Example.com", EmailVerified: true, GivenName: "Info"})
			g.SetEmailOnlyInUserInfo(true)
			defer g.SetEmailOnlyInUserInfo(false)
			before := g.UserInfoRequests()
			got := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
			if got.User.Email != "info@example.com" || g.UserInfoRequests() != before+1 {
				t.Fatalf("user %+v, userinfo requests %d", got.User, g.UserInfoRequests()-before)
			}
		})

		gh := f.GitHub
		ghTests := []struct {
			name  string
			setup func()
			msg   string
		}{
			{"GitHub without user id (fix 11)", func() {
				gh.SetUser(socialtest.GitHubUser{Login: "ghost", Emails: []socialtest.GitHubEmail{{Email: "ghost@example.com", Primary: true, Verified: true}}})
			}, "Provider did not return user ID"},
			{"GitHub /user fails", func() { gh.SetAPIError(http.StatusInternalServerError, 0) }, "Failed to get user information from provider"},
			{"GitHub token endpoint slow", func() { gh.SetDelay("token", 5*time.Second) }, socExchange},
			{"GitHub /user slow", func() { gh.SetDelay("user", 5*time.Second) }, "Failed to get user information from provider"},
			// Without /user/emails nobody knows which address is verified:
			// refused, not a fallback to the unverified public email, which
			// here is an existing account's (docs/DECISIONS.md).
			{"GitHub /user/emails fails (500)", func() {
				gh.SetUser(socialtest.GitHubUser{ID: 2, Login: "public", Email: "known@example.com",
					Emails: []socialtest.GitHubEmail{{Email: "public@example.com", Primary: true, Verified: true}}})
				gh.SetAPIError(0, http.StatusInternalServerError)
			}, "Failed to get user information from provider"},
			{"GitHub /user/emails slow", func() { gh.SetDelay("emails", 5*time.Second) }, "Failed to get user information from provider"},
			{"GitHub token endpoint returns HTML", func() { gh.SetGarbage("token", socialtest.GarbageHTML) }, socExchange},
			{"GitHub token endpoint returns the wrong JSON", func() { gh.SetGarbage("token", socialtest.GarbageShape) }, socExchange},
			{"GitHub /user returns HTML", func() { gh.SetGarbage("user", socialtest.GarbageHTML) }, "Failed to get user information from provider"},
			{"GitHub /user returns the wrong JSON", func() { gh.SetGarbage("user", socialtest.GarbageShape) }, "Failed to get user information from provider"},
			{"GitHub /user/emails returns HTML", func() { gh.SetGarbage("emails", socialtest.GarbageHTML) }, "Failed to get user information from provider"},
			{"GitHub /user/emails returns the wrong JSON", func() { gh.SetGarbage("emails", socialtest.GarbageShape) }, "Failed to get user information from provider"},
		}
		for _, tc := range ghTests {
			t.Run(tc.name, func(t *testing.T) {
				gh.SetUser(socialtest.GitHubUser{ID: 1, Login: "ok", Emails: []socialtest.GitHubEmail{{Email: "ok@example.com", Primary: true, Verified: true}}})
				tc.setup()
				l := socialtest.Begin(t, e, "github", socRedirect).Approve(t)
				defer func() {
					gh.SetAPIError(0, 0)
					gh.SetDelay("token", 0)
					gh.SetDelay("user", 0)
					gh.SetDelay("emails", 0)
					for _, ep := range []string{"token", "user", "emails"} {
						gh.SetGarbage(ep, socialtest.GarbageNone)
					}
				}()
				socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", tc.msg)
			})
		}

		t.Run("failures log no provider token or secret", func(t *testing.T) {
			logs := e.Logs.String()
			secrets := []string{socGoogleSecret, socGitHubSecret}
			for _, iss := range append(g.Issued(), gh.Issued()...) {
				secrets = append(secrets, iss.AccessToken, iss.IDToken, iss.RefreshToken)
			}
			for _, tr := range g.TokenRequests() {
				secrets = append(secrets, tr.CodeVerifier)
			}
			for _, sec := range secrets {
				if sec != "" && strings.Contains(logs, sec) {
					t.Fatalf("a secret reached the logs: %.20s…", sec)
				}
			}
		})

		t.Run("providers that are down", func(t *testing.T) {
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			lg := socialtest.Begin(t, e, "github", socRedirect).Approve(t)
			g.Close()
			gh.Close()
			socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", socExchange)
			socFinishFails(t, e, lg, http.StatusUnauthorized, "AUTH_006", socExchange)
		})

		t.Run("an OIDC provider down before its first use", func(t *testing.T) {
			f.Acme.Close()
			before := socDB(t, e)
			socErr(t, socialtest.StartResponse(e, "acme", socRedirect), http.StatusBadRequest, "VAL_006",
				"The OAuth provider cannot be reached; try again later")
			socUnchanged(t, e, before)
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states WHERE provider = 'acme'`); n != 0 {
				t.Fatalf("%d states stored for a provider that is down", n)
			}
		})
	}, apitest.WithEnv("OAUTH_HTTP_TIMEOUT_SECONDS", "1"))

	t.Run("slow discovery", func(t *testing.T) {
		socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
			f.Google.SetDelay("discovery", 5*time.Second)
			before := socDB(t, e)
			socErr(t, socialtest.StartResponse(e, "google", socRedirect), http.StatusBadRequest, "VAL_006",
				"The OAuth provider cannot be reached; try again later")
			socUnchanged(t, e, before)
			if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 0 {
				t.Fatalf("%d states stored for a provider that did not answer", n)
			}
		}, apitest.WithEnv("OAUTH_HTTP_TIMEOUT_SECONDS", "1"))
	})

	t.Run("wrong client secret configured", func(t *testing.T) {
		socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
			socFinishFails(t, e, socialtest.Begin(t, e, "google", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006", socExchange)
			socFinishFails(t, e, socialtest.Begin(t, e, "github", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006", socExchange)
			for _, tr := range append(f.Google.TokenRequests(), f.GitHub.TokenRequests()...) {
				if !strings.Contains(tr.Error, "client") {
					t.Fatalf("token request refused for another reason: %+v", tr)
				}
			}
		}, apitest.WithEnv("OAUTH_GOOGLE_CLIENT_SECRET", "wrong"), apitest.WithEnv("OAUTH_GITHUB_CLIENT_SECRET", "wrong"))
	})
}

// OpenID Connect endpoints other than the token endpoint failing: the
// discovery document, the JWKS and userinfo, each answering garbage (an HTML
// page labelled JSON, or JSON of the wrong shape) or too slowly. Every case
// is a 4xx in the envelope that changes nothing, and the provider works
// again once it answers properly. A moved clock lets the JWKS cache expire
// and discovery be retried without waiting.
func TestSocialOIDCEndpointFailures(t *testing.T) {
	const (
		down     = "The OAuth provider cannot be reached; try again later"
		jwksFail = "Failed to verify ID token"
		infoFail = "Failed to get user information from provider"
	)
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		g, acme := f.Google, f.Acme
		clock := socUseClock(e, g, acme)
		n := 0
		fresh := func(p *socialtest.OIDC) {
			n++
			p.SetUser(socialtest.OIDCUser{Subject: fmt.Sprintf("fail-%d", n), Email: fmt.Sprintf("fail%d@example.com", n), EmailVerified: true})
		}

		// Discovery happens at the first authorize and is not cached when
		// it fails: acme has never been used.
		t.Run("discovery", func(t *testing.T) {
			for _, tc := range []struct {
				name  string
				setup func()
			}{
				{"returns HTML", func() { acme.SetGarbage("discovery", socialtest.GarbageHTML) }},
				{"has unusable endpoints", func() { acme.SetGarbage("discovery", socialtest.GarbageShape) }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					tc.setup()
					defer acme.SetGarbage("discovery", socialtest.GarbageNone)
					clock.Add(6 * time.Second) // past the retry pause of the previous failure
					before := socDB(t, e)
					socErr(t, socialtest.StartResponse(e, "acme", socRedirect), http.StatusBadRequest, "VAL_006", down)
					socUnchanged(t, e, before)
					if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 0 {
						t.Fatalf("%d states stored", n)
					}
				})
			}
			clock.Add(6 * time.Second)
			fresh(acme)
			socOK(t, socialtest.Dance(t, e, "acme", socRedirect))
		})

		// One good login caches Google's JWKS; each case then lets the
		// cache expire, so the callback must fetch it again.
		fresh(g)
		socOK(t, socialtest.Dance(t, e, "google", socRedirect))
		tests := []struct {
			name  string
			setup func()
			reset func()
			msg   string
		}{
			{"JWKS slow (timeout)", func() { g.SetDelay("jwks", 5*time.Second) }, func() { g.SetDelay("jwks", 0) }, jwksFail},
			{"userinfo slow (timeout)", func() {
				g.SetEmailOnlyInUserInfo(true)
				g.SetDelay("userinfo", 5*time.Second)
			}, func() { g.SetEmailOnlyInUserInfo(false); g.SetDelay("userinfo", 0) }, infoFail},
			{"JWKS returns HTML", func() { g.SetGarbage("jwks", socialtest.GarbageHTML) }, func() { g.SetGarbage("jwks", socialtest.GarbageNone) }, jwksFail},
			{"JWKS keys is not a list", func() { g.SetGarbage("jwks", socialtest.GarbageShape) }, func() { g.SetGarbage("jwks", socialtest.GarbageNone) }, jwksFail},
			{"userinfo returns HTML", func() {
				g.SetEmailOnlyInUserInfo(true)
				g.SetGarbage("userinfo", socialtest.GarbageHTML)
			}, func() { g.SetEmailOnlyInUserInfo(false); g.SetGarbage("userinfo", socialtest.GarbageNone) }, infoFail},
			{"userinfo has a numeric sub", func() {
				g.SetEmailOnlyInUserInfo(true)
				g.SetGarbage("userinfo", socialtest.GarbageShape)
			}, func() { g.SetEmailOnlyInUserInfo(false); g.SetGarbage("userinfo", socialtest.GarbageNone) }, infoFail},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				clock.Add(25 * time.Hour) // the JWKS cache (at most 24 h) has expired
				fresh(g)
				tc.setup()
				defer tc.reset()
				socFinishFails(t, e, socialtest.Begin(t, e, "google", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006", tc.msg)
			})
		}

		t.Run("the provider works again afterwards", func(t *testing.T) {
			clock.Add(11 * time.Second) // past the retry pause of a failed JWKS fetch
			fresh(g)
			if got := socOK(t, socialtest.Dance(t, e, "google", socRedirect)); !*got.IsNewUser {
				t.Fatal("not a new user")
			}
		})
	}, apitest.WithEnv("OAUTH_HTTP_TIMEOUT_SECONDS", "1"))
}

func TestSocialOddProviderData(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		t.Run("over-long and control-character names are cleaned, not refused", func(t *testing.T) {
			f.Google.SetUser(socialtest.OIDCUser{Subject: strings.Repeat("s", 255), Email: "  Long.Name@Example.com ", EmailVerified: true,
				GivenName: strings.Repeat("é", 400), FamilyName: "Line\nBreak\x00"})
			got := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
			if got.User.Email != "long.name@example.com" || len([]rune(got.User.FirstName)) > 255 || got.User.FirstName == "" ||
				strings.ContainsAny(socStr(got.User.LastName), "\n\x00") {
				t.Fatalf("user %+v", got.User)
			}
			again := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
			if again.User.ID != got.User.ID {
				t.Fatal("a 255-character subject did not find its link again")
			}
		})

		t.Run("a subject longer than OpenID Connect allows is refused, not truncated", func(t *testing.T) {
			f.Google.SetUser(socialtest.OIDCUser{Subject: strings.Repeat("t", 256), Email: "longsub@example.com", EmailVerified: true})
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			before := socDB(t, e)
			r := l.Finish()
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d %s", r.Status, r.Body)
			}
			if _, msg, _ := r.ErrorCode(t); msg != "Provider returned an invalid user ID" {
				t.Fatalf("message %q", msg)
			}
			socUnchanged(t, e, before)
		})

		t.Run("an unusable email is refused with a 4xx", func(t *testing.T) {
			for _, email := range []string{"not-an-email", "a@b@c.example", strings.Repeat("x", 330) + "@example.com"} {
				f.Google.SetUser(socialtest.OIDCUser{Subject: "bad-" + email[:5], Email: email, EmailVerified: true})
				l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
				before := socDB(t, e)
				r := l.Finish()
				if r.Status != http.StatusUnauthorized {
					t.Fatalf("email %.30q: status %d %s", email, r.Status, r.Body)
				}
				r.ErrorCode(t)
				socUnchanged(t, e, before)
			}
		})
	})
}

// socClock is a clock a test moves by hand. socUseClock gives it to the
// social-login service (states, the JWKS cache, ID-token checks) and to
// fake providers (their ID tokens' iat and exp), so hours pass at once.
type socClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *socClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *socClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func socUseClock(e *apitest.Env, fakes ...*socialtest.OIDC) *socClock {
	c := &socClock{now: time.Now()}
	e.App.Social.Now = c.Now
	for _, f := range fakes {
		f.SetClock(c.Now)
	}
	return c
}

// The JWKS is cached per its Cache-Control (fix 10) and refetched early for
// a key it does not hold, at most every 10 seconds (docs/DECISIONS.md).
func TestSocialJWKSCaching(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		g := f.Google
		clock := socUseClock(e, g)
		n := 0
		login := func() apitest.Response {
			n++
			g.SetUser(socialtest.OIDCUser{Subject: fmt.Sprintf("cache-%d", n), Email: fmt.Sprintf("cache%d@example.com", n), EmailVerified: true})
			return socialtest.Dance(t, e, "google", socRedirect)
		}
		wantFetches := func(want int, why string) {
			t.Helper()
			if got := g.JWKSFetches(); got != want {
				t.Fatalf("JWKS fetched %d times, want %d: %s", got, want, why)
			}
		}

		for range 3 {
			socOK(t, login())
		}
		wantFetches(1, "three logins within max-age use one fetch")
		if n := g.DiscoveryRequests(); n != 1 {
			t.Fatalf("discovery fetched %d times, want 1", n)
		}

		// A rotation shortly after a fetch: the new kid is refetched once
		// the 10 seconds have passed, and the rotated set is cached.
		clock.Add(11 * time.Second)
		g.RotateKey(t)
		socOK(t, login())
		wantFetches(2, "refetched once for the new kid")
		socOK(t, login())
		wantFetches(2, "the rotated set is cached")

		// Garbage kids: one refetch, then none within 10 seconds.
		g.SetSignMode(socialtest.SignUnknownKid)
		clock.Add(11 * time.Second)
		for range 3 {
			socFinishFails(t, e, socialtest.Begin(t, e, "google", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006", "Invalid ID token signature")
		}
		wantFetches(3, "three unknown kids within 10 seconds make one refetch")
		clock.Add(11 * time.Second)
		socFinishFails(t, e, socialtest.Begin(t, e, "google", socRedirect).Approve(t), http.StatusUnauthorized, "AUTH_006", "Invalid ID token signature")
		wantFetches(4, "another refetch after 10 seconds")
		g.SetSignMode(socialtest.SignCurrent)
		socOK(t, login())
		wantFetches(4, "the current key is still cached")

		// A max-age under a minute counts as a minute; none as an hour.
		a := f.Acme
		a.SetClock(clock.Now)
		for _, tc := range []struct {
			cacheControl   string
			within, beyond time.Duration
		}{{"public, max-age=5", 59 * time.Second, 2 * time.Second}, {"", 59 * time.Minute, 2 * time.Minute}} {
			a.SetJWKSCacheControl(tc.cacheControl)
			clock.Add(24 * time.Hour) // whatever is cached has expired
			before := a.JWKSFetches()
			a.SetUser(socialtest.OIDCUser{Subject: "acme-cache", Email: "acme-cache@example.com", EmailVerified: true})
			socOK(t, socialtest.Dance(t, e, "acme", socRedirect))
			clock.Add(tc.within)
			socOK(t, socialtest.Dance(t, e, "acme", socRedirect))
			if got := a.JWKSFetches() - before; got != 1 {
				t.Fatalf("Cache-Control %q: %d fetches within %v, want 1", tc.cacheControl, got, tc.within)
			}
			clock.Add(tc.beyond)
			socOK(t, socialtest.Dance(t, e, "acme", socRedirect))
			if got := a.JWKSFetches() - before; got != 2 {
				t.Fatalf("Cache-Control %q: %d fetches after %v, want 2", tc.cacheControl, got, tc.within+tc.beyond)
			}
		}
	})

	t.Run("a withdrawn key verifies until the cache expires, then never", func(t *testing.T) {
		socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
			g := f.Google
			clock := socUseClock(e, g) // the fake's JWKS says max-age=3600
			g.SetUser(socialtest.OIDCUser{Subject: "before", Email: "before@example.com", EmailVerified: true})
			socOK(t, socialtest.Dance(t, e, "google", socRedirect))

			// The provider withdraws its key, which keeps signing (a leak).
			leaked := g.CurrentKid()
			g.WithdrawKey(leaked)
			clock.Add(59 * time.Minute)
			g.SetUser(socialtest.OIDCUser{Subject: "within", Email: "within@example.com", EmailVerified: true})
			socOK(t, socialtest.Dance(t, e, "google", socRedirect))
			if n := g.JWKSFetches(); n != 1 {
				t.Fatalf("JWKS fetched %d times within max-age, want 1", n)
			}

			clock.Add(2 * time.Minute) // 61 minutes after the fetch
			g.SetUser(socialtest.OIDCUser{Subject: "after", Email: "after@example.com", EmailVerified: true})
			l := socialtest.Begin(t, e, "google", socRedirect).Approve(t)
			socFinishFails(t, e, l, http.StatusUnauthorized, "AUTH_006", "Invalid ID token signature")
			if kid := socJWTHeader(t, g.Issued()[len(g.Issued())-1].IDToken)["kid"]; kid != leaked {
				t.Fatalf("the refused ID token was signed by %v, want the withdrawn %s", kid, leaked)
			}
			if n := g.JWKSFetches(); n != 2 {
				t.Fatalf("JWKS fetched %d times, want 2 (refetched once the cache expired)", n)
			}
			if n := socCount(t, e, `SELECT COUNT(*) FROM users WHERE email = 'after@example.com'`); n != 0 {
				t.Fatal("an account was created from a token signed by a withdrawn key")
			}

			// Once the provider signs with a published key, logins work.
			g.RotateKey(t)
			clock.Add(11 * time.Second)
			if got := socOK(t, socialtest.Dance(t, e, "google", socRedirect)); !*got.IsNewUser || got.User.Email != "after@example.com" {
				t.Fatalf("after the rotation: %+v", got.User)
			}
		})
	})
}

func TestSocialGenericOIDCProvider(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		f.Acme.SetUser(socialtest.OIDCUser{Subject: "acme|00u1", Email: "Worker@Acme.Example", EmailVerified: true, Name: "Wile E. Coyote"})
		l := socialtest.Begin(t, e, "acme", socRedirect)
		if !l.HasPrefix(f.Acme.URL()) {
			t.Fatalf("authorization URL %s", l.AuthorizationURL)
		}
		got := socOK(t, l.Approve(t).Finish())
		a := f.Acme.Authorizations()[0]
		if a.ClientID != socAcmeClient || a.CodeChallengeMethod != "S256" || a.Nonce == "" ||
			!slices.Equal(strings.Fields(a.Scope), []string{"openid", "email", "profile", "groups"}) {
			t.Fatalf("authorization request %+v", a)
		}
		if !*got.IsNewUser || got.User.Email != "worker@acme.example" || got.User.FirstName != "Wile" || socStr(got.User.LastName) != "E. Coyote" {
			t.Fatalf("user %+v", got.User)
		}
		if s := socCurrentSession(t, e, got.AccessToken); socStr(s.DeviceName) != "OAuth (acme)" {
			t.Fatalf("device name %q", socStr(s.DeviceName))
		}
		// Behind a trusted proxy the forwarded client IP is recorded (fix 14).
		viaProxy := socialtest.Begin(t, e, "acme", socRedirect).Approve(t).Finish(map[string]string{"X-Forwarded-For": "198.51.100.7"})
		if s := socCurrentSession(t, e, socOK(t, viaProxy).AccessToken); socStr(s.IPAddress) != "198.51.100.7" {
			t.Fatalf("ip %q behind a trusted proxy", socStr(s.IPAddress))
		}
		links := socLinks(t, e, got.AccessToken)
		if len(links) != 1 || links[0].Provider != "acme" {
			t.Fatalf("links %+v", links)
		}
		again := socOK(t, socialtest.Dance(t, e, "acme", socRedirect))
		if *again.IsNewUser || again.User.ID != got.User.ID {
			t.Fatal("second acme login made another account")
		}
		// Link Google, then acme may go.
		f.Google.SetUser(socialtest.OIDCUser{Subject: "coyote-google", Email: "coyote@gmail.example", EmailVerified: true})
		socOK(t, socialtest.Dance(t, e, "google", socRedirect, socialtest.ViaLink(got.AccessToken)))
		r := e.Delete(socAccounts+"/acme", got.AccessToken).Expect(t, http.StatusOK, "")
		if m := r.JSON(t); m["message"] != "Acme account unlinked successfully" {
			t.Fatalf("unlink answer %s", r.Body)
		}
		// The same subject at Google is another identity than at acme.
		f.Google.SetUser(socialtest.OIDCUser{Subject: "acme|00u1", Email: "other@gmail.example", EmailVerified: true})
		if other := socOK(t, socialtest.Dance(t, e, "google", socRedirect)); !*other.IsNewUser {
			t.Fatal("an acme subject logged in at Google")
		}
	}, apitest.WithEnv("TRUSTED_PROXIES", "127.0.0.1/32"))
}

// An issuer ending in "/" (Auth0's do) is used exactly as configured: OpenID
// Connect discovery and the ID tokens' iss must match it character for
// character, so trimming the "/" made every login fail.
func TestSocialIssuerWithTrailingSlash(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			f := socNewFakes(t)
			f.Google.SetIssuerTrailingSlash(true)
			f.Acme.SetIssuerTrailingSlash(true)
			e := apitest.New(t, engine, f.env()...)
			for _, p := range []struct {
				name string
				fake *socialtest.OIDC
			}{{"google", f.Google}, {"acme", f.Acme}} {
				if !strings.HasSuffix(p.fake.Issuer(), "/") {
					t.Fatalf("fake issuer %q", p.fake.Issuer())
				}
				p.fake.SetUser(socialtest.OIDCUser{Subject: "slash-" + p.name, Email: p.name + "@slash.example", EmailVerified: true, GivenName: "Slash"})
				got := socOK(t, socialtest.Dance(t, e, p.name, socRedirect))
				if !*got.IsNewUser || got.User.Email != p.name+"@slash.example" {
					t.Fatalf("%s: user %+v", p.name, got.User)
				}
				issued := p.fake.Issued()
				if iss := socJWTClaims(t, issued[len(issued)-1].IDToken)["iss"]; iss != p.fake.Issuer() {
					t.Fatalf("%s: the ID token's iss is %v, want %q", p.name, iss, p.fake.Issuer())
				}
				if again := socOK(t, socialtest.Dance(t, e, p.name, socRedirect)); *again.IsNewUser || again.User.ID != got.User.ID {
					t.Fatalf("%s: second login %+v", p.name, again.User)
				}
			}
		})
	}

	// Exactness cuts both ways: an issuer configured without the "/" of
	// the provider's is refused at discovery, before anything is stored.
	t.Run("configured without the provider's slash", func(t *testing.T) {
		for _, engine := range dbtest.Engines(t) {
			t.Run(string(engine), func(t *testing.T) {
				t.Parallel()
				f := socNewFakes(t)
				f.Acme.SetIssuerTrailingSlash(true)
				e := apitest.New(t, engine, append(f.env(), apitest.WithEnv("OAUTH_OIDC_ACME_ISSUER", f.Acme.URL()))...)
				before := socDB(t, e)
				socErr(t, socialtest.StartResponse(e, "acme", socRedirect), http.StatusBadRequest, "VAL_006",
					"The OAuth provider cannot be reached; try again later")
				socUnchanged(t, e, before)
				if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 0 {
					t.Fatalf("%d states stored", n)
				}
			})
		}
	})
}

// socJWTClaims decodes the payload of a JWT without checking it.
func socJWTClaims(t *testing.T, raw string) map[string]any { t.Helper(); return socJWTPart(t, raw, 1) }

// socJWTHeader decodes the header of a JWT.
func socJWTHeader(t *testing.T, raw string) map[string]any { t.Helper(); return socJWTPart(t, raw, 0) }

func socJWTPart(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSocialSchedulerPurgesExpiredStates(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		old := socialtest.Begin(t, e, "google", socRedirect)
		live := socialtest.Begin(t, e, "github", socRedirect)
		var created, expires time.Time
		if err := e.App.Store.DB().QueryRow(`SELECT created_at, expires_at FROM oauth_states WHERE provider = 'github'`).Scan(&created, &expires); err != nil {
			t.Fatal(err)
		}
		if d := expires.Sub(created); d != 3*time.Minute {
			t.Fatalf("state lifetime %v, want OAUTH_STATE_EXPIRE_MINUTES=3", d)
		}
		e.Exec(`UPDATE oauth_states SET expires_at = $1 WHERE provider = 'google'`, time.Now().Add(-time.Minute).UTC())
		if err := e.App.Scheduler.RunNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states`); n != 1 {
			t.Fatalf("%d states after the purge, want 1", n)
		}
		if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_states WHERE provider = 'github'`); n != 1 {
			t.Fatal("the live state was purged")
		}
		socErr(t, old.Approve(t).Finish(), http.StatusUnauthorized, "AUTH_006", socStateMsg)
		socOK(t, live.Approve(t).Finish())
	}, apitest.WithEnv("OAUTH_STATE_EXPIRE_MINUTES", "3"))
}

func TestSocialSoftDeleteFreesIdentity(t *testing.T) {
	socialEach(t, func(t *testing.T, e *apitest.Env, f *socFakes) {
		admin := e.Superuser("root@example.com")
		f.Google.SetUser(socialtest.OIDCUser{Subject: "leaver", Email: "leaver@example.com", EmailVerified: true, GivenName: "Leaver"})
		first := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
		e.Delete("/api/v1/users/"+url.PathEscape(first.User.ID), admin.Access).Expect(t, http.StatusOK, "")
		if n := socCount(t, e, `SELECT COUNT(*) FROM oauth_accounts WHERE user_id = $1`, first.User.ID); n != 0 {
			t.Fatalf("%d links kept for a deleted user", n)
		}
		if r := e.Get(socMe, first.AccessToken); r.Status != http.StatusUnauthorized {
			t.Fatalf("deleted user's token: %d", r.Status)
		}
		again := socOK(t, socialtest.Dance(t, e, "google", socRedirect))
		if !*again.IsNewUser || again.User.ID == first.User.ID || again.User.Email != "leaver@example.com" {
			t.Fatalf("after deletion: %+v new=%v", again.User, *again.IsNewUser)
		}
	})
}
