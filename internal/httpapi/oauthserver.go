package httpapi

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// The OAuth 2.1 / OpenID Connect protocol endpoints (reference §6B). They
// are plain net/http handlers because they speak the RFC wire formats
// (RFC 6749, 7009, 7662; redirects for the authorization endpoint), not the
// API's envelope.

const providerPrefix = "/api/v1/oauth/provider"

var errProviderDisabled = apperr.New(apperr.NotFound, apperr.CodeNotFound,
	"OAuth provider mode is not enabled. Set OAUTH_PROVIDER_ENABLED=true")

// providerOn wraps a protocol handler: 404 in the envelope when the
// authorization server is off (checked before anything else, as the
// reference does).
func (s *server) providerOn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.OAuth == nil || !s.Config.Provider.Enabled {
			writeEnvelope(w, s.toEnvelope(r.Context(), errProviderDisabled))
			return
		}
		h(w, r)
	}
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeOAuthError writes an RFC 6749 §5.2 error body.
func (s *server) writeOAuthError(w http.ResponseWriter, r *http.Request, err error) {
	var oe *oauth.Error
	if !errors.As(err, &oe) {
		oe = s.protocolError(r, err, w.Header())
	}
	if oe.Status == http.StatusUnauthorized && oe.Code == "invalid_client" {
		w.Header().Set("WWW-Authenticate", `Basic realm="gatehouse"`)
	}
	noStore(w)
	writeJSON(w, oe.Status, map[string]string{"error": oe.Code, "error_description": oe.Description})
}

// protocolError is the RFC 6749 error for an error of the service that is
// not one already: input the store refused (Invalid, BadRequest) is
// invalid_request; a rate limit (429) and a dependency that is down (503)
// are temporarily_unavailable with Retry-After (docs/OAUTH.md); anything
// else is a logged server_error.
func (s *server) protocolError(r *http.Request, err error, h http.Header) *oauth.Error {
	ae, ok := apperr.As(err)
	switch {
	case ok && (ae.Kind == apperr.Invalid || ae.Kind == apperr.BadRequest):
		return &oauth.Error{Code: "invalid_request", Description: ae.Message, Status: http.StatusBadRequest}
	case ok && (ae.Kind == apperr.RateLimited || ae.Kind == apperr.Unavailable):
		status, retry := http.StatusServiceUnavailable, 5
		if ae.Kind == apperr.RateLimited {
			status = http.StatusTooManyRequests
		}
		if ae.RetryAfter > 0 {
			retry = ae.RetryAfter
		}
		h.Set("Retry-After", strconv.Itoa(retry))
		return &oauth.Error{Code: "temporarily_unavailable", Description: ae.Message, Status: status}
	}
	s.logger.ErrorContext(r.Context(), "oauth endpoint failed", "err", err, "request_id", requestIDFrom(r.Context()))
	return &oauth.Error{Code: "server_error", Description: "The server could not complete the request", Status: http.StatusInternalServerError}
}

// readForm parses an application/x-www-form-urlencoded (or multipart) body
// and refuses repeated parameters (RFC 6749 §3.1).
func readForm(r *http.Request) (url.Values, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch mt {
	case "application/x-www-form-urlencoded":
		err = r.ParseForm()
	case "multipart/form-data":
		err = r.ParseMultipartForm(1 << 20)
	default:
		return nil, &oauth.Error{Code: "invalid_request", Description: "The request body must be application/x-www-form-urlencoded", Status: 400}
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &oauth.Error{Code: "invalid_request", Description: "The request body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, &oauth.Error{Code: "invalid_request", Description: "The request body is not a valid form", Status: 400}
	}
	form := r.PostForm
	if r.MultipartForm != nil {
		form = url.Values(r.MultipartForm.Value)
	}
	for k, vs := range form {
		if len(vs) > 1 && k != "resource" { // RFC 8707 lets resource repeat
			return nil, &oauth.Error{Code: "invalid_request", Description: "Parameter " + k + " is repeated", Status: 400}
		}
	}
	return form, nil
}

// clientCredentials reads client authentication from the form and the
// Basic header (RFC 6749 §2.3.1: both parts form-url-encoded).
func clientCredentials(r *http.Request, form url.Values) oauth.ClientCredentials {
	cr := oauth.ClientCredentials{ClientID: form.Get("client_id"), Secret: form.Get("client_secret")}
	id, secret, ok := r.BasicAuth()
	if !ok {
		return cr
	}
	if v, err := url.QueryUnescape(id); err == nil {
		id = v
	}
	if v, err := url.QueryUnescape(secret); err == nil {
		secret = v
	}
	cr.HasBasic = true
	if cr.ClientID != "" && cr.ClientID != id {
		cr.Conflict = true
		return cr
	}
	cr.ClientID, cr.Secret = id, secret
	return cr
}

// --- discovery -------------------------------------------------------------

func (s *server) metadata() map[string]any {
	iss := s.Config.Provider.Issuer
	m := map[string]any{
		"issuer":                                        iss,
		"authorization_endpoint":                        iss + providerPrefix + "/authorize",
		"token_endpoint":                                iss + providerPrefix + "/token",
		"revocation_endpoint":                           iss + providerPrefix + "/revoke",
		"introspection_endpoint":                        iss + providerPrefix + "/introspect",
		"userinfo_endpoint":                             iss + providerPrefix + "/userinfo",
		"jwks_uri":                                      iss + "/.well-known/jwks.json",
		"client_id_metadata_document_supported":         true,
		"scopes_supported":                              oauth.Scopes,
		"response_types_supported":                      []string{"code"},
		"response_modes_supported":                      []string{"query"},
		"grant_types_supported":                         []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":              []string{"S256"},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"subject_types_supported":                       []string{"public"},
		"id_token_signing_alg_values_supported":         []string{"RS256"},
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "email",
			"email_verified", "name", "given_name", "family_name", "locale", "updated_at"},
		"authorization_response_iss_parameter_supported": true,
		"prompt_values_supported":                        []string{"none", "login", "consent"},
	}
	// RFC 8414 §2: omitted when dynamic registration is off.
	if s.Config.Provider.Registration != "off" {
		m["registration_endpoint"] = iss + providerPrefix + "/register"
	}
	return m
}

// rootAuthorize serves the 2025-03-26 MCP default path /authorize by
// redirecting to the real authorization endpoint with the same query.
func (s *server) rootAuthorize(w http.ResponseWriter, r *http.Request) {
	target := providerPrefix + "/authorize"
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// issuerPath is the path of an issuer URL without its trailing slash, ""
// for an issuer at the origin's root.
func issuerPath(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

func (s *server) wellKnownMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.metadata())
}

func (s *server) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.Keys.JWKS(r.Context()))
}

// --- authorization endpoint ------------------------------------------------

// authorizingUser is who is at the authorization endpoint, with when they
// logged in (auth_time): the bearer token of an API client (the reference's
// frontend), or the browser session of the built-in pages.
func (s *server) authorizingUser(r *http.Request) (user.User, time.Time, bool) {
	if raw, ok := auth.BearerToken(r.Header.Get("Authorization")); ok {
		if u, at, err := s.bearerLogin(r, raw); err == nil {
			return u, at, true
		}
	}
	return s.browserUser(r)
}

// bearerLogin authenticates a first-party bearer token and returns its user
// and login time: the creation of the token's session, not the time of this
// request.
func (s *server) bearerLogin(r *http.Request, raw string) (user.User, time.Time, error) {
	u, actor, err := s.Auth.Authenticate(r.Context(), raw)
	if err != nil {
		return user.User{}, time.Time{}, err
	}
	at, err := s.Auth.LoginTime(r.Context(), actor)
	if err != nil {
		return user.User{}, time.Time{}, err
	}
	return u, at, nil
}

func (s *server) oauthAuthorize(w http.ResponseWriter, r *http.Request) {
	req := oauth.ParseAuthRequest(r.URL.Query())
	c, err := s.OAuth.CheckAuthRequest(r.Context(), req)
	if err != nil {
		var uid string // whose consent may let the error go back to the client
		if u, _, ok := s.authorizingUser(r); ok {
			uid = u.ID
		}
		s.authorizeFailed(w, r, req, uid, err)
		return
	}
	u, authTime, ok := s.authorizingUser(r)
	if !ok || req.Prompt == "login" {
		if req.Prompt == "none" {
			s.authorizeFailed(w, r, req, "", &oauth.AuthError{Redirect: true, Client: c.Client,
				Err: &oauth.Error{Code: "login_required", Description: "The user is not logged in", Status: http.StatusBadRequest}})
			return
		}
		http.Redirect(w, r, s.loginURL(c), http.StatusFound)
		return
	}
	need, err := s.OAuth.NeedsConsent(r.Context(), u.ID, c)
	if err != nil {
		s.authorizeFailed(w, r, req, u.ID, err)
		return
	}
	if need {
		if req.Prompt == "none" {
			s.authorizeFailed(w, r, req, u.ID, &oauth.AuthError{Redirect: true, Client: c.Client,
				Err: &oauth.Error{Code: "consent_required", Description: "The user has not consented", Status: http.StatusBadRequest}})
			return
		}
		http.Redirect(w, r, s.consentURL(c), http.StatusFound)
		return
	}
	to, err := s.OAuth.Approve(r.Context(), u.ID, authTime, c, c.Scopes)
	if err != nil {
		s.authorizeFailed(w, r, req, u.ID, err)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// mayRedirectError reports whether an authorization error of a verified
// client and redirect URI may be sent back to the client for userID (""
// when nobody is signed in): oauth.Service.MayRedirectErrors, failing
// closed (an error page) when that cannot be decided.
func (s *server) mayRedirectError(r *http.Request, ae *oauth.AuthError, userID string) bool {
	if !ae.Redirect {
		return false
	}
	ok, err := s.OAuth.MayRedirectErrors(r.Context(), userID, ae.Client)
	if err != nil {
		s.logger.ErrorContext(r.Context(), "deciding whether to redirect an authorization error failed", "err", err,
			"request_id", requestIDFrom(r.Context()))
		return false
	}
	return ok
}

// shownAuthError is an authorization error shown to the user instead of
// being redirected: 400 (whatever the error's own status, even for
// invalid_client), or 5xx for failures of the server.
func shownAuthError(ae *oauth.AuthError) *oauth.Error {
	e := *ae.Err
	if e.Status < 500 {
		e.Status = http.StatusBadRequest
	}
	return &e
}

// withheldFrom is the redirect URI of an error that could have gone back to
// the client but is shown instead, or "".
func withheldFrom(req oauth.AuthRequest, ae *oauth.AuthError) string {
	if ae.Redirect {
		return req.RedirectURI
	}
	return ""
}

// authorizeFailed sends an error back to the client when it may go to its
// redirect URI (mayRedirectError), and shows it to the user otherwise
// (never an open redirect). userID is the signed-in user, or "".
func (s *server) authorizeFailed(w http.ResponseWriter, r *http.Request, req oauth.AuthRequest, userID string, err error) {
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther // never 307 after a POST (RFC 9700 §4.12)
	}
	var ae *oauth.AuthError
	if errors.As(err, &ae) && s.mayRedirectError(r, ae, userID) {
		http.Redirect(w, r, s.OAuth.ErrorRedirect(req, ae.Err), status)
		return
	}
	var withheld string
	if ae != nil {
		withheld = withheldFrom(req, ae)
		ae = &oauth.AuthError{Err: shownAuthError(ae)}
	}
	if ae == nil {
		ue, ok := apperr.As(err)
		switch {
		case ok && ue.Kind == apperr.Unavailable:
			writeEnvelope(w, s.toEnvelope(r.Context(), err))
			return
		case ok && (ue.Kind == apperr.Invalid || ue.Kind == apperr.BadRequest):
			// Input the store refused: shown to the user, not redirected.
			ae = &oauth.AuthError{Err: &oauth.Error{Code: "invalid_request", Description: ue.Message, Status: http.StatusBadRequest}}
		default:
			s.logger.ErrorContext(r.Context(), "authorization endpoint failed", "err", err, "request_id", requestIDFrom(r.Context()))
			ae = &oauth.AuthError{Err: &oauth.Error{Code: "server_error", Description: "The server could not complete the request", Status: 500}}
		}
	}
	if wantsHTML(r) {
		s.renderError(w, r, ae.Err, withheld)
		return
	}
	writeEnvelope(w, newEnvelope(ae.Err.Status, codeForStatus(ae.Err.Status), ae.Err.Code+": "+ae.Err.Description, ""))
}

// wantsHTML reports a browser navigation (Accept prefers HTML).
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// loginURL is where an anonymous user at the authorization endpoint logs in,
// coming back to the same request afterwards (without prompt=login).
func (s *server) loginURL(c oauth.Checked) string {
	back := c.Req
	back.Prompt = ""
	authorize := providerPrefix + "/authorize?" + back.Values().Encode()
	if s.Config.Provider.UI == "frontend" {
		// The reference's frontend flow, with return_to encoded as one value (fix 27).
		consent := "/auth/consent?" + s.frontendConsentValues(c, true).Encode()
		return s.Config.FrontendURL + "/login?" + url.Values{"return_to": {consent}}.Encode()
	}
	return "/oauth/login?" + url.Values{"return_to": {authorize}}.Encode()
}

// consentURL is where a logged-in user without consent decides.
func (s *server) consentURL(c oauth.Checked) string {
	if s.Config.Provider.UI == "frontend" {
		return s.Config.FrontendURL + "/auth/consent?" + s.frontendConsentValues(c, false).Encode()
	}
	v := c.Req.Values()
	v.Set("scope", oauth.JoinScope(c.Scopes))
	return "/oauth/consent?" + v.Encode()
}

// frontendConsentValues are the parameters the reference's frontend consent
// page reads.
func (s *server) frontendConsentValues(c oauth.Checked, marker bool) url.Values {
	v := url.Values{"client_id": {c.Client.ClientID}, "redirect_uri": {c.Req.RedirectURI},
		"scope": {oauth.JoinScope(c.Scopes)}, "state": {c.Req.State}, "code_challenge": {c.Req.CodeChallenge},
		"code_challenge_method": {c.Req.CodeChallengeMethod}, "nonce": {c.Req.Nonce}}
	if marker {
		v.Set("oauth_authorize", "true")
	} else {
		v.Set("client_name", c.Client.Name)
	}
	for _, res := range c.Req.Resources {
		v.Add("resource", res)
	}
	return v
}

// oauthConsentAPI is the reference's consent submission: a form posted with
// the user's bearer token. It answers 303 to the client (RFC 9700 §4.12),
// or {"redirect_url"} to clients that accept only JSON.
func (s *server) oauthConsentAPI(w http.ResponseWriter, r *http.Request) {
	raw, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		s.writeAPIError(w, r, auth.ErrNotAuthenticated)
		return
	}
	u, authTime, err := s.bearerLogin(r, raw)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	form, err := readForm(r)
	if err != nil {
		s.writeAPIError(w, r, apperr.ValidationField("", err.Error()))
		return
	}
	approved, okBool := parseApproved(form.Get("approved"))
	if !okBool {
		s.writeAPIError(w, r, apperr.ValidationField("approved", "Input should be a valid boolean"))
		return
	}
	req := oauth.ParseAuthRequest(form)
	req.ResponseType = "code"
	c, err := s.OAuth.CheckAuthRequest(r.Context(), req)
	if err != nil {
		s.authorizeFailed(w, r, req, u.ID, err)
		return
	}
	// An empty scope is an absent one: every scope of the request, as at
	// the authorization endpoint (reference §6B.3 step 4).
	var chosen []string
	if strings.TrimSpace(form.Get("scope")) != "" {
		chosen = oauth.ParseScope(form.Get("scope"))
	}
	to, err := s.OAuth.Decide(r.Context(), u.ID, authTime, c, approved, chosen)
	if err != nil {
		s.authorizeFailed(w, r, req, u.ID, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") && !wantsHTML(r) {
		writeJSON(w, http.StatusOK, map[string]string{"redirect_url": to})
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

func parseApproved(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on":
		return true, true
	case "false", "0", "no", "off":
		return false, true
	}
	return false, false
}

// writeAPIError writes an envelope error from a plain handler.
func (s *server) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	writeEnvelope(w, s.toEnvelope(r.Context(), err))
}

// --- token, revocation, introspection, userinfo ----------------------------

func (s *server) oauthToken(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	resp, err := s.OAuth.Token(r.Context(), oauth.TokenRequest{
		GrantType: form.Get("grant_type"), Code: form.Get("code"), RedirectURI: form.Get("redirect_uri"),
		CodeVerifier: form.Get("code_verifier"), RefreshToken: form.Get("refresh_token"), Scope: form.Get("scope"),
		Resources: form["resource"], Client: clientCredentials(r, form), UserAgent: r.UserAgent(), IP: ClientIP(r.Context()),
	})
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	if grant, ok := providerGrant(form.Get("grant_type")); ok {
		s.Metrics.TokensIssued(metrics.Provider, grant)
	}
	body := map[string]any{"access_token": resp.AccessToken, "token_type": resp.TokenType, "expires_in": resp.ExpiresIn,
		"refresh_token": resp.RefreshToken, "scope": resp.Scope}
	if resp.IDToken != "" {
		body["id_token"] = resp.IDToken
	}
	noStore(w)
	writeJSON(w, http.StatusOK, body)
}

func (s *server) oauthRevoke(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	if err := s.OAuth.Revoke(r.Context(), clientCredentials(r, form), form.Get("token"), form.Get("token_type_hint")); err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) oauthIntrospect(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	out, err := s.OAuth.Introspect(r.Context(), clientCredentials(r, form), form.Get("token"), form.Get("token_type_hint"))
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, out)
}

func (s *server) oauthUserInfo(w http.ResponseWriter, r *http.Request) {
	raw, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok && r.Method == http.MethodPost {
		if form, err := readForm(r); err == nil && form.Get("access_token") != "" {
			raw, ok = form.Get("access_token"), true
		}
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "Bearer token required"})
		return
	}
	claims, err := s.OAuth.UserInfo(r.Context(), raw, s.apiResource())
	if err != nil {
		var oe *oauth.Error
		if errors.As(err, &oe) {
			w.Header().Set("WWW-Authenticate", `Bearer error="`+oe.Code+`", error_description="`+oe.Description+`"`)
			noStore(w)
			writeJSON(w, oe.Status, map[string]string{"error": oe.Code, "error_description": oe.Description})
			return
		}
		s.writeOAuthError(w, r, err)
		return
	}
	noStore(w)
	writeJSON(w, http.StatusOK, claims)
}
