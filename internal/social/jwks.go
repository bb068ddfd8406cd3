package social

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// How long a provider's JWKS is trusted (reference fix 10: "cache JWKS per
// Cache-Control"). The response's Cache-Control max-age (less its Age)
// sets the lifetime, clamped to [jwksMinTTL, jwksMaxTTL]; without a usable
// max-age the keys live jwksDefaultTTL; no-store and no-cache give the
// floor. A key the provider withdraws stops verifying at the latest
// jwksMaxTTL after it was fetched.
const (
	jwksMinTTL     = time.Minute
	jwksMaxTTL     = 24 * time.Hour
	jwksDefaultTTL = time.Hour
	// jwksRefetchInterval is the least time between two fetches of a JWKS
	// that is not yet stale: a token whose key is not in the cached set (a
	// rotation, or a garbage kid) makes one refetch, and further ones only
	// after this interval, so bad tokens cannot hammer the provider. It also
	// spaces out retries after a failed fetch.
	jwksRefetchInterval = 10 * time.Second
	// jwksMaxBytes bounds a JWKS response.
	jwksMaxBytes = 1 << 20
)

// errKeysUnavailable marks a failure to get the JWKS at all (the provider is
// down, slow or answers garbage), as opposed to a signature no key verifies.
var errKeysUnavailable = errors.New("JWKS unavailable")

// keySet is a provider's JWKS, cached per Cache-Control. It implements
// oidc.KeySet, replacing go-oidc's RemoteKeySet, which keeps keys forever
// and only refetches on an unknown key id.
type keySet struct {
	url    string
	client *http.Client // its Timeout bounds every fetch
	now    func() time.Time
	algs   []jose.SignatureAlgorithm

	fetchMu sync.Mutex // one fetch at a time

	mu      sync.Mutex // guards the fields below
	keys    []jose.JSONWebKey
	expires time.Time // the keys are not used from then on
	attempt time.Time // last fetch, successful or not
	err     error     // error of the last fetch; nil after a success
}

func newKeySet(url string, client *http.Client, now func() time.Time, algs []string) *keySet {
	k := &keySet{url: url, client: client, now: now}
	for _, a := range algs {
		k.algs = append(k.algs, jose.SignatureAlgorithm(a))
	}
	return k
}

// VerifySignature implements oidc.KeySet: it returns the payload of raw if
// a key of the provider's current JWKS verifies its signature. Errors wrap
// errKeysUnavailable when the JWKS could not be had.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("the jwt must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, err := k.get(ctx, false)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	// Perhaps the provider rotated its keys since we fetched them: refetch,
	// unless we did so very recently.
	keys, err = k.get(ctx, true)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	return nil, errors.New("no key of the provider's JWKS verifies the signature")
}

func verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// get returns the keys: the cached ones while they are fresh, unless
// refetch asks for newer ones, which it gets at most every
// jwksRefetchInterval.
func (k *keySet) get(ctx context.Context, refetch bool) ([]jose.JSONWebKey, error) {
	if !refetch {
		k.mu.Lock()
		keys, fresh := k.keys, k.keys != nil && k.now().Before(k.expires)
		k.mu.Unlock()
		if fresh {
			return keys, nil
		}
	}
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	// Decide again: another request may have fetched while this one waited.
	k.mu.Lock()
	now := k.now()
	fresh := k.keys != nil && now.Before(k.expires)
	recent := !k.attempt.IsZero() && !now.Before(k.attempt) && now.Sub(k.attempt) < jwksRefetchInterval
	switch {
	case fresh && (!refetch || recent):
		keys := k.keys
		k.mu.Unlock()
		return keys, nil
	case recent && k.err != nil:
		err := k.err
		k.mu.Unlock()
		return nil, err
	}
	k.mu.Unlock()

	// The fetch outlives a client that gives up (others may be waiting for
	// it); the HTTP client's timeout bounds it.
	keys, ttl, err := k.fetch(context.WithoutCancel(ctx))
	k.mu.Lock()
	defer k.mu.Unlock()
	k.attempt = now
	if err != nil {
		k.err = fmt.Errorf("%w: %w", errKeysUnavailable, err)
		if fresh { // only a refetch failed: the cached keys are still good
			return k.keys, nil
		}
		return nil, k.err
	}
	k.keys, k.expires, k.err = keys, now.Add(ttl), nil
	return keys, nil
}

// fetch downloads the JWKS and says how long to trust it.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", k.url, err)
	}
	if len(body) > jwksMaxBytes {
		return nil, 0, fmt.Errorf("GET %s: JWKS larger than %d bytes", k.url, jwksMaxBytes)
	}
	keys, err := parseJWKS(body)
	if err != nil {
		return nil, 0, fmt.Errorf("GET %s: %w", k.url, err)
	}
	return keys, cacheTTL(resp.Header), nil
}

// parseJWKS reads a JWK set's signing keys, skipping keys of types or
// algorithms it cannot use (RFC 7517 §5: implementations SHOULD ignore
// them) and encryption keys; anything else malformed fails the whole set.
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var set struct {
		Keys *[]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWKS is not JSON: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("JWKS has no keys member")
	}
	keys := []jose.JSONWebKey{}
	for _, raw := range *set.Keys {
		var meta struct {
			Use string `json:"use"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, fmt.Errorf("JWKS key is not an object: %w", err)
		}
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			if errors.Is(err, jose.ErrUnsupportedKeyType) {
				continue
			}
			return nil, fmt.Errorf("JWKS key: %w", err)
		}
		if meta.Use == "enc" || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// cacheTTL is how long a JWKS response may be used, from its Cache-Control
// max-age less its Age, clamped to [jwksMinTTL, jwksMaxTTL].
func cacheTTL(h http.Header) time.Duration {
	maxAge, found := -1, false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return jwksMinTTL
			case "max-age":
				n, err := strconv.Atoi(strings.Trim(value, `"`))
				if err != nil || n < 0 {
					return jwksDefaultTTL
				}
				maxAge, found = n, true
			}
		}
	}
	if !found {
		return jwksDefaultTTL
	}
	if age, err := strconv.Atoi(strings.TrimSpace(h.Get("Age"))); err == nil && age > 0 {
		maxAge -= age
	}
	ttl := time.Duration(maxAge) * time.Second
	if maxAge > int(jwksMaxTTL/time.Second) {
		ttl = jwksMaxTTL
	}
	return min(max(ttl, jwksMinTTL), jwksMaxTTL)
}
