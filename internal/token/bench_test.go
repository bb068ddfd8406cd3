package token

// Benchmarks of first-party token issuing and parsing, with raw HMAC-SHA256
// over a payload of the same size as a yardstick: the difference is the cost
// of JSON claims, base64 and the JWT library.

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

const benchSecret = "bench-secret-key-0123456789abcdef-0123456789"

func benchSigner() *Signer { return NewSigner(benchSecret, 15*time.Minute, 7*24*time.Hour) }

func benchAccessInput() AccessInput {
	return AccessInput{UserID: uuid.NewString(), SessionID: uuid.NewString(), Email: "bench.user@example.com",
		FirstName: "Bench", IsSuperuser: false}
}

func BenchmarkIssueAccess(b *testing.B) {
	s, in := benchSigner(), benchAccessInput()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.IssueAccess(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAccess(b *testing.B) {
	s, in := benchSigner(), benchAccessInput()
	tok, _, err := s.IssueAccess(in)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c, err := s.Parse(tok, TypeAccess)
		if err != nil || c.Subject != in.UserID {
			b.Fatalf("parse: %v %+v", err, c)
		}
	}
}

var hmacSink []byte

// BenchmarkHMACSHA256 is the yardstick: one HMAC-SHA256 over the signing
// input (header.claims) of a real access token, which is what HS256 computes.
func BenchmarkHMACSHA256(b *testing.B) {
	tok, _, err := benchSigner().IssueAccess(benchAccessInput())
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(tok[:strings.LastIndexByte(tok, '.')])
	key := []byte(benchSecret)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, key)
		m.Write(payload)
		hmacSink = m.Sum(hmacSink[:0])
	}
}
