package socialtest

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
)

// Login is one browser login in progress against a running Gatehouse:
// Begin asks Gatehouse for the authorization URL, Approve follows it to the
// provider and reads the code and state from the redirect, Finish posts them
// to the callback.
type Login struct {
	Env              *apitest.Env
	Provider         string
	RedirectURI      string
	AuthorizationURL string
	State            string // the state Gatehouse returned
	Code             string // set by Approve
	ReturnedState    string // the state the provider sent back
}

// BeginOption changes how a login starts.
type BeginOption func(*beginOptions)

type beginOptions struct {
	bearer string
	link   bool
}

// WithBearer starts the login with the caller's access token on
// GET /oauth/authorize (link mode by token).
func WithBearer(access string) BeginOption { return func(o *beginOptions) { o.bearer = access } }

// ViaLink starts with POST /oauth/link/{provider} as the caller.
func ViaLink(access string) BeginOption {
	return func(o *beginOptions) { o.bearer, o.link = access, true }
}

// AuthorizePath is the Gatehouse path that starts a login.
func AuthorizePath(provider, redirectURI string) string {
	return "/api/v1/oauth/authorize/" + provider + "?redirect_uri=" + url.QueryEscape(redirectURI)
}

// LinkPath is the Gatehouse path that starts linking.
func LinkPath(provider, redirectURI string) string {
	return "/api/v1/oauth/link/" + provider + "?redirect_uri=" + url.QueryEscape(redirectURI)
}

// CallbackPath is the Gatehouse callback path.
func CallbackPath(provider, redirectURI string) string {
	return "/api/v1/oauth/callback/" + provider + "?redirect_uri=" + url.QueryEscape(redirectURI)
}

// StartResponse makes the first call and returns Gatehouse's raw answer.
func StartResponse(e *apitest.Env, provider, redirectURI string, opts ...BeginOption) apitest.Response {
	e.T.Helper()
	var o beginOptions
	for _, f := range opts {
		f(&o)
	}
	if o.link {
		return e.Do(apitest.Request{Method: "POST", Path: LinkPath(provider, redirectURI), Token: o.bearer})
	}
	return e.Do(apitest.Request{Method: "GET", Path: AuthorizePath(provider, redirectURI), Token: o.bearer})
}

// Begin starts a login and fails the test unless Gatehouse answers 200 with
// an authorization URL and a state.
func Begin(t testing.TB, e *apitest.Env, provider, redirectURI string, opts ...BeginOption) *Login {
	t.Helper()
	r := StartResponse(e, provider, redirectURI, opts...)
	if r.Status != http.StatusOK {
		t.Fatalf("start %s login: status %d: %s", provider, r.Status, r.Body)
	}
	var body struct {
		AuthorizationURL string `json:"authorization_url"`
		State            string `json:"state"`
	}
	r.Decode(t, &body)
	if body.AuthorizationURL == "" || body.State == "" {
		t.Fatalf("start %s login: incomplete answer %s", provider, r.Body)
	}
	return &Login{Env: e, Provider: provider, RedirectURI: redirectURI, AuthorizationURL: body.AuthorizationURL, State: body.State}
}

var browser = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// Approve plays the browser at the provider: it opens the authorization URL
// (the fake user is logged in and consents) and reads the redirect back to
// redirect_uri. It fails the test unless the provider redirected there with
// a code and the same state.
func (l *Login) Approve(t testing.TB) *Login {
	t.Helper()
	resp, err := browser.Get(l.AuthorizationURL)
	if err != nil {
		t.Fatalf("open authorization URL %s: %v", l.AuthorizationURL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("provider did not redirect back: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("bad Location %q: %v", resp.Header.Get("Location"), err)
	}
	back := *loc
	back.RawQuery = ""
	want, _ := url.Parse(l.RedirectURI)
	want.RawQuery = ""
	if back.String() != want.String() {
		t.Fatalf("provider redirected to %s, want %s", loc, l.RedirectURI)
	}
	q := loc.Query()
	if q.Get("error") != "" {
		t.Fatalf("provider refused the authorization: %s %s", q.Get("error"), q.Get("error_description"))
	}
	l.Code, l.ReturnedState = q.Get("code"), q.Get("state")
	if l.Code == "" || l.ReturnedState != l.State {
		t.Fatalf("provider redirect %s: code %q, state %q (want state %q)", loc, l.Code, l.ReturnedState, l.State)
	}
	return l
}

// Finish posts the code and state to the callback with l.RedirectURI.
func (l *Login) Finish(headers ...map[string]string) apitest.Response {
	l.Env.T.Helper()
	return l.FinishAt(l.Provider, l.RedirectURI, l.Code, l.ReturnedState, headers...)
}

// FinishAt posts any code and state to any provider's callback.
func (l *Login) FinishAt(provider, redirectURI, code, state string, headers ...map[string]string) apitest.Response {
	l.Env.T.Helper()
	h := map[string]string{}
	for _, m := range headers {
		for k, v := range m {
			h[k] = v
		}
	}
	return l.Env.Do(apitest.Request{Method: "POST", Path: CallbackPath(provider, redirectURI),
		Body: map[string]string{"code": code, "state": state}, Headers: h})
}

// Dance runs the whole login (Begin, Approve, Finish) and returns the
// callback's answer.
func Dance(t testing.TB, e *apitest.Env, provider, redirectURI string, opts ...BeginOption) apitest.Response {
	t.Helper()
	return Begin(t, e, provider, redirectURI, opts...).Approve(t).Finish()
}

// Query returns the query parameters of the authorization URL.
func (l *Login) Query(t testing.TB) url.Values {
	t.Helper()
	u, err := url.Parse(l.AuthorizationURL)
	if err != nil {
		t.Fatalf("authorization URL %q: %v", l.AuthorizationURL, err)
	}
	return u.Query()
}

// HasPrefix reports whether the authorization URL points at base.
func (l *Login) HasPrefix(base string) bool { return strings.HasPrefix(l.AuthorizationURL, base+"/") }
