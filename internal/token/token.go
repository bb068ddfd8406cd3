// Package token issues and verifies Gatehouse's first-party JWTs (reference
// §4.2): HS256 with SECRET_KEY, claims sub, exp, iat, jti, type, plus sid
// (the device session) so a revoked session's tokens stop working at once.
//
// The OAuth authorization server signs its tokens with asymmetric keys and
// never with this key, so the two kinds can never be confused.
package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Token types carried in the "type" claim.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
)

// Errors returned by the parsers. ErrExpired is separate because the API
// reports it with its own message.
var (
	ErrExpired = errors.New("token expired")
	ErrInvalid = errors.New("token invalid")
)

// Claims are the verified contents of a first-party token.
type Claims struct {
	Subject     string // user id
	SessionID   string // sid
	ID          string // jti; for refresh tokens the secret whose hash the session keeps
	Type        string
	IssuedAt    time.Time
	ExpiresAt   time.Time
	IsSuperuser bool
	Email       string
	FirstName   string
}

type jwtClaims struct {
	jwt.RegisteredClaims
	Type        string `json:"type"`
	SessionID   string `json:"sid"`
	IsSuperuser *bool  `json:"is_superuser,omitempty"`
	Email       string `json:"email,omitempty"`
	FirstName   string `json:"first_name,omitempty"`
}

// Signer issues and verifies first-party tokens.
type Signer struct {
	key        []byte
	accessTTL  time.Duration
	refreshTTL time.Duration
	parser     *jwt.Parser
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// NewSigner returns a Signer keyed with secret.
func NewSigner(secret string, accessTTL, refreshTTL time.Duration) *Signer {
	return &Signer{
		key:        []byte(secret),
		accessTTL:  accessTTL,
		refreshTTL: refreshTTL,
		Now:        time.Now,
		parser:     jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation()),
	}
}

// AccessTTL is the lifetime of access tokens.
func (s *Signer) AccessTTL() time.Duration { return s.accessTTL }

// RefreshTTL is the lifetime of refresh tokens and of the sessions they renew.
func (s *Signer) RefreshTTL() time.Duration { return s.refreshTTL }

// AccessInput describes the user an access token is issued to.
type AccessInput struct {
	UserID, SessionID, Email, FirstName string
	IsSuperuser                         bool
}

// IssueAccess signs a new access token.
func (s *Signer) IssueAccess(in AccessInput) (string, time.Time, error) {
	now := s.Now().UTC().Truncate(time.Second)
	exp := now.Add(s.accessTTL)
	su := in.IsSuperuser
	c := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   in.UserID,
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		Type:        TypeAccess,
		SessionID:   in.SessionID,
		IsSuperuser: &su,
		Email:       in.Email,
		FirstName:   in.FirstName,
	}
	t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	return t, exp, err
}

// IssueRefresh signs a refresh token for a session. Its jti is 256 random
// bits; the session stores only the SHA-256 of it (see HashSecret).
func (s *Signer) IssueRefresh(userID, sessionID string) (tok, jti string, exp time.Time, err error) {
	now := s.Now().UTC().Truncate(time.Second)
	exp = now.Add(s.refreshTTL)
	jti = RandomSecret()
	c := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		Type:      TypeRefresh,
		SessionID: sessionID,
	}
	tok, err = jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
	return tok, jti, exp, err
}

// Parse verifies the signature and the claims of a token of the wanted
// type. An expired but otherwise valid token yields ErrExpired together with
// its claims, so logout can still find the session it names.
func (s *Signer) Parse(raw, wantType string) (Claims, error) {
	var c jwtClaims
	if _, err := s.parser.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return s.key, nil }); err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if c.Type != wantType || len(c.Audience) > 0 || c.ExpiresAt == nil || c.IssuedAt == nil || c.ID == "" {
		return Claims{}, ErrInvalid
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return Claims{}, ErrInvalid
	}
	if _, err := uuid.Parse(c.SessionID); err != nil {
		return Claims{}, ErrInvalid
	}
	now := s.Now()
	if c.IssuedAt.After(now.Add(5 * time.Second)) {
		return Claims{}, ErrInvalid
	}
	if c.NotBefore != nil && c.NotBefore.After(now.Add(5*time.Second)) {
		return Claims{}, ErrInvalid
	}
	out := Claims{
		Subject: c.Subject, SessionID: c.SessionID, ID: c.ID, Type: c.Type,
		IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time,
		Email: c.Email, FirstName: c.FirstName,
	}
	if c.IsSuperuser != nil {
		out.IsSuperuser = *c.IsSuperuser
	}
	if !now.Before(c.ExpiresAt.Time) {
		return out, ErrExpired
	}
	return out, nil
}

// RandomSecret returns 256 random bits, base64url-encoded without padding.
func RandomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
