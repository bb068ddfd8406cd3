package socialtest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// GitHubEmail is one entry of GET /user/emails.
type GitHubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// GitHubUser is the person who logs in at the fake GitHub. ID 0 leaves the
// id out of /user.
type GitHubUser struct {
	ID     int64
	Login  string
	Name   string
	Email  string // the public profile email ("" → null)
	Emails []GitHubEmail
}

type githubCode struct {
	req     AuthorizationRequest
	user    GitHubUser
	expires time.Time
}

// GitHub is a fake GitHub: the OAuth web flow at URL() (/login/oauth/…)
// and the REST API at APIURL() (/user, /user/emails), GitHub Enterprise
// style under /api/v3.
type GitHub struct {
	Server       *httptest.Server
	ClientID     string
	ClientSecret string

	mu             sync.Mutex
	user           GitHubUser
	userStatus     int // non-zero: /user answers this status
	emailsStatus   int // non-zero: /user/emails answers this status
	garbage        map[string]Garbage
	delays         map[string]time.Duration
	closing        chan struct{}
	closed         bool
	codes          map[string]githubCode
	accessTokens   map[string]GitHubUser
	authorizations []AuthorizationRequest
	tokenRequests  []TokenRequest
	issued         []Issued
	apiRequests    []string
}

// NewGitHub starts a fake GitHub for one OAuth app, closed when the test
// ends.
func NewGitHub(t testing.TB, clientID, clientSecret string) *GitHub {
	t.Helper()
	g := &GitHub{ClientID: clientID, ClientSecret: clientSecret, delays: map[string]time.Duration{}, closing: make(chan struct{}),
		garbage: map[string]Garbage{},
		codes:   map[string]githubCode{}, accessTokens: map[string]GitHubUser{},
		user: GitHubUser{ID: 583231, Login: "octocat", Name: "The Octocat", Email: "octocat@github.com",
			Emails: []GitHubEmail{{Email: "octocat@github.com", Primary: true, Verified: true}}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.delayed("authorize", g.authorize))
	mux.HandleFunc("POST /login/oauth/access_token", g.delayed("token", g.token))
	mux.HandleFunc("GET /api/v3/user", g.delayed("user", g.apiUser))
	mux.HandleFunc("GET /api/v3/user/emails", g.delayed("emails", g.apiEmails))
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

// URL is OAUTH_GITHUB_URL.
func (g *GitHub) URL() string { return g.Server.URL }

// APIURL is OAUTH_GITHUB_API_URL.
func (g *GitHub) APIURL() string { return g.Server.URL + "/api/v3" }

// Close takes GitHub down.
func (g *GitHub) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.closing)
	}
	g.mu.Unlock()
	g.Server.Close()
}

// SetUser sets who logs in at the next authorization.
func (g *GitHub) SetUser(u GitHubUser) { g.mu.Lock(); g.user = u; g.mu.Unlock() }

// SetAPIError makes /user (userStatus) or /user/emails (emailsStatus)
// answer an error status; 0 restores normal answers.
func (g *GitHub) SetAPIError(userStatus, emailsStatus int) {
	g.mu.Lock()
	g.userStatus, g.emailsStatus = userStatus, emailsStatus
	g.mu.Unlock()
}

// SetGarbage makes an endpoint ("token", "user", "emails") answer garbage
// with status 200 to a valid request; GarbageNone restores it. The wrong
// shapes are a token answer whose access_token is a number, a /user whose
// id is not a number, and a /user/emails that is an object, not a list.
func (g *GitHub) SetGarbage(endpoint string, kind Garbage) {
	g.mu.Lock()
	g.garbage[endpoint] = kind
	g.mu.Unlock()
}

// SetDelay delays an endpoint ("authorize", "token", "user", "emails").
func (g *GitHub) SetDelay(endpoint string, d time.Duration) {
	g.mu.Lock()
	g.delays[endpoint] = d
	g.mu.Unlock()
}

// Authorizations returns the authorization requests received.
func (g *GitHub) Authorizations() []AuthorizationRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]AuthorizationRequest(nil), g.authorizations...)
}

// TokenRequests returns the token requests received.
func (g *GitHub) TokenRequests() []TokenRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]TokenRequest(nil), g.tokenRequests...)
}

// Issued returns the access tokens handed out.
func (g *GitHub) Issued() []Issued {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Issued(nil), g.issued...)
}

// APIRequests lists the API calls received ("GET /user 200" …).
func (g *GitHub) APIRequests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.apiRequests...)
}

func (g *GitHub) delayed(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		d, closing := g.delays[endpoint], g.closing
		g.mu.Unlock()
		if !wait(r, d, closing) {
			return
		}
		h(w, r)
	}
}

func (g *GitHub) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := AuthorizationRequest{ResponseType: q.Get("response_type"), ClientID: q.Get("client_id"), RedirectURI: q.Get("redirect_uri"),
		Scope: q.Get("scope"), State: q.Get("state"), CodeChallenge: q.Get("code_challenge"),
		CodeChallengeMethod: q.Get("code_challenge_method"), Nonce: q.Get("nonce")}
	g.mu.Lock()
	g.authorizations = append(g.authorizations, req)
	user := g.user
	g.mu.Unlock()
	if req.ClientID != g.ClientID {
		http.Error(w, "404 application not found", http.StatusNotFound)
		return
	}
	if req.RedirectURI == "" {
		http.Error(w, "redirect_uri required by this fake", http.StatusBadRequest)
		return
	}
	code := randomToken("ghcode")
	g.mu.Lock()
	g.codes[code] = githubCode{req: req, user: user, expires: time.Now().Add(10 * time.Minute)}
	g.mu.Unlock()
	redirectBack(w, r, req.RedirectURI, url.Values{"code": {code}, "state": {req.State}})
}

// token answers like GitHub: errors come with status 200 and an "error"
// field; the body is JSON only when the client asks for it with Accept,
// form-encoded otherwise.
func (g *GitHub) token(w http.ResponseWriter, r *http.Request) {
	answer := func(vals url.Values) {
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			m := map[string]string{}
			for k := range vals {
				m[k] = vals.Get(k)
			}
			writeJSON(w, http.StatusOK, m)
			return
		}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = w.Write([]byte(vals.Encode()))
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	method, id, secret := clientAuth(r)
	tr := TokenRequest{ClientAuth: method, ClientID: id, Code: r.PostForm.Get("code"), RedirectURI: r.PostForm.Get("redirect_uri"),
		CodeVerifier: r.PostForm.Get("code_verifier"), Accept: r.Header.Get("Accept")}
	g.mu.Lock()
	defer g.mu.Unlock()
	fail := func(code, why string) {
		tr.Error = code + ": " + why
		g.tokenRequests = append(g.tokenRequests, tr)
		answer(url.Values{"error": {code}, "error_description": {why}, "error_uri": {"https://docs.github.com/apps/troubleshooting"}})
	}
	c, ok := g.codes[tr.Code]
	switch {
	case id != g.ClientID || secret != g.ClientSecret:
		fail("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
		return
	case !ok || time.Now().After(c.expires) || c.req.ClientID != id:
		fail("bad_verification_code", "The code passed is incorrect or expired.")
		return
	case tr.RedirectURI != "" && tr.RedirectURI != c.req.RedirectURI:
		fail("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
		return
	}
	delete(g.codes, tr.Code)
	g.tokenRequests = append(g.tokenRequests, tr)
	if writeGarbage(w, g.garbage["token"], map[string]any{"access_token": 42, "token_type": "bearer"}) {
		return
	}
	at := randomToken("gho")
	g.accessTokens[at] = c.user
	g.issued = append(g.issued, Issued{AccessToken: at})
	answer(url.Values{"access_token": {at}, "token_type": {"bearer"}, "scope": {c.req.Scope}})
}

// apiAuth finds the user of the request's Bearer token.
func (g *GitHub) apiAuth(w http.ResponseWriter, r *http.Request, status int) (GitHubUser, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g.mu.Lock()
	u, known := g.accessTokens[tok]
	g.mu.Unlock()
	switch {
	case !ok || !known:
		g.logAPI(r, http.StatusUnauthorized)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
		return GitHubUser{}, false
	case status != 0:
		g.logAPI(r, status)
		writeJSON(w, status, map[string]string{"message": http.StatusText(status)})
		return GitHubUser{}, false
	}
	g.logAPI(r, http.StatusOK)
	return u, true
}

func (g *GitHub) logAPI(r *http.Request, status int) {
	g.mu.Lock()
	g.apiRequests = append(g.apiRequests, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/api/v3")+" "+http.StatusText(status))
	g.mu.Unlock()
}

func (g *GitHub) apiUser(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	status := g.userStatus
	g.mu.Unlock()
	u, ok := g.apiAuth(w, r, status)
	if !ok || g.garbled(w, "user", map[string]any{"id": "not-a-number", "login": u.Login}) {
		return
	}
	body := map[string]any{"login": u.Login, "name": nil, "email": nil, "type": "User"}
	if u.ID != 0 {
		body["id"] = u.ID
	}
	if u.Name != "" {
		body["name"] = u.Name
	}
	if u.Email != "" {
		body["email"] = u.Email
	}
	writeJSON(w, http.StatusOK, body)
}

func (g *GitHub) apiEmails(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	status := g.emailsStatus
	g.mu.Unlock()
	u, ok := g.apiAuth(w, r, status)
	if !ok || g.garbled(w, "emails", map[string]any{"message": "not a list", "emails": u.Emails}) {
		return
	}
	list := u.Emails
	if list == nil {
		list = []GitHubEmail{}
	}
	writeJSON(w, http.StatusOK, list)
}

// garbled answers the endpoint's garbage, if it is set to.
func (g *GitHub) garbled(w http.ResponseWriter, endpoint string, shape any) bool {
	g.mu.Lock()
	kind := g.garbage[endpoint]
	g.mu.Unlock()
	return writeGarbage(w, kind, shape)
}
