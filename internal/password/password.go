// Package password hashes and verifies passwords and enforces the password
// rule of reference §4.5.
//
// Hashing is slow on purpose (bcrypt cost 12 by default, argon2id
// selectable), so every hash and verify goes through a bounded queue: at most
// Concurrency run at once, and a caller that would wait longer than MaxWait
// gets ErrBusy instead of piling up memory and starving other requests.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// ErrBusy means the hashing queue is full; the request is refused with 503
// and Retry-After rather than queued without bound.
var ErrBusy = &apperr.Error{
	Kind: apperr.Unavailable, Code: apperr.CodeServiceUnavailable,
	Message: "The server is busy verifying passwords. Please retry shortly.", RetryAfter: 1,
}

// ErrMismatch is returned by Verify for a wrong password.
var ErrMismatch = errors.New("password does not match")

// MaxBytes is the longest password accepted: bcrypt reads only 72 bytes, and
// a single policy for every algorithm keeps hashes portable between them.
const MaxBytes = 72

// dummyBcrypt is the reference's dummy hash (cost 12), verified against when
// an account is unknown so timing does not reveal which emails exist.
const dummyBcrypt = "$2b$12$EixZaYVK1fsbw1ZfbX3OXePaWxn96p36zLFbnJHfxPSEFBzXKiHia"

// Hasher hashes and verifies passwords under a concurrency bound.
type Hasher struct {
	cfg   config.Password
	slots chan struct{}
	dummy string
	// Counters of work done, for tests and metrics.
	hashes, verifies atomic.Uint64
	// OnWait, when set before the Hasher is first used, is told how long
	// each hash or verification waited for a slot, with a nil error when it
	// got one, ErrBusy when the queue stayed full for MaxWait, or the
	// context's error when the caller left (metrics). It runs on the
	// caller's goroutine and must be quick.
	OnWait func(wait time.Duration, err error)
}

// Slots reports how many hashes and verifications are running and how many
// may run at once.
func (h *Hasher) Slots() (busy, total int) {
	return len(h.slots), cap(h.slots)
}

// Stats reports how many hashes and verifications (dummy ones included)
// the Hasher has computed.
func (h *Hasher) Stats() (hashes, verifies uint64) {
	return h.hashes.Load(), h.verifies.Load()
}

// NewHasher returns a Hasher for the configured algorithm.
func NewHasher(cfg config.Password) (*Hasher, error) {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 5 * time.Second
	}
	h := &Hasher{cfg: cfg, slots: make(chan struct{}, cfg.Concurrency)}
	switch cfg.Algorithm {
	case "bcrypt", "":
		h.cfg.Algorithm = "bcrypt"
		if cfg.BcryptCost == 12 {
			h.dummy = dummyBcrypt
		} else {
			d, err := bcrypt.GenerateFromPassword([]byte("dummy-password-for-timing"), cfg.BcryptCost)
			if err != nil {
				return nil, fmt.Errorf("dummy hash: %w", err)
			}
			h.dummy = string(d)
		}
	case "argon2id":
		h.dummy = h.argonHash([]byte("dummy-password-for-timing"))
	default:
		return nil, fmt.Errorf("unknown password hash algorithm %q", cfg.Algorithm)
	}
	return h, nil
}

func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err // the caller is gone: do not spend a slot on it
	}
	select {
	case h.slots <- struct{}{}:
		h.waited(0, nil)
		return func() { <-h.slots }, nil
	default:
	}
	start := time.Now()
	t := time.NewTimer(h.cfg.MaxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		h.waited(time.Since(start), nil)
		return func() { <-h.slots }, nil
	case <-t.C:
		h.waited(time.Since(start), ErrBusy)
		return nil, ErrBusy
	case <-ctx.Done():
		h.waited(time.Since(start), ctx.Err())
		return nil, ctx.Err()
	}
}

func (h *Hasher) waited(d time.Duration, err error) {
	if h.OnWait != nil {
		h.OnWait(d, err)
	}
}

// compute runs f, one hash or verification counted in n, once a slot is
// free, on a thread of lower priority (atLowPriority).
func (h *Hasher) compute(ctx context.Context, n *atomic.Uint64, f func()) error {
	release, err := h.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	n.Add(1)
	atLowPriority(f)
	return nil
}

// Hash returns an encoded hash of pw with the configured algorithm.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if len(pw) > MaxBytes {
		return "", fmt.Errorf("password longer than %d bytes", MaxBytes)
	}
	var (
		encoded string
		hashErr error
	)
	if err := h.compute(ctx, &h.hashes, func() { encoded, hashErr = h.encode([]byte(pw)) }); err != nil {
		return "", err
	}
	return encoded, hashErr
}

func (h *Hasher) encode(pw []byte) (string, error) {
	if h.cfg.Algorithm == "argon2id" {
		return h.argonHash(pw), nil
	}
	b, err := bcrypt.GenerateFromPassword(pw, h.cfg.BcryptCost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	return string(b), nil
}

// Verify checks pw against encoded (bcrypt or argon2id, whatever the
// configured algorithm). It returns ErrMismatch for a wrong password and
// reports whether the hash should be replaced by one with the current
// settings. An empty encoded hash (no password set) is verified against the
// dummy hash and always mismatches, taking the same time.
func (h *Hasher) Verify(ctx context.Context, encoded, pw string) (rehash bool, err error) {
	against := encoded
	if encoded == "" {
		against = h.dummy
	}
	var verifyErr error
	if err := h.compute(ctx, &h.verifies, func() { verifyErr = verifyEncoded(against, pw) }); err != nil {
		return false, err
	}
	switch {
	case encoded == "":
		return false, ErrMismatch
	case verifyErr != nil:
		return false, verifyErr
	}
	return h.needsRehash(encoded), nil
}

// VerifyDummy spends the time of one verification, for unknown accounts.
func (h *Hasher) VerifyDummy(ctx context.Context, pw string) error {
	return h.compute(ctx, &h.verifies, func() { _ = verifyEncoded(h.dummy, pw) })
}

func verifyEncoded(encoded, pw string) error {
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"):
		return verifyArgon(encoded, pw)
	case strings.HasPrefix(encoded, "$2"):
		if len(pw) > MaxBytes {
			return ErrMismatch
		}
		if err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(pw)); err != nil {
			return ErrMismatch
		}
		return nil
	}
	return ErrMismatch
}

func (h *Hasher) needsRehash(encoded string) bool {
	if h.cfg.Algorithm == "argon2id" {
		p, err := parseArgon(encoded)
		return err != nil || p.memory != h.cfg.ArgonMemory || p.time != h.cfg.ArgonTime || p.threads != h.cfg.ArgonThreads
	}
	cost, err := bcrypt.Cost([]byte(encoded))
	return err != nil || cost != h.cfg.BcryptCost
}

// argon2id in PHC format: $argon2id$v=19$m=19456,t=2,p=1$salt$hash
func (h *Hasher) argonHash(pw []byte) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	key := argon2.IDKey(pw, salt, h.cfg.ArgonTime, h.cfg.ArgonMemory, h.cfg.ArgonThreads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.cfg.ArgonMemory, h.cfg.ArgonTime, h.cfg.ArgonThreads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

type argonParams struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parseArgon(encoded string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, errors.New("malformed argon2id hash")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, fmt.Errorf("argon2id parameters: %w", err)
	}
	if p.memory == 0 || p.memory > 4<<20 || p.time == 0 || p.time > 100 || p.threads == 0 {
		return p, errors.New("argon2id parameters out of range")
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil {
		return p, err
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) == 0 {
		return p, errors.New("argon2id key")
	}
	return p, nil
}

func verifyArgon(encoded, pw string) error {
	p, err := parseArgon(encoded)
	if err != nil {
		return ErrMismatch
	}
	key := argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	if subtle.ConstantTimeCompare(key, p.key) != 1 {
		return ErrMismatch
	}
	return nil
}
