// Package pat is the personal-access-token domain: long-lived bearer
// secrets that users create for scripts and CI, each with a name, a set of
// API scopes and an optional expiry. The Service creates, lists and revokes
// them (every method takes the acting user), authenticates them for the
// HTTP edge, and writes their last use in the background.
//
// A token is "gatehouse_pat_" followed by 256 random bits (base64url), shown
// once; only its SHA-256 is stored. The scopes are those of the REST API's
// scope table (docs/SCOPES.md): the HTTP edge decides which scope an
// operation needs, this package decides what a token grants.
package pat

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Prefix starts every personal access token, so that secret scanners (and
// people) recognise a leaked one.
const Prefix = "gatehouse_pat_"

// Limits of the domain.
const (
	// secretLength is the length of the random part: 32 bytes, base64url
	// without padding.
	secretLength = 43
	// displayLength is how much of a token is kept in clear for listings:
	// the prefix and the first 8 characters of the random part.
	displayLength = len(Prefix) + 8
	// MaxNameLength is the longest name, in characters, after trimming.
	MaxNameLength = 100
	// MaxLive is how many live (neither revoked nor expired) tokens a user
	// may hold at once.
	MaxLive = 100
	// UsageInterval is how often, at most, a token's last use is written.
	UsageInterval = time.Minute
)

// The scopes a token may carry: the REST API's (docs/SCOPES.md). ScopeAdmin
// is for superusers only.
const (
	ScopeReadUsers          = "read:users"
	ScopeWriteUsers         = "write:users"
	ScopeReadOrganizations  = "read:organizations"
	ScopeWriteOrganizations = "write:organizations"
	ScopeAdmin              = "admin"
)

// Scopes lists every scope in its canonical order.
var Scopes = []string{ScopeReadUsers, ScopeWriteUsers, ScopeReadOrganizations, ScopeWriteOrganizations, ScopeAdmin}

// Token is a personal access token. Hash is the hex SHA-256 of the secret;
// the secret itself is never stored.
type Token struct {
	ID         string
	UserID     string
	Name       string
	Hash       string
	Prefix     string   // the first characters of the secret, for display
	Scopes     []string // canonical order, no duplicates
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	CreatedAt  time.Time
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool {
	return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)
}

// Live reports whether the token works at now (not revoked, not expired);
// its owner must be active too.
func (t Token) Live(now time.Time) bool { return t.RevokedAt == nil && !t.Expired(now) }

// Allows reports whether the token carries scope. Nothing implies anything:
// write:users does not grant read:users, admin grants no other scope.
func (t Token) Allows(scope string) bool { return slices.Contains(t.Scopes, scope) }

// Actor is the caller a request authenticated by t acts as: its owner, a
// superuser only while the owner is one and only with the admin scope. It
// has no SessionID: token management refuses it (ErrFirstPartyOnly).
func (t Token) Actor(owner user.User) user.Actor {
	return user.Actor{UserID: owner.ID, IsSuperuser: owner.IsSuperuser && t.Allows(ScopeAdmin)}
}

// Owned is a token with its owner's email, for the superusers' listing.
type Owned struct {
	Token
	UserEmail string
}

// ListQuery selects a page of every user's tokens (superusers).
type ListQuery struct {
	Offset, Limit int
	UserID        string // "" for every user
	Live          bool   // true: live tokens; false: revoked or expired ones
	Now           time.Time
}

// IsToken reports whether raw looks like a personal access token (by its
// prefix only): such bearer tokens are checked by Authenticate and by
// nothing else.
func IsToken(raw string) bool { return strings.HasPrefix(raw, Prefix) }

// wellFormed reports whether raw has the shape of a token this package
// issues, so that garbage never reaches the database.
func wellFormed(raw string) bool {
	rest, ok := strings.CutPrefix(raw, Prefix)
	if !ok || len(rest) != secretLength {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Errors of the domain. Authentication failures are 401 with the API's
// AUTH_006; the HTTP edge adds the WWW-Authenticate challenge.
var (
	ErrNotFound = apperr.New(apperr.NotFound, apperr.CodeNotFound, "Personal access token not found")
	ErrTooMany  = apperr.New(apperr.Conflict, apperr.CodeTooManyTokens,
		"You already have 100 active personal access tokens, the most allowed: revoke one before creating another")
	ErrAdminScope = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms,
		"Only superusers can create personal access tokens with the admin scope")
	ErrFirstPartyOnly = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms,
		"Personal access tokens can only be managed when signed in to Gatehouse directly, not with a personal access token or an application's token")
	ErrNotPermitted = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Superuser privileges required")

	ErrInvalid       = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Invalid personal access token")
	ErrRevoked       = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "This personal access token has been revoked")
	ErrExpired       = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "This personal access token has expired")
	ErrOwnerInactive = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "The account that owns this personal access token is inactive")
)

// valuePrefix is how the API words the messages of its own field rules
// (docs/DECISIONS.md, "HTTP").
const valuePrefix = "Value error, "

// CheckName validates a token's name and returns it trimmed: 1 to
// MaxNameLength characters after trimming, no control characters, no markup
// (< or >), so a name is safe to show in any page or terminal.
func CheckName(field, raw string) (string, *apperr.Error) {
	name := strings.TrimSpace(raw)
	bad := func(msg string) (string, *apperr.Error) { return "", apperr.ValidationField(field, valuePrefix+msg) }
	switch n := utf8.RuneCountInString(name); {
	case !utf8.ValidString(name):
		return bad("Name must be valid UTF-8 text")
	case n == 0:
		return bad("Name must not be empty")
	case n > MaxNameLength:
		return bad("Name must be at most 100 characters long")
	case strings.ContainsFunc(name, unicode.IsControl):
		return bad("Name must not contain control characters")
	case strings.ContainsAny(name, "<>"):
		return bad("Name must not contain < or >")
	}
	return name, nil
}

// ParseScopes validates a list of scope names and returns it in canonical
// order without duplicates. Whether the caller may have admin is the
// Service's decision.
func ParseScopes(field string, raw []string) ([]string, *apperr.Error) {
	if len(raw) == 0 {
		return nil, apperr.ValidationField(field, valuePrefix+"At least one scope is required: "+strings.Join(Scopes, ", "))
	}
	for _, s := range raw {
		if !slices.Contains(Scopes, s) {
			return nil, apperr.ValidationField(field, valuePrefix+"Unknown scope "+quote(s)+"; the scopes are "+strings.Join(Scopes, ", "))
		}
	}
	out := make([]string, 0, len(raw))
	for _, s := range Scopes {
		if slices.Contains(raw, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// quote shows a user-supplied value in a message, shortened and with
// control characters escaped.
func quote(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return strconv.Quote(s)
}
