// Package token issues and verifies Gatehouse's first-party JWTs (reference
// §4.2): HS256 with SECRET_KEY, claims sub, exp, iat, jti, type, plus sid
// (the device session) so a revoked session's tokens stop working at once.
//
// The OAuth authorization server signs its tokens with asymmetric keys and
// never with this key, so the two kinds can never be confused.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
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

// parsedClaims is what Parse reads from a payload: jwtClaims with plain
// types, decoded without the JWT library's per-claim machinery.
type parsedClaims struct {
	Subject     string          `json:"sub"`
	ID          string          `json:"jti"`
	Audience    json.RawMessage `json:"aud"`
	ExpiresAt   *float64        `json:"exp"`
	IssuedAt    *float64        `json:"iat"`
	NotBefore   *float64        `json:"nbf"`
	Type        string          `json:"type"`
	SessionID   string          `json:"sid"`
	IsSuperuser *bool           `json:"is_superuser"`
	Email       string          `json:"email"`
	FirstName   string          `json:"first_name"`
}

// numericDate converts a JWT NumericDate (seconds since the epoch, possibly
// fractional); missing or absurd values are not dates.
func numericDate(v *float64) (time.Time, bool) {
	if v == nil || *v < 0 || *v > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(*v)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// Signer issues and verifies first-party tokens.
type Signer struct {
	key        []byte
	accessTTL  time.Duration
	refreshTTL time.Duration
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

// HeaderHS256 is the encoded JOSE header of every token this package signs,
// {"alg":"HS256","typ":"JWT"}.
const HeaderHS256 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

// maxTokenBytes bounds what is decoded and hashed; real tokens are far
// smaller.
const maxTokenBytes = 8 << 10

// Parse verifies the signature and the claims of a token of the wanted
// type. An expired but otherwise valid token yields ErrExpired together with
// its claims, so logout can still find the session it names.
func (s *Signer) Parse(raw, wantType string) (Claims, error) {
	payload, err := s.verify(raw)
	if err != nil {
		return Claims{}, err
	}
	var c parsedClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("%w: claims: %v", ErrInvalid, err)
	}
	if c.Type != wantType || (len(c.Audience) > 0 && string(c.Audience) != "null") || c.ID == "" {
		return Claims{}, ErrInvalid
	}
	exp, okExp := numericDate(c.ExpiresAt)
	iat, okIat := numericDate(c.IssuedAt)
	nbf, okNbf := numericDate(c.NotBefore)
	if !okExp || !okIat || (c.NotBefore != nil && !okNbf) {
		return Claims{}, ErrInvalid
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return Claims{}, ErrInvalid
	}
	if _, err := uuid.Parse(c.SessionID); err != nil {
		return Claims{}, ErrInvalid
	}
	now := s.Now()
	if iat.After(now.Add(5 * time.Second)) {
		return Claims{}, ErrInvalid
	}
	if c.NotBefore != nil && nbf.After(now.Add(5*time.Second)) {
		return Claims{}, ErrInvalid
	}
	out := Claims{
		Subject: c.Subject, SessionID: c.SessionID, ID: c.ID, Type: c.Type,
		IssuedAt: iat, ExpiresAt: exp, Email: c.Email, FirstName: c.FirstName,
	}
	if c.IsSuperuser != nil {
		out.IsSuperuser = *c.IsSuperuser
	}
	if !now.Before(exp) {
		return out, ErrExpired
	}
	return out, nil
}

// verify checks the HS256 signature of a compact JWS and returns its
// decoded payload. This runs on every authenticated request, so it does the
// minimum a general JWT library does not: the header of our own tokens is
// compared as a string instead of being decoded, and anything but HS256
// without critical extensions is refused.
func (s *Signer) verify(raw string) ([]byte, error) {
	if len(raw) > maxTokenBytes {
		return nil, fmt.Errorf("%w: too long", ErrInvalid)
	}
	head, rest, ok1 := strings.Cut(raw, ".")
	body, sig64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig64, ".") {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrInvalid)
	}
	if head != HeaderHS256 {
		// The same header encoded by another JOSE library (members in
		// another order, other spacing).
		b, err := base64.RawURLEncoding.DecodeString(head)
		if err != nil {
			return nil, fmt.Errorf("%w: header: %v", ErrInvalid, err)
		}
		var h map[string]any
		if err := json.Unmarshal(b, &h); err != nil || h["alg"] != "HS256" || h["crit"] != nil || h["b64"] != nil {
			return nil, fmt.Errorf("%w: header", ErrInvalid)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(sig64)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrInvalid, err)
	}
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(raw[:len(head)+1+len(body)]))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return nil, fmt.Errorf("%w: signature mismatch", ErrInvalid)
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	return payload, nil
}

// RandomSecret returns 256 random bits, base64url-encoded without padding.
func RandomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
