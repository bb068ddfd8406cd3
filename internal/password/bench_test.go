package password

// Benchmarks of the password hashes as configured in production (bcrypt
// cost 12, argon2id with OWASP's m=19456 KiB, t=2, p=1), through the Hasher
// and its concurrency queue, with plain SHA-256 as a yardstick.

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

const benchPassword = "Str0ng!Passw0rd-bench"

func benchHasher(b *testing.B, cfg config.Password) *Hasher {
	b.Helper()
	cfg.Concurrency, cfg.MaxWait = 1, time.Minute
	h, err := NewHasher(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

func bcrypt12(b *testing.B) *Hasher {
	return benchHasher(b, config.Password{Algorithm: "bcrypt", BcryptCost: 12})
}

func BenchmarkBcryptHashCost12(b *testing.B) {
	h, ctx := bcrypt12(b), context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, benchPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBcryptVerifyCost12(b *testing.B) {
	h, ctx := bcrypt12(b), context.Background()
	hash, err := h.Hash(ctx, benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rehash, err := h.Verify(ctx, hash, benchPassword)
		if err != nil || rehash {
			b.Fatalf("verify: rehash=%v err=%v", rehash, err)
		}
	}
}

func BenchmarkArgon2idHash(b *testing.B) {
	h := benchHasher(b, config.Password{Algorithm: "argon2id", ArgonMemory: 19456, ArgonTime: 2, ArgonThreads: 1})
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, benchPassword); err != nil {
			b.Fatal(err)
		}
	}
}

var sha256Sink [sha256.Size]byte

// BenchmarkSHA256 is the yardstick: a fast hash of the same password.
func BenchmarkSHA256(b *testing.B) {
	pw := []byte(benchPassword)
	b.SetBytes(int64(len(pw)))
	for b.Loop() {
		sha256Sink = sha256.Sum256(pw)
	}
}
