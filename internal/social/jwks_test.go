package social

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestCacheTTL(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"no header: the default", http.Header{}, jwksDefaultTTL},
		{"max-age", http.Header{"Cache-Control": {"public, max-age=3600"}}, time.Hour},
		{"max-age, any case and spacing", http.Header{"Cache-Control": {"Public ,MAX-AGE=7200 , must-revalidate"}}, 2 * time.Hour},
		{"quoted max-age", http.Header{"Cache-Control": {`max-age="600"`}}, 10 * time.Minute},
		{"max-age less Age (a CDN's copy)", http.Header{"Cache-Control": {"max-age=20000"}, "Age": {"2000"}}, 18000 * time.Second},
		{"Age beyond max-age: the floor", http.Header{"Cache-Control": {"max-age=600"}, "Age": {"900"}}, jwksMinTTL},
		{"short max-age: the floor", http.Header{"Cache-Control": {"max-age=5"}}, jwksMinTTL},
		{"max-age=0: the floor", http.Header{"Cache-Control": {"max-age=0"}}, jwksMinTTL},
		{"long max-age: the ceiling", http.Header{"Cache-Control": {"max-age=31536000"}}, jwksMaxTTL},
		{"huge max-age: the ceiling, no overflow", http.Header{"Cache-Control": {"max-age=9223372036854775807"}}, jwksMaxTTL},
		{"no-store: the floor", http.Header{"Cache-Control": {"no-store"}}, jwksMinTTL},
		{"no-cache wins over max-age", http.Header{"Cache-Control": {"max-age=3600, no-cache"}}, jwksMinTTL},
		{"unparsable max-age: the default", http.Header{"Cache-Control": {"max-age=soon"}}, jwksDefaultTTL},
		{"negative max-age: the default", http.Header{"Cache-Control": {"max-age=-1"}}, jwksDefaultTTL},
		{"only other directives: the default", http.Header{"Cache-Control": {"public, must-revalidate"}}, jwksDefaultTTL},
		{"two header lines", http.Header{"Cache-Control": {"public", "max-age=120"}}, 2 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cacheTTL(tc.header); got != tc.want {
				t.Errorf("cacheTTL(%v) = %v, want %v", tc.header, got, tc.want)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey, KeyID: "rsa", Algorithm: "RS256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := json.Marshal(jose.JSONWebKey{Key: &key.PublicKey, KeyID: "enc", Algorithm: "RSA-OAEP", Use: "enc"})
	good := []struct {
		name string
		body string
		kids []string
	}{
		{"one key", `{"keys":[` + string(pub) + `]}`, []string{"rsa"}},
		{"an empty set", `{"keys":[]}`, nil},
		{"unknown key types and encryption keys are skipped", `{"keys":[{"kty":"XYZ","kid":"odd"},` + string(enc) + `,` + string(pub) + `]}`, []string{"rsa"}},
		{"symmetric keys are skipped", `{"keys":[{"kty":"oct","kid":"hmac","k":"c2VjcmV0"},` + string(pub) + `]}`, []string{"rsa"}},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.KeyID)
			}
			if len(kids) != len(tc.kids) || (len(kids) > 0 && kids[0] != tc.kids[0]) {
				t.Fatalf("kids %v, want %v", kids, tc.kids)
			}
		})
	}
	for _, bad := range []string{"<html>502 Bad Gateway</html>", `{}`, `{"keys":{}}`, `{"keys":["x"]}`, `{"keys":[{"kty":"RSA","kid":"k","n":"!!","e":"AQAB"}]}`, `[]`, ``} {
		if keys, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("parseJWKS(%q) = %v, want an error", bad, keys)
		}
	}
}

// A JWKS that cannot be fetched once the cache expired fails verification
// with errKeysUnavailable, and is retried at most every
// jwksRefetchInterval.
func TestKeySetUnavailable(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	fetches, down := 0, false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		if down {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	}))
	defer srv.Close()
	count := func() int { mu.Lock(); defer mu.Unlock(); return fetches }

	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ks := newKeySet(srv.URL, srv.Client(), func() time.Time { return now }, []string{"RS256"})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := obj.CompactSerialize()
	ctx := context.Background()

	if _, err := ks.VerifySignature(ctx, raw); err != nil || count() != 1 {
		t.Fatalf("first verification: %v, %d fetches", err, count())
	}
	mu.Lock()
	down = true
	mu.Unlock()
	now = now.Add(59 * time.Second)
	if _, err := ks.VerifySignature(ctx, raw); err != nil || count() != 1 {
		t.Fatalf("within max-age: %v, %d fetches", err, count())
	}
	now = now.Add(2 * time.Second) // expired
	for i := range 3 {
		_, err := ks.VerifySignature(ctx, raw)
		if !errors.Is(err, errKeysUnavailable) {
			t.Fatalf("attempt %d after expiry with the JWKS down: %v, want errKeysUnavailable", i, err)
		}
	}
	if count() != 2 {
		t.Fatalf("%d fetches, want 2: failures are retried at most every %v", count(), jwksRefetchInterval)
	}
	now = now.Add(jwksRefetchInterval)
	mu.Lock()
	down = false
	mu.Unlock()
	if _, err := ks.VerifySignature(ctx, raw); err != nil || count() != 3 {
		t.Fatalf("after the provider came back: %v, %d fetches", err, count())
	}
}
