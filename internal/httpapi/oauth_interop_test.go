package httpapi_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// Interoperability with real client libraries against the real server:
// golang.org/x/oauth2 (authorization code with PKCE, refresh) and
// github.com/coreos/go-oidc/v3 (discovery, ID token verification, userinfo).

// oaInteropCode follows an authorization URL built by a client library the
// way a browser would, as the user of bearer: the authorization endpoint
// sends a user without consent to the consent page, whose parameters are
// posted back to the consent API; the answer is a 303 to the client with
// code, state and iss. baseURL is where the server listens.
func oaInteropCode(t *testing.T, baseURL, issuer, bearer, authURL, state string, redirect string) string {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(req *http.Request) *http.Response {
		t.Helper()
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(authURL, issuer+oaBase+"/authorize?") && !strings.HasPrefix(authURL, baseURL+oaBase+"/authorize?") {
		t.Fatalf("authorization URL %s is not the server's", authURL)
	}
	req, _ := http.NewRequest("GET", baseURL+u.RequestURI(), nil)
	resp := do(req)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if loc.Path == "/oauth/consent" {
		form := loc.Query()
		form.Set("approved", "true")
		req, _ := http.NewRequest("POST", baseURL+oaBase+"/authorize/consent", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", oaFormType)
		resp = do(req)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("consent: %d", resp.StatusCode)
		}
		if loc, err = url.Parse(resp.Header.Get("Location")); err != nil {
			t.Fatal(err)
		}
	}
	if !oaAtClient(loc, redirect) {
		t.Fatalf("ended at %s, want the client's %s", loc, redirect)
	}
	q := loc.Query()
	if q.Get("state") != state || q.Get("iss") != issuer || q.Get("code") == "" {
		t.Fatalf("client redirect %s (state %q iss %q)", loc, state, issuer)
	}
	return q.Get("code")
}

func TestOAuthInteropGoOAuth2(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.Server.Client())
		for _, tc := range []struct {
			name  string
			c     oaClient
			style oauth2.AuthStyle
		}{
			{"confidential, Basic", s.conf, oauth2.AuthStyleInHeader},
			{"confidential, post", s.conf, oauth2.AuthStyleInParams},
			{"confidential, auto-detect", s.conf, oauth2.AuthStyleAutoDetect},
			{"public", s.pub, oauth2.AuthStyleInParams},
		} {
			t.Run(tc.name, func(t *testing.T) {
				conf := &oauth2.Config{ClientID: tc.c.ID, ClientSecret: tc.c.Secret, RedirectURL: tc.c.Redirect,
					Scopes:   []string{"openid", "email"},
					Endpoint: oauth2.Endpoint{AuthURL: e.Server.URL + oaBase + "/authorize", TokenURL: e.Server.URL + oaBase + "/token", AuthStyle: tc.style}}
				verifier := oauth2.GenerateVerifier()
				state := "state-" + tc.name
				authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
				code := oaInteropCode(t, e.Server.URL, e.Config.Provider.Issuer, s.alice.Access, authURL, state, tc.c.Redirect)

				// A wrong verifier is refused with an RFC 6749 error the library parses.
				_, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
				var re *oauth2.RetrieveError
				if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" || !strings.Contains(re.ErrorDescription, "code_verifier") {
					t.Fatalf("exchange with a wrong verifier: %v", err)
				}
				tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.Expiry.IsZero() || !tok.Valid() {
					t.Fatalf("token %+v", tok)
				}
				if idt, _ := tok.Extra("id_token").(string); idt == "" || tok.Extra("scope") != "email openid" {
					t.Fatalf("extras: id_token %q scope %v", idt, tok.Extra("scope"))
				}
				// The library's client calls userinfo with the token.
				resp, err := conf.Client(ctx, tok).Get(e.Server.URL + oaBase + "/userinfo")
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("userinfo through the library's client: %v %v", err, resp)
				}
				resp.Body.Close()
				// Replaying the code through the library fails.
				if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
					t.Fatalf("replay through the library: %v", err)
				}

				// Refresh: a fresh grant, forced to expire, renewed by the
				// token source; the rotated refresh token is then refused.
				verifier = oauth2.GenerateVerifier()
				code = oaInteropCode(t, e.Server.URL, e.Config.Provider.Issuer, s.alice.Access, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), state, tc.c.Redirect)
				tok, err = conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatal(err)
				}
				old := *tok
				tok.Expiry = time.Now().Add(-time.Minute)
				next, err := conf.TokenSource(ctx, tok).Token()
				if err != nil {
					t.Fatalf("refresh through the token source: %v", err)
				}
				if next.AccessToken == old.AccessToken || next.RefreshToken == "" || next.RefreshToken == old.RefreshToken || !next.Valid() {
					t.Fatalf("refreshed token %+v", next)
				}
				if !oaAccessWorks(t, e, next.AccessToken) {
					t.Fatal("the refreshed access token does not work")
				}
				stale := old
				stale.Expiry = time.Now().Add(-time.Minute)
				if _, err := conf.TokenSource(ctx, &stale).Token(); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
					t.Fatalf("refresh with the rotated token: %v", err)
				}
			})
		}
	})
}

// go-oidc discovers the issuer by fetching <issuer>/.well-known/openid-
// configuration and insists that the document's issuer is that URL, so the
// server's OAUTH_ISSUER must be the address the test server listens on.
// apitest starts its own httptest server only after the configuration is
// built, so the test opens a listener first, starts the service with
// OAUTH_ISSUER set to that listener's URL, and serves the same service
// (e.App.Handler, same database) on it.
func oaStartAtIssuer(t *testing.T, engine sqlstore.Engine, opts ...apitest.Option) (*apitest.Env, *httptest.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	e := apitest.New(t, engine, append([]apitest.Option{oaOn(), apitest.WithEnv("OAUTH_ISSUER", issuer)}, opts...)...)
	srv := httptest.NewUnstartedServer(e.App.Handler)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	if e.Config.Provider.Issuer != issuer || srv.URL != issuer {
		t.Fatalf("issuer %s, server %s", e.Config.Provider.Issuer, srv.URL)
	}
	return e, srv
}

func TestOAuthInteropGoOIDC(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			e, srv := oaStartAtIssuer(t, engine)
			s := oaStart(t, e)
			issuer := srv.URL
			ctx := oidc.ClientContext(context.Background(), srv.Client())

			provider, err := oidc.NewProvider(ctx, issuer)
			if err != nil {
				t.Fatalf("discovery: %v", err)
			}
			var meta struct {
				UserInfo string   `json:"userinfo_endpoint"`
				JWKS     string   `json:"jwks_uri"`
				Methods  []string `json:"code_challenge_methods_supported"`
			}
			if err := provider.Claims(&meta); err != nil {
				t.Fatal(err)
			}
			if provider.Endpoint().AuthURL != issuer+oaBase+"/authorize" || provider.Endpoint().TokenURL != issuer+oaBase+"/token" ||
				provider.UserInfoEndpoint() != issuer+oaBase+"/userinfo" || meta.JWKS != issuer+"/.well-known/jwks.json" ||
				strings.Join(meta.Methods, ",") != "S256" {
				t.Fatalf("discovered %+v %+v", provider.Endpoint(), meta)
			}
			for _, c := range []oaClient{s.conf, s.pub} {
				conf := &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: c.Redirect, Endpoint: provider.Endpoint(),
					Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
				if c.public() {
					conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
				}
				verifier, nonce, state := oauth2.GenerateVerifier(), "nonce-"+c.ID[:8], "state-"+c.ID[:8]
				authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
				code := oaInteropCode(t, srv.URL, issuer, s.alice.Access, authURL, state, c.Redirect)
				tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatalf("exchange: %v", err)
				}
				rawID, _ := tok.Extra("id_token").(string)
				idToken, err := provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, rawID)
				if err != nil {
					t.Fatalf("ID token verification: %v", err)
				}
				if idToken.Issuer != issuer || idToken.Subject != s.alice.UserID || idToken.Nonce != nonce ||
					len(idToken.Audience) != 1 || idToken.Audience[0] != c.ID || idToken.AccessTokenHash == "" {
					t.Fatalf("ID token %+v", idToken)
				}
				if err := idToken.VerifyAccessToken(tok.AccessToken); err != nil {
					t.Fatalf("at_hash: %v", err)
				}
				if err := idToken.VerifyAccessToken(tok.AccessToken + "x"); err == nil {
					t.Fatal("at_hash accepts another access token")
				}
				var claims struct {
					Email         string `json:"email"`
					EmailVerified *bool  `json:"email_verified"`
					Name          string `json:"name"`
					AuthTime      int64  `json:"auth_time"`
				}
				if err := idToken.Claims(&claims); err != nil || claims.Email != "alice@example.com" || claims.Name != "Test User" ||
					claims.EmailVerified == nil || claims.AuthTime == 0 {
					t.Fatalf("ID token claims %+v (%v)", claims, err)
				}
				// The verifier refuses the token for another client, and a
				// tampered token.
				if _, err := provider.Verifier(&oidc.Config{ClientID: "someone-else"}).Verify(ctx, rawID); err == nil {
					t.Fatal("ID token accepted for another audience")
				}
				parts := strings.Split(rawID, ".")
				tampered := parts[0] + "." + parts[1] + "x." + parts[2]
				if _, err := provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, tampered); err == nil {
					t.Fatal("tampered ID token accepted")
				}
				// The access token is not an ID token (typ at+jwt, other key
				// and algorithm, audience the client only by accident).
				if _, err := provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, tok.AccessToken); err == nil {
					t.Fatal("go-oidc accepts the access token as an ID token")
				}

				info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
				if err != nil {
					t.Fatalf("userinfo: %v", err)
				}
				var infoClaims map[string]any
				if err := info.Claims(&infoClaims); err != nil {
					t.Fatal(err)
				}
				if info.Subject != s.alice.UserID || info.Email != "alice@example.com" || infoClaims["name"] != "Test User" || infoClaims["given_name"] != "Test" {
					t.Fatalf("userinfo %+v %v", info, infoClaims)
				}

				// After a refresh the new ID token verifies too.
				tok.Expiry = time.Now().Add(-time.Minute)
				next, err := conf.TokenSource(ctx, tok).Token()
				if err != nil {
					t.Fatalf("refresh: %v", err)
				}
				rawNext, _ := next.Extra("id_token").(string)
				nextID, err := provider.Verifier(&oidc.Config{ClientID: c.ID}).Verify(ctx, rawNext)
				if err != nil {
					t.Fatalf("refreshed ID token: %v", err)
				}
				if nextID.Subject != s.alice.UserID || nextID.VerifyAccessToken(next.AccessToken) != nil {
					t.Fatalf("refreshed ID token %+v", nextID)
				}
			}

			// After a key rotation go-oidc verifies ID tokens of the new key
			// (its key set refetches on an unknown kid).
			if _, err := e.App.Keys.Rotate(context.Background()); err != nil {
				t.Fatal(err)
			}
			tok := oaFlow(t, e, s.conf, s.alice.Access, url.Values{"scope": {"openid"}, "nonce": {"after-rotation"}})
			if _, err := provider.Verifier(&oidc.Config{ClientID: s.conf.ID}).Verify(ctx, tok.IDToken); err != nil {
				t.Fatalf("ID token of a rotated key: %v", err)
			}
		})
	}
}
