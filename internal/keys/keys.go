// Package keys manages the authorization server's asymmetric signing keys:
// ES256 for access tokens (RS256 selectable) and RS256 for ID tokens, as
// OpenID Connect requires. Keys live in the database, private parts sealed
// with a key derived from SECRET_KEY, so every instance signs with the same
// keys and verifies the others' tokens. Rotation adds a new key that signs
// from then on, while the old one stays published until the tokens it
// signed have expired.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/seal"
)

// The algorithms keys are made for.
const (
	ES256 = "ES256"
	RS256 = "RS256"
)

// Stored is a key as kept in the database.
type Stored struct {
	ID         string // kid: RFC 7638 thumbprint
	Algorithm  string
	PublicJWK  string // JSON
	PrivateKey string // sealed PKCS#8 PEM
	CreatedAt  time.Time
	RetiredAt  *time.Time // set when a newer key took over signing
}

// Store keeps the keys.
type Store interface {
	SigningKeys(ctx context.Context) ([]Stored, error)
	CreateSigningKey(ctx context.Context, k Stored) error
	// RetireSigningKeys marks every unretired key of alg except keepID as
	// retired at now.
	RetireSigningKeys(ctx context.Context, alg, keepID string, now time.Time) error
	// DeleteSigningKeys deletes keys retired before cutoff.
	DeleteSigningKeys(ctx context.Context, cutoff time.Time) (int, error)
}

// Key is a usable key.
type Key struct {
	ID        string
	Algorithm string
	Signer    crypto.Signer
	Public    crypto.PublicKey
	CreatedAt time.Time
	RetiredAt *time.Time
}

// ErrUnknownKey is returned for a kid that is not (or no longer) published.
var ErrUnknownKey = errors.New("unknown signing key")

// Manager loads, caches, creates and rotates keys.
type Manager struct {
	store Store
	box   *seal.Box
	// Retention is how long a retired key stays published (longer than any
	// token it signed lives).
	Retention time.Duration
	Now       func() time.Time

	mu        sync.Mutex
	keys      []Key
	loadedAt  time.Time // when the keys were last read
	startedAt time.Time // when the last reload started
	pending   *reloadCall
}

// reloadCall is a reload waited for by the verifications of unknown kids
// that arrived before it started reading.
type reloadCall struct {
	done chan struct{}
	err  error
}

// NewManager returns a Manager; call Ensure before use.
func NewManager(store Store, box *seal.Box, retention time.Duration) *Manager {
	return &Manager{store: store, box: box, Retention: retention, Now: time.Now}
}

// refreshEvery bounds how long this instance keeps signing with a key that
// another instance has rotated out (those tokens stay valid everywhere
// anyway) and how long its JWKS lacks the new key.
const refreshEvery = time.Minute

// minReload is the least time between two reloads (except the explicit ones
// of Ensure and Rotate), so tokens with made-up kids, or a database that
// does not answer, cost at most one query a second.
const minReload = time.Second

// reloadTimeout bounds a reload that several verifications wait for.
const reloadTimeout = 5 * time.Second

// Ensure loads the keys and creates a signing key for each algorithm that
// has none.
func (m *Manager) Ensure(ctx context.Context) error {
	if err := m.reload(ctx); err != nil {
		return err
	}
	for _, alg := range []string{ES256, RS256} {
		if _, err := m.active(alg); err == nil {
			continue
		}
		if _, err := m.create(ctx, alg); err != nil {
			return err
		}
	}
	return m.reload(ctx)
}

// Rotate creates new keys for both algorithms and retires the previous
// ones; they stay published for Retention.
func (m *Manager) Rotate(ctx context.Context) ([]Key, error) {
	var out []Key
	for _, alg := range []string{ES256, RS256} {
		k, err := m.create(ctx, alg)
		if err != nil {
			return nil, err
		}
		if err := m.store.RetireSigningKeys(ctx, alg, k.ID, m.Now().UTC()); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if _, err := m.store.DeleteSigningKeys(ctx, m.Now().UTC().Add(-m.Retention)); err != nil {
		return nil, err
	}
	return out, m.reload(ctx)
}

func (m *Manager) create(ctx context.Context, alg string) (Key, error) {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return Key{}, fmt.Errorf("unsupported algorithm %s", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	jwk := jose.JSONWebKey{Key: signer.Public(), Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return Key{}, err
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	pub, err := json.Marshal(jwk)
	if err != nil {
		return Key{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		return Key{}, err
	}
	now := m.Now().UTC().Truncate(time.Microsecond)
	st := Stored{ID: jwk.KeyID, Algorithm: alg, PublicJWK: string(pub),
		PrivateKey: m.box.Seal(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))), CreatedAt: now}
	if err := m.store.CreateSigningKey(ctx, st); err != nil {
		return Key{}, err
	}
	return Key{ID: st.ID, Algorithm: alg, Signer: signer, Public: signer.Public(), CreatedAt: now}, nil
}

// reload reads every key from the store.
func (m *Manager) reload(ctx context.Context) error {
	m.mu.Lock()
	m.startedAt = m.Now()
	m.mu.Unlock()
	stored, err := m.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	keys := make([]Key, 0, len(stored))
	for _, s := range stored {
		k, err := m.open(s)
		if err != nil {
			return fmt.Errorf("signing key %s: %w", s.ID, err)
		}
		keys = append(keys, k)
	}
	// Stable: keys created in the same microsecond keep the store's order
	// (then by id), so every instance picks the same one to sign with.
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].CreatedAt.After(keys[j].CreatedAt) })
	m.mu.Lock()
	m.keys, m.loadedAt = keys, m.Now()
	m.mu.Unlock()
	return nil
}

func (m *Manager) open(s Stored) (Key, error) {
	p, err := m.box.Open(s.PrivateKey)
	if err != nil {
		return Key{}, fmt.Errorf("cannot open the private key (was SECRET_KEY changed?): %w", err)
	}
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return Key{}, errors.New("private key is not PEM")
	}
	priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return Key{}, err
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return Key{}, errors.New("private key cannot sign")
	}
	return Key{ID: s.ID, Algorithm: s.Algorithm, Signer: signer, Public: signer.Public(), CreatedAt: s.CreatedAt, RetiredAt: s.RetiredAt}, nil
}

// maybeReload refreshes the cache when it is older than refreshEvery. One
// caller reloads while the others go on with the cached keys, and a failed
// reload is retried after minReload, not by every request.
func (m *Manager) maybeReload(ctx context.Context) {
	m.mu.Lock()
	now := m.Now()
	due := now.Sub(m.loadedAt) > refreshEvery && now.Sub(m.startedAt) >= minReload && m.pending == nil
	if due {
		m.startedAt = now
	}
	m.mu.Unlock()
	if due {
		_ = m.reload(ctx) // keep the cached keys when the database hiccups
	}
}

// reloadForKid reloads the keys for a verification that met an unknown kid,
// which another instance may have just created. Reloads start at least
// minReload apart: a caller joins the next reload that has not started
// reading yet, or schedules one for when minReload has passed since the last
// one, and waits for it. So a new key is found at most a second after it
// was stored, while made-up kids cost at most one query a second however
// many requests carry them.
func (m *Manager) reloadForKid(ctx context.Context) error {
	m.mu.Lock()
	c := m.pending
	if c == nil {
		c = &reloadCall{done: make(chan struct{})}
		m.pending = c
		wait := m.startedAt.Add(minReload).Sub(m.Now())
		m.mu.Unlock()
		m.lead(ctx, c, wait)
	} else {
		m.mu.Unlock()
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lead runs the reload c after wait. Others wait for it, so neither the
// wait nor the query stops when the leading request is cancelled.
func (m *Manager) lead(ctx context.Context, c *reloadCall, wait time.Duration) {
	if wait > 0 {
		t := time.NewTimer(min(wait, minReload))
		<-t.C
	}
	m.mu.Lock()
	m.pending = nil       // callers from now on need a later reload…
	m.startedAt = m.Now() // …which waits for minReload from now
	m.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reloadTimeout)
	defer cancel()
	c.err = m.reload(rctx)
	close(c.done)
}

func (m *Manager) active(alg string) (Key, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys { // newest first
		if k.Algorithm == alg && k.RetiredAt == nil {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("no active %s signing key", alg)
}

// Signing returns the key that signs new tokens with alg.
func (m *Manager) Signing(ctx context.Context, alg string) (Key, error) {
	m.maybeReload(ctx)
	return m.active(alg)
}

// Verification returns the published key with this kid, reloading when it
// is unknown (another instance may have rotated; see reloadForKid).
func (m *Manager) Verification(ctx context.Context, kid string) (Key, error) {
	m.maybeReload(ctx)
	if k, ok := m.published(kid); ok {
		return k, nil
	}
	if !wellFormedKid(kid) {
		return Key{}, ErrUnknownKey // no key of ours has such a kid
	}
	if err := m.reloadForKid(ctx); err != nil {
		return Key{}, err
	}
	if k, ok := m.published(kid); ok {
		return k, nil
	}
	return Key{}, ErrUnknownKey
}

// wellFormedKid reports whether kid looks like the kids of this package:
// an RFC 7638 SHA-256 thumbprint, 43 characters of unpadded base64url.
func wellFormedKid(kid string) bool {
	if len(kid) != 43 {
		return false
	}
	for _, c := range kid {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (m *Manager) published(kid string) (Key, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := m.Now().Add(-m.Retention)
	for _, k := range m.keys {
		if k.ID == kid && (k.RetiredAt == nil || k.RetiredAt.After(cutoff)) {
			return k, true
		}
	}
	return Key{}, false
}

// JWKS returns the public keys to publish: active ones and those retired
// within Retention.
func (m *Manager) JWKS(ctx context.Context) jose.JSONWebKeySet {
	m.maybeReload(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	cutoff := m.Now().Add(-m.Retention)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range m.keys {
		if k.RetiredAt == nil || k.RetiredAt.After(cutoff) {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public, KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
		}
	}
	return set
}
