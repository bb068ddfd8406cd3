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
		"200 when the database answers, 503 (same body, status unhealthy) otherwise. With REDIS_URL, checks.redis "+
			"reports Redis too; Redis not answering makes the status degraded but keeps 200, because rate limits "+
			"then count in each instance's memory and every request is still served correctly.")
	healthOp.Responses = map[string]*huma.Response{"503": {Description: "The database does not answer",
		Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Ref: "#/components/schemas/HealthBody"}}}}}
	register(s, endpoint{op: healthOp}, s.health)
	register(s, endpoint{op: op("GET", "/health/live", "healthLive", "Liveness probe", tHealth, ok,
		"200 while the process serves HTTP; touches neither the database nor Redis, so an outage of either "+
			"never gets the process restarted.")}, s.healthLive)
	if s.Metrics != nil {
		// Prometheus text format; not an API operation (docs/METRICS.md).
		s.router.Get(metricsPath, s.serveMetrics())
	}
	docs := v5emb.New(s.Config.ProjectName+" API", "/api/v1/openapi.json", "/docs/")
	s.router.Handle("/docs", s.docsHandler(docs))
	s.router.Handle("/docs/*", s.docsHandler(docs))
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
		"Superusers only, never themselves. Soft delete: the account is deactivated, its sessions revoked, its memberships ended, and its email can be registered again. "+
			"The last active owner of an organization cannot be deleted (409 ORG_001, naming the organization)."),
		gate: superuser}, s.deleteUser)

	// Sessions (reference §5.4).
	register(s, endpoint{op: op("GET", "/api/v1/sessions/me", "listMySessions", "The caller's active sessions", tSessions, ok,
		"The calling session first (is_current true), then by last use."), gate: signedIn, limit: limit{30, false}}, s.listMySessions)
	register(s, endpoint{op: op("DELETE", "/api/v1/sessions/me/expired", "cleanupMySessions", "Delete the caller's expired sessions", tSessions, ok,
		"Deletes the caller's sessions that are both revoked and expired."), gate: signedIn, limit: limit{5, false}}, s.cleanupMySessions)
	register(s, endpoint{op: op("DELETE", "/api/v1/sessions/{session_id}", "revokeSession", "Revoke one of the caller's sessions", tSessions, ok,
		"Its access and refresh tokens stop working at once."), gate: signedIn, limit: limit{10, false}}, s.revokeSession)

	// Organizations, member-facing (reference §5.5 plus contract §4.1).
	const (
		tOrgs       = "Organizations"
		roleRules   = " Roles rank owner > admin > member > guest. Owners and admins manage members; admins cannot grant, change or remove the owner role. An organization keeps at least one active owner, one whose account is active (409 ORG_001). Members of an inactive organization have read access only. Superusers may do anything."
		nonMember   = " Non-members get 403 'Not a member of this organization', also for organizations that do not exist."
		orgIDPath   = "/api/v1/organizations/{organization_id}"
		memberPath  = orgIDPath + "/members/{user_id}"
		invitesPath = orgIDPath + "/invitations"
	)
	register(s, endpoint{op: op("GET", "/api/v1/organizations/me", "myOrganizations", "The caller's organizations", tOrgs, ok,
		"Organizations the caller is a member of (is_active=true, the default) or was removed from (false), with their active member counts."),
		gate: signedIn}, s.myOrganizations)
	register(s, endpoint{op: op("POST", "/api/v1/organizations", "createOrganization", "Create an organization", tOrgs, http.StatusCreated,
		"Any active user may create an organization and becomes its owner. Slugs: lowercase letters, digits and single hyphens, not at either end; unique (409 SYS_005)."+roleRules),
		gate: signedIn}, s.createOrganization)
	register(s, endpoint{op: op("POST", "/api/v1/organizations/invitations/accept", "acceptInvitation", "Accept an invitation", tOrgs, ok,
		"The logged-in user whose email the invitation was sent to joins with the invited role. Invitations are single use and expire."),
		gate: signedIn}, s.acceptInvitation)
	register(s, endpoint{op: op("GET", orgIDPath, "getOrganization", "Get an organization", tOrgs, ok,
		"Any active member, whatever their role."+nonMember), gate: signedIn}, s.getOrganization)
	register(s, endpoint{op: op("PUT", orgIDPath, "updateOrganization", "Update an organization", tOrgs, ok,
		"Owners and admins; partial update (absent keys kept, nulls clear). Only superusers can change an inactive organization (and so reactivate it). Duplicate slug: 409 SYS_005."+nonMember),
		gate: signedIn}, s.updateOrganization)
	register(s, endpoint{op: op("GET", orgIDPath+"/members", "listMembers", "List members", tOrgs, ok,
		"Any member lists the members; only owners and admins list removed members (is_active=false). Newest first."+nonMember),
		gate: signedIn}, s.listMembers)
	register(s, endpoint{op: op("POST", orgIDPath+"/members", "addMember", "Add a member", tOrgs, http.StatusCreated,
		"Owners and admins add an existing user by user_id or email with a role (default member); a removed member is re-added. Already a member: 409 USER_002."+roleRules),
		gate: signedIn, limit: limit{30, true}}, s.addMember)
	register(s, endpoint{op: op("PATCH", memberPath, "changeMemberRole", "Change a member's role", tOrgs, ok,
		"Owners and admins."+roleRules), gate: signedIn}, s.changeRole)
	register(s, endpoint{op: op("DELETE", memberPath, "removeMember", "Remove a member, or leave", tOrgs, ok,
		"Owners and admins remove members; any member may remove themself (leave)."+roleRules), gate: signedIn}, s.removeMember)
	register(s, endpoint{op: op("POST", invitesPath, "inviteMember", "Invite an email address", tOrgs, http.StatusCreated,
		"Owners and admins invite any email address (the answer does not reveal whether it has an account). The emailed link carries a single-use token, valid 7 days by default; only its hash is stored."+roleRules),
		gate: signedIn, limit: limit{30, true}}, s.invite)
	register(s, endpoint{op: op("GET", invitesPath, "listInvitations", "List invitations", tOrgs, ok,
		"Owners and admins; newest first, with their status (pending, accepted, revoked, expired)."), gate: signedIn}, s.listInvitations)
	register(s, endpoint{op: op("DELETE", invitesPath+"/{invitation_id}", "revokeInvitation", "Revoke an invitation", tOrgs, ok,
		"Owners and admins revoke a pending invitation; its token stops working."), gate: signedIn}, s.revokeInvitation)

	// Social login (reference §5.7, §6A).
	const tSocial = "Social login"
	register(s, endpoint{op: op("GET", "/api/v1/oauth/providers", "socialProviders", "Social login providers", tSocial, ok,
		"The enabled providers (Google, GitHub, then the OpenID Connect providers of OAUTH_OIDC_PROVIDERS). enabled is false when OAUTH_ENABLED is off or no provider is configured.")}, s.socialProviders)
	register(s, endpoint{op: op("GET", "/api/v1/oauth/authorize/{provider}", "socialAuthorize", "Start a social login", tSocial, ok,
		"Returns the provider's authorization URL and the state. With a valid bearer token the provider account is linked to the caller instead. "+
			"redirect_uri must start with FRONTEND_URL or be listed in OAUTH_ALLOWED_REDIRECT_URIS. The state is single use and expires after OAUTH_STATE_EXPIRE_MINUTES."),
		gate: maybeSignedIn, limit: limit{10, true}}, s.socialAuthorize)
	register(s, endpoint{op: op("POST", "/api/v1/oauth/callback/{provider}", "socialCallback", "Complete a social login", tSocial, ok,
		"Exchanges the code, verifies the identity (OpenID Connect: ID token signature, issuer, audience, expiry and nonce) and logs in: an existing link, "+
			"the account being linked, an account with the same verified email (auto-link), or a new account. Opens a session like a password login; "+
			"the refresh token works with /auth/refresh."),
		limit: limit{10, true}}, s.socialCallback)
	register(s, endpoint{op: op("GET", "/api/v1/oauth/accounts", "socialAccounts", "The caller's linked accounts", tSocial, ok,
		"Newest first. Provider tokens are never returned."), gate: signedIn}, s.socialAccounts)
	register(s, endpoint{op: op("DELETE", "/api/v1/oauth/accounts/{provider}", "socialUnlink", "Unlink a provider account", tSocial, ok,
		"Refused (400) when it is the caller's only way to log in: no password and no other linked provider."),
		gate: signedIn, limit: limit{5, true}}, s.socialUnlink)
	register(s, endpoint{op: op("POST", "/api/v1/oauth/link/{provider}", "socialLink", "Start linking a provider account", tSocial, ok,
		"Like /oauth/authorize/{provider} for the logged-in caller; refused when a link with that provider exists."),
		gate: signedIn, limit: limit{10, true}}, s.socialLink)

	// The OAuth 2.1 / OpenID Connect authorization server (reference §6B).
	// Protocol endpoints are plain handlers (RFC wire formats); they are
	// documented in the OpenAPI document by s.documentProtocol.
	on := s.providerOn
	s.router.Get("/.well-known/oauth-authorization-server", on(s.wellKnownMetadata))
	s.router.Get("/.well-known/openid-configuration", on(s.wellKnownMetadata))
	s.router.Get("/.well-known/jwks.json", on(s.jwks))
	if p := issuerPath(s.Config.Provider.Issuer); p != "" {
		// An issuer with a path (behind a proxy that strips it): the RFC 8414
		// §3.1 and OpenID Connect path-inserted locations, for a proxy that
		// forwards them.
		s.router.Get("/.well-known/oauth-authorization-server"+p, on(s.wellKnownMetadata))
		s.router.Get("/.well-known/openid-configuration"+p, on(s.wellKnownMetadata))
	}
	s.router.Get(providerPrefix+"/authorize", on(s.browserLimited("oauthAuthorize", limit{30, false}, s.oauthAuthorize)))
	s.router.Post(providerPrefix+"/authorize/consent", on(s.limited("oauthConsent", limit{30, false}, s.oauthConsentAPI)))
	s.router.Post(providerPrefix+"/token", on(s.protocolLimited("oauthToken", limit{60, false}, s.oauthToken)))
	s.router.Post(providerPrefix+"/revoke", on(s.protocolLimited("oauthRevoke", limit{30, false}, s.oauthRevoke)))
	s.router.Post(providerPrefix+"/introspect", on(s.protocolLimited("oauthIntrospect", limit{120, false}, s.oauthIntrospect)))
	s.router.Get(providerPrefix+"/userinfo", on(s.oauthUserInfo))
	s.router.Post(providerPrefix+"/userinfo", on(s.oauthUserInfo))
	s.router.Post(providerPrefix+"/register", on(s.protocolLimited("oauthRegister", limit{10, true}, s.oauthRegister)))
	// Default paths of 2025-03-26 MCP clients that find no metadata: the
	// same handlers (and the same rate-limit buckets) at the origin root.
	s.router.Get("/authorize", on(s.rootAuthorize))
	s.router.Post("/token", on(s.protocolLimited("oauthToken", limit{60, false}, s.oauthToken)))
	s.router.Post("/register", on(s.protocolLimited("oauthRegister", limit{10, true}, s.oauthRegister)))
	s.documentProtocol()

	// Built-in pages (contract §4.2): HTML for browsers, not API, so they
	// are not in the OpenAPI document (pages.go). Login, logout, consent
	// and the social-login pages belong to the authorization server (404
	// when it is off); the stylesheet and the password-reset page serve
	// every deployment without a frontend of its own.
	s.router.Get(pageCSSPath, s.pageCSS)
	s.router.Get(pageLoginPath, on(s.loginPage))
	s.router.Post(pageLoginPath, on(s.loginSubmit))
	s.router.Post(pageLogoutPath, on(s.logoutSubmit))
	s.router.Get(pageConsentPath, on(s.consentPage))
	s.router.Post(pageConsentPath, on(s.consentSubmit))
	s.router.Get(pageSocialPath+"{provider}", on(s.socialStart))
	s.router.Get(SocialCallbackPath+"{provider}", on(s.socialFinish))
	s.router.Get(pageResetPath, s.resetPage)
	s.router.Post(pageResetPath, s.resetSubmit)

	const tProvider = "OAuth provider"
	register(s, endpoint{op: op("POST", providerPrefix+"/clients", "registerClient", "Register a client", tProvider, ok,
		"Superusers. Form fields: client_name, redirect_uris (comma-separated; absolute, no fragment, https unless a loopback address), "+
			"client_type (public, the default, or confidential), scopes (space-separated; default openid profile email), client_description, "+
			"mcp_server_url. Confidential clients get a client_secret, shown once and stored as a SHA-256 digest."),
		gate: superuser, provider: true}, s.registerClient)
	register(s, endpoint{op: op("GET", providerPrefix+"/clients", "listClients", "List clients", tProvider, ok,
		"Superusers. Active clients, newest first."), gate: superuser, provider: true}, s.listClients)
	register(s, endpoint{op: op("DELETE", providerPrefix+"/clients/{client_id}", "deleteClient", "Delete a client", tProvider, http.StatusNoContent,
		"Superusers. Deletes the client with its codes, tokens and consents."), gate: superuser, provider: true}, s.deleteClient)
	register(s, endpoint{op: op("GET", providerPrefix+"/consents", "listConsents", "The caller's consents", tProvider, ok,
		"Applications the caller has allowed, with the scopes granted."), gate: signedIn, provider: true}, s.listConsents)
	register(s, endpoint{op: op("DELETE", providerPrefix+"/consents/{client_id}", "revokeConsent", "Revoke a consent", tProvider, http.StatusNoContent,
		"Revokes the caller's tokens for the client (they stop working at once), then the consent; 404 when there was no consent."),
		gate: signedIn, provider: true}, s.revokeConsent)

	// MCP (issue 6): the protected MCP server and the RFC 9728 metadata of
	// the resources this server protects (mcp.go). Like every provider route
	// they answer 404 while the authorization server is off. There is no
	// document at the root /.well-known/oauth-protected-resource (mcp.go
	// says why). MCP clients call /mcp often; 600 requests a minute per
	// client address.
	s.router.Get(metadataPath(s.mcpResource()), on(s.mcpResourceMetadata))
	s.router.Get(metadataPath(s.apiResource()), on(s.apiResourceMetadata))
	s.router.Handle(mcpPath, on(s.limited("mcp", limit{600, false}, s.newMCPHandler())))

	// Admin: organizations (reference §5.6).
	const (
		tAdmin        = "Admin"
		adminOrgPath  = "/api/v1/admin/organizations/{org_id}"
		superuserOnly = "Superusers only."
	)
	register(s, endpoint{op: op("GET", "/api/v1/admin/organizations", "adminListOrganizations", "List organizations", tAdmin, ok,
		superuserOnly+" Newest first; search is a case-insensitive substring of name, slug or description."), gate: admin}, s.adminListOrganizations)
	register(s, endpoint{op: op("POST", "/api/v1/admin/organizations", "adminCreateOrganization", "Create an organization", tAdmin, http.StatusCreated,
		superuserOnly+" The creating superuser is not made a member. Duplicate slug: 409 SYS_005."), gate: admin}, s.adminCreateOrganization)
	register(s, endpoint{op: op("GET", adminOrgPath, "adminGetOrganization", "Get an organization", tAdmin, ok, superuserOnly), gate: admin}, s.adminGetOrganization)
	register(s, endpoint{op: op("PUT", adminOrgPath, "adminUpdateOrganization", "Update an organization", tAdmin, ok,
		superuserOnly+" Partial update. Duplicate slug: 409 SYS_005."), gate: admin}, s.adminUpdateOrganization)
	register(s, endpoint{op: op("DELETE", adminOrgPath, "adminDeleteOrganization", "Delete an organization", tAdmin, ok,
		superuserOnly+" Deletes its memberships and invitations too."), gate: admin}, s.adminDeleteOrganization)
	register(s, endpoint{op: op("GET", adminOrgPath+"/members", "adminListMembers", "List an organization's members", tAdmin, ok,
		superuserOnly), gate: admin}, s.adminListMembers)
	register(s, endpoint{op: op("POST", adminOrgPath+"/members", "adminAddMember", "Add a member", tAdmin, ok,
		superuserOnly+" A removed member is re-added with the new role; an active member: 409 USER_002."), gate: admin}, s.adminAddMember)
	register(s, endpoint{op: op("DELETE", adminOrgPath+"/members/{user_id}", "adminRemoveMember", "Remove a member", tAdmin, ok,
		superuserOnly+" The last active owner cannot be removed (409 ORG_001)."), gate: admin}, s.adminRemoveMember)
	s.adminUserRoutes()
	s.patRoutes() // personal access tokens (pats.go)
}

// adminUserRoutes lists the admin API for users and sessions and the
// dashboard statistics (reference §5.6 and §9). Every operation is for
// superusers only (403 "Superuser privileges required" otherwise) and has
// no rate limit.
func (s *server) adminUserRoutes() {
	const (
		tAdmin    = "Admin"
		ok        = http.StatusOK
		users     = "/api/v1/admin/users"
		userPath  = users + "/{user_id}"
		superOnly = "Superusers only. "
		deleted   = " Soft-deleted and unknown users answer 404 'User <id> not found'; an id that is not a UUID, 422."
	)
	register(s, endpoint{op: op("GET", "/api/v1/admin/stats", "adminStats", "Dashboard statistics", tAdmin, ok,
		superOnly+"user_growth: 30 UTC days, oldest first, the last one today, with the users created before the end of "+
			"each day and how many of them are active now; registration_activity: users created on each of the last 14 days; "+
			"organization_distribution: up to 6 organizations with the most active memberships, descending (ties by name), "+
			"organizations without members absent; user_status: active and inactive users. Dates read like 'Jan 02'. "+
			"Soft-deleted users are never counted."),
		gate: admin}, s.adminStats)

	register(s, endpoint{op: op("GET", users, "adminListUsers", "List users", tAdmin, ok,
		superOnly+"Soft-deleted users are never listed. Default order: newest first (created_at descending, then id); "+
			"sort_by accepts only the listed fields (422 otherwise). search matches a case-insensitive substring of the email, "+
			"first name or last name, with %, _, quotes and backslashes taken literally."),
		gate: admin}, s.adminListUsers)
	register(s, endpoint{op: op("POST", users, "adminCreateUser", "Create a user", tAdmin, http.StatusCreated,
		superOnly+"Field rules as at registration (email, password rule, names, phone). is_superuser (default false) and "+
			"is_active (default true) are honoured. An email in use by a live account: 409 USER_002 "+
			"'User with email <email> already exists'."),
		gate: admin}, s.adminCreateUser)
	register(s, endpoint{op: op("POST", users+"/bulk-action", "adminBulkUserAction", "Activate, deactivate or delete many users", tAdmin, ok,
		superOnly+"Applies the action to 1 to 100 user ids in one transaction (all or nothing). Duplicate ids count once. "+
			"Unknown and soft-deleted users are skipped, and so is the caller for deactivate and delete, and for delete the last "+
			"active owner of an organization (owners deleted together are deleted until one is left). Deactivate and delete "+
			"revoke the affected users' sessions; delete is the soft delete of DELETE /admin/users/{user_id}. Users already in "+
			"the requested state count as affected. success is true when nothing was skipped; failed_ids lists the skipped "+
			"ids in request order. An unknown action, no ids, more than 100 ids or an invalid UUID (field user_ids.<i>): 422."),
		gate: admin}, s.adminBulkAction)
	register(s, endpoint{op: op("GET", userPath, "adminGetUser", "Get a user", tAdmin, ok, superOnly+deleted[1:]),
		gate: admin}, s.adminGetUser)
	register(s, endpoint{op: op("PUT", userPath, "adminUpdateUser", "Update a user", tAdmin, ok,
		superOnly+"Partial update: absent keys are kept, explicit nulls clear a field. password may be set (password rule); "+
			"it revokes every session and pending password-reset token of the user (but the caller's own session when "+
			"superusers set their own password). is_active false revokes the user's sessions, true reactivates; the caller "+
			"cannot deactivate their own account (403 AUTH_007). is_superuser with any non-null value: 422. "+
			"All changes are written in one transaction."+deleted),
		gate: admin}, s.adminUpdateUser)
	register(s, endpoint{op: op("DELETE", userPath, "adminDeleteUser", "Delete a user", tAdmin, ok,
		superOnly+"Soft delete: the account is deactivated, its sessions revoked, its memberships ended, and its email can be registered again. "+
			"The caller cannot delete their own account (403 AUTH_007); the last active owner of an organization cannot be "+
			"deleted (409 ORG_001, naming the organization: make another member an owner or delete the organization first)."+deleted),
		gate: admin}, s.adminDeleteUser)
	register(s, endpoint{op: op("POST", userPath+"/activate", "adminActivateUser", "Activate a user", tAdmin, ok,
		superOnly+"Activating an active user succeeds again."+deleted),
		gate: admin}, s.adminActivateUser)
	register(s, endpoint{op: op("POST", userPath+"/deactivate", "adminDeactivateUser", "Deactivate a user", tAdmin, ok,
		superOnly+"Revokes every session of the user: their tokens stop working at once. The caller cannot deactivate "+
			"their own account (403 AUTH_007)."+deleted),
		gate: admin}, s.adminDeactivateUser)

	register(s, endpoint{op: op("GET", "/api/v1/admin/sessions", "adminListSessions", "List every user's sessions", tAdmin, ok,
		superOnly+"is_active omitted or true lists active sessions, false the revoked ones. Most recently used first. "+
			"Sessions of soft-deleted users are not listed."),
		gate: admin}, s.adminListSessions)
	register(s, endpoint{op: op("DELETE", "/api/v1/admin/sessions/{session_id}", "adminRevokeSession", "Revoke anyone's session", tAdmin, ok,
		superOnly+"The session's access and refresh tokens stop working at once. Revoking a revoked session succeeds again. "+
			"Unknown sessions and sessions of soft-deleted users: 404 'Session <id> not found'; an id that is not a UUID, 422."),
		gate: admin}, s.adminRevokeSession)
}

// documentProtocol adds the protocol endpoints, served by plain handlers, to
// the OpenAPI document.
func (s *server) documentProtocol() {
	form := func(fields ...string) *huma.RequestBody {
		props := map[string]*huma.Schema{}
		for _, f := range fields {
			props[f] = &huma.Schema{Type: huma.TypeString}
		}
		return &huma.RequestBody{Required: true, Content: map[string]*huma.MediaType{
			"application/x-www-form-urlencoded": {Schema: &huma.Schema{Type: huma.TypeObject, Properties: props}}}}
	}
	jsonResp := func(desc string) map[string]*huma.Response {
		return map[string]*huma.Response{
			"200": {Description: desc, Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: huma.TypeObject}}}},
			"400": {Description: "RFC 6749 error: {error, error_description}"},
			"401": {Description: "invalid_client (WWW-Authenticate: Basic)"},
		}
	}
	redirect := map[string]*huma.Response{"302": {Description: "Redirect to the client (code or error, with state and iss), to the login page or to the consent page"},
		"400": {Description: "Invalid client_id or redirect_uri: an error page, never a redirect"}}
	const t = "OAuth provider"
	ops := []*huma.Operation{
		{Method: "GET", Path: "/.well-known/oauth-authorization-server", OperationID: "oauthMetadata", Summary: "Authorization server metadata (RFC 8414)", Tags: []string{t}, Responses: jsonResp("Metadata")},
		{Method: "GET", Path: "/.well-known/openid-configuration", OperationID: "openidConfiguration", Summary: "OpenID Connect discovery", Tags: []string{t}, Responses: jsonResp("Metadata")},
		{Method: "GET", Path: "/.well-known/jwks.json", OperationID: "jwks", Summary: "Public signing keys (JWKS)", Tags: []string{t}, Responses: jsonResp("JWK set")},
		{Method: "GET", Path: providerPrefix + "/authorize", OperationID: "oauthAuthorize", Summary: "Authorization endpoint",
			Description: "Query: response_type=code, client_id, redirect_uri, scope, state, code_challenge, code_challenge_method=S256, nonce, resource, prompt. PKCE S256 is required for public clients.", Tags: []string{t}, Responses: redirect},
		{Method: "POST", Path: providerPrefix + "/authorize/consent", OperationID: "oauthConsent", Summary: "Submit consent (bearer user)",
			Description: "Form: approved=true|false plus the authorization parameters. Answers 303 to the client; with Accept: application/json, {\"redirect_url\"}.",
			Tags:        []string{t}, RequestBody: form("approved", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method", "nonce", "resource"),
			Responses: map[string]*huma.Response{"303": {Description: "Redirect to the client"}}},
		{Method: "POST", Path: providerPrefix + "/token", OperationID: "oauthToken", Summary: "Token endpoint (authorization_code, refresh_token)",
			Description: "Client authentication (Basic or form) comes first. Codes are single use; a replayed code revokes its tokens. Refresh tokens rotate; a reused one revokes its family.",
			Tags:        []string{t}, RequestBody: form("grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "resource", "client_id", "client_secret"), Responses: jsonResp("Tokens (Cache-Control: no-store)")},
		{Method: "POST", Path: providerPrefix + "/revoke", OperationID: "oauthRevoke", Summary: "Token revocation (RFC 7009)",
			Description: "Client authentication required; revokes the whole grant of the token.", Tags: []string{t}, RequestBody: form("token", "token_type_hint", "client_id", "client_secret"), Responses: jsonResp(`{"status": "ok"}`)},
		{Method: "POST", Path: providerPrefix + "/introspect", OperationID: "oauthIntrospect", Summary: "Token introspection (RFC 7662)",
			Description: "Confidential clients only.", Tags: []string{t}, RequestBody: form("token", "token_type_hint", "client_id", "client_secret"), Responses: jsonResp("Introspection")},
		{Method: "GET", Path: providerPrefix + "/userinfo", OperationID: "oauthUserInfo", Summary: "OpenID Connect userinfo", Tags: []string{t}, Responses: jsonResp("Claims")},
		{Method: "POST", Path: providerPrefix + "/userinfo", OperationID: "oauthUserInfoPost", Summary: "OpenID Connect userinfo (POST)", Tags: []string{t}, Responses: jsonResp("Claims")},
		{Method: "POST", Path: providerPrefix + "/register", OperationID: "oauthRegister", Summary: "Dynamic client registration (RFC 7591)",
			Description: "JSON client metadata: redirect_uris, token_endpoint_auth_method (none|client_secret_basic|client_secret_post), grant_types, response_types, client_name, scope, application_type (web|native). Unknown members are ignored. OAUTH_REGISTRATION=open|token|off; with token, send the initial access token as a bearer token.",
			Tags:        []string{t}, Responses: map[string]*huma.Response{
				"201": {Description: "Client information (client_id, client_secret for confidential clients)", Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: huma.TypeObject}}}},
				"400": {Description: "invalid_client_metadata or invalid_redirect_uri"},
				"401": {Description: "invalid_token: the initial access token is missing or wrong"},
			}},
		{Method: "GET", Path: prmPrefix + "/mcp", OperationID: "mcpResourceMetadata", Summary: "Protected-resource metadata of /mcp (RFC 9728)", Tags: []string{t}, Responses: jsonResp("Metadata")},
		{Method: "GET", Path: prmPrefix + "/api/v1", OperationID: "apiResourceMetadata", Summary: "Protected-resource metadata of the REST API (RFC 9728)", Tags: []string{t}, Responses: jsonResp("Metadata")},
		{Method: "POST", Path: mcpPath, OperationID: "mcp", Summary: "MCP server (streamable HTTP, JSON-RPC)",
			Description: "Model Context Protocol endpoint (docs/MCP.md). Needs an access token of this server whose audience is {OAUTH_ISSUER}/mcp; each tool needs a scope. 401 and 403 carry WWW-Authenticate with resource_metadata and scope, and a JSON-RPC error body.",
			Tags:        []string{t}, Responses: map[string]*huma.Response{
				"200": {Description: "JSON-RPC response", Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: huma.TypeObject}}}},
				"401": {Description: "No valid token for /mcp (WWW-Authenticate: Bearer resource_metadata=…, scope=…)"},
				"403": {Description: "insufficient_scope: the tool needs a scope the token lacks"},
			}},
		{Method: "GET", Path: "/authorize", OperationID: "oauthAuthorizeRoot", Summary: "Authorization endpoint at the root (2025-03-26 MCP default path)",
			Description: "Redirects (302) to the authorization endpoint with the same query.", Tags: []string{t},
			Responses: map[string]*huma.Response{"302": {Description: "Redirect to /api/v1/oauth/provider/authorize"}}},
		{Method: "POST", Path: "/token", OperationID: "oauthTokenRoot", Summary: "Token endpoint at the root (2025-03-26 MCP default path)", Tags: []string{t},
			RequestBody: form("grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "resource", "client_id", "client_secret"), Responses: jsonResp("Tokens")},
		{Method: "POST", Path: "/register", OperationID: "oauthRegisterRoot", Summary: "Dynamic client registration at the root (2025-03-26 MCP default path)", Tags: []string{t},
			Responses: map[string]*huma.Response{"201": {Description: "Client information", Content: map[string]*huma.MediaType{"application/json": {Schema: &huma.Schema{Type: huma.TypeObject}}}}}},
	}
	for _, o := range ops {
		s.api.OpenAPI().AddOperation(o)
	}
}
