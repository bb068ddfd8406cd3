package oauth

import (
	"context"
	"errors"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// Revoke revokes a refresh or access token of the authenticated client
// (RFC 7009): its whole family stops working. Unknown tokens are not an
// error.
func (s *Service) Revoke(ctx context.Context, cr ClientCredentials, raw, hint string) error {
	c, err := s.Authenticate(ctx, cr)
	if err != nil {
		return err
	}
	if raw == "" {
		return oerr("invalid_request", "token required")
	}
	if !wellFormed(raw) { // not a token of this server: nothing to revoke
		return nil
	}
	rt, err := s.findToken(ctx, raw, hint)
	if errors.Is(err, ErrUnknownRefresh) {
		return nil
	}
	if err != nil {
		return err
	}
	if rt.ClientID != c.ClientID {
		return oerr("invalid_client", "The token was not issued to this client")
	}
	_, err = s.store.RevokeRefreshFamily(ctx, rt.FamilyID, s.now())
	return err
}

// findToken returns the refresh-token row behind a refresh token or an
// access token (whose jti names the row it was issued with).
func (s *Service) findToken(ctx context.Context, raw, hint string) (RefreshToken, error) {
	byRefresh := func() (RefreshToken, error) { return s.store.RefreshTokenByHash(ctx, token.HashSecret(raw)) }
	byAccess := func() (RefreshToken, error) {
		c, err := s.tokens.VerifyAccess(ctx, raw, false)
		if err != nil {
			return RefreshToken{}, ErrUnknownRefresh
		}
		return s.store.RefreshTokenByID(ctx, c.ID)
	}
	first, second := byRefresh, byAccess
	if hint == "access_token" {
		first, second = byAccess, byRefresh
	}
	rt, err := first()
	if errors.Is(err, ErrUnknownRefresh) {
		return second()
	}
	return rt, err
}

// Introspection is an RFC 7662 answer; every key is present, null when it
// does not apply (reference §6B.9). A struct, not a map: encoding a map
// sorts its keys through reflection on every answer.
type Introspection struct {
	Active    bool    `json:"active"`
	Scope     *string `json:"scope"`
	ClientID  *string `json:"client_id"`
	Username  *string `json:"username"`
	TokenType *string `json:"token_type"`
	Exp       *int64  `json:"exp"`
	Iat       *int64  `json:"iat"`
	Nbf       *int64  `json:"nbf"`
	Sub       *string `json:"sub"`
	Aud       any     `json:"aud"` // a string, a list of strings, or null
	Iss       *string `json:"iss"`
}

func inactive() *Introspection { return &Introspection{} }

// Introspect tells a confidential client whether a token is active (RFC
// 7662). First-party tokens are never active here: they are signed with
// another key.
func (s *Service) Introspect(ctx context.Context, cr ClientCredentials, raw, hint string) (*Introspection, error) {
	// An access token of this server is checked before the client is
	// authenticated (its signature needs no database, and anyone can check
	// it with the published keys), so that the client and the token's grant
	// are read in one statement. Nothing about the token is answered before
	// the client has authenticated.
	var (
		claims   AccessClaims
		isAccess bool
		live     bool
	)
	if hint != "refresh_token" && raw != "" {
		var err error
		claims, err = s.tokens.VerifyAccess(ctx, raw, true)
		isAccess = err == nil
	}
	load := s.store.TokenClient
	if isAccess {
		load = func(ctx context.Context, clientID string) (Client, error) {
			c, l, err := s.store.TokenClientWithGrant(ctx, clientID, claims.ID, claims.Subject)
			live = l
			return c, err
		}
	}
	c, err := s.authenticate(ctx, cr, load)
	if err != nil {
		return nil, err
	}
	if c.Type != Confidential {
		return nil, oerr("invalid_client", "Introspection requires a confidential client")
	}
	if raw == "" {
		return nil, oerr("invalid_request", "token required")
	}
	if !wellFormed(raw) {
		return inactive(), nil
	}
	now := s.Now()
	if isAccess && live {
		return accessIntrospection(claims), nil
	}
	rt, u, err := s.store.RefreshTokenWithUser(ctx, token.HashSecret(raw))
	if errors.Is(err, ErrUnknownRefresh) {
		if hint == "refresh_token" {
			if out, ok := s.introspectAccess(ctx, raw); ok {
				return out, nil
			}
		}
		return inactive(), nil
	}
	if err != nil {
		return nil, err
	}
	if rt.RevokedAt != nil || rt.RotatedAt != nil || !now.Before(rt.ExpiresAt) {
		return inactive(), nil
	}
	if u.DeletedAt != nil || !u.IsActive {
		return inactive(), nil
	}
	out := &Introspection{Active: true, Scope: &rt.Scope, ClientID: &rt.ClientID, TokenType: ptr("refresh_token"),
		Exp: ptr(rt.ExpiresAt.Unix()), Iat: ptr(rt.CreatedAt.Unix()), Sub: &rt.UserID, Username: &u.Email, Iss: &s.opts.Issuer}
	if rt.Resource != "" {
		out.Aud = rt.Resource
	}
	return out, nil
}

func (s *Service) introspectAccess(ctx context.Context, raw string) (*Introspection, bool) {
	claims, err := s.VerifyAccessToken(ctx, raw)
	if err != nil {
		return nil, false
	}
	return accessIntrospection(claims), true
}

// accessIntrospection is the answer for an active access token.
func accessIntrospection(claims AccessClaims) *Introspection {
	out := &Introspection{Active: true, Scope: &claims.Scope, ClientID: &claims.ClientID, Username: &claims.Email,
		TokenType: ptr("Bearer"), Exp: ptr(claims.ExpiresAt.Unix()), Iat: ptr(claims.IssuedAt.Unix()), Sub: &claims.Subject,
		Iss: &claims.Issuer}
	if claims.NotBefore != nil {
		out.Nbf = ptr(claims.NotBefore.Unix())
	}
	if len(claims.Audience) == 1 {
		out.Aud = claims.Audience[0]
	} else {
		out.Aud = []string(claims.Audience)
	}
	return out
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// ErrTokenInactive is returned for access tokens that verify but whose grant
// was revoked or whose user can no longer use them.
var ErrTokenInactive = errors.New("token revoked or user inactive")

// VerifyAccessToken verifies an access token of this server and checks
// that its grant is still active and its user active: revocation takes
// effect on the next request, on every instance.
func (s *Service) VerifyAccessToken(ctx context.Context, raw string) (AccessClaims, error) {
	c, err := s.tokens.VerifyAccess(ctx, raw, true)
	if err != nil {
		return AccessClaims{}, err
	}
	live, err := s.store.GrantLive(ctx, c.ID, c.Subject)
	if err != nil {
		return AccessClaims{}, err
	}
	if !live {
		return AccessClaims{}, ErrTokenInactive
	}
	return c, nil
}

// UserInfo returns the OpenID Connect claims for an access token with the
// openid scope whose audience is the userinfo endpoint's: the client itself
// (a token issued without a resource, as OpenID Connect clients get them)
// or apiResource, the REST API the endpoint belongs to. A token only for
// another resource (/mcp, or one of OAUTH_RESOURCES) is refused like an
// invalid one: a resource server must not be able to replay the tokens it
// receives here (RFC 8707, no token passthrough).
func (s *Service) UserInfo(ctx context.Context, raw, apiResource string) (map[string]any, error) {
	c, err := s.VerifyAccessToken(ctx, raw)
	if err != nil {
		return nil, &Error{Code: "invalid_token", Description: "The access token is invalid, expired or revoked", Status: 401, Err: err}
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return a == c.ClientID || CanonicalResource(a) == apiResource }) {
		return nil, &Error{Code: "invalid_token", Description: "The access token was issued for another resource, not for userinfo", Status: 401}
	}
	scopes := ParseScope(c.Scope)
	if !slices.Contains(scopes, "openid") {
		return nil, &Error{Code: "insufficient_scope", Description: "The access token lacks the openid scope", Status: 403}
	}
	u, err := s.store.UserByID(ctx, c.Subject)
	if err != nil {
		return nil, &Error{Code: "invalid_token", Description: "The access token's user is gone", Status: 401, Err: err}
	}
	out := userClaims(u, scopes)
	out["sub"] = u.ID
	return out, nil
}
