package httpapi_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/socialtest"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// The built-in browser pages of the authorization server (contract §4.2),
// driven like a browser without JavaScript: a cookie jar, forms filled from
// the HTML (CSRF token included), redirects followed by the test one at a
// time so each hop can be checked.

const (
	pgAuthorize = "/api/v1/oauth/provider/authorize"
	pgToken     = "/api/v1/oauth/provider/token"
	pgUserInfo  = "/api/v1/oauth/provider/userinfo"
	pgClients   = "/api/v1/oauth/provider/clients"
	pgLogin     = "/oauth/login"
	pgConsent   = "/oauth/consent"
	pgLogout    = "/oauth/logout"
	pgReset     = "/password-reset/confirm"
	pgFailed    = "Invalid email or password."
	pgSignedIn  = "You are signed in"
	// pgClientName must come out escaped on the consent page.
	pgClientName    = `Acme <b>"Tools"</b> & Co`
	pgClientEscaped = `Acme &lt;b&gt;&#34;Tools&#34;&lt;/b&gt; &amp; Co`
	pgRedirect      = "https://client.example.com/cb"
	pgUA            = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
)

func pgEach(t *testing.T, fn func(t *testing.T, e *apitest.Env), opts ...apitest.Option) {
	apitest.Each(t, fn, append([]apitest.Option{apitest.WithEnv("OAUTH_PROVIDER_ENABLED", "true")}, opts...)...)
}

// pgBrowser is a browser: a cookie jar, no automatic redirects.
type pgBrowser struct {
	t *testing.T
	e *apitest.Env
	c *http.Client
}

type pgResp struct {
	Status int
	Header http.Header
	Body   string
}

func (r pgResp) location() string { return r.Header.Get("Location") }

func pgNewBrowser(t *testing.T, e *apitest.Env) *pgBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pgBrowser{t: t, e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *pgBrowser) do(method, target string, form url.Values) pgResp {
	b.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = b.e.Server.URL + target
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("User-Agent", pgUA)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return pgResp{Status: resp.StatusCode, Header: resp.Header, Body: string(raw)}
}

func (b *pgBrowser) get(target string) pgResp { b.t.Helper(); return b.do("GET", target, nil) }

func (b *pgBrowser) post(target string, form url.Values) pgResp {
	b.t.Helper()
	return b.do("POST", target, form)
}

// expect checks a status and returns the response.
func (r pgResp) expect(t *testing.T, status int) pgResp {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; Location %q; body:\n%s", r.Status, status, r.location(), r.Body)
	}
	return r
}

// redirectTo checks a redirect (status) to a path (or URL) prefix.
func (r pgResp) redirectTo(t *testing.T, status int, prefix string) string {
	t.Helper()
	r.expect(t, status)
	if !strings.HasPrefix(r.location(), prefix) {
		t.Fatalf("redirect to %q, want a location starting with %q", r.location(), prefix)
	}
	return r.location()
}

// cookie returns the value of one of the jar's cookies for the server.
func (b *pgBrowser) cookie(name string) string {
	u, _ := url.Parse(b.e.Server.URL)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var pgHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// pgHidden returns the hidden fields of a page (HTML-unescaped; the first
// value of each name, i.e. that of the first form).
func pgHidden(body string) url.Values {
	v := url.Values{}
	for _, m := range pgHiddenRE.FindAllStringSubmatch(body, -1) {
		name := html.UnescapeString(m[1])
		if !v.Has(name) {
			v.Set(name, html.UnescapeString(m[2]))
		}
	}
	return v
}

// login fills the login form of a login page.
func (b *pgBrowser) login(page pgResp, email, password string) pgResp {
	b.t.Helper()
	form := pgHidden(page.Body)
	if form.Get("csrf_token") == "" {
		b.t.Fatalf("no CSRF token on the login page:\n%s", page.Body)
	}
	form.Set("email", email)
	form.Set("password", password)
	return b.post(pgLogin, form)
}

// signIn logs in through the login page without return_to.
func (b *pgBrowser) signIn(email string) {
	b.t.Helper()
	r := b.login(b.get(pgLogin).expect(b.t, http.StatusOK), email, apitest.Password).expect(b.t, http.StatusOK)
	if !strings.Contains(r.Body, pgSignedIn) {
		b.t.Fatalf("no signed-in page:\n%s", r.Body)
	}
}

type pgClient struct{ ID, Secret string }

// pgRegister registers a client through the API as the superuser.
func pgRegister(t *testing.T, e *apitest.Env, super, name, redirects, typ string) pgClient {
	t.Helper()
	form := url.Values{"client_name": {name}, "redirect_uris": {redirects}, "client_type": {typ}, "scopes": {"openid profile email"}}
	r := e.Do(apitest.Request{Method: "POST", Path: pgClients, Token: super, Body: form.Encode(),
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusOK, "")
	m := r.JSON(t)
	c := pgClient{ID: m["client_id"].(string)}
	if s, ok := m["client_secret"].(string); ok {
		c.Secret = s
	}
	return c
}

func pgPKCE(t *testing.T) (verifier, challenge string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func pgAuthorizeURL(clientID, redirect, state, challenge string, extra ...string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"scope": {"openid profile email"}, "state": {state}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}, "nonce": {"nonce-" + state}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return pgAuthorize + "?" + v.Encode()
}

// pgCallback parses a redirect to the client's redirect URI.
func pgCallback(t *testing.T, e *apitest.Env, location, state string) url.Values {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != pgRedirect {
		t.Fatalf("redirect to %q, want the client's redirect URI %s", location, pgRedirect)
	}
	q := u.Query()
	if q.Get("state") != state || q.Get("iss") != e.Config.Provider.Issuer {
		t.Fatalf("redirect %q: state %q iss %q, want %q and %q", location, q.Get("state"), q.Get("iss"), state, e.Config.Provider.Issuer)
	}
	return q
}

// pgExchange redeems a code and returns the token response.
func pgExchange(t *testing.T, e *apitest.Env, c pgClient, code, verifier string) map[string]any {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {pgRedirect}, "code_verifier": {verifier}}
	basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.ID) + ":" + url.QueryEscape(c.Secret)))
	r := e.Do(apitest.Request{Method: "POST", Path: pgToken, Body: form.Encode(), Headers: map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " + basic}}).Expect(t, http.StatusOK, "")
	return r.JSON(t)
}

func pgBrowserSessions(t *testing.T, e *apitest.Env) int {
	t.Helper()
	return e.Count(`SELECT COUNT(*) FROM user_sessions WHERE kind = 'browser'`)
}

// pgCheckPage checks the headers every page carries.
func pgCheckPage(t *testing.T, what string, r pgResp) {
	t.Helper()
	h := r.Header
	csp := h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("%s: Content-Security-Policy %q", what, csp)
	}
	if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Cache-Control"), "no-store") {
		t.Errorf("%s: X-Frame-Options %q, Cache-Control %q", what, h.Get("X-Frame-Options"), h.Get("Cache-Control"))
	}
	if r.Status >= 300 && r.Status < 400 {
		return
	}
	if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Errorf("%s: Content-Type %q", what, h.Get("Content-Type"))
	}
	low := strings.ToLower(r.Body)
	for _, bad := range []string{"<script", "style=", "<iframe", `src="http`, `href="http`, "<img"} {
		if strings.Contains(low, bad) {
			t.Errorf("%s: page contains %q (no scripts, inline styles or third-party assets)", what, bad)
		}
	}
	if !strings.Contains(r.Body, `<link rel="stylesheet" href="/oauth/static/pages.css">`) {
		t.Errorf("%s: no stylesheet of our own:\n%s", what, r.Body)
	}
}

// TestPagesAuthorizationFlow is the whole browser flow of a confidential
// client: authorize → login form → authorize → consent form → client with
// a code → token → userinfo; then a second authorization that skips the
// consent page, and a denial.
func TestPagesAuthorizationFlow(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		super := e.Superuser("root@example.com").Access
		aliceID := e.Register("alice@example.com")
		client := pgRegister(t, e, super, pgClientName, pgRedirect, "confidential")
		b := pgNewBrowser(t, e)
		verifier, challenge := pgPKCE(t)
		start := pgAuthorizeURL(client.ID, pgRedirect, "state-1", challenge)

		// An anonymous browser is sent to the login page, with return_to.
		loginAt := b.get(start).redirectTo(t, http.StatusFound, pgLogin+"?")
		u, _ := url.Parse(loginAt)
		if u.Query().Get("return_to") != start {
			t.Fatalf("return_to %q, want %q", u.Query().Get("return_to"), start)
		}
		page := b.get(loginAt).expect(t, http.StatusOK)
		pgCheckPage(t, "login page", page)
		for _, want := range []string{`name="email"`, `name="password"`, `type="password"`, `action="/oauth/login"`} {
			if !strings.Contains(page.Body, want) {
				t.Fatalf("login page lacks %s:\n%s", want, page.Body)
			}
		}
		if got := pgHidden(page.Body).Get("return_to"); got != start {
			t.Fatalf("hidden return_to %q, want %q", got, start)
		}

		// The form logs in and goes back to the authorization endpoint (303).
		back := b.login(page, "alice@example.com", apitest.Password).redirectTo(t, http.StatusSeeOther, pgAuthorize+"?")
		if back != start {
			t.Fatalf("back to %q, want %q", back, start)
		}
		if n := pgBrowserSessions(t, e); n != 1 {
			t.Fatalf("%d browser sessions after login, want 1", n)
		}
		secret := b.cookie("gatehouse_session")
		if secret == "" || e.Count(`SELECT COUNT(*) FROM user_sessions WHERE refresh_token_hash = $1 AND kind = 'browser' AND user_id = $2`,
			token.HashSecret(secret), aliceID) != 1 {
			t.Fatal("the session row does not hold the SHA-256 of the cookie")
		}
		if e.Count(`SELECT COUNT(*) FROM user_sessions WHERE refresh_token_hash = $1`, secret) != 0 {
			t.Fatal("the raw cookie value is stored")
		}

		// Consent is missing: the consent page.
		consentAt := b.get(back).redirectTo(t, http.StatusFound, pgConsent+"?")
		consent := b.get(consentAt).expect(t, http.StatusOK)
		pgCheckPage(t, "consent page", consent)
		if !strings.Contains(consent.Body, pgClientEscaped) || strings.Contains(consent.Body, "<b>") {
			t.Fatalf("consent page does not show the escaped client name:\n%s", consent.Body)
		}
		for _, want := range []string{"client.example.com", "<code>openid</code>", "<code>profile</code>", "<code>email</code>",
			"See your email address.", "alice@example.com", `name="approved" value="true"`, `name="approved" value="false"`} {
			if !strings.Contains(consent.Body, want) {
				t.Fatalf("consent page lacks %q:\n%s", want, consent.Body)
			}
		}
		for _, notWanted := range []string{"local address", "registered itself"} {
			if strings.Contains(consent.Body, notWanted) {
				t.Fatalf("consent page of an admin-registered https client says %q", notWanted)
			}
		}
		if csp := consent.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://client.example.com") {
			t.Fatalf("consent page CSP %q does not let the answer reach the client", csp)
		}

		// Allow: 303 to the client with code, state and iss.
		form := pgHidden(consent.Body)
		form.Set("approved", "true")
		q := pgCallback(t, e, b.post(pgConsent, form).redirectTo(t, http.StatusSeeOther, pgRedirect+"?"), "state-1")
		tokens := pgExchange(t, e, client, q.Get("code"), verifier)
		access, _ := tokens["access_token"].(string)
		if access == "" || tokens["id_token"] == nil || tokens["refresh_token"] == nil {
			t.Fatalf("token response %v", tokens)
		}
		info := e.Get(pgUserInfo, access).Expect(t, http.StatusOK, "").JSON(t)
		if info["sub"] != aliceID || info["email"] != "alice@example.com" {
			t.Fatalf("userinfo %v, want alice", info)
		}

		// Consent given: the next authorization goes straight to the client.
		verifier2, challenge2 := pgPKCE(t)
		q2 := pgCallback(t, e, b.get(pgAuthorizeURL(client.ID, pgRedirect, "state-2", challenge2)).
			redirectTo(t, http.StatusFound, pgRedirect+"?"), "state-2")
		pgExchange(t, e, client, q2.Get("code"), verifier2)

		// prompt=consent shows the page again; Deny sends access_denied.
		deny := b.get(b.get(pgAuthorizeURL(client.ID, pgRedirect, "state-3", challenge2, "prompt", "consent")).
			redirectTo(t, http.StatusFound, pgConsent+"?")).expect(t, http.StatusOK)
		form = pgHidden(deny.Body)
		form.Set("approved", "false")
		codes := e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes`)
		q3 := pgCallback(t, e, b.post(pgConsent, form).redirectTo(t, http.StatusSeeOther, pgRedirect+"?"), "state-3")
		if q3.Get("error") != "access_denied" || q3.Get("code") != "" {
			t.Fatalf("deny answered %v", q3)
		}
		if n := e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes`); n != codes {
			t.Fatal("a denial issued a code")
		}
	})
}

// TestPagesFullFlowBothClientTypes is the browser flow for a
// confidential and a public client alike: login form → consent form → code
// → token → introspect → userinfo → refresh → revoke, then the revoked
// grant is refused everywhere. Introspection takes a confidential client, so
// the public client's tokens are introspected by a resource server's.
func TestPagesFullFlowBothClientTypes(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		super := e.Superuser("root@example.com").Access
		aliceID := e.Register("alice@example.com")
		rs := pgRegister(t, e, super, "Resource server", "https://rs.example.com/cb", "confidential")
		for _, kind := range []string{"confidential", "public"} {
			t.Run(kind, func(t *testing.T) {
				reg := pgRegister(t, e, super, "App "+kind, pgRedirect, kind)
				if (kind == "public") != (reg.Secret == "") {
					t.Fatalf("%s client registered with secret %q", kind, reg.Secret)
				}
				client := oaClient{ID: reg.ID, Secret: reg.Secret, Redirect: pgRedirect}
				introspector := client
				if client.public() {
					introspector = oaClient{ID: rs.ID, Secret: rs.Secret}
				}
				state := "state-" + kind
				verifier, challenge := pgPKCE(t)
				start := pgAuthorizeURL(client.ID, pgRedirect, state, challenge)

				// The browser: authorize → login form → authorize → consent
				// form → the client with a code.
				b := pgNewBrowser(t, e)
				page := b.get(b.get(start).redirectTo(t, http.StatusFound, pgLogin+"?")).expect(t, http.StatusOK)
				back := b.login(page, "alice@example.com", apitest.Password).redirectTo(t, http.StatusSeeOther, pgAuthorize+"?")
				consent := b.get(b.get(back).redirectTo(t, http.StatusFound, pgConsent+"?")).expect(t, http.StatusOK)
				if !strings.Contains(consent.Body, "App "+kind) {
					t.Fatalf("consent page does not name the client:\n%s", consent.Body)
				}
				form := pgHidden(consent.Body)
				form.Set("approved", "true")
				q := pgCallback(t, e, b.post(pgConsent, form).redirectTo(t, http.StatusSeeOther, pgRedirect+"?"), state)

				// Token: the public client authenticates with its id and the
				// PKCE verifier alone.
				tok := oaOK(t, oaExchange(e, client, q.Get("code"), verifier, nil))
				if tok.Scope != "email openid profile" || tok.IDToken == "" {
					t.Fatalf("token response %+v", tok)
				}
				introspect := func(raw string) map[string]any {
					t.Helper()
					r := oaIntrospect(e, introspector, raw)
					if r.Status != http.StatusOK {
						t.Fatalf("introspect: %d %s", r.Status, r.Body)
					}
					m := r.JSON(t)
					for _, k := range oaIntrospectionKeys {
						if _, ok := m[k]; !ok {
							t.Fatalf("introspection lacks %q: %s", k, r.Body)
						}
					}
					return m
				}
				_, claims := oaJWT(t, tok.AccessToken)
				m := introspect(tok.AccessToken)
				if m["active"] != true || m["token_type"] != "Bearer" || m["client_id"] != client.ID || m["sub"] != aliceID ||
					m["username"] != "alice@example.com" || m["scope"] != "email openid profile" || m["aud"] != client.ID ||
					m["iss"] != e.Config.Provider.Issuer || m["exp"] != claims["exp"] || m["iat"] != claims["iat"] {
					t.Fatalf("access token introspection %v (claims %v)", m, claims)
				}
				m = introspect(tok.RefreshToken)
				if m["active"] != true || m["token_type"] != "refresh_token" || m["client_id"] != client.ID || m["sub"] != aliceID ||
					m["scope"] != "email openid profile" {
					t.Fatalf("refresh token introspection %v", m)
				}
				info := oaUserinfo(e, tok.AccessToken).Expect(t, http.StatusOK, "").JSON(t)
				if info["sub"] != aliceID || info["email"] != "alice@example.com" || info["name"] != "Test User" {
					t.Fatalf("userinfo %v", info)
				}

				// Refresh rotates: a new pair that works, the old refresh
				// token inactive.
				next := oaOK(t, oaRefresh(e, client, tok.RefreshToken, nil))
				if next.RefreshToken == tok.RefreshToken || next.AccessToken == tok.AccessToken || next.Scope != tok.Scope {
					t.Fatalf("refresh answered %+v", next)
				}
				if m := introspect(tok.RefreshToken); m["active"] != false {
					t.Fatalf("the rotated refresh token introspects %v", m)
				}
				if m := introspect(next.AccessToken); m["active"] != true || m["client_id"] != client.ID {
					t.Fatalf("the refreshed access token introspects %v", m)
				}
				oaUserinfo(e, next.AccessToken).Expect(t, http.StatusOK, "")

				// Revoke: the whole grant stops, the refreshed pair and the
				// first access token alike.
				if r := oaRevoke(e, client, next.RefreshToken, "refresh_token").Expect(t, http.StatusOK, ""); r.JSON(t)["status"] != "ok" {
					t.Fatalf("revoke answered %s", r.Body)
				}
				for name, raw := range map[string]string{"access": next.AccessToken, "refresh": next.RefreshToken, "first access": tok.AccessToken} {
					if m := introspect(raw); m["active"] != false {
						t.Errorf("revoked %s token introspects %v", name, m)
					}
				}
				for name, raw := range map[string]string{"access": next.AccessToken, "first access": tok.AccessToken} {
					if oaAccessWorks(t, e, raw) {
						t.Errorf("revoked %s token works at userinfo", name)
					}
				}
				oaErr(t, oaRefresh(e, client, next.RefreshToken, nil), http.StatusBadRequest, "invalid_grant", "Refresh token has been revoked")
			})
		}
	})
}

// TestPagesConsentDetails: loopback-only and self-registered clients get
// warnings; a logged-out browser is sent to the login page.
func TestPagesConsentDetails(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		super := e.Superuser("root@example.com").Access
		e.Register("alice@example.com")
		local := pgRegister(t, e, super, "CLI tool", "http://127.0.0.1/callback,http://localhost:8765/cb", "public")
		_, challenge := pgPKCE(t)
		start := pgAuthorizeURL(local.ID, "http://127.0.0.1:53111/callback", "s", challenge)

		// Logged out: the consent page (GET and POST) sends to login.
		b := pgNewBrowser(t, e)
		consentURL := pgConsent + "?" + strings.SplitN(start, "?", 2)[1]
		b.get(consentURL).redirectTo(t, http.StatusFound, pgLogin+"?return_to=")
		v, _ := url.ParseQuery(strings.SplitN(start, "?", 2)[1])
		v.Set("approved", "true")
		b.post(pgConsent, v).redirectTo(t, http.StatusSeeOther, pgLogin+"?return_to=")
		if n := e.Count(`SELECT COUNT(*) FROM oauth_consents`); n != 0 {
			t.Fatal("a logged-out consent was recorded")
		}

		b.signIn("alice@example.com")
		page := b.get(b.get(start).redirectTo(t, http.StatusFound, pgConsent+"?")).expect(t, http.StatusOK)
		if !strings.Contains(page.Body, "127.0.0.1:53111") || !strings.Contains(page.Body, "local address") {
			t.Fatalf("consent page of a loopback-only client lacks its host or the warning:\n%s", page.Body)
		}

		// A dynamically registered client is flagged.
		e.Exec(`UPDATE oauth_clients SET registration_type = 'dynamic' WHERE client_id = $1`, local.ID)
		page = b.get(b.get(start).redirectTo(t, http.StatusFound, pgConsent+"?")).expect(t, http.StatusOK)
		if !strings.Contains(page.Body, "registered itself") {
			t.Fatalf("consent page of a dynamically registered client lacks the note:\n%s", page.Body)
		}

		// Until alice has allowed it, such a client's errors are shown to her,
		// at the authorization endpoint and on the consent page alike, never
		// redirected (RFC 9700 §4.11.2).
		bad := start + "&prompt=select_account"
		badConsent := consentURL + "&prompt=select_account"
		for _, target := range []string{bad, badConsent} {
			r := b.get(target).expect(t, http.StatusBadRequest)
			pgCheckPage(t, target, r)
			if r.location() != "" || !strings.Contains(r.Body, "not sent back to the application at 127.0.0.1:53111") {
				t.Fatalf("%s: error page without the note, or a redirect %q:\n%s", target, r.location(), r.Body)
			}
		}
		form := pgHidden(page.Body)
		form.Set("approved", "true")
		b.post(pgConsent, form).redirectTo(t, http.StatusSeeOther, "http://127.0.0.1:53111/callback?")
		for _, target := range []string{bad, badConsent} {
			q, _ := url.ParseQuery(strings.SplitN(b.get(target).redirectTo(t, http.StatusFound, "http://127.0.0.1:53111/callback?"), "?", 2)[1])
			if q.Get("error") != "invalid_request" || q.Get("iss") != e.Config.Provider.Issuer {
				t.Fatalf("%s after consent: %v", target, q)
			}
		}
	})
}

// TestPagesSessionRevocation: the browser session is a session of the user,
// listed by GET /sessions/me, and revoking it there logs the browser out;
// logging out through the page revokes it too.
func TestPagesSessionRevocation(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		super := e.Superuser("root@example.com").Access
		client := pgRegister(t, e, super, "App", pgRedirect, "confidential")
		api := e.User("alice@example.com")
		b := pgNewBrowser(t, e)
		b.signIn("alice@example.com")
		_, challenge := pgPKCE(t)
		start := pgAuthorizeURL(client.ID, pgRedirect, "s", challenge)
		b.get(start).redirectTo(t, http.StatusFound, pgConsent+"?")

		var list struct {
			Sessions []struct {
				ID         string  `json:"id"`
				DeviceName *string `json:"device_name"`
				IsCurrent  bool    `json:"is_current"`
			} `json:"sessions"`
		}
		e.Get("/api/v1/sessions/me", api.Access).Expect(t, http.StatusOK, "").Decode(t, &list)
		if len(list.Sessions) != 2 || !list.Sessions[0].IsCurrent || list.Sessions[1].IsCurrent {
			t.Fatalf("sessions %+v, want the API session and the browser session", list.Sessions)
		}
		browser := list.Sessions[1]
		if e.Count(`SELECT COUNT(*) FROM user_sessions WHERE id = $1 AND kind = 'browser'`, browser.ID) != 1 {
			t.Fatal("the listed session is not the browser session")
		}
		if browser.DeviceName == nil || *browser.DeviceName != "Firefox on Linux" {
			t.Fatalf("browser session device %v", browser.DeviceName)
		}
		if e.Count(`SELECT COUNT(*) FROM user_sessions WHERE kind = 'api'`) != 2 { // alice's and root's
			t.Fatal("API sessions are not of kind 'api'")
		}

		e.Delete("/api/v1/sessions/"+browser.ID, api.Access).Expect(t, http.StatusOK, "")
		b.get(start).redirectTo(t, http.StatusFound, pgLogin+"?return_to=")
		if strings.Contains(b.get(pgLogin).Body, "You are signed in as") {
			t.Fatal("the login page still greets a revoked session")
		}
		// The API session is untouched.
		e.Get("/api/v1/users/me", api.Access).Expect(t, http.StatusOK, "")

		// Logout through the page (with its CSRF token) revokes the session.
		b.signIn("alice@example.com")
		consent := b.get(b.get(start).redirectTo(t, http.StatusFound, pgConsent+"?")).expect(t, http.StatusOK)
		i := strings.Index(consent.Body, `action="/oauth/logout"`)
		if i < 0 {
			t.Fatalf("no logout form on the consent page:\n%s", consent.Body)
		}
		logout := pgHidden(consent.Body[i:])
		if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE kind = 'browser' AND is_active = TRUE`); n != 1 {
			t.Fatalf("%d active browser sessions, want 1", n)
		}
		bad := url.Values{"csrf_token": {"forged"}, "return_to": {start}}
		b.post(pgLogout, bad).expect(t, http.StatusForbidden)
		if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE kind = 'browser' AND is_active = TRUE`); n != 1 {
			t.Fatal("a forged logout revoked the session")
		}
		b.post(pgLogout, logout).redirectTo(t, http.StatusSeeOther, pgLogin+"?return_to=")
		if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE kind = 'browser' AND is_active = TRUE`); n != 0 {
			t.Fatal("logout left the browser session active")
		}
		b.get(start).redirectTo(t, http.StatusFound, pgLogin+"?return_to=")
	})
}

// TestPagesLoginFailures: a wrong password, an unknown email and an
// inactive account read the same and open no session.
func TestPagesLoginFailures(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		e.Register("alice@example.com")
		e.Register("idle@example.com")
		e.Exec(`UPDATE users SET is_active = FALSE WHERE email = $1`, "idle@example.com")
		cases := []struct{ name, email, password string }{
			{"wrong password", "alice@example.com", "Wr0ng!Password"},
			{"unknown email", "nobody@example.com", apitest.Password},
			{"inactive user", "idle@example.com", apitest.Password},
			{"not an email", `"><script>x</script>`, apitest.Password},
		}
		for _, c := range cases {
			b := pgNewBrowser(t, e)
			r := b.login(b.get(pgLogin), c.email, c.password)
			r.expect(t, http.StatusBadRequest)
			pgCheckPage(t, c.name, r)
			if !strings.Contains(r.Body, pgFailed) || strings.Contains(r.Body, "inactive") {
				t.Fatalf("%s: body lacks the one error text:\n%s", c.name, r.Body)
			}
			if strings.Contains(r.Body, "<script>x") {
				t.Fatalf("%s: the email is echoed unescaped", c.name)
			}
			for _, sc := range r.Header.Values("Set-Cookie") {
				if strings.HasPrefix(sc, "gatehouse_session=") {
					t.Fatalf("%s: a session cookie was set: %s", c.name, sc)
				}
			}
			if n := pgBrowserSessions(t, e); n != 0 {
				t.Fatalf("%s: %d browser sessions", c.name, n)
			}
		}
	})
}

// TestPagesLimits: the login form shares the per-account throttle and the
// per-IP rate limit of POST /auth/login, and answers both with a page.
func TestPagesLimits(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		e.Register("alice@example.com")
		b := pgNewBrowser(t, e)
		// Both the throttle's window and the per-IP minute.
		apitest.FreshWindow(t, burstBudget, time.Minute, e.Config.Auth.LoginFailureWindow)
		for range 2 {
			b.login(b.get(pgLogin), "alice@example.com", "Wr0ng!Password").expect(t, http.StatusBadRequest)
		}
		r := b.login(b.get(pgLogin), "alice@example.com", apitest.Password).expect(t, http.StatusTooManyRequests)
		pgCheckPage(t, "throttled login", r)
		if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, "Too many failed login attempts") {
			t.Fatalf("throttled login: Retry-After %q, body:\n%s", r.Header.Get("Retry-After"), r.Body)
		}
		// The API login counts against the same per-IP budget (10 a minute).
		// (Each attempt names another account, so the throttle stays out.)
		for i := range 6 {
			b.login(b.get(pgLogin), fmt.Sprintf("nobody%d@example.com", i), "Wr0ng!Password").expect(t, http.StatusBadRequest)
		}
		e.Post("/api/v1/auth/login", "", map[string]any{"email": "api@example.com", "password": "x"}).Expect(t, http.StatusUnauthorized, "")
		r = b.login(b.get(pgLogin), "last@example.com", "Wr0ng!Password").expect(t, http.StatusTooManyRequests)
		pgCheckPage(t, "rate-limited login", r)
		if r.Header.Get("Retry-After") == "" || r.Header.Get("X-RateLimit-Limit") != "10" || !strings.Contains(r.Body, "Rate limit exceeded") {
			t.Fatalf("rate-limited login: headers %v, body:\n%s", r.Header, r.Body)
		}
		if n := pgBrowserSessions(t, e); n != 0 {
			t.Fatalf("%d browser sessions", n)
		}
	}, apitest.WithEnv("LOGIN_THROTTLE_ATTEMPTS", "2"), apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
}

// TestPagesCSRF: a form without its token, with a wrong one, or with the
// token of another browser or another form answers 403 and changes nothing.
func TestPagesCSRF(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		super := e.Superuser("root@example.com").Access
		client := pgRegister(t, e, super, "App", pgRedirect, "confidential")
		e.Register("alice@example.com")
		before := e.Snapshot()

		victim := pgNewBrowser(t, e)
		page := victim.get(pgLogin)
		good := pgHidden(page.Body).Get("csrf_token")
		other := pgNewBrowser(t, e)
		otherToken := pgHidden(other.get(pgLogin).Body).Get("csrf_token")
		creds := func(tok string) url.Values {
			v := url.Values{"email": {"alice@example.com"}, "password": {apitest.Password}}
			if tok != "" {
				v.Set("csrf_token", tok)
			}
			return v
		}
		for name, tok := range map[string]string{"missing": "", "wrong": "AAAA" + good[4:], "garbage": "%%%",
			"another browser's": otherToken} {
			r := victim.post(pgLogin, creds(tok)).expect(t, http.StatusForbidden)
			pgCheckPage(t, name+" token", r)
		}
		// A browser without the CSRF cookie, posting a valid-looking token.
		pgNewBrowser(t, e).post(pgLogin, creds(good)).expect(t, http.StatusForbidden)
		// Another site's form (Origin of another host) is refused even with
		// the right token.
		req, _ := http.NewRequest("POST", e.Server.URL+pgLogin, strings.NewReader(creds(good).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := victim.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin login post: status %d, want 403", resp.StatusCode)
		}
		if after := e.Snapshot(); after != before {
			t.Fatalf("refused forms changed the database:\nbefore %s\nafter  %s", before, after)
		}

		// Consent: the login form's token, or a forged one, is refused.
		victim.signIn("alice@example.com")
		_, challenge := pgPKCE(t)
		consent := victim.get(victim.get(pgAuthorizeURL(client.ID, pgRedirect, "s", challenge)).
			redirectTo(t, http.StatusFound, pgConsent+"?")).expect(t, http.StatusOK)
		loginToken := pgHidden(victim.get(pgLogin).Body).Get("csrf_token")
		form := pgHidden(consent.Body)
		form.Set("approved", "true")
		for _, tok := range []string{"", "forged", loginToken, otherToken} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			if tok == "" {
				f.Del("csrf_token")
			} else {
				f.Set("csrf_token", tok)
			}
			victim.post(pgConsent, f).expect(t, http.StatusForbidden)
		}
		if e.Count(`SELECT COUNT(*) FROM oauth_consents`) != 0 || e.Count(`SELECT COUNT(*) FROM oauth_authorization_codes`) != 0 {
			t.Fatal("a refused consent form recorded a consent or issued a code")
		}
		victim.post(pgConsent, form).redirectTo(t, http.StatusSeeOther, pgRedirect+"?")
	})
}

// TestPagesReturnTo: return_to outside the authorization endpoint is
// ignored; the pages never redirect off-site.
func TestPagesReturnTo(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		e.Register("alice@example.com")
		for _, evil := range []string{
			"https://evil.example", "//evil.example", `/\evil`, `/\/evil.example`, "https://evil.example" + pgAuthorize + "?x=1",
			"//evil.example" + pgAuthorize + "?x=1", pgAuthorize + "?x=1#@evil.example", pgAuthorize + "/../../../evil?x",
			pgAuthorize + "X?x=1", "/api/v1/users/me", "javascript:alert(1)", pgAuthorize + "?x=\r\nLocation: https://evil.example",
			"/%2F%2Fevil.example", " " + pgAuthorize + "?x=1",
		} {
			b := pgNewBrowser(t, e)
			page := b.get(pgLogin+"?"+url.Values{"return_to": {evil}}.Encode()).expect(t, http.StatusOK)
			if pgHidden(page.Body).Has("return_to") {
				t.Fatalf("return_to %q was kept on the login page", evil)
			}
			form := pgHidden(page.Body)
			form.Set("return_to", evil)
			form.Set("email", "alice@example.com")
			form.Set("password", apitest.Password)
			r := b.post(pgLogin, form).expect(t, http.StatusOK)
			if r.location() != "" || !strings.Contains(r.Body, pgSignedIn) {
				t.Fatalf("return_to %q: Location %q; body:\n%s", evil, r.location(), r.Body)
			}
			// Logout too.
			r = b.post(pgLogout, url.Values{"csrf_token": {pgHidden(r.Body).Get("csrf_token")}, "return_to": {evil}})
			if r.redirectTo(t, http.StatusSeeOther, pgLogin); r.location() != pgLogin {
				t.Fatalf("logout with return_to %q went to %q", evil, r.location())
			}
		}
		// "/" is allowed for plain logins.
		b := pgNewBrowser(t, e)
		page := b.get(pgLogin + "?return_to=%2F")
		b.login(page, "alice@example.com", apitest.Password).redirectTo(t, http.StatusSeeOther, "/")
	})
}

// TestPagesCookies: the session and CSRF cookies are HttpOnly,
// SameSite=Lax, Path=/; with an https issuer also Secure and __Host-.
func TestPagesCookies(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		e.Register("alice@example.com")
		b := pgNewBrowser(t, e)
		page := b.get(pgLogin)
		r := b.login(page, "alice@example.com", apitest.Password).expect(t, http.StatusOK)
		check := func(raw []string, name string, secure bool) {
			t.Helper()
			for _, sc := range raw {
				if !strings.HasPrefix(sc, name+"=") {
					continue
				}
				low := strings.ToLower(sc)
				if !strings.Contains(low, "httponly") || !strings.Contains(low, "samesite=lax") || !strings.Contains(sc, "Path=/") ||
					strings.Contains(low, "domain=") || strings.Contains(low, "secure") != secure {
					t.Fatalf("cookie %s: %s", name, sc)
				}
				return
			}
			t.Fatalf("no %s cookie in %q", name, raw)
		}
		check(page.Header.Values("Set-Cookie"), "gatehouse_csrf", false)
		check(r.Header.Values("Set-Cookie"), "gatehouse_session", false)
		if v := b.cookie("gatehouse_session"); len(v) != 43 {
			t.Fatalf("session cookie value %q is not 256 random bits", v)
		}
	})

	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine)+"/https", func(t *testing.T) {
			t.Parallel()
			e := apitest.New(t, engine, apitest.WithEnv("OAUTH_PROVIDER_ENABLED", "true"),
				apitest.WithEnv("OAUTH_ISSUER", "https://id.example.com"), apitest.WithEnv("OAUTH_BROWSER_SESSION_HOURS", "2"))
			e.Register("alice@example.com")
			serve := func(req *http.Request) *http.Response {
				rec := httptest.NewRecorder()
				e.App.Handler.ServeHTTP(rec, req)
				return rec.Result()
			}
			page := serve(httptest.NewRequest("GET", "https://id.example.com"+pgLogin, nil))
			body, _ := io.ReadAll(page.Body)
			var csrf *http.Cookie
			for _, c := range page.Cookies() {
				if c.Name == "__Host-gatehouse_csrf" {
					csrf = c
				}
			}
			if csrf == nil || !csrf.Secure || !csrf.HttpOnly || csrf.SameSite != http.SameSiteLaxMode || csrf.Path != "/" || csrf.Domain != "" {
				t.Fatalf("CSRF cookie %+v (Set-Cookie %q)", csrf, page.Header.Values("Set-Cookie"))
			}
			form := pgHidden(string(body))
			form.Set("email", "alice@example.com")
			form.Set("password", apitest.Password)
			req := httptest.NewRequest("POST", "https://id.example.com"+pgLogin, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.AddCookie(&http.Cookie{Name: csrf.Name, Value: csrf.Value})
			resp := serve(req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("login over https: %d", resp.StatusCode)
			}
			var sess *http.Cookie
			for _, c := range resp.Cookies() {
				if c.Name == "__Host-gatehouse_session" {
					sess = c
				}
			}
			if sess == nil || !sess.Secure || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Path != "/" || sess.Domain != "" {
				t.Fatalf("session cookie %+v (Set-Cookie %q)", sess, resp.Header.Values("Set-Cookie"))
			}
			if sess.MaxAge < 7100 || sess.MaxAge > 7200 {
				t.Fatalf("session cookie Max-Age %d, want OAUTH_BROWSER_SESSION_HOURS=2", sess.MaxAge)
			}
			// The prefixed cookie logs in; the same value under the plain
			// name does not.
			for name, want := range map[string]bool{"__Host-gatehouse_session": true, "gatehouse_session": false} {
				req := httptest.NewRequest("GET", "https://id.example.com"+pgLogin, nil)
				req.AddCookie(&http.Cookie{Name: name, Value: sess.Value})
				b, _ := io.ReadAll(serve(req).Body)
				if got := strings.Contains(string(b), "You are signed in as"); got != want {
					t.Fatalf("cookie %s: signed in %v, want %v", name, got, want)
				}
			}
		})
	}
}

// TestPagesHeaders: every page carries frame-ancestors 'none', no-store and
// X-Frame-Options whatever CSP_MODE says, and loads only its own stylesheet.
func TestPagesHeaders(t *testing.T) {
	for _, mode := range []string{"strict", "disabled"} {
		t.Run(mode, func(t *testing.T) {
			pgEach(t, func(t *testing.T, e *apitest.Env) {
				super := e.Superuser("root@example.com").Access
				client := pgRegister(t, e, super, "App", pgRedirect, "confidential")
				e.Register("alice@example.com")
				b := pgNewBrowser(t, e)
				pgCheckPage(t, "login", b.get(pgLogin).expect(t, http.StatusOK))
				pgCheckPage(t, "failed login", b.login(b.get(pgLogin), "alice@example.com", "nope").expect(t, http.StatusBadRequest))
				pgCheckPage(t, "CSRF refusal", b.post(pgLogin, url.Values{"email": {"x"}}).expect(t, http.StatusForbidden))
				errPage := b.get(pgAuthorize + "?response_type=code&client_id=unknown&redirect_uri=https://evil.example/")
				if errPage.Status != http.StatusBadRequest && errPage.Status != http.StatusUnauthorized {
					t.Fatalf("unknown client: status %d, want an error page", errPage.Status)
				}
				pgCheckPage(t, "error page", errPage)
				if !strings.Contains(errPage.Body, "Unknown client_id") || errPage.location() != "" {
					t.Fatalf("error page:\n%s", errPage.Body)
				}
				pgCheckPage(t, "reset page", b.get(pgReset+"?token=abc").expect(t, http.StatusOK))
				pgCheckPage(t, "reset without token", b.get(pgReset).expect(t, http.StatusBadRequest))
				signedIn := b.login(b.get(pgLogin), "alice@example.com", apitest.Password).expect(t, http.StatusOK)
				pgCheckPage(t, "signed-in page", signedIn)
				_, challenge := pgPKCE(t)
				consentAt := b.get(pgAuthorizeURL(client.ID, pgRedirect, "s", challenge)).redirectTo(t, http.StatusFound, pgConsent+"?")
				pgCheckPage(t, "redirect to consent", b.get(consentAt+"&prompt=login"))
				pgCheckPage(t, "consent", b.get(consentAt).expect(t, http.StatusOK))
				css := b.get("/oauth/static/pages.css").expect(t, http.StatusOK)
				if !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || !strings.Contains(css.Body, "font-family") {
					t.Fatalf("stylesheet: %q\n%s", css.Header.Get("Content-Type"), css.Body)
				}
			}, apitest.WithEnv("CSP_MODE", mode))
		})
	}
}

// TestPagesPasswordReset: the emailed link opens the reset page on
// Gatehouse; the form shows the password rule's errors, then sets the
// password; the old one stops working and the link is spent.
func TestPagesPasswordReset(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		e.Register("bob@example.com")
		b := pgNewBrowser(t, e)
		b.signIn("bob@example.com")
		e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "bob@example.com"}).Expect(t, http.StatusOK, "")
		text := e.Mail.Wait(t, 1, 10*time.Second)[0].Text
		i := strings.Index(text, "https://app.example.com"+pgReset+"?token=")
		if i < 0 {
			t.Fatalf("no reset link in the email:\n%s", text)
		}
		link, err := url.Parse(strings.Fields(text[i:])[0])
		if err != nil {
			t.Fatal(err)
		}
		page := b.get(link.RequestURI()).expect(t, http.StatusOK)
		pgCheckPage(t, "reset page", page)
		form := pgHidden(page.Body)
		if form.Get("token") != link.Query().Get("token") || form.Get("csrf_token") == "" {
			t.Fatalf("reset form fields %v", form)
		}
		submit := func(pw, confirm string) pgResp {
			f := url.Values{"token": {form.Get("token")}, "csrf_token": {form.Get("csrf_token")}, "new_password": {pw}, "confirm_password": {confirm}}
			return b.post(pgReset, f)
		}
		// Without CSRF token: refused, nothing changed.
		b.post(pgReset, url.Values{"token": {form.Get("token")}, "new_password": {"N3w!Passw0rd-xyz"}, "confirm_password": {"N3w!Passw0rd-xyz"}}).
			expect(t, http.StatusForbidden)
		if r := submit("short", "short").expect(t, http.StatusUnprocessableEntity); !strings.Contains(r.Body, "Password must be at least 12 characters long") ||
			strings.Contains(r.Body, "Value error") {
			t.Fatalf("weak password: body\n%s", r.Body)
		}
		if r := submit("N3w!Passw0rd-xyz", "N3w!Passw0rd-xyZ").expect(t, http.StatusBadRequest); !strings.Contains(r.Body, "not the same") {
			t.Fatalf("mismatch: body\n%s", r.Body)
		}
		e.Login("bob@example.com", apitest.Password) // nothing changed so far
		if r := submit("N3w!Passw0rd-xyz", "N3w!Passw0rd-xyz").expect(t, http.StatusOK); !strings.Contains(r.Body, "Your password has been changed") {
			t.Fatalf("success page:\n%s", r.Body)
		}
		e.Post("/api/v1/auth/login", "", map[string]any{"email": "bob@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "")
		e.Login("bob@example.com", "N3w!Passw0rd-xyz")
		if r := submit("An0ther!Passw0rd", "An0ther!Passw0rd").expect(t, http.StatusBadRequest); !strings.Contains(r.Body, "Invalid or expired password reset token") {
			t.Fatalf("reused link:\n%s", r.Body)
		}
		// The reset signed the browser out as well.
		if n := e.Count(`SELECT COUNT(*) FROM user_sessions WHERE kind = 'browser' AND is_active = TRUE`); n != 0 {
			t.Fatalf("%d browser sessions survived the reset", n)
		}
		b.login(b.get(pgLogin), "bob@example.com", apitest.Password).expect(t, http.StatusBadRequest)
		b.login(b.get(pgLogin), "bob@example.com", "N3w!Passw0rd-xyz").expect(t, http.StatusOK)
	})
}

// TestPagesSocialLogin: the login page offers the enabled providers; a
// social login through it (the fake Google) ends in a browser session and
// continues the authorization; a callback in another browser is refused.
func TestPagesSocialLogin(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			google := socialtest.NewOIDC(t, "pages-google-client", "pages-google-secret")
			google.SetUser(socialtest.OIDCUser{Subject: "g-77", Email: "social@example.com", EmailVerified: true, GivenName: "So", FamilyName: "Cial"})
			e := apitest.New(t, engine, apitest.WithEnv("OAUTH_PROVIDER_ENABLED", "true"), apitest.WithEnv("OAUTH_ENABLED", "true"),
				apitest.WithEnv("OAUTH_GOOGLE_ISSUER", google.URL()), apitest.WithEnv("OAUTH_GOOGLE_CLIENT_ID", "pages-google-client"),
				apitest.WithEnv("OAUTH_GOOGLE_CLIENT_SECRET", "pages-google-secret"))
			super := e.Superuser("root@example.com").Access
			client := pgRegister(t, e, super, "App", pgRedirect, "confidential")
			_, challenge := pgPKCE(t)
			start := pgAuthorizeURL(client.ID, pgRedirect, "s", challenge)
			b := pgNewBrowser(t, e)
			page := b.get(b.get(start).redirectTo(t, http.StatusFound, pgLogin+"?")).expect(t, http.StatusOK)
			want := html.EscapeString("/oauth/social/google?" + url.Values{"return_to": {start}}.Encode())
			if !strings.Contains(page.Body, `href="`+want+`"`) || !strings.Contains(page.Body, ">Google</a>") {
				t.Fatalf("login page does not offer Google (%s):\n%s", want, page.Body)
			}

			// The browser goes to Google, which sends it back to Gatehouse.
			callback := func(b *pgBrowser) string {
				at := b.get("/oauth/social/google?"+url.Values{"return_to": {start}}.Encode()).redirectTo(t, http.StatusFound, google.URL()+"/authorize?")
				resp := b.get(at).expect(t, http.StatusFound)
				u, err := url.Parse(resp.location())
				if err != nil || u.Path != "/oauth/social/callback/google" || u.Scheme+"://"+u.Host != e.Config.Provider.Issuer {
					t.Fatalf("provider sent the browser to %q", resp.location())
				}
				return u.RequestURI() // the test server stands for the issuer
			}

			// The callback in a browser that did not start the login: refused.
			attacker := pgNewBrowser(t, e)
			stolen := callback(attacker)
			victim := pgNewBrowser(t, e)
			before := e.Snapshot()
			victim.get(stolen).expect(t, http.StatusBadRequest)
			if after := e.Snapshot(); after != before {
				t.Fatalf("a foreign callback changed the database:\nbefore %s\nafter  %s", before, after)
			}

			back := b.get(callback(b)).redirectTo(t, http.StatusFound, pgAuthorize+"?")
			if back != start {
				t.Fatalf("after the social login the browser went to %q, want %q", back, start)
			}
			if n := e.Count(`SELECT COUNT(*) FROM user_sessions s JOIN users u ON u.id = s.user_id
				WHERE u.email = 'social@example.com' AND s.kind = 'browser' AND s.is_active = TRUE`); n != 1 {
				t.Fatalf("%d browser sessions for the social user, want 1", n)
			}
			if n := e.Count(`SELECT COUNT(*) FROM user_sessions s JOIN users u ON u.id = s.user_id
				WHERE u.email = 'social@example.com' AND s.kind = 'api'`); n != 0 {
				t.Fatalf("the social login through the pages opened %d API sessions", n)
			}
			consent := b.get(b.get(back).redirectTo(t, http.StatusFound, pgConsent+"?")).expect(t, http.StatusOK)
			if !strings.Contains(consent.Body, "social@example.com") {
				t.Fatalf("consent page is not for the social user:\n%s", consent.Body)
			}
			// The binding cookie is single use: replaying the callback fails.
			b.get(stolen).expect(t, http.StatusBadRequest)
			// A provider's error is shown, escaped.
			r := b.get("/oauth/social/callback/google?error=access_denied&error_description="+url.QueryEscape("<script>alert(1)</script>")).
				expect(t, http.StatusBadRequest)
			pgCheckPage(t, "provider error", r)
			if !strings.Contains(r.Body, "access_denied") || !strings.Contains(r.Body, "&lt;script&gt;") {
				t.Fatalf("provider error page:\n%s", r.Body)
			}
		})
	}
}

// TestPagesModes: with OAUTH_PROVIDER_UI=frontend the authorization
// endpoint sends users to the frontend, but the pages still exist; with the
// authorization server off only the password-reset page remains.
func TestPagesModes(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		super := e.Superuser("root@example.com").Access
		client := pgRegister(t, e, super, "App", pgRedirect, "confidential")
		_, challenge := pgPKCE(t)
		b := pgNewBrowser(t, e)
		b.get(pgAuthorizeURL(client.ID, pgRedirect, "s", challenge)).redirectTo(t, http.StatusFound, "https://app.example.com/login?")
		b.get(pgLogin).expect(t, http.StatusOK)
	}, apitest.WithEnv("OAUTH_PROVIDER_UI", "frontend"))

	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		b := pgNewBrowser(t, e)
		b.get(pgLogin).expect(t, http.StatusNotFound)
		b.get(pgConsent).expect(t, http.StatusNotFound)
		b.get(pgReset+"?token=abc").expect(t, http.StatusOK)
	})
}

// TestPagesFrontendModeRedirects: with OAUTH_PROVIDER_UI=frontend an
// anonymous user goes to {FRONTEND_URL}/login with return_to as one encoded
// value naming the frontend's consent route with every parameter of the
// reference (§6B.3 step 6, fix 27), and a logged-in user without consent to
// that consent route with the reference's parameters (step 7), enough for
// the frontend to post the consent.
func TestPagesFrontendModeRedirects(t *testing.T) {
	pgEach(t, func(t *testing.T, e *apitest.Env) {
		super := e.Superuser("root@example.com").Access
		alice := e.User("alice@example.com")
		client := pgRegister(t, e, super, pgClientName, pgRedirect, "public")
		_, challenge := pgPKCE(t)
		const state = "a&b=c d/é?#%+ü 🔑&x="
		v := url.Values{"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {pgRedirect},
			"scope": {"profile unknown:scope openid"}, "state": {state}, "code_challenge": {challenge},
			"code_challenge_method": {"S256"}, "nonce": {"n&=1 é"}}
		want := url.Values{"client_id": {client.ID}, "redirect_uri": {pgRedirect}, "scope": {"openid profile"},
			"state": {state}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "nonce": {"n&=1 é"}}
		sameValues := func(what string, got, want url.Values) {
			t.Helper()
			for k, w := range want {
				if g := got[k]; len(g) != 1 || g[0] != w[0] {
					t.Errorf("%s: %s = %q, want exactly %q", what, k, g, w[0])
				}
			}
			for k := range got {
				if !want.Has(k) {
					t.Errorf("%s: unexpected parameter %s = %q", what, k, got[k])
				}
			}
		}

		// Anonymous: the frontend's login page with one return_to.
		u := oaLocation(t, oaAuthorize(e, "", v), http.StatusFound)
		if u.Scheme+"://"+u.Host+u.Path != "https://app.example.com/login" {
			t.Fatalf("anonymous user sent to %s, want https://app.example.com/login", u)
		}
		top, err := url.ParseQuery(u.RawQuery)
		if err != nil || len(top) != 1 || len(top["return_to"]) != 1 {
			t.Fatalf("login URL query %q: want return_to alone, once (%v)", u.RawQuery, err)
		}
		ret, err := url.Parse(top.Get("return_to"))
		if err != nil || ret.IsAbs() || ret.Host != "" || ret.Path != "/auth/consent" {
			t.Fatalf("return_to %q is not the frontend's consent route (%v)", top.Get("return_to"), err)
		}
		marked := oaMerge(url.Values{"oauth_authorize": {"true"}}, want)
		sameValues("return_to", ret.Query(), marked)

		// Missing values are present and empty, as in the reference.
		bare := oaMerge(url.Values{}, v)
		bare.Del("nonce")
		bare.Del("state")
		u = oaLocation(t, oaAuthorize(e, "", bare), http.StatusFound)
		ret, _ = url.Parse(u.Query().Get("return_to"))
		if q := ret.Query(); !q.Has("nonce") || q.Get("nonce") != "" || !q.Has("state") || q.Get("state") != "" {
			t.Fatalf("return_to without nonce and state: %q", ret)
		}

		// Logged in (the frontend's bearer token), no consent: the
		// frontend's consent route with the client's name.
		u = oaLocation(t, oaAuthorize(e, alice.Access, v), http.StatusFound)
		if u.Scheme+"://"+u.Host+u.Path != "https://app.example.com/auth/consent" {
			t.Fatalf("logged-in user sent to %s, want https://app.example.com/auth/consent", u)
		}
		named := oaMerge(url.Values{"client_name": {pgClientName}}, want)
		sameValues("consent route", u.Query(), named)

		// What the frontend got is what it posts back with the user's
		// answer: the client receives the code and its state unchanged.
		answer := u.Query()
		answer.Del("client_name")
		q := oaBackAtClient(t, e, oaLocation(t, oaConsent(e, alice.Access, answer, "true"), http.StatusSeeOther), answer)
		if q.Get("code") == "" || q.Get("state") != state {
			t.Fatalf("consent posted from the frontend's parameters: %v", q)
		}
	}, apitest.WithEnv("OAUTH_PROVIDER_UI", "frontend"))
}
