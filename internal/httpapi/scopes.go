package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Scoped REST access (contract §4.4): an access token issued by Gatehouse's
// own authorization server, for the REST API as its audience
// (resource={OAUTH_ISSUER}/api/v1), may call the /api/v1 operations that
// routeScopes gives a scope, when the token was granted that scope. Every
// other operation refuses such tokens (403): credentials, sign-in state and
// consents are never delegated to third-party applications.
// docs/SCOPES.md is this table in prose; a test keeps the two equal.
// Personal access tokens (pats.go) are held to the same table.
//
// The "admin" scope is the superuser's: it is what routes for superusers
// require, it lets the service treat the caller as a superuser, and it does
// nothing for a user who is not one.
var routeScopes = map[string]string{
	// Signing in and out: first-party only.
	"logout":    "",
	"logoutAll": "",

	"listUsers":      "admin",
	"getMe":          "read:users",
	"patchMe":        "write:users",
	"changePassword": "",
	"getUser":        "read:users",
	"patchUser":      "write:users",
	"deleteUser":     "admin",

	"listMySessions":    "read:users",
	"cleanupMySessions": "write:users",
	"revokeSession":     "write:users",

	// Personal access tokens are managed with a first-party sign-in only
	// (pats.go): a token that could mint or hide others would outlive its
	// own revocation.
	"createPersonalAccessToken":      "",
	"listPersonalAccessTokens":       "",
	"revokePersonalAccessToken":      "",
	"adminListPersonalAccessTokens":  "",
	"adminRevokePersonalAccessToken": "",

	"myOrganizations":    "read:organizations",
	"getOrganization":    "read:organizations",
	"listMembers":        "read:organizations",
	"listInvitations":    "read:organizations",
	"createOrganization": "write:organizations",
	"updateOrganization": "write:organizations",
	"addMember":          "write:organizations",
	"changeMemberRole":   "write:organizations",
	"removeMember":       "write:organizations",
	"inviteMember":       "write:organizations",
	"revokeInvitation":   "write:organizations",
	"acceptInvitation":   "write:organizations",

	"socialAccounts": "read:users",
	"socialUnlink":   "",
	"socialLink":     "",

	"registerClient": "admin",
	"listClients":    "admin",
	"deleteClient":   "admin",
	"listConsents":   "read:users",
	"revokeConsent":  "",

	"adminListOrganizations":  "admin",
	"adminCreateOrganization": "admin",
	"adminGetOrganization":    "admin",
	"adminUpdateOrganization": "admin",
	"adminDeleteOrganization": "admin",
	"adminListMembers":        "admin",
	"adminAddMember":          "admin",
	"adminRemoveMember":       "admin",
	"adminStats":              "admin",
	"adminListUsers":          "admin",
	"adminCreateUser":         "admin",
	"adminBulkUserAction":     "admin",
	"adminGetUser":            "admin",
	"adminUpdateUser":         "admin",
	"adminDeleteUser":         "admin",
	"adminActivateUser":       "admin",
	"adminDeactivateUser":     "admin",
	"adminListSessions":       "admin",
	"adminRevokeSession":      "admin",
}

var (
	errNotForProviderTokens = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms,
		"This endpoint does not accept OAuth access tokens issued to applications; sign in to Gatehouse directly")
	errWrongAudience = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired,
		"The access token was not issued for this API")
)

// isProviderToken tells the authorization server's access tokens (JWT typ
// at+jwt, signed with the managed keys) from first-party ones by the JWT
// header alone; the chosen verifier then checks everything.
func isProviderToken(raw string) bool {
	head, _, ok := strings.Cut(raw, ".")
	if !ok || len(head) > 512 || head == token.HeaderHS256 {
		return false // the header of every first-party token: the common case, without decoding
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if json.Unmarshal(b, &h) != nil {
		return false
	}
	return strings.EqualFold(h.Typ, "at+jwt") || strings.EqualFold(h.Typ, "application/at+jwt")
}

// scopeError is a refusal for a missing scope: 403 in the envelope with the
// RFC 6750 challenge that tells the client which scopes to ask for.
type scopeError struct {
	challenge string
	err       error
}

func (e *scopeError) Error() string { return e.err.Error() }
func (e *scopeError) Unwrap() error { return e.err }

// providerPrincipal authenticates an authorization-server access token for
// an operation that needs scope: audience the REST API, grant live, user
// active, scope granted.
func (s *server) providerPrincipal(ctx context.Context, raw, scope string) (principal, *scopeError, error) {
	claims, err := s.OAuth.VerifyAccessToken(ctx, raw)
	if errors.Is(err, oauth.ErrBadToken) || errors.Is(err, oauth.ErrTokenInactive) {
		return principal{}, nil, auth.ErrInvalidToken
	}
	if err != nil {
		return principal{}, nil, err
	}
	resource := s.apiResource()
	if !slices.ContainsFunc(claims.Audience, func(a string) bool { return oauth.CanonicalResource(a) == resource }) {
		return principal{}, nil, errWrongAudience
	}
	if scope == "" {
		return principal{}, nil, errNotForProviderTokens
	}
	granted := oauth.ParseScope(claims.Scope)
	if !slices.Contains(granted, scope) {
		want := oauth.JoinScope(append(slices.Clone(granted), scope))
		return principal{}, &scopeError{
			challenge: `Bearer error="insufficient_scope", scope=` + quote(want) + ", resource_metadata=" + quote(metadataURL(resource)),
			err: apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms,
				"The access token lacks the "+scope+" scope this endpoint needs"),
		}, nil
	}
	actor := user.Actor{UserID: claims.Subject}
	u, err := s.Users.Get(ctx, actor, claims.Subject)
	if errors.Is(err, user.ErrNotFound) {
		return principal{}, nil, auth.ErrInvalidToken
	}
	if err != nil {
		return principal{}, nil, err
	}
	if !u.IsActive {
		return principal{}, nil, auth.ErrInactiveUser
	}
	// Superuser powers only travel with the admin scope.
	actor.IsSuperuser = u.IsSuperuser && slices.Contains(granted, "admin")
	return principal{User: u, Actor: actor}, nil, nil
}

// apiChallenge is the WWW-Authenticate value of a 401 from /api/v1 while the
// authorization server is on: the error code when a token was presented,
// where the API's resource metadata is (RFC 9728 §5.1), so OAuth clients can
// find how to get a token, and the scope the operation needs (RFC 6750 §3;
// none for operations that accept no authorization-server token).
func (s *server) apiChallenge(code, scope string) string {
	params := []string{"resource_metadata=" + quote(metadataURL(s.apiResource()))}
	if code != "" {
		params = append([]string{"error=" + quote(code)}, params...)
	}
	if scope != "" {
		params = append(params, "scope="+quote(scope))
	}
	return "Bearer " + strings.Join(params, ", ")
}
