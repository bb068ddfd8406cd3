// Package social is social login: Google, GitHub and any OpenID Connect
// provider (reference §6A). Providers turn an authorization code into an
// Identity; the Service links identities to accounts and opens sessions
// exactly like a password login.
package social

import (
	"context"
	"time"
)

// Identity is what a provider says about the person who logged in.
type Identity struct {
	Subject       string // the provider's stable user id
	Email         string // lower-cased; "" when the provider gave none
	EmailVerified bool
	FirstName     string
	LastName      string
	Tokens        ProviderTokens
}

// ProviderTokens are the provider's tokens for the linked account; they are
// stored sealed and never returned by the API.
type ProviderTokens struct {
	Access  string
	Refresh string
	Expiry  *time.Time
}

// AuthRequest is what the authorization URL is built from.
type AuthRequest struct {
	State       string
	RedirectURI string
	Verifier    string // PKCE verifier ("" when the provider does not use PKCE)
	Nonce       string // OpenID Connect nonce ("" when not used)
}

// Provider is one identity provider.
type Provider interface {
	Name() string        // id used in URLs
	DisplayName() string // "Google"
	Icon() string
	UsesPKCE() bool
	UsesNonce() bool
	// AuthURL returns the provider's authorization URL for req.
	AuthURL(ctx context.Context, req AuthRequest) (string, error)
	// Exchange redeems the code and returns the verified identity. Errors
	// are *apperr.Error with the client message to show.
	Exchange(ctx context.Context, code string, req AuthRequest) (Identity, error)
}
