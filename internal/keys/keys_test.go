// The key manager against a real store on every engine. This is an external
// test package: dbtest and sqlstore import package keys, so an internal test
// (package keys) importing them would be an import cycle. Everything the
// tests need is exported (Now, Retention and the Manager's methods).
package keys_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/seal"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

const keySecret = "keys-test-secret-0123456789abcdef-0123456789"

// clock is a settable time source for one manager.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func box(t *testing.T, secret string) *seal.Box {
	t.Helper()
	b, err := seal.New(secret, "signing-keys")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func manager(t *testing.T, st *sqlstore.Store, c *clock, retention time.Duration) *keys.Manager {
	t.Helper()
	m := keys.NewManager(st, box(t, keySecret), retention)
	m.Now = c.now
	return m
}

func eachStore(t *testing.T, fn func(t *testing.T, st *sqlstore.Store)) {
	for _, e := range dbtest.Engines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, dbtest.Open(t, e))
		})
	}
}

func signWith(t *testing.T, k keys.Key) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.Algorithm), jwt.MapClaims{"sub": "x"})
	tok.Header["kid"] = k.ID
	s, err := tok.SignedString(k.Signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verify checks a token the way the token signer does: key by kid.
func verify(ctx context.Context, m *keys.Manager, raw string) error {
	_, err := jwt.Parse(raw, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		k, err := m.Verification(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k.Algorithm != tok.Method.Alg() {
			return nil, errors.New("algorithm mismatch")
		}
		return k.Public, nil
	}, jwt.WithValidMethods([]string{keys.ES256, keys.RS256}))
	return err
}

func kids(set jose.JSONWebKeySet) map[string]string {
	out := map[string]string{}
	for _, k := range set.Keys {
		out[k.KeyID] = k.Algorithm
	}
	return out
}

func storedCount(t *testing.T, st *sqlstore.Store) int {
	t.Helper()
	list, err := st.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

func TestEnsureCreatesOneKeyPerAlgorithmOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		m := manager(t, st, c, 48*time.Hour)
		if err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		es, err := m.Signing(ctx, keys.ES256)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := m.Signing(ctx, keys.RS256)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := es.Public.(*ecdsa.PublicKey); !ok || es.Algorithm != keys.ES256 {
			t.Fatalf("ES256 key is %T %s", es.Public, es.Algorithm)
		}
		if pub, ok := rs.Public.(*rsa.PublicKey); !ok || rs.Algorithm != keys.RS256 || pub.N.BitLen() < 2048 {
			t.Fatalf("RS256 key is %T %s", rs.Public, rs.Algorithm)
		}
		if es.ID == "" || rs.ID == "" || es.ID == rs.ID {
			t.Fatalf("kids %q %q", es.ID, rs.ID)
		}
		if n := storedCount(t, st); n != 2 {
			t.Fatalf("%d keys stored, want 2", n)
		}
		// The private parts are sealed, never stored as PEM.
		stored, _ := st.SigningKeys(ctx)
		for _, s := range stored {
			if strings.Contains(s.PrivateKey, "PRIVATE KEY") || s.RetiredAt != nil {
				t.Fatalf("stored key %s: private part in clear or retired", s.ID)
			}
			var jwk jose.JSONWebKey
			if err := json.Unmarshal([]byte(s.PublicJWK), &jwk); err != nil || !jwk.IsPublic() || jwk.KeyID != s.ID {
				t.Fatalf("public JWK of %s: %v %s", s.ID, err, s.PublicJWK)
			}
		}

		// A second Ensure (restart, second instance) creates nothing.
		m2 := manager(t, st, c, 48*time.Hour)
		if err := m2.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if n := storedCount(t, st); n != 2 {
			t.Fatalf("%d keys stored after a second Ensure, want 2", n)
		}
		es2, _ := m2.Signing(ctx, keys.ES256)
		if es2.ID != es.ID {
			t.Fatalf("second instance signs with %s, first with %s", es2.ID, es.ID)
		}
		// The second instance verifies the first one's tokens.
		for _, k := range []keys.Key{es, rs} {
			if err := verify(ctx, m2, signWith(t, k)); err != nil {
				t.Fatalf("second instance refuses a %s token of the first: %v", k.Algorithm, err)
			}
		}
		set := m.JWKS(ctx)
		if got := kids(set); len(got) != 2 || got[es.ID] != keys.ES256 || got[rs.ID] != keys.RS256 {
			t.Fatalf("JWKS %v", got)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() || k.Use != "sig" {
				t.Fatalf("JWKS publishes %s: public=%v use=%q", k.KeyID, k.IsPublic(), k.Use)
			}
		}
		b, _ := json.Marshal(set)
		if strings.Contains(string(b), `"d"`) || strings.Contains(string(b), `"p"`) {
			t.Fatalf("JWKS leaks private parameters: %s", b)
		}

		// Another SECRET_KEY cannot open the keys: loading fails loudly.
		other := keys.NewManager(st, box(t, "another-secret-key-0123456789abcdef-0123"), 48*time.Hour)
		if err := other.Ensure(ctx); err == nil || !strings.Contains(err.Error(), "SECRET_KEY") {
			t.Fatalf("Ensure with another SECRET_KEY: %v", err)
		}
	})
}

func TestRotateKeepsOldKeysUntilRetention(t *testing.T) {
	eachStore(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		const retention = 48 * time.Hour
		c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		m := manager(t, st, c, retention)
		if err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		oldES, _ := m.Signing(ctx, keys.ES256)
		oldRS, _ := m.Signing(ctx, keys.RS256)
		oldTokens := []string{signWith(t, oldES), signWith(t, oldRS)}

		c.add(time.Hour)
		rotated, err := m.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rotated) != 2 {
			t.Fatalf("Rotate returned %d keys", len(rotated))
		}
		newES, _ := m.Signing(ctx, keys.ES256)
		newRS, _ := m.Signing(ctx, keys.RS256)
		if newES.ID == oldES.ID || newRS.ID == oldRS.ID {
			t.Fatal("Rotate did not change the signing keys")
		}
		got := kids(m.JWKS(ctx))
		for _, id := range []string{oldES.ID, oldRS.ID, newES.ID, newRS.ID} {
			if _, ok := got[id]; !ok {
				t.Fatalf("JWKS after rotation lacks %s: %v", id, got)
			}
		}
		for _, tok := range oldTokens {
			if err := verify(ctx, m, tok); err != nil {
				t.Fatalf("token of a rotated key refused: %v", err)
			}
		}
		if err := verify(ctx, m, signWith(t, newES)); err != nil {
			t.Fatal(err)
		}

		// Just before the retention ends the old keys are still published.
		c.add(retention - time.Minute)
		if _, ok := kids(m.JWKS(ctx))[oldES.ID]; !ok {
			t.Fatal("old key unpublished before its retention ended")
		}
		if err := verify(ctx, m, oldTokens[0]); err != nil {
			t.Fatalf("old token refused within retention: %v", err)
		}
		// After it, they are gone from the JWKS and verification.
		c.add(2 * time.Minute)
		got = kids(m.JWKS(ctx))
		if _, ok := got[oldES.ID]; ok || len(got) != 2 {
			t.Fatalf("JWKS after retention: %v", got)
		}
		for _, tok := range oldTokens {
			if err := verify(ctx, m, tok); !errors.Is(err, keys.ErrUnknownKey) {
				t.Fatalf("token of an expired key: %v, want ErrUnknownKey", err)
			}
		}
		// The old rows are still stored until the next rotation deletes them.
		if n := storedCount(t, st); n != 4 {
			t.Fatalf("%d keys stored, want 4", n)
		}
		if _, err := m.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		// The two keys retired more than Retention ago are deleted; the two
		// just retired and the two new ones stay.
		if n := storedCount(t, st); n != 4 {
			t.Fatalf("%d keys stored after the second rotation, want 4", n)
		}
		stored, _ := st.SigningKeys(ctx)
		for _, s := range stored {
			if s.ID == oldES.ID || s.ID == oldRS.ID {
				t.Fatalf("key %s retired beyond retention still stored", s.ID)
			}
		}
		if err := verify(ctx, m, signWith(t, newES)); err != nil {
			t.Fatalf("key retired by the second rotation refused: %v", err)
		}
	})
}

func TestSecondManagerSeesRotation(t *testing.T) {
	eachStore(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c1 := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		c2 := &clock{t: c1.now()}
		m1 := manager(t, st, c1, 48*time.Hour)
		m2 := manager(t, st, c2, 48*time.Hour)
		if err := m1.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m2.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		before, _ := m2.Signing(ctx, keys.ES256)

		c1.add(time.Second)
		if _, err := m1.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		newES, _ := m1.Signing(ctx, keys.ES256)
		newRS, _ := m1.Signing(ctx, keys.RS256)

		// Within its cache period the second instance still signs with the
		// old key (which stays valid everywhere)…
		c2.add(30 * time.Second)
		if k, _ := m2.Signing(ctx, keys.ES256); k.ID != before.ID {
			t.Fatalf("second instance switched before reloading: %s", k.ID)
		}
		if err := verify(ctx, m1, signWith(t, before)); err != nil {
			t.Fatalf("first instance refuses the second's token: %v", err)
		}
		// …and its JWKS does not list the new key yet.
		if _, ok := kids(m2.JWKS(ctx))[newES.ID]; ok {
			t.Fatal("second instance reloaded within its cache period")
		}
		// After its reload period it signs with the new keys too.
		c2.add(2 * time.Minute)
		if k, _ := m2.Signing(ctx, keys.ES256); k.ID != newES.ID {
			t.Fatalf("second instance signs with %s after reloading, want %s", k.ID, newES.ID)
		}
		if k, _ := m2.Signing(ctx, keys.RS256); k.ID != newRS.ID {
			t.Fatalf("second instance signs RS256 with %s, want %s", k.ID, newRS.ID)
		}
		got := kids(m2.JWKS(ctx))
		if _, ok := got[newES.ID]; !ok {
			t.Fatalf("second instance's JWKS lacks the new key: %v", got)
		}
		if _, ok := got[before.ID]; !ok {
			t.Fatalf("second instance's JWKS dropped the rotated key: %v", got)
		}
		if err := verify(ctx, m2, signWith(t, newRS)); err != nil {
			t.Fatal(err)
		}
	})
}

// A second instance verifies tokens of another instance's new key before its
// periodic reload: an unknown kid makes it reload, at most once a second, so
// random kids cannot make every request hit the database; a verification
// arriving within that second waits for the next reload rather than refusing
// a good token.
func TestSecondManagerReloadsOnUnknownKid(t *testing.T) {
	eachStore(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c1 := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		c2 := &clock{t: c1.now()}
		m1 := manager(t, st, c1, 48*time.Hour)
		m2 := manager(t, st, c2, 48*time.Hour)
		if err := m1.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m2.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := m2.Verification(ctx, "no-such-kid"); !errors.Is(err, keys.ErrUnknownKey) {
			t.Fatalf("unknown kid: %v", err)
		}
		if _, err := m2.Verification(ctx, ""); !errors.Is(err, keys.ErrUnknownKey) {
			t.Fatalf("empty kid: %v", err)
		}
		c1.add(time.Second)
		if _, err := m1.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		newES, _ := m1.Signing(ctx, keys.ES256)
		// Same instant as m2's last load: the reload waits out the second
		// (in real time: the clock stands still) and finds the new key.
		start := time.Now()
		if k, err := m2.Verification(ctx, newES.ID); err != nil || k.ID != newES.ID {
			t.Fatalf("kid of the other instance's new key within a second of the last load: %v", err)
		}
		if waited := time.Since(start); waited < 900*time.Millisecond {
			t.Fatalf("reloaded after %v, want a second after the last load", waited)
		}
		c1.add(time.Second)
		if _, err := m1.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		c2.add(2 * time.Second) // well within the periodic reload (a minute)
		newES, _ = m1.Signing(ctx, keys.ES256)
		start = time.Now()
		if k, err := m2.Verification(ctx, newES.ID); err != nil || k.ID != newES.ID {
			t.Fatalf("kid not found after the reload interval: %v", err)
		}
		if waited := time.Since(start); waited > 500*time.Millisecond {
			t.Fatalf("reload a second after the last one waited %v", waited)
		}
		newRS, _ := m1.Signing(ctx, keys.RS256)
		if err := verify(ctx, m2, signWith(t, newRS)); err != nil {
			t.Fatalf("token of the other instance's new RS256 key: %v", err)
		}
	})
}

// Two instances rotating at the same moment (an operator running keys
// rotate twice, or on two machines) leave a key that signs: each retires only
// keys older than its own, so the newest survives whatever the interleaving.
func TestConcurrentRotationsLeaveASigningKey(t *testing.T) {
	eachStore(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		ms := []*keys.Manager{manager(t, st, c, 48*time.Hour), manager(t, st, c, 48*time.Hour)}
		if err := ms[0].Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		for round := range 6 {
			var wg sync.WaitGroup
			for _, m := range ms {
				wg.Go(func() {
					if _, err := m.Rotate(ctx); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			active := map[string]int{}
			stored, err := st.SigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range stored {
				if k.RetiredAt == nil {
					active[k.Algorithm]++
				}
			}
			// Both new keys may stay active (when one retired the older keys
			// before the other was stored): harmless, both are published and
			// the next rotation retires them. None active would stop signing.
			if active[keys.ES256] < 1 || active[keys.RS256] < 1 {
				t.Fatalf("round %d: active keys per algorithm after two concurrent rotations: %v, want at least one each", round, active)
			}
			c.add(2 * time.Minute) // past the periodic reload
			for _, alg := range []string{keys.ES256, keys.RS256} {
				k0, err := ms[0].Signing(ctx, alg)
				if err != nil {
					t.Fatalf("round %d: no %s signing key after concurrent rotations: %v", round, alg, err)
				}
				if k1, err := ms[1].Signing(ctx, alg); err != nil || k1.ID != k0.ID {
					t.Fatalf("round %d: the instances sign %s with %s and %s (%v)", round, alg, k0.ID, k1.ID, err)
				}
			}
		}
	})
}

// countingStore is the real store, counting the reads of the key table.
type countingStore struct {
	*sqlstore.Store
	mu    sync.Mutex
	reads int
}

func (c *countingStore) SigningKeys(ctx context.Context) ([]keys.Stored, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Store.SigningKeys(ctx)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// Many concurrent verifications of made-up kids cost one query a second,
// not one each; malformed kids cost none; a database read is shared by the
// callers waiting for it.
func TestUnknownKidsReloadAtMostOnceASecond(t *testing.T) {
	eachStore(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		cs := &countingStore{Store: st}
		m := keys.NewManager(cs, box(t, keySecret), 48*time.Hour)
		if err := m.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
		before := cs.count()
		for _, kid := range []string{"", "short", strings.Repeat("!", 43), strings.Repeat("a", 44)} {
			if _, err := m.Verification(ctx, kid); !errors.Is(err, keys.ErrUnknownKey) {
				t.Fatalf("kid %q: %v", kid, err)
			}
		}
		if n := cs.count() - before; n != 0 {
			t.Fatalf("malformed kids caused %d reads", n)
		}

		const callers = 200
		start := time.Now()
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				kid := fmt.Sprintf("%043d", i) // well formed, unknown
				if _, err := m.Verification(ctx, kid); !errors.Is(err, keys.ErrUnknownKey) {
					t.Errorf("made-up kid %s: %v", kid, err)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		reads := cs.count() - before
		// One reload at most a second after Ensure's, plus at most one a
		// second after that for callers that came while it was reading.
		if limit := 1 + int(elapsed/time.Second) + 1; reads > limit || reads < 1 {
			t.Fatalf("%d concurrent made-up kids caused %d reads in %v, want between 1 and %d", callers, reads, elapsed, limit)
		}
	})
}

func TestDeleteSigningKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		mk := func(id, alg string, created time.Time) keys.Stored {
			return keys.Stored{ID: id, Algorithm: alg, PublicJWK: "{}", PrivateKey: "sealed", CreatedAt: created}
		}
		create := func(id, alg string, created time.Time) {
			t.Helper()
			if err := st.CreateSigningKey(ctx, mk(id, alg, created)); err != nil {
				t.Fatal(err)
			}
		}
		create("k1", keys.ES256, base)
		create("r1", keys.RS256, base)
		create("k2", keys.ES256, base.Add(time.Hour))
		// k2 takes over from k1 at base+1h…
		if err := st.RetireSigningKeys(ctx, keys.ES256, "k2", base.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		create("k3", keys.ES256, base.Add(4*time.Hour))
		create("k4", keys.ES256, base.Add(5*time.Hour))
		// …and k4 from k2 and k3 at base+5h (a retired key keeps its time).
		if err := st.RetireSigningKeys(ctx, keys.ES256, "k4", base.Add(5*time.Hour)); err != nil {
			t.Fatal(err)
		}
		retired := map[string]*time.Time{}
		list, _ := st.SigningKeys(ctx)
		for _, k := range list {
			retired[k.ID] = k.RetiredAt
		}
		if retired["k4"] != nil || retired["r1"] != nil {
			t.Fatal("the active key (or another algorithm's) was retired")
		}
		if retired["k1"] == nil || retired["k2"] == nil || retired["k3"] == nil || !retired["k1"].Equal(base.Add(time.Hour)) ||
			!retired["k2"].Equal(base.Add(5*time.Hour)) || !retired["k3"].Equal(base.Add(5*time.Hour)) {
			t.Fatalf("retirement times: k1 %v k2 %v k3 %v", retired["k1"], retired["k2"], retired["k3"])
		}
		ids := func() string {
			list, err := st.SigningKeys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, k := range list {
				out = append(out, k.ID)
			}
			return strings.Join(out, ",")
		}
		if got := ids(); got != "k4,k3,k2,k1,r1" {
			t.Fatalf("keys not newest first: %s", got)
		}
		// Cutoff base+3h: only k1 (retired at base+1h) goes.
		if n, err := st.DeleteSigningKeys(ctx, base.Add(3*time.Hour)); err != nil || n != 1 {
			t.Fatalf("deleted %d (%v), want 1", n, err)
		}
		if got := ids(); got != "k4,k3,k2,r1" {
			t.Fatalf("left %s", got)
		}
		// Active keys are never deleted, however old.
		if n, err := st.DeleteSigningKeys(ctx, base.Add(1000*time.Hour)); err != nil || n != 2 {
			t.Fatalf("second delete: %d %v", n, err)
		}
		if got := ids(); got != "k4,r1" {
			t.Fatalf("left %s", got)
		}
	})
}
