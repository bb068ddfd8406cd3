package social

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// OIDC is an OpenID Connect provider found by discovery (Google, or any
// provider configured with OAUTH_OIDC_*). It uses PKCE S256 and a nonce, and
// requires a valid ID token: signature against the provider's JWKS (cached
// per Cache-Control, see keySet), issuer, audience, expiry, issue time,
// nonce.
type OIDC struct {
	cfg    config.OIDCProvider
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	provider  *oidc.Provider // nil until discovery succeeds
	keys      *keySet        // set with provider
	algs      []string       // ID-token signing algorithms accepted, set with provider
	discovery time.Time      // last failed attempt, to avoid hammering a provider that is down
}

// NewOIDC returns a provider that reads the time from now; discovery
// happens on first use and is retried after failures.
func NewOIDC(cfg config.OIDCProvider, client *http.Client, now func() time.Time) *OIDC {
	return &OIDC{cfg: cfg, client: client, now: now}
}

// idTokenAlgs are the signature algorithms Gatehouse accepts on ID tokens
// (those go-oidc supports) when the provider's discovery document lists
// them; a document that lists none of them gets RS256, which OpenID Connect
// requires every provider to support.
var idTokenAlgs = []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512, oidc.EdDSA}

func (p *OIDC) Name() string        { return p.cfg.Name }
func (p *OIDC) DisplayName() string { return p.cfg.DisplayName }
func (p *OIDC) Icon() string        { return p.cfg.Icon }
func (p *OIDC) UsesPKCE() bool      { return true }
func (p *OIDC) UsesNonce() bool     { return true }

// discover returns the provider's metadata, fetching it once.
func (p *OIDC) discover() (*oidc.Provider, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.provider != nil {
		return p.provider, nil
	}
	if !p.discovery.IsZero() && p.now().Sub(p.discovery) < 5*time.Second {
		return nil, ErrProviderDown
	}
	// go-oidc keeps this context for userinfo calls, so it carries our
	// HTTP client (whose Timeout bounds every call) and no cancellation.
	prov, err := oidc.NewProvider(oidc.ClientContext(context.Background(), p.client), p.cfg.Issuer)
	if err != nil {
		p.discovery = p.now()
		return nil, ErrProviderDown.Wrap(fmt.Errorf("discovery of %s: %w", p.cfg.Issuer, err))
	}
	var meta struct {
		AuthURL  string   `json:"authorization_endpoint"`
		TokenURL string   `json:"token_endpoint"`
		JWKSURI  string   `json:"jwks_uri"`
		Algs     []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := prov.Claims(&meta); err != nil {
		p.discovery = p.now()
		return nil, ErrProviderDown.Wrap(fmt.Errorf("discovery of %s: %w", p.cfg.Issuer, err))
	}
	// go-oidc accepts a document without endpoints; we would then hand out
	// a relative authorization URL and post codes nowhere.
	for name, u := range map[string]string{"authorization_endpoint": meta.AuthURL, "token_endpoint": meta.TokenURL, "jwks_uri": meta.JWKSURI} {
		if !httpURL(u) {
			p.discovery = p.now()
			return nil, ErrProviderDown.Wrap(fmt.Errorf("discovery of %s: %s is not an http(s) URL: %q", p.cfg.Issuer, name, u))
		}
	}
	p.algs = nil
	for _, a := range meta.Algs {
		if slices.Contains(idTokenAlgs, a) && !slices.Contains(p.algs, a) {
			p.algs = append(p.algs, a)
		}
	}
	if len(p.algs) == 0 {
		p.algs = []string{oidc.RS256}
	}
	p.keys = newKeySet(meta.JWKSURI, p.client, p.now, p.algs)
	p.provider = prov
	return prov, nil
}

func (p *OIDC) oauth2Config(prov *oidc.Provider, redirectURI string) *oauth2.Config {
	return &oauth2.Config{ClientID: p.cfg.ClientID, ClientSecret: p.cfg.ClientSecret, Endpoint: prov.Endpoint(),
		RedirectURL: redirectURI, Scopes: p.cfg.Scopes}
}

// AuthURL implements Provider.
func (p *OIDC) AuthURL(ctx context.Context, req AuthRequest) (string, error) {
	prov, err := p.discover()
	if err != nil {
		return "", err
	}
	return p.oauth2Config(prov, req.RedirectURI).AuthCodeURL(req.State,
		oauth2.S256ChallengeOption(req.Verifier), oidc.Nonce(req.Nonce)), nil
}

// idClaims are the ID-token claims we read.
type idClaims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"` // bool, or "true" from some providers
	GivenName     string `json:"given_name"`
	FamilyName    string `json:"family_name"`
	Name          string `json:"name"`
	NotBefore     *int64 `json:"nbf"`
}

func (c idClaims) verified() bool {
	switch v := c.EmailVerified.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

// Exchange implements Provider.
func (p *OIDC) Exchange(ctx context.Context, code string, req AuthRequest) (Identity, error) {
	prov, err := p.discover()
	if err != nil {
		return Identity{}, ErrExchange.Wrap(err)
	}
	hctx := oidc.ClientContext(ctx, p.client)
	tok, err := p.oauth2Config(prov, req.RedirectURI).Exchange(hctx, code, oauth2.VerifierOption(req.Verifier))
	if err != nil {
		return Identity{}, ErrExchange.Wrap(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, ErrIDToken.WithMessage("The provider returned no ID token")
	}
	claims, err := p.verifyIDToken(hctx, prov, raw, req.Nonce)
	if err != nil {
		return Identity{}, err
	}
	if claims.Email == "" && prov.UserInfoEndpoint() != "" {
		// Some providers put the email only in userinfo. When it is asked
		// and fails, the login fails: going on without the email would give
		// the wrong reason ("email is required") or link a different email.
		info, err := prov.UserInfo(hctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return Identity{}, ErrUserInfo.Wrap(err)
		}
		if info.Subject != claims.Subject { // OpenID Connect Core §5.3.2: the response MUST NOT be used
			return Identity{}, ErrUserInfo.Wrap(fmt.Errorf("userinfo is about subject %q, the ID token about %q", info.Subject, claims.Subject))
		}
		claims.Email, claims.EmailVerified = info.Email, info.EmailVerified
		_ = info.Claims(&struct {
			GivenName  *string `json:"given_name"`
			FamilyName *string `json:"family_name"`
		}{&claims.GivenName, &claims.FamilyName})
	}
	first, last := claims.GivenName, claims.FamilyName
	if first == "" {
		first, last = splitName(claims.Name)
	}
	id := Identity{Subject: claims.Subject, Email: strings.ToLower(strings.TrimSpace(claims.Email)), EmailVerified: claims.verified(),
		FirstName: first, LastName: last, Tokens: tokensOf(tok)}
	return id, nil
}

// signatureCheck is the provider's key set for one verification: it keeps
// the key set's error, which go-oidc flattens into text.
type signatureCheck struct {
	keys *keySet
	err  error
}

func (c *signatureCheck) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	payload, err := c.keys.VerifySignature(ctx, raw)
	c.err = err
	return payload, err
}

// idTokenSkew is how far in the future an ID token's iat (and nbf) may be,
// for clocks that disagree.
const idTokenSkew = 5 * time.Minute

// verifyIDToken checks the signature with go-oidc against the cached JWKS,
// then issuer, audience, expiry, issue time and nonce here, so each failure
// has its own message (the reference's for signature and JWKS failures).
func (p *OIDC) verifyIDToken(ctx context.Context, prov *oidc.Provider, raw, nonce string) (idClaims, error) {
	p.mu.Lock()
	keys, algs := p.keys, p.algs
	p.mu.Unlock()
	check := &signatureCheck{keys: keys}
	v := oidc.NewVerifier(p.cfg.Issuer, check, &oidc.Config{ClientID: p.cfg.ClientID, SupportedSigningAlgs: algs,
		SkipIssuerCheck: true, SkipClientIDCheck: true, SkipExpiryCheck: true})
	t, err := v.Verify(ctx, raw)
	switch {
	case err != nil && errors.Is(check.err, errKeysUnavailable):
		return idClaims{}, ErrIDToken.WithMessage("Failed to verify ID token").Wrap(check.err)
	case err != nil:
		return idClaims{}, ErrIDToken.WithMessage("Invalid ID token signature").Wrap(err)
	}
	var iss struct {
		Issuer string `json:"issuer"`
	}
	_ = prov.Claims(&iss)
	switch {
	case t.Issuer != iss.Issuer && !(iss.Issuer == "https://accounts.google.com" && t.Issuer == "accounts.google.com"):
		return idClaims{}, ErrIDToken.WithMessage("ID token issuer mismatch")
	case !contains(t.Audience, p.cfg.ClientID):
		return idClaims{}, ErrIDToken.WithMessage("ID token audience mismatch")
	case !t.Expiry.After(p.now()):
		return idClaims{}, ErrIDToken.WithMessage("ID token has expired")
	case t.IssuedAt.IsZero() || t.IssuedAt.After(p.now().Add(idTokenSkew)):
		// iat is required (OpenID Connect Core §2) and must not be in the
		// future (reference: exp and iat are validated).
		return idClaims{}, ErrIDToken.WithMessage("ID token has an invalid issue time")
	case t.Nonce == "" || !secureEqual(t.Nonce, nonce):
		return idClaims{}, ErrIDToken.WithMessage("ID token nonce mismatch")
	}
	var c idClaims
	if err := t.Claims(&c); err != nil {
		return idClaims{}, ErrIDToken.Wrap(err)
	}
	if c.NotBefore != nil && time.Unix(*c.NotBefore, 0).After(p.now().Add(idTokenSkew)) {
		return idClaims{}, ErrIDToken.WithMessage("ID token is not valid yet")
	}
	if c.Subject == "" {
		return idClaims{}, ErrNoSubject
	}
	return c, nil
}

// httpURL reports whether s is an absolute http(s) URL.
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func tokensOf(tok *oauth2.Token) ProviderTokens {
	t := ProviderTokens{Access: tok.AccessToken, Refresh: tok.RefreshToken}
	if !tok.Expiry.IsZero() {
		e := tok.Expiry.UTC()
		t.Expiry = &e
	}
	return t
}

// splitName splits a display name at its first space.
func splitName(name string) (string, string) {
	name = strings.TrimSpace(name)
	first, last, _ := strings.Cut(name, " ")
	return first, strings.TrimSpace(last)
}
