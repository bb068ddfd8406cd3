package httpapi

import (
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/swaggest/swgui/v5emb"
)

// op describes an operation for the OpenAPI document.
func op(method, path, id, summary, tag string, status int, description string) huma.Operation {
	return huma.Operation{Method: method, Path: path, OperationID: id, Summary: summary,
		Tags: []string{tag}, DefaultStatus: status, Description: description}
}

// routes lists the whole HTTP surface in one place.
func (s *server) routes() {
	const (
		tAuth     = "Authentication"
		tUsers    = "Users"
		tSessions = "Sessions"
		tHealth   = "Health"
		ok        = http.StatusOK
	)
	// Root, health and documentation.
	rootOp := op("GET", "/", "root", "Welcome page", tHealth, ok, "A small HTML page linking to the documentation.")
	rootOp.Responses = map[string]*huma.Response{"200": {Description: "An HTML page",
		Content: map[string]*huma.MediaType{"text/html": {Schema: &huma.Schema{Type: huma.TypeString}}}}}
	register(s, endpoint{op: rootOp}, s.root)
	healthOp := op("GET", "/health", "health", "Health check (readiness)", tHealth, ok,
		"200 when the database answers, 503 (same body, status unhealthy) otherwise.")
	healthOp.Responses = map[string]*huma.Response{"503": {Description: "The database does not answer",
		Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Ref: "#/components/schemas/HealthBody"}}}}}
	register(s, endpoint{op: healthOp}, s.health)
	docs := v5emb.New(s.Config.ProjectName+" API", "/api/v1/openapi.json", "/docs/")
	s.router.Handle("/docs", docs)
	s.router.Handle("/docs/*", docs)
	s.router.Get("/redoc", http.RedirectHandler("/docs", http.StatusTemporaryRedirect).ServeHTTP)

	// Authentication (reference §5.2).
	register(s, endpoint{op: op("POST", "/api/v1/auth/register", "register", "Register a new account", tAuth, http.StatusCreated,
		"Creates an active, non-superuser account. Does not log in. A duplicate email gets the same 400 as any other failure."),
		limit: limit{5, true}}, s.register)
	register(s, endpoint{op: op("POST", "/api/v1/auth/login", "login", "Log in with email and password", tAuth, ok,
		"Opens a device session and returns an access token and a refresh token. "+
			"After repeated failures an account is throttled (429 with Retry-After)."),
		limit: limit{10, true}}, s.login)
	register(s, endpoint{op: op("POST", "/api/v1/auth/login/oauth", "loginForm", "Log in with the OAuth2 password form", tAuth, ok,
		"The OAuth2 password-grant form (username = email) used by the docs' Authorize dialog. Same behaviour as /login."),
		limit: limit{10, false}}, s.loginForm)
	register(s, endpoint{op: op("POST", "/api/v1/auth/refresh", "refresh", "Rotate a refresh token", tAuth, ok,
		"Returns a new access token and a new refresh token; the presented refresh token stops working."),
		limit: limit{30, false}}, s.refresh)
	register(s, endpoint{op: op("POST", "/api/v1/auth/logout", "logout", "Log out one session", tAuth, ok,
		"Revokes the session of the given refresh token. Unknown or invalid tokens are ignored."),
		gate: signedIn, limit: limit{10, false}}, s.logout)
	register(s, endpoint{op: op("POST", "/api/v1/auth/logout-all", "logoutAll", "Log out every session", tAuth, ok,
		"Revokes every active session of the caller, including the current one."),
		gate: signedIn, limit: limit{5, false}}, s.logoutAll)
	register(s, endpoint{op: op("POST", "/api/v1/auth/password-reset/request", "passwordResetRequest", "Request a password reset email", tAuth, ok,
		"Always answers the same, whether or not the email is registered. The emailed link is single-use and expires after an hour."),
		limit: limit{3, false}}, s.passwordResetRequest)
	register(s, endpoint{op: op("POST", "/api/v1/auth/password-reset/confirm", "passwordResetConfirm", "Set a new password with a reset token", tAuth, ok,
		"Consumes the token, sets the password and revokes every session of the account."),
		limit: limit{5, false}}, s.passwordResetConfirm)

	// Users (reference §5.3).
	register(s, endpoint{op: op("GET", "/api/v1/users", "listUsers", "List users", tUsers, ok,
		"Superusers only. Soft-deleted users are never listed."), gate: superuser}, s.listUsers)
	register(s, endpoint{op: op("GET", "/api/v1/users/me", "getMe", "The caller's profile", tUsers, ok, ""), gate: signedIn}, s.getMe)
	register(s, endpoint{op: op("PATCH", "/api/v1/users/me", "patchMe", "Update the caller's profile", tUsers, ok,
		"Partial update: absent keys are kept, explicit nulls clear a field. password, is_superuser and (for non-superusers) is_active are refused with 422."),
		gate: signedIn}, s.patchMe)
	register(s, endpoint{op: op("PATCH", "/api/v1/users/me/password", "changePassword", "Change the caller's password", tUsers, ok,
		"Needs the current password (403 AUTH_001 when wrong). Every other session of the caller is revoked; the current one stays."),
		gate: signedIn, limit: limit{5, false}}, s.changePassword)
	register(s, endpoint{op: op("GET", "/api/v1/users/{user_id}", "getUser", "Get a user", tUsers, ok,
		"Users may read themselves; superusers anyone."), gate: signedIn}, s.getUser)
	register(s, endpoint{op: op("PATCH", "/api/v1/users/{user_id}", "patchUser", "Update a user", tUsers, ok,
		"Users may update themselves; superusers anyone (and may set is_active, which revokes the user's sessions when false)."),
		gate: signedIn}, s.patchUser)
	register(s, endpoint{op: op("DELETE", "/api/v1/users/{user_id}", "deleteUser", "Delete a user", tUsers, ok,
		"Superusers only, never themselves. Soft delete: the account is deactivated, its sessions revoked, and its email can be registered again."),
		gate: superuser}, s.deleteUser)

	// Sessions (reference §5.4).
	register(s, endpoint{op: op("GET", "/api/v1/sessions/me", "listMySessions", "The caller's active sessions", tSessions, ok,
		"The calling session first (is_current true), then by last use."), gate: signedIn, limit: limit{30, false}}, s.listMySessions)
	register(s, endpoint{op: op("DELETE", "/api/v1/sessions/me/expired", "cleanupMySessions", "Delete the caller's expired sessions", tSessions, ok,
		"Deletes the caller's sessions that are both revoked and expired."), gate: signedIn, limit: limit{5, false}}, s.cleanupMySessions)
	register(s, endpoint{op: op("DELETE", "/api/v1/sessions/{session_id}", "revokeSession", "Revoke one of the caller's sessions", tSessions, ok,
		"Its access and refresh tokens stop working at once."), gate: signedIn, limit: limit{10, false}}, s.revokeSession)
}
