package pat

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// expectFieldError checks that err is one 422 VAL_001 problem of field
// whose message contains fragment.
func expectFieldError(t *testing.T, err *apperr.Error, field, fragment string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s: %q", field, fragment)
	}
	if err.Kind != apperr.Invalid || err.Code != apperr.CodeValidation {
		t.Fatalf("kind %v code %s, want Invalid VAL_001", err.Kind, err.Code)
	}
	if len(err.Fields) != 1 || err.Fields[0].Field != field || !strings.Contains(err.Fields[0].Message, fragment) {
		t.Fatalf("fields %+v, want [{%s …%q…}]", err.Fields, field, fragment)
	}
}

func TestCheckName(t *testing.T) {
	for raw, want := range map[string]string{
		"ci":                                  "ci",
		"  deploy bot  ":                      "deploy bot",
		"Ünïcödé ✓ 🚀":                         "Ünïcödé ✓ 🚀",
		strings.Repeat("é", 100):              strings.Repeat("é", 100), // characters, not bytes
		" " + strings.Repeat("a", 100) + "\t": strings.Repeat("a", 100),
		"a & b 'quoted' \"double\"":           "a & b 'quoted' \"double\"",
	} {
		got, err := CheckName("name", raw)
		if err != nil || got != want {
			t.Errorf("CheckName(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
	for _, tc := range []struct{ raw, fragment string }{
		{"", "must not be empty"},
		{"   \t\n ", "must not be empty"},
		{strings.Repeat("a", 101), "at most 100 characters"},
		{strings.Repeat("x", 10_000), "at most 100 characters"},
		{"line\nbreak", "control characters"},
		{"nul\x00", "control characters"},
		{"bell\a", "control characters"},
		{"del\x7f", "control characters"},
		{"c1\u0085c1", "control characters"},
		{"<script>alert(1)</script>", "< or >"},
		{"a > b", "< or >"},
		{"bad \xff utf8", "valid UTF-8"},
	} {
		got, err := CheckName("name", tc.raw)
		if got != "" {
			t.Errorf("CheckName(%.20q) returned %q with its error", tc.raw, got)
		}
		expectFieldError(t, err, "name", tc.fragment)
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes("scopes", []string{"admin", "read:users", "write:organizations", "read:users"})
	if err != nil || !slices.Equal(got, []string{"read:users", "write:organizations", "admin"}) {
		t.Fatalf("ParseScopes = %v, %v; want canonical order without duplicates", got, err)
	}
	got, err = ParseScopes("scopes", Scopes)
	if err != nil || !slices.Equal(got, Scopes) {
		t.Fatalf("every scope: %v, %v", got, err)
	}
	for _, tc := range []struct {
		raw      []string
		fragment string
	}{
		{nil, "At least one scope"},
		{[]string{}, "At least one scope"},
		{[]string{"read:users", "delete:everything"}, `Unknown scope "delete:everything"`},
		{[]string{"READ:USERS"}, `Unknown scope "READ:USERS"`},
		{[]string{" read:users"}, `Unknown scope " read:users"`},
		{[]string{""}, `Unknown scope ""`},
		{[]string{"openid"}, `Unknown scope "openid"`},
		{[]string{strings.Repeat("z", 5000)}, `Unknown scope "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz…"`},
		{[]string{"<b>\x01"}, `Unknown scope "<b>\x01"`},
	} {
		got, err := ParseScopes("scopes", tc.raw)
		if got != nil {
			t.Errorf("ParseScopes(%q) returned %v with its error", tc.raw, got)
		}
		expectFieldError(t, err, "scopes", tc.fragment)
	}
}

func TestWellFormed(t *testing.T) {
	good := Prefix + token.RandomSecret()
	if !wellFormed(good) || !IsToken(good) {
		t.Fatalf("a token this package issues is refused: %q", good)
	}
	for _, bad := range []string{
		"", Prefix, Prefix + "short", good + "A", good[:len(good)-1],
		"gatehouse_PAT_" + good[len(Prefix):], "x" + good,
		Prefix + strings.Repeat("+", secretLength), Prefix + strings.Repeat("=", secretLength),
		Prefix + strings.Repeat("é", secretLength/2) + "a",
	} {
		if wellFormed(bad) {
			t.Errorf("wellFormed(%q) = true", bad)
		}
	}
	if IsToken("eyJhbGciOiJIUzI1NiJ9.e30.sig") {
		t.Error("a JWT is taken for a personal access token")
	}
}

func TestTokenLifetimeAndActor(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exp := t0.Add(time.Hour)
	revoked := t0
	for _, tc := range []struct {
		name          string
		tok           Token
		now           time.Time
		expired, live bool
	}{
		{"never expires", Token{}, t0.AddDate(50, 0, 0), false, true},
		{"before expiry", Token{ExpiresAt: &exp}, exp.Add(-time.Microsecond), false, true},
		{"at expiry", Token{ExpiresAt: &exp}, exp, true, false},
		{"after expiry", Token{ExpiresAt: &exp}, exp.Add(time.Hour), true, false},
		{"revoked", Token{RevokedAt: &revoked}, t0, false, false},
	} {
		if got := tc.tok.Expired(tc.now); got != tc.expired {
			t.Errorf("%s: Expired = %v", tc.name, got)
		}
		if got := tc.tok.Live(tc.now); got != tc.live {
			t.Errorf("%s: Live = %v", tc.name, got)
		}
	}

	withAdmin := Token{Scopes: []string{ScopeReadUsers, ScopeAdmin}}
	without := Token{Scopes: []string{ScopeReadUsers, ScopeWriteUsers}}
	super := user.User{ID: "s", IsSuperuser: true}
	plain := user.User{ID: "p"}
	for _, tc := range []struct {
		name  string
		tok   Token
		owner user.User
		want  user.Actor
	}{
		{"superuser with admin", withAdmin, super, user.Actor{UserID: "s", IsSuperuser: true}},
		{"superuser without admin", without, super, user.Actor{UserID: "s"}},
		{"demoted superuser with admin", withAdmin, plain, user.Actor{UserID: "p"}},
	} {
		if got := tc.tok.Actor(tc.owner); got != tc.want {
			t.Errorf("%s: Actor = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if without.Allows(ScopeReadOrganizations) || !without.Allows(ScopeWriteUsers) || withAdmin.Allows(ScopeWriteUsers) {
		t.Error("Allows grants more or less than the token's scopes")
	}
}
