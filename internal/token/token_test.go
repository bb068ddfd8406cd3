package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

const (
	testSecret = "test-secret-key-that-is-at-least-32-characters"
	userID     = "6f1c2b0a-3d4e-4f5a-8b9c-0d1e2f3a4b5c"
	sessionID  = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
	accessTTL  = 15 * time.Minute
	refreshTTL = 7 * 24 * time.Hour
)

// t0 has a sub-second part, which tokens must drop.
var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

func newSigner(now time.Time) *Signer {
	s := NewSigner(testSecret, accessTTL, refreshTTL)
	s.Now = func() time.Time { return now }
	return s
}

// payload decodes the claims segment of a token without verifying it.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d segments", tok, len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("payload segment: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("payload JSON: %v", err)
	}
	return m
}

func header(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatalf("header segment: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("header JSON: %v", err)
	}
	return m
}

func TestIssueAndParseAccess(t *testing.T) {
	s := newSigner(t0)
	tok, exp, err := s.IssueAccess(AccessInput{
		UserID: userID, SessionID: sessionID, Email: "ada@example.com", FirstName: "Ada", IsSuperuser: true,
	})
	if err != nil {
		t.Fatalf("IssueAccess: %v", err)
	}
	iat := t0.Truncate(time.Second)
	if !exp.Equal(iat.Add(accessTTL)) {
		t.Errorf("exp = %v, want %v", exp, iat.Add(accessTTL))
	}

	c, err := s.Parse(tok, TypeAccess)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Subject != userID || c.SessionID != sessionID || c.Type != TypeAccess ||
		!c.IsSuperuser || c.Email != "ada@example.com" || c.FirstName != "Ada" {
		t.Errorf("claims = %+v", c)
	}
	if !c.IssuedAt.Equal(iat) || !c.ExpiresAt.Equal(exp) {
		t.Errorf("iat, exp = %v, %v; want %v, %v", c.IssuedAt, c.ExpiresAt, iat, exp)
	}
	if _, err := uuid.Parse(c.ID); err != nil {
		t.Errorf("jti %q is not a UUID: %v", c.ID, err)
	}

	// Wire format of reference §4.2 (plus sid).
	if h := header(t, tok); h["alg"] != "HS256" || h["typ"] != "JWT" {
		t.Errorf("header = %v, want alg HS256, typ JWT", h)
	}
	p := payload(t, tok)
	want := map[string]any{
		"sub": userID, "sid": sessionID, "type": "access", "is_superuser": true,
		"email": "ada@example.com", "first_name": "Ada",
		"iat": float64(iat.Unix()), "exp": float64(exp.Unix()), "jti": c.ID,
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("payload[%q] = %v (%T), want %v", k, p[k], p[k], v)
		}
	}
	if len(p) != len(want) {
		t.Errorf("payload has claims %v, want exactly %d", p, len(want))
	}
	// Numeric dates are integer seconds.
	var nums map[string]json.RawMessage
	if err := json.Unmarshal([]byte(mustDecode(t, strings.Split(tok, ".")[1])), &nums); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iat", "exp"} {
		if strings.ContainsAny(string(nums[k]), ".eE") {
			t.Errorf("%s = %s, want integer seconds", k, nums[k])
		}
	}
}

func mustDecode(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIssueAccessNonSuperuserCarriesFalse(t *testing.T) {
	s := newSigner(t0)
	tok, _, err := s.IssueAccess(AccessInput{UserID: userID, SessionID: sessionID, Email: "bob@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := payload(t, tok)["is_superuser"]; !ok || v != false {
		t.Errorf("is_superuser = %v (present %v), want false", v, ok)
	}
	c, err := s.Parse(tok, TypeAccess)
	if err != nil || c.IsSuperuser || c.FirstName != "" {
		t.Errorf("Parse = %+v, %v; want non-superuser without first name", c, err)
	}
}

func TestIssueAccessUniqueJTI(t *testing.T) {
	s := newSigner(t0)
	in := AccessInput{UserID: userID, SessionID: sessionID}
	a, _, _ := s.IssueAccess(in)
	b, _, _ := s.IssueAccess(in)
	if a == b || payload(t, a)["jti"] == payload(t, b)["jti"] {
		t.Error("two access tokens issued in the same second are identical")
	}
}

func TestIssueAndParseRefresh(t *testing.T) {
	s := newSigner(t0)
	tok, jti, exp, err := s.IssueRefresh(userID, sessionID)
	if err != nil {
		t.Fatalf("IssueRefresh: %v", err)
	}
	iat := t0.Truncate(time.Second)
	if !exp.Equal(iat.Add(refreshTTL)) {
		t.Errorf("exp = %v, want %v", exp, iat.Add(refreshTTL))
	}
	if len(jti) != 43 {
		t.Errorf("jti %q has %d chars, want 43", jti, len(jti))
	}
	c, err := s.Parse(tok, TypeRefresh)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Subject != userID || c.SessionID != sessionID || c.ID != jti || c.Type != TypeRefresh ||
		c.IsSuperuser || c.Email != "" || !c.IssuedAt.Equal(iat) || !c.ExpiresAt.Equal(exp) {
		t.Errorf("claims = %+v", c)
	}
	p := payload(t, tok)
	for _, k := range []string{"is_superuser", "email", "first_name"} {
		if _, ok := p[k]; ok {
			t.Errorf("refresh token carries %q", k)
		}
	}
	if p["type"] != "refresh" {
		t.Errorf("type = %v, want refresh", p["type"])
	}
	if _, _, _, err := s.IssueRefresh(userID, sessionID); err != nil {
		t.Fatal(err)
	}
	if tok2, jti2, _, _ := s.IssueRefresh(userID, sessionID); jti2 == jti || tok2 == tok {
		t.Error("two refresh tokens share a jti")
	}
	if s.AccessTTL() != accessTTL || s.RefreshTTL() != refreshTTL {
		t.Errorf("TTLs = %v, %v", s.AccessTTL(), s.RefreshTTL())
	}
}

func TestParseWrongType(t *testing.T) {
	s := newSigner(t0)
	access, _, _ := s.IssueAccess(AccessInput{UserID: userID, SessionID: sessionID})
	refresh, _, _, _ := s.IssueRefresh(userID, sessionID)
	if _, err := s.Parse(refresh, TypeAccess); !errors.Is(err, ErrInvalid) {
		t.Errorf("refresh parsed as access: %v, want ErrInvalid", err)
	}
	if _, err := s.Parse(access, TypeRefresh); !errors.Is(err, ErrInvalid) {
		t.Errorf("access parsed as refresh: %v, want ErrInvalid", err)
	}
	if _, err := s.Parse(access, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("access parsed with empty type: %v, want ErrInvalid", err)
	}
}

func TestParseExpiry(t *testing.T) {
	issuer := newSigner(t0)
	tok, exp, _ := issuer.IssueAccess(AccessInput{UserID: userID, SessionID: sessionID, Email: "ada@example.com"})
	rtok, _, rexp, _ := issuer.IssueRefresh(userID, sessionID)

	tests := []struct {
		name    string
		raw     string
		typ     string
		now     time.Time
		wantErr error
	}{
		{"access just before exp", tok, TypeAccess, exp.Add(-time.Nanosecond), nil},
		{"access at exp (no leeway)", tok, TypeAccess, exp, ErrExpired},
		{"access long after exp", tok, TypeAccess, exp.Add(48 * time.Hour), ErrExpired},
		{"refresh before exp", rtok, TypeRefresh, rexp.Add(-time.Second), nil},
		{"refresh at exp", rtok, TypeRefresh, rexp, ErrExpired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newSigner(tc.now).Parse(tc.raw, tc.typ)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
			} else if !errors.Is(err, tc.wantErr) || errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, want %v (only)", err, tc.wantErr)
			}
			// Claims come back in both cases, so logout can find the session.
			if c.Subject != userID || c.SessionID != sessionID || c.Type != tc.typ || c.ID == "" {
				t.Errorf("claims = %+v, want the token's claims", c)
			}
		})
	}
	t.Run("expired and wrong type is invalid", func(t *testing.T) {
		_, err := newSigner(exp.Add(time.Hour)).Parse(tok, TypeRefresh)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse = %v, want ErrInvalid", err)
		}
	})
	t.Run("expired and badly signed is invalid", func(t *testing.T) {
		other := NewSigner("another-secret-another-secret-another", accessTTL, refreshTTL)
		other.Now = func() time.Time { return exp.Add(time.Hour) }
		c, err := other.Parse(tok, TypeAccess)
		if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrExpired) || c.Subject != "" {
			t.Errorf("Parse = %+v, %v; want empty claims, ErrInvalid", c, err)
		}
	})
}

// validClaims are the claims of a well-formed access token at t0.
func validClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub": userID, "sid": sessionID, "jti": uuid.NewString(), "type": "access",
		"iat": t0.Unix(), "exp": t0.Add(accessTTL).Unix(), "is_superuser": false, "email": "ada@example.com",
	}
}

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return tok
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// rawHS256 signs header.payload with HMAC-SHA256 under key, whatever the
// header says.
func rawHS256(headerJSON, payloadJSON string, key []byte) string {
	signing := b64(headerJSON) + "." + b64(payloadJSON)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func claimsJSON(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Another JOSE library may encode the same header differently; the
// signature, not the header's spelling, is what makes a token ours.
func TestParseAcceptsOtherHeaderEncodings(t *testing.T) {
	key := []byte(testSecret)
	s := newSigner(t0)
	for _, h := range []string{`{"typ":"JWT","alg":"HS256"}`, `{"alg": "HS256"}`, `{"alg":"HS256","typ":"JWT","kid":"k1"}`} {
		c, err := s.Parse(rawHS256(h, claimsJSON(t, validClaims()), key), TypeAccess)
		if err != nil || c.Subject == "" {
			t.Errorf("header %s: %v", h, err)
		}
	}
}

func TestParseRejectsForgedAndMalformedTokens(t *testing.T) {
	key := []byte(testSecret)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := validClaims()
		mod(c)
		return c
	}
	good := sign(t, jwt.SigningMethodHS256, key, validClaims())
	goodParts := strings.Split(good, ".")

	tests := []struct {
		name string
		raw  string
	}{
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validClaims())},
		{"alg None", b64(`{"alg":"None","typ":"JWT"}`) + "." + b64(claimsJSON(t, validClaims())) + "."},
		{"alg NONE with HMAC signature", rawHS256(`{"alg":"NONE","typ":"JWT"}`, claimsJSON(t, validClaims()), key)},
		{"HS384 with the same key", sign(t, jwt.SigningMethodHS384, key, validClaims())},
		{"HS512 with the same key", sign(t, jwt.SigningMethodHS512, key, validClaims())},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, validClaims())},
		{"alg header missing", rawHS256(`{"typ":"JWT"}`, claimsJSON(t, validClaims()), key)},
		{"alg header empty", rawHS256(`{"alg":"","typ":"JWT"}`, claimsJSON(t, validClaims()), key)},
		{"alg hs256 lower case", rawHS256(`{"alg":"hs256","typ":"JWT"}`, claimsJSON(t, validClaims()), key)},
		{"another secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-another"), validClaims())},
		{"short other secret", sign(t, jwt.SigningMethodHS256, []byte("x"), validClaims())},

		{"aud claim", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["aud"] = "mcp-client" }))},
		{"aud list claim", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["aud"] = []string{"a"} }))},
		{"non-UUID sub", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sub"] = "admin" }))},
		{"numeric sub", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sub"] = 42 }))},
		{"missing sub", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"missing sid", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "sid") }))},
		{"non-UUID sid", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["sid"] = "session-1" }))},
		{"missing jti", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "jti") }))},
		{"missing type", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "type") }))},
		{"missing exp", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"missing iat", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { delete(c, "iat") }))},
		{"string exp", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["exp"] = "tomorrow" }))},
		{"iat in the future", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Hour).Unix() }))},
		{"iat a minute ahead", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Minute).Unix() }))},
		{"nbf in the future", sign(t, jwt.SigningMethodHS256, key, with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Hour).Unix() }))},

		{"empty string", ""},
		{"one segment", "abc"},
		{"two segments", goodParts[0] + "." + goodParts[1]},
		{"four segments", good + ".extra"},
		{"empty segments", ".."},
		{"signature stripped", goodParts[0] + "." + goodParts[1] + "."},
		{"signature of another token", goodParts[0] + "." + b64(claimsJSON(t, with(func(c jwt.MapClaims) { c["is_superuser"] = true }))) + "." + goodParts[2]},
		{"header not base64", "!!!." + goodParts[1] + "." + goodParts[2]},
		{"header not JSON", rawHS256(`not json`, claimsJSON(t, validClaims()), key)},
		{"payload not JSON", rawHS256(`{"alg":"HS256","typ":"JWT"}`, `not json`, key)},
		{"payload JSON array", rawHS256(`{"alg":"HS256","typ":"JWT"}`, `[1,2,3]`, key)},
		{"payload not base64", goodParts[0] + ".%%%." + goodParts[2]},
		{"signature not base64", goodParts[0] + "." + goodParts[1] + ".***"},
		{"critical header extension", rawHS256(`{"alg":"HS256","typ":"JWT","crit":["exp"],"exp":1}`, claimsJSON(t, validClaims()), key)},
		{"unencoded payload (b64 false)", rawHS256(`{"alg":"HS256","b64":false,"crit":["b64"]}`, claimsJSON(t, validClaims()), key)},
		{"oversized", rawHS256(`{"alg":"HS256","typ":"JWT"}`, claimsJSON(t, with(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 9000) })), key)},
		{"whitespace around", " " + good + " "},
		{"Bearer prefix", "Bearer " + good},
	}
	s := newSigner(t0)
	// The untouched token is valid, so each case fails for its own reason.
	if _, err := s.Parse(good, TypeAccess); err != nil {
		t.Fatalf("control token rejected: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.Parse(tc.raw, TypeAccess)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, want ErrInvalid", err)
			}
			if c != (Claims{}) {
				t.Errorf("claims of an invalid token = %+v, want none", c)
			}
		})
	}
}

func TestHashSecret(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	}
	for _, tc := range tests {
		if got := HashSecret(tc.in); got != tc.want {
			t.Errorf("HashSecret(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	secret := RandomSecret()
	sum := sha256.Sum256([]byte(secret))
	if got := HashSecret(secret); got != hex.EncodeToString(sum[:]) || got == secret {
		t.Errorf("HashSecret(%q) = %q", secret, got)
	}
}

func TestRandomSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s := RandomSecret()
		if len(s) != 43 {
			t.Fatalf("RandomSecret() = %q, %d chars; want 43", s, len(s))
		}
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != 32 {
			t.Fatalf("RandomSecret() = %q: not 32 base64url bytes (%d, %v)", s, len(b), err)
		}
		if seen[s] {
			t.Fatalf("RandomSecret() repeated %q", s)
		}
		seen[s] = true
	}
}
