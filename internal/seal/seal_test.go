package seal

import (
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	b, err := New("a-secret-key-of-at-least-32-characters!", "provider-tokens")
	if err != nil {
		t.Fatal(err)
	}
	s := b.Seal("gho_token")
	if s == "" || strings.Contains(s, "gho_token") || !strings.HasPrefix(s, "v1:") {
		t.Fatalf("sealed %q", s)
	}
	if s2 := b.Seal("gho_token"); s2 == s {
		t.Fatal("two seals of one value are identical (nonce reuse)")
	}
	got, err := b.Open(s)
	if err != nil || got != "gho_token" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if b.Seal("") != "" {
		t.Fatal("empty value sealed")
	}
	other, _ := New("a-secret-key-of-at-least-32-characters!", "signing-keys")
	if _, err := other.Open(s); err != ErrCorrupt {
		t.Fatalf("another purpose opened the value: %v", err)
	}
	otherKey, _ := New("another-secret-key-of-at-least-32-chars", "provider-tokens")
	if _, err := otherKey.Open(s); err != ErrCorrupt {
		t.Fatalf("another secret opened the value: %v", err)
	}
	for _, bad := range []string{"x", "v1:", "v1:!!!", "v1:" + strings.Repeat("A", 10), s[:len(s)-2]} {
		if _, err := b.Open(bad); err != ErrCorrupt {
			t.Errorf("Open(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}
