package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/keys"
)

// AccessClaims are the claims of an RFC 9068 access token.
type AccessClaims struct {
	jwt.RegisteredClaims
	Scope    string `json:"scope"`
	ClientID string `json:"client_id"`
	Email    string `json:"email,omitempty"`
	Name     string `json:"name,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
}

// TokenSigner signs and verifies the server's JWTs with the managed keys.
// It never touches SECRET_KEY, so first-party tokens and provider tokens
// cannot be taken for each other.
type TokenSigner struct {
	keys      *keys.Manager
	issuer    string
	accessAlg string
	now       func() time.Time
	parser    *jwt.Parser
	verified  *verifiedCache
}

// NewTokenSigner returns a signer for issuer.
func NewTokenSigner(km *keys.Manager, issuer, accessAlg string) *TokenSigner {
	return &TokenSigner{keys: km, issuer: issuer, accessAlg: accessAlg, now: time.Now, verified: newVerifiedCache(),
		parser: jwt.NewParser(jwt.WithValidMethods([]string{keys.ES256, keys.RS256}), jwt.WithoutClaimsValidation())}
}

func (s *TokenSigner) sign(ctx context.Context, alg, typ string, claims jwt.Claims) (string, error) {
	k, err := s.keys.Signing(ctx, alg)
	if err != nil {
		return "", err
	}
	method := jwt.GetSigningMethod(alg)
	t := jwt.NewWithClaims(method, claims)
	t.Header["kid"] = k.ID
	t.Header["typ"] = typ
	return t.SignedString(k.Signer)
}

// Access signs an access token (typ at+jwt).
func (s *TokenSigner) Access(ctx context.Context, c AccessClaims) (string, error) {
	c.Issuer = s.issuer
	return s.sign(ctx, s.accessAlg, "at+jwt", c)
}

// IDToken signs an OpenID Connect ID token with RS256.
func (s *TokenSigner) IDToken(ctx context.Context, claims jwt.MapClaims) (string, error) {
	claims["iss"] = s.issuer
	return s.sign(ctx, keys.RS256, "JWT", claims)
}

// ErrBadToken is returned for anything that is not a valid access token of
// this server.
var ErrBadToken = errors.New("not a valid access token of this server")

// VerifyAccess checks an access token's signature (by kid against the
// published keys), type, issuer and expiry. checkExpiry false accepts
// expired tokens (revocation).
func (s *TokenSigner) VerifyAccess(ctx context.Context, raw string, checkExpiry bool) (AccessClaims, error) {
	now := s.now()
	c, ok := s.verified.get(raw, now)
	if !ok {
		var err error
		if c, err = s.verifySignature(ctx, raw); err != nil {
			return AccessClaims{}, err
		}
		s.verified.put(raw, c, now.Add(verifiedTTL))
	}
	if checkExpiry && !now.Before(c.ExpiresAt.Time) {
		return AccessClaims{}, fmt.Errorf("%w: expired", ErrBadToken)
	}
	return c, nil
}

// verifySignature does the work VerifyAccess caches: signature, type,
// issuer and the presence of the claims every check relies on.
func (s *TokenSigner) verifySignature(ctx context.Context, raw string) (AccessClaims, error) {
	var c AccessClaims
	t, err := s.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, err := s.keys.Verification(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k.Algorithm != t.Method.Alg() {
			return nil, fmt.Errorf("key %s is for %s, token says %s", kid, k.Algorithm, t.Method.Alg())
		}
		return k.Public, nil
	})
	if err != nil {
		return AccessClaims{}, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if typ, _ := t.Header["typ"].(string); typ != "at+jwt" && typ != "application/at+jwt" {
		return AccessClaims{}, fmt.Errorf("%w: typ %q", ErrBadToken, typ)
	}
	if c.Issuer != s.issuer || c.Subject == "" || c.ID == "" || c.ExpiresAt == nil {
		return AccessClaims{}, ErrBadToken
	}
	return c, nil
}

// atHash is the OpenID Connect at_hash of an access token signed with a
// SHA-256 based algorithm: the left half of its SHA-256, base64url.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
