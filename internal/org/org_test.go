package org

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

// expectFieldError checks that err is one 422 VAL_001 problem of field with msg.
func expectFieldError(t *testing.T, err *apperr.Error, field, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s: %q", field, msg)
	}
	if err.Kind != apperr.Invalid || err.Code != apperr.CodeValidation {
		t.Fatalf("kind %v code %s, want Invalid VAL_001", err.Kind, err.Code)
	}
	if len(err.Fields) != 1 || err.Fields[0].Field != field || err.Fields[0].Message != msg {
		t.Fatalf("fields %+v, want [{%s %q}]", err.Fields, field, msg)
	}
}

func TestParseRole(t *testing.T) {
	for _, want := range []Role{RoleOwner, RoleAdmin, RoleMember, RoleGuest} {
		got, err := ParseRole("role", string(want))
		if err != nil || got != want {
			t.Errorf("ParseRole(%q) = %q, %v", want, got, err)
		}
	}
	if len(Roles) != 4 || Roles[0] != RoleOwner || Roles[3] != RoleGuest {
		t.Errorf("Roles %v, want owner, admin, member, guest (highest first)", Roles)
	}
	for _, bad := range []string{"", "Owner", "ADMIN", " member", "guest ", "superadmin", "owner\x00", "memb", "1"} {
		got, err := ParseRole("new_role", bad)
		if got != "" {
			t.Errorf("ParseRole(%q) returned role %q", bad, got)
		}
		expectFieldError(t, err, "new_role", "Input should be 'owner', 'admin', 'member' or 'guest'")
	}
}

func TestCheckSlug(t *testing.T) {
	const (
		chars     = "Value error, Slug must contain only lowercase letters, numbers, and hyphens"
		ends      = "Value error, Slug cannot start or end with a hyphen"
		double    = "Value error, Slug cannot contain consecutive hyphens"
		tooShort  = "String should have at least 1 character"   // Pydantic min_length=1
		tooLong   = "String should have at most 255 characters" // Pydantic max_length=255
		maxLength = 255
	)
	valid := []string{"a", "acme", "acme-corp", "a1-b2-c3", "123", strings.Repeat("a", maxLength), strings.Repeat("ab-", 84) + "abc"}
	for _, s := range valid {
		if err := CheckSlug("slug", s); err != nil {
			t.Errorf("CheckSlug(%.20q) = %v, want valid", s, err)
		}
	}
	cases := []struct{ slug, msg string }{
		{"acme corp", chars},
		{"Acme", chars},
		{"ACME-CORP", chars},
		{"acme_corp", chars},
		{"acme.corp", chars},
		{"émile", chars},
		{"acme\x00", chars},
		{"acme\n", chars},
		{"-acme", ends},
		{"acme-", ends},
		{"-", ends},
		{"a--b", double},
		{"acme---corp", double},
		{"", tooShort},
		{strings.Repeat("a", maxLength+1), tooLong},
		{strings.Repeat("é", maxLength+1), tooLong},
	}
	for _, c := range cases {
		t.Run(c.msg+"/"+c.slug[:min(len(c.slug), 12)], func(t *testing.T) {
			expectFieldError(t, CheckSlug("slug", c.slug), "slug", c.msg)
		})
	}
}

func TestCheckName(t *testing.T) {
	long255 := strings.Repeat("É", 255) // 255 runes, 510 bytes: the limit counts characters
	ok := []struct{ in, want string }{
		{"Acme", "Acme"},
		{"  Acme Corp  ", "Acme Corp"},
		{"\tÉmile & Co\n", "Émile & Co"},
		{long255, long255},
		{" " + long255 + " ", long255},
	}
	for _, c := range ok {
		got, err := CheckName("name", c.in)
		if err != nil || got != c.want {
			t.Errorf("CheckName(%.20q) = %.20q, %v; want %.20q", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "Value error, Organization name cannot be empty"},
		{"   ", "Value error, Organization name cannot be empty"},
		{"\t\n", "Value error, Organization name cannot be empty"},
		{long255 + "x", "String should have at most 255 characters"},
		{"Acme\x00Corp", "must not contain control characters"},
		{"Acme\x1bCorp", "must not contain control characters"},
		{"Acme\x7fCorp", "must not contain control characters"},
		{"Acme\nCorp", "must not contain control characters"},
	}
	for _, c := range bad {
		got, err := CheckName("name", c.in)
		if got != "" {
			t.Errorf("CheckName(%.20q) returned %q with an error", c.in, got)
		}
		expectFieldError(t, err, "name", c.msg)
	}
}

func TestInvitationStatus(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	exp := t0.Add(7 * 24 * time.Hour)
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	cases := []struct {
		name string
		inv  Invitation
		now  time.Time
		want string
	}{
		{"fresh", Invitation{ExpiresAt: exp}, t0, "pending"},
		{"one microsecond before expiry", Invitation{ExpiresAt: exp}, exp.Add(-time.Microsecond), "pending"},
		{"at expiry", Invitation{ExpiresAt: exp}, exp, "expired"},
		{"after expiry", Invitation{ExpiresAt: exp}, exp.Add(time.Hour), "expired"},
		{"accepted", Invitation{ExpiresAt: exp, AcceptedAt: at(time.Hour)}, t0.Add(2 * time.Hour), "accepted"},
		{"accepted stays accepted after expiry", Invitation{ExpiresAt: exp, AcceptedAt: at(time.Hour)}, exp.Add(time.Hour), "accepted"},
		{"revoked", Invitation{ExpiresAt: exp, RevokedAt: at(time.Hour)}, t0.Add(2 * time.Hour), "revoked"},
		{"revoked stays revoked after expiry", Invitation{ExpiresAt: exp, RevokedAt: at(time.Hour)}, exp.Add(time.Hour), "revoked"},
		{"same instant in another zone", Invitation{ExpiresAt: exp}, exp.In(time.FixedZone("X", 3600)), "expired"},
	}
	for _, c := range cases {
		if got := c.inv.Status(c.now); got != c.want {
			t.Errorf("%s: Status = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestIsObjectAndNUL(t *testing.T) {
	for _, raw := range []string{`{}`, `{"a":1}`, `{"nested":{"b":[1,2,"x"]}}`, ` {"a":null} `} {
		if !isObject([]byte(raw)) {
			t.Errorf("isObject(%s) = false", raw)
		}
	}
	for _, raw := range []string{`null`, `[]`, `[{"a":1}]`, `"x"`, `5`, `true`, `{`, `{"a":"\u0000"}`, "{\"a\":\"\x00\"}", `{"\u0000":1}`} {
		if isObject([]byte(raw)) {
			t.Errorf("isObject(%q) = true", raw)
		}
	}
	if !containsNUL("a\x00b") || !containsNUL(`a\u0000b`) || containsNUL("plain") {
		t.Error("containsNUL misses a raw or escaped NUL, or flags plain text")
	}
}
