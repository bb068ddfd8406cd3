package social

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// OIDC is an OpenID Connect provider found by discovery (Google, or any
// provider configured with OAUTH_OIDC_*). It uses PKCE S256 and a nonce, and
// requires a valid ID token: signature against the provider's JWKS (cached by
// go-oidc, refreshed on an unknown key id), issuer, audience, expiry, nonce.
type OIDC struct {
	cfg    config.OIDCProvider
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	provider  *oidc.Provider // nil until discovery succeeds
	discovery time.Time      // last failed attempt, to avoid hammering a provider that is down
}

// NewOIDC returns a provider; discovery happens on first use and is retried
// after failures.
func NewOIDC(cfg config.OIDCProvider, client *http.Client) *OIDC {
	return &OIDC{cfg: cfg, client: client, now: time.Now}
}

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
	// go-oidc keeps this context for later JWKS fetches, so it carries our
	// HTTP client (whose Timeout bounds every call) and no cancellation.
	prov, err := oidc.NewProvider(oidc.ClientContext(context.Background(), p.client), p.cfg.Issuer)
	if err != nil {
		p.discovery = p.now()
		return nil, ErrProviderDown.Wrap(fmt.Errorf("discovery of %s: %w", p.cfg.Issuer, err))
	}
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
		// Some providers put the email only in userinfo.
		if info, err := prov.UserInfo(hctx, oauth2.StaticTokenSource(tok)); err == nil && info.Subject == claims.Subject {
			claims.Email, claims.EmailVerified = info.Email, info.EmailVerified
			_ = info.Claims(&struct {
				GivenName  *string `json:"given_name"`
				FamilyName *string `json:"family_name"`
			}{&claims.GivenName, &claims.FamilyName})
		}
	}
	first, last := claims.GivenName, claims.FamilyName
	if first == "" {
		first, last = splitName(claims.Name)
	}
	id := Identity{Subject: claims.Subject, Email: strings.ToLower(strings.TrimSpace(claims.Email)), EmailVerified: claims.verified(),
		FirstName: first, LastName: last, Tokens: tokensOf(tok)}
	return id, nil
}

// verifyIDToken checks the signature with go-oidc, then issuer, audience,
// expiry and nonce here, so each failure has its own message.
func (p *OIDC) verifyIDToken(ctx context.Context, prov *oidc.Provider, raw, nonce string) (idClaims, error) {
	// Verifier, not VerifierContext: VerifierContext makes a new key set,
	// so the JWKS would be fetched on every login. The provider's shared key
	// set caches the keys (refetched on an unknown kid) and fetches them with
	// the client given at discovery.
	v := prov.Verifier(&oidc.Config{ClientID: p.cfg.ClientID, SkipIssuerCheck: true,
		SkipClientIDCheck: true, SkipExpiryCheck: true})
	t, err := v.Verify(ctx, raw)
	if err != nil {
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
	case t.Nonce == "" || !secureEqual(t.Nonce, nonce):
		return idClaims{}, ErrIDToken.WithMessage("ID token nonce mismatch")
	}
	var c idClaims
	if err := t.Claims(&c); err != nil {
		return idClaims{}, ErrIDToken.Wrap(err)
	}
	if c.NotBefore != nil && time.Unix(*c.NotBefore, 0).After(p.now().Add(5*time.Minute)) {
		return idClaims{}, ErrIDToken.WithMessage("ID token is not valid yet")
	}
	if c.Subject == "" {
		return idClaims{}, ErrNoSubject
	}
	return c, nil
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
