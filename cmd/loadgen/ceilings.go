package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

// The ceilings are what the server's own code can do on this machine with
// no HTTP, no database and no contention: a login can be no faster than a
// password verification, and a bearer request no faster than an HS256
// verification. They are measured between rounds, while the server idles,
// with the server's packages, on ceilingWorkers goroutines.
const (
	ceilingWorkers = 2
	ceilingSecret  = "loadgen-ceiling-secret-0123456789abcdef" // any key of 32+ characters
	// Valid UUIDs: token.Parse insists on them for the subject and session.
	ceilingUserID    = "6f1c1d0e-8a4b-4c3d-9e2f-1a2b3c4d5e6f"
	ceilingSessionID = "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f70"
)

// ceilings measures the in-process ceilings.
type ceilings struct {
	hashName string // e.g. "bcrypt cost 12"
	hasher   *password.Hasher
	encoded  string // the hash verified in a loop
	signer   *token.Signer
	access   string // the token verified in a loop
}

func newCeilings(ctx context.Context, o options, getenv func(string) string) (*ceilings, error) {
	cfg, err := passwordConfig(o, getenv)
	if err != nil {
		return nil, err
	}
	hasher, err := password.NewHasher(cfg)
	if err != nil {
		return nil, err
	}
	encoded, err := hasher.Hash(ctx, seedPassword)
	if err != nil {
		return nil, err
	}
	signer := token.NewSigner(ceilingSecret, 15*time.Minute, 7*24*time.Hour)
	access, _, err := signer.IssueAccess(token.AccessInput{UserID: ceilingUserID, SessionID: ceilingSessionID,
		Email: "ceiling@example.com", FirstName: "Ceiling"})
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("bcrypt cost %d", cfg.BcryptCost)
	if cfg.Algorithm == "argon2id" {
		name = fmt.Sprintf("argon2id m=%d KiB t=%d p=%d", cfg.ArgonMemory, cfg.ArgonTime, cfg.ArgonThreads)
	}
	return &ceilings{hashName: name, hasher: hasher, encoded: encoded, signer: signer, access: access}, nil
}

// passwordConfig builds the hasher's settings the way the server does, with
// config.Load, so defaults and limits are the server's own. The algorithm
// and bcrypt cost come from flags; argon2id parameters from the ARGON2_*
// variables of the environment, like the server's.
func passwordConfig(o options, getenv func(string) string) (config.Password, error) {
	env := map[string]string{
		"PASSWORD_HASH_ALGORITHM":   o.Hash,
		"BCRYPT_COST":               strconv.Itoa(o.BcryptCost),
		"PASSWORD_HASH_CONCURRENCY": strconv.Itoa(ceilingWorkers),
		"PASSWORD_HASH_MAX_WAIT_MS": "600000", // the loop never waits for a slot: as many workers as slots
	}
	c, _, err := config.Load(func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if strings.HasPrefix(k, "ARGON2_") {
			return getenv(k)
		}
		return ""
	})
	if err != nil {
		return config.Password{}, fmt.Errorf("hash settings: %w", err)
	}
	return c.Password, nil
}

// measureHash verifies the right password against the hash, as a login
// does, for d.
func (c *ceilings) measureHash(ctx context.Context, d time.Duration) (runResult, error) {
	return spin(ctx, "hash", d, func() error {
		_, err := c.hasher.Verify(ctx, c.encoded, seedPassword)
		return err
	})
}

// measureHS256 verifies an access token, as every bearer request does, for d.
func (c *ceilings) measureHS256(ctx context.Context, d time.Duration) (runResult, error) {
	return spin(ctx, "hs256", d, func() error {
		_, err := c.signer.Parse(c.access, token.TypeAccess)
		return err
	})
}

// spin calls op on ceilingWorkers goroutines for d and counts the calls.
func spin(ctx context.Context, name string, d time.Duration, op func() error) (runResult, error) {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		failure error
		tallies = make([]tally, ceilingWorkers)
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for i := range tallies {
		t := &tallies[i]
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				if err := op(); err != nil {
					mu.Lock()
					failure = fmt.Errorf("%s ceiling: %w", name, err)
					mu.Unlock()
					return
				}
				t.hist.record(time.Since(t0))
				t.ok++
			}
		})
	}
	wg.Wait()
	r := runResult{row: name, conns: ceilingWorkers, elapsed: time.Since(start), hist: &histogram{}}
	for i := range tallies {
		r.ok += tallies[i].ok
		r.hist.merge(&tallies[i].hist)
	}
	return r, failure
}
