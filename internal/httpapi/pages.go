package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// The built-in browser pages of the authorization server (contract §4.2):
// login (password and the enabled social providers), consent, logout, the
// password-reset page and the error page of the authorization endpoint.
// They are server-rendered with html/template (every value escaped), work
// without JavaScript, load nothing but one stylesheet of their own, are
// framed by nobody, never cached, and every form carries a CSRF token.
//
// Security choices:
//
//   - The browser session is a cookie holding a random 256-bit secret; the
//     session row (user_sessions, kind 'browser') keeps only its SHA-256.
//     HttpOnly, SameSite=Lax, Path=/; with an https OAUTH_ISSUER also Secure
//     and named with the __Host- prefix (no Domain attribute, so a sibling
//     subdomain can neither read nor plant it).
//   - CSRF: a per-browser random cookie, and in every form an HMAC-SHA256
//     over that cookie and a binding, keyed by a key derived from
//     SECRET_KEY. Forms that act on a session (consent, logout) bind the
//     browser session id, so a token is useless in another session; the
//     anonymous forms (login, password reset) bind nothing and are then a
//     signed double-submit cookie. The HMAC, rather than a plain
//     double-submit comparison, means that someone able to plant cookies
//     for the host (over plain http, without the __Host- prefix) still
//     cannot pair a cookie of their choice with a valid token for the
//     victim's session. Tokens are compared in constant time, and a POST
//     whose Origin header names another host is refused as well.
//     SameSite=Lax on every cookie is a third layer.
//   - return_to is accepted only as a relative path to the authorization
//     endpoint ("/api/v1/oauth/provider/authorize?…") or "/"; anything else
//     is dropped and the user sees a plain "You are signed in" page, so the
//     pages are never an open redirector. The social-login callback takes it
//     from its own HMAC-signed, short-lived cookie (bound to the provider
//     and the state), never from its query, and validates it again.

// SocialCallbackPath is where providers send the browser back after a
// social login started on the login page: {OAUTH_ISSUER}{path}{provider}.
const SocialCallbackPath = "/oauth/social/callback/"

const (
	pageLoginPath   = "/oauth/login"
	pageLogoutPath  = "/oauth/logout"
	pageConsentPath = "/oauth/consent"
	pageResetPath   = "/password-reset/confirm"
	pageCSSPath     = "/oauth/static/pages.css"
	pageSocialPath  = "/oauth/social/"

	// authorizeReturnPrefix is the only return_to (besides "/") the pages
	// redirect to.
	authorizeReturnPrefix = providerPrefix + "/authorize?"
	maxReturnTo           = 8192

	cookieSession = "gatehouse_session"
	cookieCSRF    = "gatehouse_csrf"
	cookieSocial  = "gatehouse_social"
	csrfField     = "csrf_token"
)

//go:embed web/pages.html web/pages.css
var webFiles embed.FS

var (
	pageTemplates = template.Must(template.ParseFS(webFiles, "web/pages.html"))
	pagesCSS      = mustRead("web/pages.css")
)

func mustRead(name string) []byte {
	b, err := webFiles.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return b
}

// --- rendering -------------------------------------------------------------

// page is what every template needs.
type page struct {
	Title   string
	Project string
}

func (s *server) page(title string) page { return page{Title: title, Project: s.Config.ProjectName} }

// pageCSP is the Content-Security-Policy of every page, whatever CSP_MODE
// says (strict included: the stylesheet is a file of our own). formTargets
// lists the origins forms may post to, or end up at through redirects
// (Chromium applies form-action to the redirects that follow a form
// submission, and the consent form's answer is a 303 to the client); nil
// leaves form-action out for forms whose redirects cannot be known when
// the page is drawn (the login form may end at the client's redirect URI
// when consent was given before).
func pageCSP(formTargets []string) string {
	csp := "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
	if formTargets != nil {
		csp += "; form-action 'self'"
		for _, t := range formTargets {
			csp += " " + t
		}
	}
	return csp
}

// pageHeaders are the headers of every page response, redirects included.
func pageHeaders(w http.ResponseWriter, csp string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// Same-origin requests keep their Referer (and Origin); the client, the
	// social provider and anyone else get none: the pages' URLs carry state,
	// reset tokens and authorization parameters (RFC 9700 §4.2.4).
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", csp)
}

// render executes a template and writes it with the page headers.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any, csp string) {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		s.logger.ErrorContext(r.Context(), "render page", "page", name, "err", err, "request_id", requestIDFrom(r.Context()))
		pageHeaders(w, pageCSP([]string{}))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("The page could not be shown."))
		return
	}
	pageHeaders(w, csp)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// pageRedirect answers a redirect from a page (303 after a POST, RFC 9700
// §4.12; 302 after a GET).
func pageRedirect(w http.ResponseWriter, r *http.Request, to string) {
	pageHeaders(w, pageCSP([]string{}))
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, to, status)
}

type messagePage struct {
	page
	Heading    string
	Code       string
	Error      string
	Lines      []string
	SignedInAs string
	CSRF       string
	Link       string
	LinkText   string
}

func (s *server) renderMessage(w http.ResponseWriter, r *http.Request, status int, m messagePage) {
	if m.Title == "" {
		m.page = s.page(m.Heading)
	}
	s.render(w, r, status, "message", m, pageCSP([]string{}))
}

// renderError shows an error of the authorization endpoint to the user
// (never a redirect: the client or its redirect URI were not trusted, or
// the client may not receive errors before the user allowed it, in which
// case withheldFrom is the redirect URI the error was not sent to).
func (s *server) renderError(w http.ResponseWriter, r *http.Request, e *oauth.Error, withheldFrom string) {
	var lines []string
	if u, err := url.Parse(withheldFrom); withheldFrom != "" && err == nil {
		lines = append(lines, "This error was not sent back to the application at "+u.Host+
			": it was not registered by an administrator, and you have not authorized it before.")
	}
	lines = append(lines, "You can close this page. If an application sent you here, go back to it and try again.")
	s.renderMessage(w, r, e.Status, messagePage{Heading: "Authorization error", Code: e.Code, Error: e.Description, Lines: lines})
}

// renderFailure shows a service error (apperr) on a page, and logs
// unexpected ones once.
func (s *server) renderFailure(w http.ResponseWriter, r *http.Request, heading string, err error) {
	ae, ok := apperr.As(err)
	if !ok || statusOf(ae.Kind) >= 500 {
		if !ok || ae.Kind != apperr.Unavailable {
			s.logger.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err, "request_id", requestIDFrom(r.Context()))
		}
		status, msg := http.StatusInternalServerError, "Something went wrong on our side. Please try again later."
		if ok && ae.Kind == apperr.Unavailable {
			status, msg = http.StatusServiceUnavailable, "The service is busy or unavailable. Please try again in a moment."
			w.Header().Set("Retry-After", strconv.Itoa(max(1, ae.RetryAfter)))
		}
		s.renderMessage(w, r, status, messagePage{Heading: heading, Error: msg})
		return
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	s.renderMessage(w, r, statusOf(ae.Kind), messagePage{Heading: heading, Error: ae.Message})
}

func (s *server) pageCSS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/css; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(pagesCSS)
}

// --- cookies, keys, CSRF ------------------------------------------------------

// secureCookies reports an https issuer: cookies are then Secure and named
// with the __Host- prefix.
func (s *server) secureCookies() bool {
	return strings.HasPrefix(s.Config.Provider.Issuer, "https://")
}

func (s *server) cookieName(base string) string {
	if s.secureCookies() {
		return "__Host-" + base
	}
	return base
}

// setCookie sets one of the pages' cookies: ttl > 0 persists it that long,
// 0 makes it a browser-session cookie, < 0 deletes it.
func (s *server) setCookie(w http.ResponseWriter, base, value string, ttl time.Duration) {
	c := &http.Cookie{Name: s.cookieName(base), Value: value, Path: "/", HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode}
	switch {
	case ttl > 0:
		c.MaxAge = int(ttl / time.Second)
		c.Expires = s.Now().Add(ttl).UTC()
	case ttl < 0:
		c.Value, c.MaxAge, c.Expires = "", -1, time.Unix(1, 0).UTC()
	}
	http.SetCookie(w, c)
}

func (s *server) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(s.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

// mac is an HMAC-SHA256 under the pages' key of a purpose and parts, each
// length-prefixed so that no two different inputs share an encoding.
func (s *server) mac(purpose string, parts ...string) []byte {
	m := hmac.New(sha256.New, s.PagesKey)
	for _, p := range append([]string{purpose}, parts...) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// randomCookieValue reports a value shaped like token.RandomSecret.
func randomCookieValue(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 32
}

// csrfToken returns the CSRF token for the forms of this response, bound to
// binding (the browser session id, or "" for anonymous forms). A browser
// without a CSRF cookie gets one.
func (s *server) csrfToken(w http.ResponseWriter, r *http.Request, binding string) string {
	c := s.cookie(r, cookieCSRF)
	if !randomCookieValue(c) {
		c = token.RandomSecret()
		s.setCookie(w, cookieCSRF, c, 0)
		// Later reads in this request see the new cookie.
		r.AddCookie(&http.Cookie{Name: s.cookieName(cookieCSRF), Value: c})
	}
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", c, binding))
}

// csrfValid checks the form's token against the browser's CSRF cookie and
// binding, in constant time, and refuses requests whose Origin names
// another host.
func (s *server) csrfValid(r *http.Request, form url.Values, binding string) bool {
	c := s.cookie(r, cookieCSRF)
	if !randomCookieValue(c) || !s.sameOrigin(r) {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(form.Get(csrfField))
	if err != nil {
		return false
	}
	return hmac.Equal(got, s.mac("csrf", c, binding))
}

// sameOrigin accepts a request without Origin (older browsers, "null"
// origins of privacy modes: the token decides), or one whose Origin host is
// the request's host or the issuer's.
func (s *server) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	iss, err := url.Parse(s.Config.Provider.Issuer)
	return err == nil && strings.EqualFold(u.Host, iss.Host)
}

// csrfFailed answers a form whose token is missing or wrong: 403, nothing
// done.
func (s *server) csrfFailed(w http.ResponseWriter, r *http.Request) {
	s.renderMessage(w, r, http.StatusForbidden, messagePage{Heading: "Form expired",
		Error: "This form has expired or did not come from this site. Nothing was changed.",
		Lines: []string{"Go back, reload the page and try again. Cookies must be enabled for this site."}})
}

// pageForm reads a posted form (no repeated fields); a bad body gets a 400
// page and false.
func (s *server) pageForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	form, err := readForm(r)
	if err != nil {
		status, msg := http.StatusBadRequest, "The form could not be read."
		var oe *oauth.Error
		if errors.As(err, &oe) {
			status, msg = oe.Status, oe.Description
		}
		s.renderMessage(w, r, status, messagePage{Heading: "Bad request", Error: msg})
		return nil, false
	}
	return form, true
}

// pageLimit counts a page request against an endpoint's rate limit. The
// pages share the budgets of their API counterparts (the login form that of
// POST /auth/login, and so on), so the two doors do not double the limit.
func (s *server) pageLimit(w http.ResponseWriter, r *http.Request, name string, l limit) bool {
	ctx := r.Context()
	if _, ok := ctx.Value(keyHeaderSetter).(func(k, v string)); !ok {
		ctx = context.WithValue(ctx, keyHeaderSetter, func(k, v string) { w.Header().Set(k, v) })
	}
	if _, err := s.checkLimit(ctx, name, l); err != nil {
		s.renderFailure(w, r, "Too many requests", err)
		return false
	}
	return true
}

// safeReturnTo returns raw when it is a same-origin relative path to the
// authorization endpoint, or "/", and "" otherwise (never an open
// redirect: no scheme, no host, no "//" or "/\", no control characters).
func safeReturnTo(raw string) string {
	if raw == "/" {
		return raw
	}
	if len(raw) > maxReturnTo || !strings.HasPrefix(raw, authorizeReturnPrefix) {
		return ""
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '#' {
			return ""
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		u.Path != providerPrefix+"/authorize" || u.Fragment != "" {
		return ""
	}
	return raw
}

// --- the browser session ----------------------------------------------------

// browserSession returns the user and session of the browser's session
// cookie; false when there is none or it is no longer valid.
func (s *server) browserSession(r *http.Request) (user.User, auth.Session, bool) {
	secret := s.cookie(r, cookieSession)
	if secret == "" {
		return user.User{}, auth.Session{}, false
	}
	u, sess, err := s.Auth.BrowserUser(r.Context(), secret)
	if err != nil {
		if !errors.Is(err, auth.ErrNoBrowserSession) {
			s.logger.ErrorContext(r.Context(), "browser session lookup failed", "err", err, "request_id", requestIDFrom(r.Context()))
		}
		return user.User{}, auth.Session{}, false
	}
	return u, sess, true
}

// browserUser returns the user of the built-in pages' browser session and
// the time they logged in (auth_time).
func (s *server) browserUser(r *http.Request) (user.User, time.Time, bool) {
	u, sess, ok := s.browserSession(r)
	return u, sess.CreatedAt, ok
}

func pageDevice(r *http.Request, fallback string) auth.Device {
	return auth.Device{UserAgent: r.UserAgent(), IP: ClientIP(r.Context()), Fallback: fallback}
}

// startBrowserSession sets the cookie of a new browser session and revokes
// the one this browser had before, if any.
func (s *server) startBrowserSession(w http.ResponseWriter, r *http.Request, bl auth.BrowserLogin) {
	if old := s.cookie(r, cookieSession); old != "" {
		if err := s.Auth.LogoutBrowser(r.Context(), old); err != nil {
			s.logger.WarnContext(r.Context(), "revoking the previous browser session failed", "err", err, "request_id", requestIDFrom(r.Context()))
		}
	}
	s.setCookie(w, cookieSession, bl.Secret, bl.Session.ExpiresAt.Sub(s.Now()))
}

// signedIn answers a successful login: to return_to, or a plain page.
func (s *server) signedIn(w http.ResponseWriter, r *http.Request, bl auth.BrowserLogin, returnTo string) {
	if ret := safeReturnTo(returnTo); ret != "" {
		pageRedirect(w, r, ret)
		return
	}
	s.renderMessage(w, r, http.StatusOK, messagePage{Heading: "You are signed in", SignedInAs: bl.User.Email,
		CSRF: s.csrfToken(w, r, bl.Session.ID), Lines: []string{"You can close this page."}})
}

func loginURLFor(returnTo string) string {
	if ret := safeReturnTo(returnTo); ret != "" {
		return pageLoginPath + "?" + url.Values{"return_to": {ret}}.Encode()
	}
	return pageLoginPath
}

// --- login and logout --------------------------------------------------------

type providerLink struct{ Name, URL string }

type loginPage struct {
	page
	CSRF       string
	Return     string
	Email      string
	Error      string
	SignedInAs string
	Providers  []providerLink
}

func (s *server) renderLogin(w http.ResponseWriter, r *http.Request, status int, returnTo, email, msg string) {
	p := loginPage{page: s.page("Sign in"), CSRF: s.csrfToken(w, r, ""), Return: safeReturnTo(returnTo), Email: email, Error: msg}
	if u, _, ok := s.browserSession(r); ok {
		p.SignedInAs = u.Email
	}
	if s.Social.Enabled() {
		for _, pr := range s.Social.Providers() {
			link := pageSocialPath + url.PathEscape(pr.Name())
			if p.Return != "" {
				link += "?" + url.Values{"return_to": {p.Return}}.Encode()
			}
			p.Providers = append(p.Providers, providerLink{Name: pr.DisplayName(), URL: link})
		}
	}
	s.render(w, r, status, "login", p, pageCSP(nil))
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, r.URL.Query().Get("return_to"), "", "")
}

// loginFailedText is the one answer to a wrong password, an unknown email
// and an inactive account on the login page.
const loginFailedText = "Invalid email or password."

func (s *server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	if !s.csrfValid(r, form, "") {
		s.csrfFailed(w, r)
		return
	}
	if !s.pageLimit(w, r, "login", limit{10, true}) {
		return
	}
	ret, email, pw := form.Get("return_to"), form.Get("email"), form.Get("password")
	if len(email) > user.MaxEmailLength || len(pw) > 4096 {
		s.renderLogin(w, r, http.StatusBadRequest, ret, "", loginFailedText)
		return
	}
	bl, err := s.Auth.LoginBrowser(r.Context(), email, pw, pageDevice(r, "Browser"))
	s.countLogin(metrics.LoginBrowser, "login", err)
	switch {
	case errors.Is(err, auth.ErrInvalidCredentials), errors.Is(err, auth.ErrAccountInactive):
		s.renderLogin(w, r, http.StatusBadRequest, ret, email, loginFailedText)
		return
	case errors.Is(err, auth.ErrTooManyAttempts):
		ae, _ := apperr.As(err)
		w.Header().Set("Retry-After", strconv.Itoa(max(1, ae.RetryAfter)))
		s.renderLogin(w, r, http.StatusTooManyRequests, ret, email, ae.Message)
		return
	case err != nil:
		s.renderFailure(w, r, "Sign in", err)
		return
	}
	s.startBrowserSession(w, r, bl)
	s.signedIn(w, r, bl, ret)
}

func (s *server) logoutSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	_, sess, signedIn := s.browserSession(r)
	if signedIn && !s.csrfValid(r, form, sess.ID) {
		s.csrfFailed(w, r)
		return
	}
	if signedIn {
		if err := s.Auth.LogoutBrowser(r.Context(), s.cookie(r, cookieSession)); err != nil {
			s.renderFailure(w, r, "Sign out", err)
			return
		}
	}
	s.setCookie(w, cookieSession, "", -1)
	pageRedirect(w, r, loginURLFor(form.Get("return_to")))
}

// --- consent -----------------------------------------------------------------

// scopeDescriptions explain each scope on the consent page.
var scopeDescriptions = map[string]string{
	"openid":              "Confirm who you are (your account identifier).",
	"profile":             "See your name and language.",
	"email":               "See your email address.",
	"read:users":          "Read user accounts you are allowed to see.",
	"write:users":         "Change user accounts on your behalf.",
	"read:organizations":  "See your organizations and their members.",
	"write:organizations": "Manage your organizations on your behalf.",
	"admin":               "Act with your administrator privileges, if you have any.",
}

type scopeLine struct{ Name, Description string }
type hiddenField struct{ Name, Value string }

type consentPage struct {
	page
	CSRF         string
	ClientName   string
	Description  string
	UserEmail    string
	RedirectHost string
	LoopbackOnly bool
	Registration string
	Scopes       []scopeLine
	Params       []hiddenField
	Return       string
}

// authorizeReturn is the authorization request as a return_to (without
// prompt, as loginURL does).
func authorizeReturn(req oauth.AuthRequest) string {
	req.Prompt = ""
	return authorizeReturnPrefix + req.Values().Encode()
}

// loopbackOnly reports a client whose every redirect URI is a loopback
// address: whoever runs a program on the user's machine can be it.
func loopbackOnly(uris []string) bool {
	if len(uris) == 0 {
		return false
	}
	for _, raw := range uris {
		u, err := url.Parse(raw)
		if err != nil {
			return false
		}
		h := u.Hostname()
		if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return true
}

func registrationNote(c oauth.Client) string {
	switch c.RegistrationType {
	case oauth.RegisteredByAdmin, "":
		return ""
	case oauth.RegisteredByMetadata:
		return "This application is identified by a metadata document it publishes itself (" + c.ClientID +
			"). Its name was not checked by an administrator."
	}
	return "This application registered itself (dynamic registration). Its name was not checked by an administrator."
}

func (s *server) consentPage(w http.ResponseWriter, r *http.Request) {
	req := oauth.ParseAuthRequest(r.URL.Query())
	u, sess, ok := s.browserSession(r)
	if !ok {
		pageRedirect(w, r, loginURLFor(authorizeReturn(req)))
		return
	}
	c, err := s.OAuth.CheckAuthRequest(r.Context(), req)
	if err != nil {
		s.pageAuthorizeFailed(w, r, req, u.ID, err)
		return
	}
	redirect, _ := url.Parse(c.Req.RedirectURI) // valid: it matched a registered URI
	p := consentPage{page: s.page("Authorize " + c.Client.Name), CSRF: s.csrfToken(w, r, sess.ID),
		ClientName: c.Client.Name, UserEmail: u.Email, RedirectHost: redirect.Host,
		LoopbackOnly: loopbackOnly(c.Client.RedirectURIs), Registration: registrationNote(c.Client),
		Return: authorizeReturn(c.Req)}
	if c.Client.Description != nil {
		p.Description = *c.Client.Description
	}
	for _, sc := range c.Scopes {
		p.Scopes = append(p.Scopes, scopeLine{Name: sc, Description: scopeDescriptions[sc]})
	}
	v := c.Req.Values()
	v.Set("scope", oauth.JoinScope(c.Scopes))
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.Params = append(p.Params, hiddenField{Name: k, Value: v.Get(k)})
	}
	s.render(w, r, http.StatusOK, "consent", p, pageCSP([]string{redirect.Scheme + "://" + redirect.Host}))
}

func (s *server) consentSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	req := oauth.ParseAuthRequest(form)
	u, sess, signedIn := s.browserSession(r)
	if !signedIn {
		// Nothing happens without a session: the user logs in and comes
		// back through the authorization endpoint.
		pageRedirect(w, r, loginURLFor(authorizeReturn(req)))
		return
	}
	if !s.csrfValid(r, form, sess.ID) {
		s.csrfFailed(w, r)
		return
	}
	if !s.pageLimit(w, r, "oauthConsent", limit{30, false}) {
		return
	}
	approved, valid := parseApproved(form.Get("approved"))
	if !valid {
		s.renderMessage(w, r, http.StatusBadRequest, messagePage{Heading: "Bad request", Error: "Choose Allow or Deny."})
		return
	}
	c, err := s.OAuth.CheckAuthRequest(r.Context(), req)
	if err != nil {
		s.pageAuthorizeFailed(w, r, req, u.ID, err)
		return
	}
	to, err := s.OAuth.Decide(r.Context(), u.ID, sess.CreatedAt, c, approved, nil)
	if err != nil {
		s.pageAuthorizeFailed(w, r, req, u.ID, err)
		return
	}
	pageRedirect(w, r, to)
}

// pageAuthorizeFailed is authorizeFailed for the pages: errors that may go
// back to the client (mayRedirectError) do (303 after a POST), the others
// are shown as an HTML page whatever the Accept header says.
func (s *server) pageAuthorizeFailed(w http.ResponseWriter, r *http.Request, req oauth.AuthRequest, userID string, err error) {
	var ae *oauth.AuthError
	if errors.As(err, &ae) {
		if s.mayRedirectError(r, ae, userID) {
			pageRedirect(w, r, s.OAuth.ErrorRedirect(req, ae.Err))
			return
		}
		s.renderError(w, r, shownAuthError(ae), withheldFrom(req, ae))
		return
	}
	s.renderFailure(w, r, "Authorization error", err)
}

// --- password reset ----------------------------------------------------------

type resetPage struct {
	page
	CSRF      string
	Token     string
	Errors    []string
	MinLength int
}

func (s *server) renderReset(w http.ResponseWriter, r *http.Request, status int, tok string, errs []string) {
	s.render(w, r, status, "reset", resetPage{page: s.page("Reset your password"), CSRF: s.csrfToken(w, r, ""),
		Token: tok, Errors: errs, MinLength: password.MinLength}, pageCSP([]string{}))
}

func (s *server) resetPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if tok == "" || len(tok) > 512 {
		s.renderMessage(w, r, http.StatusBadRequest, messagePage{Heading: "Reset your password",
			Error: "This link is incomplete. Open the link from the email again, or ask for a new one."})
		return
	}
	s.renderReset(w, r, http.StatusOK, tok, nil)
}

func (s *server) resetSubmit(w http.ResponseWriter, r *http.Request) {
	form, ok := s.pageForm(w, r)
	if !ok {
		return
	}
	if !s.csrfValid(r, form, "") {
		s.csrfFailed(w, r)
		return
	}
	if !s.pageLimit(w, r, "passwordResetConfirm", limit{5, false}) {
		return
	}
	tok, pw := form.Get("token"), form.Get("new_password")
	if tok == "" || len(tok) > 512 {
		s.renderMessage(w, r, http.StatusBadRequest, messagePage{Heading: "Reset your password",
			Error: auth.ErrResetTokenInvalid.Message})
		return
	}
	if pw != form.Get("confirm_password") {
		s.renderReset(w, r, http.StatusBadRequest, tok, []string{"The two passwords are not the same."})
		return
	}
	err := s.Auth.ConfirmPasswordReset(r.Context(), tok, pw)
	if ae, ok := apperr.As(err); ok && ae.Kind == apperr.Invalid {
		var msgs []string
		for _, f := range ae.Fields {
			msgs = append(msgs, strings.TrimPrefix(f.Message, "Value error, "))
		}
		if len(msgs) == 0 {
			msgs = []string{strings.TrimPrefix(ae.Message, "Value error, ")}
		}
		s.renderReset(w, r, http.StatusUnprocessableEntity, tok, msgs)
		return
	}
	if ae, ok := apperr.As(err); ok && (errors.Is(err, auth.ErrResetTokenInvalid) || errors.Is(err, auth.ErrResetInactive)) {
		s.renderMessage(w, r, http.StatusBadRequest, messagePage{Heading: "Reset your password", Error: ae.Message,
			Lines: []string{"Ask for a new password-reset email and use its link."}})
		return
	}
	if err != nil {
		s.renderFailure(w, r, "Reset your password", err)
		return
	}
	m := messagePage{Heading: "Your password has been changed",
		Lines: []string{"Every session of your account has been signed out. Sign in again with your new password."}}
	if s.Config.Provider.Enabled {
		m.Link, m.LinkText = pageLoginPath, "Sign in"
	}
	s.renderMessage(w, r, http.StatusOK, m)
}

// --- social login through the login page --------------------------------------

// socialCookie binds a social login started on the login page to this
// browser: the callback accepts only the state it names, for the provider
// it names, and continues to its return_to (validated again).
type socialCookie struct {
	Provider  string `json:"p"`
	StateHash string `json:"s"`
	ReturnTo  string `json:"r,omitempty"`
	Expires   int64  `json:"e"`
}

// maxCookieBytes keeps the social cookie under browsers' 4 KB limit.
const maxCookieBytes = 3800

func (s *server) sealSocial(c socialCookie) string {
	payload, _ := json.Marshal(c)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.mac("social", p))
}

func (s *server) openSocial(v string) (socialCookie, bool) {
	p, sig, found := strings.Cut(v, ".")
	if !found {
		return socialCookie{}, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac("social", p)) {
		return socialCookie{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	var c socialCookie
	if err != nil || json.Unmarshal(payload, &c) != nil || s.Now().Unix() >= c.Expires {
		return socialCookie{}, false
	}
	return c, true
}

func (s *server) socialRedirectURI(provider string) string {
	return s.Config.Provider.Issuer + SocialCallbackPath + provider
}

// socialStart begins a social login from the login page.
func (s *server) socialStart(w http.ResponseWriter, r *http.Request) {
	if !s.pageLimit(w, r, "socialAuthorize", limit{10, true}) {
		return
	}
	provider := chi.URLParam(r, "provider")
	if len(provider) > 50 {
		s.renderMessage(w, r, http.StatusNotFound, messagePage{Heading: "Sign in", Error: "Unknown sign-in provider."})
		return
	}
	ret := safeReturnTo(r.URL.Query().Get("return_to"))
	a, err := s.Social.Authorize(r.Context(), provider, s.socialRedirectURI(provider), nil)
	if err != nil {
		s.renderFailure(w, r, "Sign in", err)
		return
	}
	ttl := s.Config.Social.StateTTL
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	v := s.sealSocial(socialCookie{Provider: provider, StateHash: token.HashSecret(a.State), ReturnTo: ret,
		Expires: s.Now().Add(ttl).Unix()})
	if len(v) > maxCookieBytes {
		s.renderMessage(w, r, http.StatusBadRequest, messagePage{Heading: "Sign in",
			Error: "This authorization request is too long to continue with a sign-in provider. Sign in with your password instead."})
		return
	}
	s.setCookie(w, cookieSocial, v, ttl)
	pageHeaders(w, pageCSP([]string{}))
	http.Redirect(w, r, a.URL, http.StatusFound)
}

// socialFinish is where the provider sends the browser back: the login
// completes into a browser session and continues to the return_to of the
// binding cookie.
func (s *server) socialFinish(w http.ResponseWriter, r *http.Request) {
	const heading = "Sign in"
	if !s.pageLimit(w, r, "socialCallback", limit{10, true}) {
		return
	}
	provider := chi.URLParam(r, "provider")
	raw := s.cookie(r, cookieSocial)
	s.setCookie(w, cookieSocial, "", -1) // single use, whatever happens
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		if len(e) > 100 {
			e = e[:100]
		}
		msg := "The sign-in provider did not complete the sign-in (" + strings.ToValidUTF8(e, "") + ")."
		if d := q.Get("error_description"); d != "" && len(d) < 500 {
			msg += " " + d
		}
		s.renderMessage(w, r, http.StatusBadRequest, messagePage{Heading: heading, Error: msg,
			Link: pageLoginPath, LinkText: "Back to the sign-in page"})
		return
	}
	bound, ok := s.openSocial(raw)
	state := q.Get("state")
	if !ok || bound.Provider != provider || state == "" ||
		!hmac.Equal([]byte(token.HashSecret(state)), []byte(bound.StateHash)) {
		s.renderMessage(w, r, http.StatusBadRequest, messagePage{Heading: heading,
			Error: "This sign-in was not started in this browser, or it took too long. Nothing was changed.",
			Link:  pageLoginPath, LinkText: "Back to the sign-in page"})
		return
	}
	u, _, err := s.Social.Complete(r.Context(), provider, s.socialRedirectURI(provider), q.Get("code"), state)
	if err != nil {
		s.countLogin(metrics.LoginSocial, "socialCallback", err)
		s.renderFailure(w, r, heading, err)
		return
	}
	bl, err := s.Auth.OpenBrowserSession(r.Context(), u, pageDevice(r, "OAuth ("+provider+")"))
	s.countLogin(metrics.LoginSocial, "socialCallback", err)
	if err != nil {
		s.renderFailure(w, r, heading, err)
		return
	}
	s.startBrowserSession(w, r, bl)
	s.signedIn(w, r, bl, bound.ReturnTo)
}
