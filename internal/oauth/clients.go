package oauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Client secrets are 256 random bits, so a fast hash is enough: they are
// stored as "sha256:<hex>" and compared in constant time. Older bcrypt hashes
// still verify and are replaced by the fast form on first use.
const secretPrefix = "sha256:"

// HashSecret returns the stored form of a client secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return secretPrefix + hex.EncodeToString(sum[:])
}

func (s *Service) checkSecret(ctx context.Context, c Client, secret string) error {
	bad := oerr("invalid_client", "Invalid client secret")
	switch {
	case strings.HasPrefix(c.SecretHash, secretPrefix):
		if subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(c.SecretHash)) != 1 {
			return bad
		}
		return nil
	case strings.HasPrefix(c.SecretHash, "$2"):
		if len(secret) > 72 || bcrypt.CompareHashAndPassword([]byte(c.SecretHash), []byte(secret)) != nil {
			return bad
		}
		if err := s.store.ReplaceClientSecretHash(ctx, c.ClientID, c.SecretHash, HashSecret(secret)); err != nil {
			s.logger.WarnContext(ctx, "client secret hash upgrade failed", "client_id", c.ClientID, "err", err)
		}
		return nil
	}
	return oerr("invalid_client", "Client secret uses deprecated hash format. Please regenerate your client credentials.")
}

// Errors of the client and consent management API (JSON envelope).
var (
	ErrClientNotFound  = apperr.New(apperr.NotFound, apperr.CodeNotFound, "Client not found")
	ErrConsentNotFound = apperr.New(apperr.NotFound, apperr.CodeNotFound, "No consent found for this client")
	ErrNeedRedirect    = &apperr.Error{Kind: apperr.BadRequest, Code: apperr.CodeInvalidInput, Field: "redirect_uris",
		Message: "At least one redirect_uri is required"}
)

// NewClient is what an administrator registers.
type NewClient struct {
	Name         string
	Description  *string
	Type         string // public (default) | confidential
	RedirectURIs []string
	Scopes       []string // default openid profile email
	MCPServerURL *string
	OwnerUserID  *string
}

// Registered is a new client with its secret, shown once.
type Registered struct {
	Client Client
	Secret string // "" for public clients
}

// RegisterClient registers a client (superusers; reference §6B.2 with
// validated redirect URIs and scopes).
func (s *Service) RegisterClient(ctx context.Context, actor user.Actor, in NewClient) (Registered, error) {
	if !actor.IsSuperuser {
		return Registered{}, user.ErrNotPermitted
	}
	var fields []apperr.FieldError
	add := func(field, msg string) { fields = append(fields, apperr.FieldError{Field: field, Message: msg}) }
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 255 || hasControl(name) {
		add("client_name", "client_name must have 1 to 255 characters without control characters")
	}
	if in.Type == "" {
		in.Type = Public
	}
	if in.Type != Public && in.Type != Confidential {
		add("client_type", "Input should be 'public' or 'confidential'")
	}
	if in.Description != nil && (utf8.RuneCountInString(*in.Description) > 1000 || strings.ContainsRune(*in.Description, 0)) {
		add("client_description", "client_description must have at most 1000 characters")
	}
	if len(in.RedirectURIs) == 0 {
		return Registered{}, ErrNeedRedirect
	}
	if len(in.RedirectURIs) > 20 {
		add("redirect_uris", "At most 20 redirect URIs")
	}
	for _, u := range in.RedirectURIs {
		if why := ValidateRedirectURI(u); why != "" {
			add("redirect_uris", fmt.Sprintf("redirect_uri %q %s", truncate(u, 100), why))
		}
	}
	if len(in.Scopes) == 0 {
		in.Scopes = []string{"openid", "profile", "email"}
	}
	for _, sc := range in.Scopes {
		if !slices.Contains(Scopes, sc) {
			add("scopes", fmt.Sprintf("Unknown scope %q; supported: %s", truncate(sc, 50), strings.Join(Scopes, " ")))
		}
	}
	if in.MCPServerURL != nil && *in.MCPServerURL != "" && CanonicalResource(*in.MCPServerURL) == "" {
		add("mcp_server_url", "mcp_server_url must be an absolute URL without a fragment")
	}
	if len(fields) > 0 {
		return Registered{}, apperr.Validation(fields...)
	}
	now := s.now()
	c := Client{ID: user.NewID(), ClientID: token.RandomSecret(), Name: name, Description: in.Description, Type: in.Type,
		RedirectURIs: slices.Compact(in.RedirectURIs), AllowedScopes: ParseScope(JoinScope(in.Scopes)),
		AccessTokenTTL: s.opts.DefaultAccessTTL, RefreshTokenTTL: s.opts.DefaultRefreshTTL, IsActive: true,
		OwnerUserID: in.OwnerUserID, MCPServerURL: in.MCPServerURL, RegistrationType: RegisteredByAdmin,
		ApplicationType: "web", TokenEndpointAuthMethod: "none", CreatedAt: now, UpdatedAt: now}
	var secret string
	if c.Type == Confidential {
		secret = token.RandomSecret()
		c.SecretHash = HashSecret(secret)
		c.TokenEndpointAuthMethod = "client_secret_basic"
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		return Registered{}, err
	}
	return Registered{Client: c, Secret: secret}, nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// Clients lists active clients, newest first (superusers).
func (s *Service) Clients(ctx context.Context, actor user.Actor) ([]Client, error) {
	if !actor.IsSuperuser {
		return nil, user.ErrNotPermitted
	}
	return s.store.ActiveClients(ctx)
}

// DeleteClient deletes a client with its codes, tokens and consents. Only
// stored clients are managed: an id that looks like a metadata document's
// URL is looked up, never fetched.
func (s *Service) DeleteClient(ctx context.Context, actor user.Actor, clientID string) error {
	if !actor.IsSuperuser {
		return user.ErrNotPermitted
	}
	if !wellFormed(clientID) {
		return ErrClientNotFound
	}
	c, err := s.store.ClientByClientID(ctx, clientID)
	if errors.Is(err, ErrUnknownClient) || (err == nil && !c.IsActive) {
		return ErrClientNotFound
	}
	if err != nil {
		return err
	}
	return s.store.DeleteClient(ctx, clientID)
}

// Consents lists the actor's consents.
func (s *Service) Consents(ctx context.Context, actor user.Actor) ([]Consent, error) {
	return s.store.ConsentsOfUser(ctx, actor.UserID)
}

// RevokeConsent revokes the actor's tokens for a client, then its consent.
func (s *Service) RevokeConsent(ctx context.Context, actor user.Actor, clientID string) error {
	if !wellFormed(clientID) { // no client has such an id
		return ErrConsentNotFound
	}
	if _, err := s.store.RevokeUserClientRefreshTokens(ctx, actor.UserID, clientID, s.now()); err != nil {
		return err
	}
	err := s.store.DeleteConsent(ctx, actor.UserID, clientID)
	if errors.Is(err, ErrNoConsent) {
		return ErrConsentNotFound
	}
	return err
}
