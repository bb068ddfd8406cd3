package oauth

import (
	"sync"
	"time"
)

// verifiedCache remembers access tokens whose signature, type and issuer
// checked out, for a short while: resource servers present the same token
// again and again (introspection, userinfo, /mcp, the API), and an ECDSA or
// RSA verification costs more than everything else such a request does.
//
// Only the signature check is cached. Whether the grant is still alive and
// the user still active is read from the database on every use, so
// revocation stays immediate on every instance; and an entry lives at most
// verifiedTTL, so a signing key that is no longer published stops verifying
// within that bound.
type verifiedCache struct {
	mu       sync.Mutex
	cur, old map[string]verifiedEntry
	max      int
}

type verifiedEntry struct {
	claims AccessClaims
	until  time.Time
}

const (
	verifiedTTL = time.Minute
	verifiedMax = 8192 // per generation; at most twice this many entries
)

func newVerifiedCache() *verifiedCache {
	return &verifiedCache{cur: map[string]verifiedEntry{}, old: map[string]verifiedEntry{}, max: verifiedMax}
}

func (c *verifiedCache) get(raw string, now time.Time) (AccessClaims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cur[raw]
	if !ok {
		e, ok = c.old[raw]
	}
	if !ok || !now.Before(e.until) {
		return AccessClaims{}, false
	}
	return e.claims, true
}

// put adds an entry; when the current generation is full it becomes the old
// one and the previous old one is dropped (an approximation of LRU without
// per-entry bookkeeping).
func (c *verifiedCache) put(raw string, claims AccessClaims, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[string]verifiedEntry, c.max)
	}
	c.cur[raw] = verifiedEntry{claims: claims, until: until}
}
