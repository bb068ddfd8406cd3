package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
)

// The authorization server's endpoints, and the client loadgen registers.
const (
	pathProvider     = "/api/v1/oauth/provider"
	pathClients      = pathProvider + "/clients"
	pathAuthorize    = pathProvider + "/authorize"
	pathConsent      = pathProvider + "/authorize/consent"
	pathToken        = pathProvider + "/token"
	pathIntrospect   = pathProvider + "/introspect"
	providerRedirect = "https://loadgen.example/cb"
	// providerScopes are the scopes the client may ask for: every scope
	// of an OIDC relying party and of the REST API but admin.
	providerScopes = "openid profile email read:users write:users read:organizations write:organizations"
)

// oauthClient is the confidential client the provider scenarios act as.
type oauthClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// providerFixture holds one grant per worker: refresh tokens for the
// provider-refresh chains, and access tokens of other grants for introspect
// (a grant being rotated must not change what introspection answers).
type providerFixture struct {
	client        oauthClient
	refreshTokens []string
	accessTokens  []string
}

// providerTokens is a token endpoint answer.
type providerTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
}

// setupProvider registers a confidential client as the superuser and runs
// one authorization code flow per worker. skip explains why the provider
// scenarios cannot run (no credentials, provider off); err is anything else.
func setupProvider(ctx context.Context, a *api, o options, readers []*session, runID string) (p *providerFixture, skip string, err error) {
	if o.AdminEmail == "" || o.AdminPassword == "" {
		return nil, "no superuser credentials (set -admin-email and -admin-password, or FIRST_SUPERUSER_EMAIL and FIRST_SUPERUSER_PASSWORD)", nil
	}
	admin, err := a.login(ctx, account{Email: o.AdminEmail, Password: o.AdminPassword})
	if err != nil {
		return nil, "the superuser cannot log in: " + err.Error(), nil
	}
	form := url.Values{"client_name": {"loadgen " + runID}, "redirect_uris": {providerRedirect},
		"client_type": {"confidential"}, "scopes": {providerScopes}}
	r, err := a.send(formRequest(ctx, a.url(pathClients), admin.AccessToken, form))
	if err != nil {
		return nil, "", fmt.Errorf("register an OAuth client: %w", err)
	}
	if r.status == http.StatusNotFound {
		return nil, "the authorization server is off (404): start Gatehouse with OAUTH_PROVIDER_ENABLED=true", nil
	}
	p = &providerFixture{}
	if err := decodeReply(r, http.StatusOK, &p.client); err != nil {
		return nil, "", fmt.Errorf("register an OAuth client: %w", err)
	}
	if p.client.ID == "" || p.client.Secret == "" {
		return nil, "", fmt.Errorf("registered OAuth client has no id or secret: %s", shorten(string(r.body)))
	}
	// Sequential on purpose: the first flow of each user stops at the
	// consent page, and two consents of one user at once are not what is
	// being measured.
	for i := range o.Concurrency {
		reader := readers[i%len(readers)]
		if o.selected(scProviderRefresh) {
			t, err := p.client.grant(ctx, a, reader.access, o.ProviderScope)
			if err != nil {
				return nil, "", err
			}
			p.refreshTokens = append(p.refreshTokens, t.RefreshToken)
		}
		if o.selected(scIntrospect) {
			t, err := p.client.grant(ctx, a, reader.access, o.ProviderScope)
			if err != nil {
				return nil, "", err
			}
			p.accessTokens = append(p.accessTokens, t.AccessToken)
		}
	}
	return p, "", nil
}

// grant runs the authorization code flow with PKCE for scope as the user of
// bearer, consenting when asked, and exchanges the code for tokens.
func (c oauthClient) grant(ctx context.Context, a *api, bearer, scope string) (providerTokens, error) {
	verifier := randomToken()
	sum := sha256.Sum256([]byte(verifier))
	params := url.Values{"client_id": {c.ID}, "redirect_uri": {providerRedirect}, "scope": {scope},
		"state": {randomToken()[:16]}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"}}
	code, err := c.authorize(ctx, a, bearer, params)
	if err != nil {
		return providerTokens{}, fmt.Errorf("authorization code flow: %w", err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {providerRedirect}, "code_verifier": {verifier}}
	r, err := a.send(c.tokenRequest(ctx, a, pathToken, form))
	if err != nil {
		return providerTokens{}, fmt.Errorf("code exchange: %w", err)
	}
	var t providerTokens
	if err := decodeReply(r, http.StatusOK, &t); err != nil {
		return providerTokens{}, fmt.Errorf("code exchange: %w", err)
	}
	if t.AccessToken == "" || t.RefreshToken == "" {
		return providerTokens{}, fmt.Errorf("code exchange returned no tokens: %s", shorten(string(r.body)))
	}
	return t, nil
}

// authorize asks the authorization endpoint for a code. The first time a
// user meets the client it redirects to the consent page instead; approving
// there (the consent API, with the same parameters) answers with the
// redirect to the client.
func (c oauthClient) authorize(ctx context.Context, a *api, bearer string, params url.Values) (string, error) {
	q := url.Values{"response_type": {"code"}}
	for k, v := range params {
		q[k] = v
	}
	r, err := a.send(getRequest(ctx, a.url(pathAuthorize)+"?"+q.Encode(), bearer))
	if err != nil {
		return "", err
	}
	if err := expectStatus(r, http.StatusFound); err != nil {
		return "", fmt.Errorf("authorize: %w", err)
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		return "", fmt.Errorf("authorize: bad Location: %w", err)
	}
	if !atRedirect(loc) {
		form := url.Values{"approved": {"true"}}
		for k, v := range params {
			form[k] = v
		}
		if r, err = a.send(formRequest(ctx, a.url(pathConsent), bearer, form)); err != nil {
			return "", err
		}
		if err := expectStatus(r, http.StatusSeeOther); err != nil {
			return "", fmt.Errorf("consent: %w", err)
		}
		if loc, err = url.Parse(r.header.Get("Location")); err != nil {
			return "", fmt.Errorf("consent: bad Location: %w", err)
		}
	}
	q = loc.Query()
	if !atRedirect(loc) || q.Get("code") == "" || q.Get("state") != params.Get("state") {
		return "", fmt.Errorf("no code for the client: redirected to %s", shorten(loc.String()))
	}
	return q.Get("code"), nil
}

// atRedirect reports whether u points at the client's redirect URI.
func atRedirect(u *url.URL) bool {
	return u.Scheme+"://"+u.Host+u.Path == providerRedirect
}

// tokenRequest posts form to a client-authenticated endpoint with HTTP
// Basic (RFC 6749 §2.3.1: both parts form-encoded first).
func (c oauthClient) tokenRequest(ctx context.Context, a *api, path string, form url.Values) (*http.Request, error) {
	req, err := formRequest(ctx, a.url(path), "", form)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	return req, nil
}

// randomToken returns 256 random bits, base64url-encoded: a PKCE verifier
// (43 characters, within RFC 7636's 43 to 128) or, cut, a state.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (Go 1.24+: it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}
