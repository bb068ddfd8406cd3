// Package oauth is the OAuth 2.1 / OpenID Connect authorization server
// (reference §6B with the fixes of §12 and the MCP requirements): clients,
// authorization codes with PKCE, refresh-token families with reuse
// detection, consents, RFC 9068 access tokens and OpenID Connect ID tokens
// signed with the keys of package keys, revocation and introspection.
//
// Errors of the protocol endpoints are *Error values carrying the RFC 6749
// error code; the HTTP edge renders them in the RFC wire formats.
package oauth

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Scopes the server knows (reference §6B.1).
var Scopes = []string{"openid", "profile", "email", "read:users", "write:users", "read:organizations", "write:organizations", "admin"}

// Client types.
const (
	Public       = "public"
	Confidential = "confidential"
)

// How a client came to exist.
const (
	RegisteredByAdmin    = "admin"
	RegisteredDynamic    = "dynamic"  // RFC 7591
	RegisteredByMetadata = "metadata" // client ID metadata document
)

// Client is a registered application.
type Client struct {
	ID                      string // row id
	ClientID                string
	SecretHash              string // "" for public clients
	Name                    string
	Description             *string
	Type                    string
	RedirectURIs            []string
	AllowedScopes           []string
	AccessTokenTTL          time.Duration
	RefreshTokenTTL         time.Duration
	IsActive                bool
	OwnerUserID             *string
	MCPServerURL            *string
	RegistrationType        string
	ApplicationType         string // web | native
	TokenEndpointAuthMethod string // client_secret_basic | client_secret_post | none
	MetadataExpiresAt       *time.Time
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// Code is an authorization code (only its hash is stored).
type Code struct {
	ID                  string
	Hash                string
	ClientID            string
	UserID              string
	RedirectURI         string
	Scope               string
	CodeChallenge       string
	CodeChallengeMethod string
	Nonce               string
	Resource            string
	AuthTime            time.Time
	ExpiresAt           time.Time
	UsedAt              *time.Time
	CreatedAt           time.Time
}

// RefreshToken is one token of a refresh-token family: every rotation adds
// a row to the family and marks the previous one rotated; presenting a
// rotated token again revokes the whole family.
type RefreshToken struct {
	ID         string
	Hash       string
	FamilyID   string
	CodeID     *string // the authorization code the family started from
	ClientID   string
	UserID     string
	Scope      string
	Resource   string
	AuthTime   time.Time
	ExpiresAt  time.Time
	RotatedAt  *time.Time
	RevokedAt  *time.Time
	DeviceInfo *string
	IPAddress  *string
	CreatedAt  time.Time
}

// Consent is a user's standing permission for a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
	// Client details, filled by listings.
	ClientName        string
	ClientDescription *string
}

// Error is an RFC 6749 error.
type Error struct {
	Code        string // invalid_request, invalid_client, invalid_grant, …
	Description string
	Status      int
	Err         error // cause, for the logs
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }
func (e *Error) Unwrap() error { return e.Err }

func oerr(code, description string) *Error {
	status := http.StatusBadRequest
	switch code {
	case "invalid_client", "invalid_token":
		status = http.StatusUnauthorized
	case "insufficient_scope":
		status = http.StatusForbidden
	case "server_error":
		status = http.StatusInternalServerError
	case "temporarily_unavailable":
		status = http.StatusServiceUnavailable
	}
	return &Error{Code: code, Description: description, Status: status}
}

// wellFormed reports whether a protocol parameter can be a value at all:
// valid UTF-8 without control characters. RFC 6749 Appendix A allows only
// printable ASCII in client_id, state, scope, code and refresh_token; this
// weaker rule is what keeps text the database cannot store (NUL, invalid
// UTF-8) away from it.
func wellFormed(s string) bool {
	return utf8.ValidString(s) && !hasControl(s)
}

// ParseScope splits a space-separated scope into sorted, unique values.
func ParseScope(s string) []string {
	f := strings.Fields(s)
	sort.Strings(f)
	return slices.Compact(f)
}

// JoinScope is the inverse of ParseScope.
func JoinScope(s []string) string { return strings.Join(s, " ") }

// intersect keeps the requested scopes the client may have, sorted.
func intersect(requested, allowed []string) []string {
	var out []string
	for _, s := range requested {
		if slices.Contains(allowed, s) {
			out = append(out, s)
		}
	}
	return ParseScope(JoinScope(out))
}

// covers reports whether granted includes every scope of want.
func covers(granted, want []string) bool {
	for _, s := range want {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}
