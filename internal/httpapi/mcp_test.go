package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/mcpserver"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
)

// The protected MCP server at /mcp (issue 6): the MCP Go SDK's own client
// (auth.AuthorizationCodeHandler) goes from the URL alone to tool calls —
// pre-registered, through dynamic registration and through a client ID
// metadata document — logging in and consenting on the built-in pages;
// refused tokens and requests; step-up for a missing scope; the RFC 9728
// documents.
//
// The SDK checks that discovery documents name the URL they were fetched
// from, so OAUTH_ISSUER must be the address the test server listens on:
// mcpStart opens a listener first, starts the service with OAUTH_ISSUER set
// to it and serves the service's handler there (as oauth_interop_test.go).

const (
	mcpProviderPath = "/api/v1/oauth/provider"
	mcpAllScopes    = "read:organizations read:users write:users"
	// mcpRedirect is the SDK client's redirect URI; nothing listens there:
	// the fetcher stops at the redirect and reads the code from it.
	mcpRedirect       = "http://127.0.0.1:33418/callback"
	mcpClientScopes   = "openid profile email read:users write:users read:organizations"
	mcpMetadataSuffix = "/.well-known/oauth-protected-resource/mcp"
)

// mcpEnv is a service whose OAUTH_ISSUER is the address it listens on.
type mcpEnv struct {
	*apitest.Env
	issuer string // the listener's URL
	admin  apitest.Tokens
}

func (m *mcpEnv) endpoint() string { return m.issuer + "/mcp" }

// mcpStart starts the service with the provider on at its own address;
// wrap, when not nil, wraps the service's handler on that address.
func mcpStart(t *testing.T, engine sqlstore.Engine, wrap func(http.Handler) http.Handler, opts ...apitest.Option) *mcpEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	e := apitest.New(t, engine, append([]apitest.Option{apitest.WithEnv("OAUTH_PROVIDER_ENABLED", "true"),
		apitest.WithEnv("OAUTH_ISSUER", issuer)}, opts...)...)
	h := e.App.Handler
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	if e.Config.Provider.Issuer != issuer || srv.URL != issuer {
		t.Fatalf("issuer %s, server %s", e.Config.Provider.Issuer, srv.URL)
	}
	return &mcpEnv{Env: e, issuer: issuer, admin: e.Superuser("admin@example.com")}
}

// mcpEach runs fn on every engine, each with its own service.
func mcpEach(t *testing.T, wrap func(http.Handler) http.Handler, fn func(t *testing.T, m *mcpEnv), opts ...apitest.Option) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			fn(t, mcpStart(t, engine, wrap, opts...))
		})
	}
}

// mcpNoteChecked ends the consent page's note on clients nobody registered
// for the user (dynamic registration, metadata documents).
const mcpNoteChecked = "Its name was not checked by an administrator."

// mcpRegister registers a client through the API as the superuser.
func mcpRegister(t *testing.T, m *mcpEnv, name, typ string) (id, secret string) {
	t.Helper()
	form := url.Values{"client_name": {name}, "redirect_uris": {"http://127.0.0.1/callback"}, "client_type": {typ}, "scopes": {mcpClientScopes}}
	r := m.Do(apitest.Request{Method: "POST", Path: mcpProviderPath + "/clients", Token: m.admin.Access, Body: form.Encode(),
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusOK, "")
	body := r.JSON(t)
	secret, _ = body["client_secret"].(string)
	return body["client_id"].(string), secret
}

// --- the browser of the AuthorizationCodeFetcher ---------------------------

var mcpHiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// mcpHidden returns the hidden fields of a page's first form.
func mcpHidden(body string) url.Values {
	v := url.Values{}
	for _, m := range mcpHiddenRE.FindAllStringSubmatch(body, -1) {
		if name := html.UnescapeString(m[1]); !v.Has(name) {
			v.Set(name, html.UnescapeString(m[2]))
		}
	}
	return v
}

// mcpBrowser is the user's browser during the SDK's authorization: a
// cookie jar, redirects followed one at a time, the built-in login and
// consent forms filled in.
type mcpBrowser struct {
	m        *mcpEnv
	email    string
	client   *http.Client
	mu       sync.Mutex
	logins   int
	consents []string // the consent pages shown, in order
	urls     []string // the authorization URLs the SDK opened
	// grants, when set, narrows what the user allows on the n-th consent
	// page (the scope field of the form); "" allows what is asked.
	grants []string
	deny   bool
}

func mcpNewBrowser(t *testing.T, m *mcpEnv, email string) *mcpBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &mcpBrowser{m: m, email: email, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *mcpBrowser) do(method, target string, form url.Values) (int, string, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	loc := resp.Header.Get("Location")
	if loc != "" {
		u, err := req.URL.Parse(loc)
		if err != nil {
			return 0, "", "", err
		}
		loc = u.String()
	}
	return resp.StatusCode, loc, string(raw), nil
}

// fetch is the AuthorizationCodeFetcher: it opens the authorization URL,
// logs in and consents on Gatehouse's pages, and returns the code, state
// and iss of the redirect to the client.
func (b *mcpBrowser) fetch(_ context.Context, args *sdkauth.AuthorizationArgs) (*sdkauth.AuthorizationResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.urls = append(b.urls, args.URL)
	next := args.URL
	for hop := 0; hop < 12; hop++ {
		if strings.HasPrefix(next, mcpRedirect+"?") {
			q, _ := url.ParseQuery(next[len(mcpRedirect)+1:])
			if q.Get("error") != "" {
				return nil, fmt.Errorf("authorization failed: %s: %s", q.Get("error"), q.Get("error_description"))
			}
			return &sdkauth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		}
		if !strings.HasPrefix(next, b.m.issuer+"/") {
			return nil, fmt.Errorf("the browser was sent to %s", next)
		}
		status, loc, body, err := b.do("GET", next, nil)
		if err != nil {
			return nil, err
		}
		u, _ := url.Parse(next)
		switch {
		case status == http.StatusFound || status == http.StatusSeeOther:
			next = loc
			continue
		case status == http.StatusOK && u.Path == "/oauth/login":
			b.logins++
			form := mcpHidden(body)
			if form.Get("csrf_token") == "" {
				return nil, fmt.Errorf("login page without a CSRF token:\n%s", body)
			}
			form.Set("email", b.email)
			form.Set("password", apitest.Password)
			status, loc, body, err = b.do("POST", b.m.issuer+"/oauth/login", form)
		case status == http.StatusOK && u.Path == "/oauth/consent":
			b.consents = append(b.consents, body)
			form := mcpHidden(body)
			if n := len(b.consents) - 1; n < len(b.grants) && b.grants[n] != "" {
				form.Set("scope", b.grants[n])
			}
			form.Set("approved", fmt.Sprint(!b.deny))
			status, loc, body, err = b.do("POST", b.m.issuer+"/oauth/consent", form)
		default:
			return nil, fmt.Errorf("GET %s: %d\n%s", next, status, body)
		}
		if err != nil {
			return nil, err
		}
		if status != http.StatusSeeOther {
			return nil, fmt.Errorf("form post: %d\n%s", status, body)
		}
		next = loc
	}
	return nil, errors.New("too many redirects")
}

func (b *mcpBrowser) counts() (logins, consents int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.logins, len(b.consents)
}

// --- the SDK's client -------------------------------------------------------

// mcpConnect connects the SDK's client to /mcp with only its URL and the
// handler's registration settings.
func mcpConnect(t *testing.T, m *mcpEnv, cfg *sdkauth.AuthorizationCodeHandlerConfig) (*mcp.ClientSession, *sdkauth.AuthorizationCodeHandler) {
	t.Helper()
	if cfg.RedirectURL == "" && cfg.DynamicClientRegistrationConfig == nil {
		cfg.RedirectURL = mcpRedirect
	}
	cfg.Client = &http.Client{Timeout: 30 * time.Second}
	h, err := sdkauth.NewAuthorizationCodeHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "gatehouse-test-client", Version: "1.0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: m.endpoint(), OAuthHandler: h,
		HTTPClient: &http.Client{Timeout: 30 * time.Second}}, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", m.endpoint(), err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, h
}

// mcpToolCall calls a tool, fails the test on a protocol error, and decodes
// the structured result into out.
func mcpToolCall(t *testing.T, cs *mcp.ClientSession, tool string, args any, out any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	if out != nil && !res.IsError {
		raw, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %s: %v", tool, raw, err)
		}
	}
	return res
}

func mcpResultText(res *mcp.CallToolResult) string {
	var s string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			s += tc.Text
		}
	}
	return s
}

// mcpSorted sorts a space-separated scope (the SDK's order varies).
func mcpSorted(scope string) string {
	f := strings.Fields(scope)
	slices.Sort(f)
	return strings.Join(f, " ")
}

// mcpClaims decodes a JWT's claims without verifying it (the server did).
func mcpClaims(t *testing.T, raw string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		t.Fatalf("token %q: %v", raw, err)
	}
	return claims
}

// mcpCurrentToken is the access token the SDK's handler holds.
func mcpCurrentToken(t *testing.T, h *sdkauth.AuthorizationCodeHandler) string {
	t.Helper()
	ts, err := h.TokenSource(context.Background())
	if err != nil || ts == nil {
		t.Fatalf("token source: %v", err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// mcpData is what the tools of alice must (and must not) show.
type mcpData struct {
	alice, bob apitest.Tokens
	aliceOrgID string
}

// mcpSeed creates alice, with an organization she owns and one where she is
// a member, and bob, with an organization of his own.
func mcpSeed(t *testing.T, m *mcpEnv) mcpData {
	t.Helper()
	d := mcpData{alice: m.User("alice@example.com"), bob: m.User("bob@example.com")}
	d.aliceOrgID = m.Post("/api/v1/organizations", d.alice.Access, map[string]any{"name": "Alice Labs", "slug": "alice-labs"}).
		Expect(t, http.StatusCreated, "").JSON(t)["id"].(string)
	bobsID := m.Post("/api/v1/organizations", d.bob.Access, map[string]any{"name": "Bob Works", "slug": "bob-works"}).
		Expect(t, http.StatusCreated, "").JSON(t)["id"].(string)
	m.Post("/api/v1/organizations/"+bobsID+"/members", d.bob.Access, map[string]any{"user_id": d.alice.UserID, "role": "member"}).
		Expect(t, http.StatusCreated, "")
	m.Post("/api/v1/organizations", d.bob.Access, map[string]any{"name": "Bob Private", "slug": "bob-private"}).
		Expect(t, http.StatusCreated, "")
	return d
}

// mcpSessionIDs are the ids of a user's active sessions (REST API).
func mcpSessionIDs(t *testing.T, m *mcpEnv, access string) []string {
	t.Helper()
	var body struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	m.Get("/api/v1/sessions/me", access).Expect(t, http.StatusOK, "").Decode(t, &body)
	var ids []string
	for _, s := range body.Sessions {
		ids = append(ids, s.ID)
	}
	return ids
}

// mcpCheckTools lists the tools and calls each one as alice, checking that
// every answer is about alice and nobody else.
func mcpCheckTools(t *testing.T, m *mcpEnv, cs *mcp.ClientSession, d mcpData) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("list tools: %v", err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if strings.Join(names, ",") != "list_organizations,list_sessions,revoke_session,whoami" {
		t.Fatalf("tools %v", names)
	}

	var me mcpserver.Profile
	mcpToolCall(t, cs, "whoami", nil, &me)
	if me.ID != d.alice.UserID || me.Email != "alice@example.com" || me.FullName != "Test User" || me.ClientID == "" {
		t.Errorf("whoami %+v", me)
	}

	var orgs mcpserver.Organizations
	mcpToolCall(t, cs, "list_organizations", nil, &orgs)
	roles := map[string]string{}
	for _, o := range orgs.Organizations {
		roles[o.Slug] = o.Role
	}
	if orgs.Total != 2 || roles["alice-labs"] != "owner" || roles["bob-works"] != "member" || orgs.Organizations[slices.IndexFunc(orgs.Organizations,
		func(o mcpserver.Organization) bool { return o.Slug == "alice-labs" })].ID != d.aliceOrgID {
		t.Errorf("list_organizations %+v", orgs)
	}

	var sessions mcpserver.Sessions
	mcpToolCall(t, cs, "list_sessions", nil, &sessions)
	aliceIDs, bobIDs := mcpSessionIDs(t, m, d.alice.Access), mcpSessionIDs(t, m, d.bob.Access)
	kinds := map[string]int{}
	for _, s := range sessions.Sessions {
		kinds[s.Kind]++
		if !slices.Contains(aliceIDs, s.ID) || slices.Contains(bobIDs, s.ID) {
			t.Errorf("session %+v is not one of alice's %v", s, aliceIDs)
		}
	}
	// Her API login and the browser session of the login page.
	if sessions.Total != len(aliceIDs) || kinds["api"] != 1 || kinds["browser"] != 1 {
		t.Errorf("list_sessions %+v; alice's sessions %v", sessions, aliceIDs)
	}

	// Bob's session is not hers to revoke: a tool error, not a crash, and
	// his session lives on.
	res := mcpToolCall(t, cs, "revoke_session", map[string]any{"session_id": bobIDs[0]}, nil)
	if !res.IsError || !strings.Contains(mcpResultText(res), "no session with id") {
		t.Errorf("revoking bob's session: %+v %q", res, mcpResultText(res))
	}
	m.Get("/api/v1/users/me", d.bob.Access).Expect(t, http.StatusOK, "")
}

// --- the SDK's client, end to end -------------------------------------------

// TestMCPSDKPreregistered: the SDK's client with a pre-registered public
// client, then a confidential one, given only the URL of /mcp.
func TestMCPSDKPreregistered(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		d := mcpSeed(t, m)
		b := mcpNewBrowser(t, m, "alice@example.com")
		for _, typ := range []string{"public", "confidential"} {
			id, secret := mcpRegister(t, m, "Claude-ish "+typ, typ)
			creds := &oauthex.ClientCredentials{ClientID: id, Issuer: m.issuer}
			if secret != "" {
				creds.ClientSecretAuth = &oauthex.ClientSecretAuth{ClientSecret: secret}
			}
			cs, h := mcpConnect(t, m, &sdkauth.AuthorizationCodeHandlerConfig{PreregisteredClient: creds, AuthorizationCodeFetcher: b.fetch})
			mcpCheckTools(t, m, cs, d)

			// The SDK asked for every scope the challenge named and for
			// the MCP resource; the token it got is for /mcp only.
			authURL, _ := url.Parse(b.urls[len(b.urls)-1])
			q := authURL.Query()
			if q.Get("resource") != m.endpoint() || mcpSorted(q.Get("scope")) != mcpAllScopes || q.Get("client_id") != id ||
				q.Get("code_challenge_method") != "S256" || authURL.Path != mcpProviderPath+"/authorize" {
				t.Errorf("authorization URL %s", authURL)
			}
			claims := mcpClaims(t, mcpCurrentToken(t, h))
			aud, _ := claims.GetAudience()
			if len(aud) != 1 || aud[0] != m.endpoint() || claims["scope"] != mcpAllScopes || claims["client_id"] != id || claims["sub"] != d.alice.UserID {
				t.Errorf("access token claims %v", claims)
			}
			page := b.consents[len(b.consents)-1]
			for _, want := range []string{"Claude-ish " + typ, "127.0.0.1", "read:users", "write:users", "read:organizations", "alice@example.com"} {
				if !strings.Contains(page, want) {
					t.Errorf("the consent page does not show %q:\n%s", want, page)
				}
			}
			// An administrator registered it: no self-registration note.
			if strings.Contains(page, mcpNoteChecked) {
				t.Errorf("the consent page of a pre-registered client says its name was not checked:\n%s", page)
			}
		}
		// One login (the browser session is reused), one consent per client.
		if logins, consents := b.counts(); logins != 1 || consents != 2 {
			t.Errorf("%d logins, %d consents", logins, consents)
		}
		// The SDK's per-request session chatter stays out of the log.
		if logs := m.Logs.String(); strings.Contains(logs, "server session connected") || !strings.Contains(logs, "route=/mcp status=200") {
			t.Errorf("log:\n%s", logs)
		}
	})
}

// TestMCPSDKDynamicRegistration: the SDK's client registers itself (RFC
// 7591) from the authorization server's metadata.
func TestMCPSDKDynamicRegistration(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		d := mcpSeed(t, m)
		b := mcpNewBrowser(t, m, "alice@example.com")
		cs, h := mcpConnect(t, m, &sdkauth.AuthorizationCodeHandlerConfig{AuthorizationCodeFetcher: b.fetch,
			DynamicClientRegistrationConfig: &sdkauth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
				RedirectURIs: []string{mcpRedirect}, ClientName: "Dynamic MCP client", TokenEndpointAuthMethod: "none",
				GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}}}})
		mcpCheckTools(t, m, cs, d)
		claims := mcpClaims(t, mcpCurrentToken(t, h))
		aud, _ := claims.GetAudience()
		if n := m.Count(`SELECT COUNT(*) FROM oauth_clients WHERE registration_type = 'dynamic' AND client_name = 'Dynamic MCP client' AND client_id = $1`,
			claims["client_id"]); n != 1 || len(aud) != 1 || aud[0] != m.endpoint() {
			t.Errorf("%d dynamic clients with the token's client id; claims %v", n, claims)
		}
		if _, consents := b.counts(); consents != 1 || !strings.Contains(b.consents[0], "Dynamic MCP client") ||
			!strings.Contains(b.consents[0], `<p class="warning">This application registered itself (dynamic registration). `+mcpNoteChecked+`</p>`) {
			t.Errorf("consent pages %v", b.consents)
		}
	})
}

// TestMCPSDKClientMetadataDocument: the SDK's client identifies itself by
// a client ID metadata document served over HTTPS.
func TestMCPSDKClientMetadataDocument(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		d := mcpSeed(t, m)
		var fetched int
		var mu sync.Mutex
		var docURL string
		docs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/clients/mcp-test.json" {
				http.NotFound(w, r)
				return
			}
			mu.Lock()
			fetched++
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "max-age=60")
			_ = json.NewEncoder(w).Encode(map[string]any{"client_id": docURL, "client_name": "Metadata MCP client",
				"redirect_uris": []string{mcpRedirect}, "token_endpoint_auth_method": "none",
				"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}})
		}))
		t.Cleanup(docs.Close)
		docURL = docs.URL + "/clients/mcp-test.json"
		pool := x509.NewCertPool()
		pool.AddCert(docs.Certificate())
		m.App.OAuth.MetadataFetcher().TrustRoots(pool)

		b := mcpNewBrowser(t, m, "alice@example.com")
		cs, h := mcpConnect(t, m, &sdkauth.AuthorizationCodeHandlerConfig{AuthorizationCodeFetcher: b.fetch,
			ClientIDMetadataDocumentConfig: &sdkauth.ClientIDMetadataDocumentConfig{URL: docURL}})
		mcpCheckTools(t, m, cs, d)
		claims := mcpClaims(t, mcpCurrentToken(t, h))
		aud, _ := claims.GetAudience()
		if claims["client_id"] != docURL || len(aud) != 1 || aud[0] != m.endpoint() {
			t.Errorf("claims %v", claims)
		}
		mu.Lock()
		n := fetched
		mu.Unlock()
		if _, consents := b.counts(); n == 0 || consents != 1 || !strings.Contains(b.consents[0], "Metadata MCP client") {
			t.Errorf("document fetched %d times; consent pages %v", n, b.consents)
		}
		// The consent page says where the client's description comes from,
		// naming the document, and that nobody checked its name.
		note := `<p class="warning">This application is identified by a metadata document it publishes itself (` + docURL + `). ` + mcpNoteChecked + `</p>`
		if len(b.consents) == 0 || !strings.Contains(b.consents[0], note) || strings.Contains(b.consents[0], "registered itself") {
			t.Errorf("the consent page lacks the metadata-document note %q:\n%v", note, b.consents)
		}
	}, apitest.WithEnv("OAUTH_CIMD_ALLOW_PRIVATE", "true"))
}

// TestMCPSDKStepUp: the user allows fewer scopes than asked; the tools of
// the granted scopes work, and a tool of a missing scope gets 403
// insufficient_scope, which the SDK answers with a second authorization
// (no new login) before the call succeeds.
func TestMCPSDKStepUp(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		d := mcpSeed(t, m)
		second := m.Login("alice@example.com", apitest.Password) // a device to sign out
		id, _ := mcpRegister(t, m, "Step-up client", "public")
		b := mcpNewBrowser(t, m, "alice@example.com")
		b.grants = []string{"read:organizations read:users"}
		cs, h := mcpConnect(t, m, &sdkauth.AuthorizationCodeHandlerConfig{AuthorizationCodeFetcher: b.fetch,
			PreregisteredClient: &oauthex.ClientCredentials{ClientID: id}})
		if got := mcpClaims(t, mcpCurrentToken(t, h))["scope"]; got != "read:organizations read:users" {
			t.Fatalf("first token's scope %v", got)
		}
		mcpToolCall(t, cs, "whoami", nil, nil)
		mcpToolCall(t, cs, "list_organizations", nil, nil)
		if _, consents := b.counts(); consents != 1 {
			t.Fatalf("%d consents before the step-up", consents)
		}

		var secondID string
		var current struct {
			Sessions []struct {
				ID        string `json:"id"`
				IsCurrent bool   `json:"is_current"`
			} `json:"sessions"`
		}
		m.Get("/api/v1/sessions/me", second.Access).Expect(t, http.StatusOK, "").Decode(t, &current)
		for _, s := range current.Sessions {
			if s.IsCurrent {
				secondID = s.ID
			}
		}
		var revoked mcpserver.Revoked
		res := mcpToolCall(t, cs, "revoke_session", map[string]any{"session_id": secondID}, &revoked)
		if res.IsError || !revoked.Revoked || revoked.Session.ID != secondID {
			t.Fatalf("revoke_session after the step-up: %q", mcpResultText(res))
		}
		m.Get("/api/v1/users/me", second.Access).Expect(t, http.StatusUnauthorized, "")
		logins, consents := b.counts()
		if logins != 1 || consents != 2 || !strings.Contains(b.consents[1], "write:users") {
			t.Errorf("%d logins, %d consents", logins, consents)
		}
		// The second authorization asked for everything at once: the
		// scopes granted before plus the missing one.
		q, _ := url.Parse(b.urls[1])
		if mcpSorted(q.Query().Get("scope")) != mcpAllScopes || q.Query().Get("resource") != m.endpoint() {
			t.Errorf("step-up authorization URL %s", b.urls[1])
		}
		if got := mcpClaims(t, mcpCurrentToken(t, h))["scope"]; got != mcpAllScopes {
			t.Errorf("token after the step-up: scope %v", got)
		}
		var me mcpserver.Profile
		mcpToolCall(t, cs, "whoami", nil, &me)
		if me.ID != d.alice.UserID || strings.Join(me.GrantedScopes, " ") != mcpAllScopes {
			t.Errorf("whoami after the step-up %+v", me)
		}
	})
}

// TestMCPSDKDeniedStepUp: a user who denies the step-up fails that call
// only; the connection and the other tools keep working.
func TestMCPSDKDeniedStepUp(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		d := mcpSeed(t, m)
		id, _ := mcpRegister(t, m, "Denied client", "public")
		b := mcpNewBrowser(t, m, "alice@example.com")
		b.grants = []string{"read:users"}
		cs, _ := mcpConnect(t, m, &sdkauth.AuthorizationCodeHandlerConfig{AuthorizationCodeFetcher: b.fetch,
			PreregisteredClient: &oauthex.ClientCredentials{ClientID: id}})
		b.mu.Lock()
		b.deny = true
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_organizations"}); err == nil || !strings.Contains(err.Error(), "access_denied") {
			t.Fatalf("list_organizations after a denied step-up: %v", err)
		}
		var me mcpserver.Profile
		mcpToolCall(t, cs, "whoami", nil, &me)
		if me.ID != d.alice.UserID {
			t.Errorf("whoami %+v", me)
		}
	})
}

// mcpHideDiscovery hides /mcp's metadata document and the resource_metadata
// parameter of the challenges, as if the server published neither: the SDK
// then tries the path-specific and root well-known URLs.
func mcpHideDiscovery(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == mcpMetadataSuffix {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(&mcpStripResourceMetadata{ResponseWriter: w}, r)
	})
}

type mcpStripResourceMetadata struct{ http.ResponseWriter }

var mcpResourceMetadataParam = regexp.MustCompile(`,? ?resource_metadata="[^"]*",? ?`)

func (s *mcpStripResourceMetadata) WriteHeader(code int) {
	if v := s.Header().Get("WWW-Authenticate"); v != "" {
		s.Header().Set("WWW-Authenticate", strings.Replace(mcpResourceMetadataParam.ReplaceAllString(v, " "), "Bearer  ", "Bearer ", 1))
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *mcpStripResourceMetadata) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// TestMCPSDKWithoutResourceMetadata backs the decision to publish no root
// document: a client that finds neither the challenge's resource_metadata
// nor the path-specific document gets 404 at the root and falls back to the
// origin as the authorization server and /mcp as the resource, which is
// right for Gatehouse.
func TestMCPSDKWithoutResourceMetadata(t *testing.T) {
	mcpEach(t, mcpHideDiscovery, func(t *testing.T, m *mcpEnv) {
		d := mcpSeed(t, m)
		r, err := http.Post(m.endpoint(), "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer scope="`+mcpAllScopes+`"` {
			t.Fatalf("stripped challenge %q", got)
		}
		id, _ := mcpRegister(t, m, "Fallback client", "public")
		b := mcpNewBrowser(t, m, "alice@example.com")
		cs, h := mcpConnect(t, m, &sdkauth.AuthorizationCodeHandlerConfig{AuthorizationCodeFetcher: b.fetch,
			PreregisteredClient: &oauthex.ClientCredentials{ClientID: id}})
		mcpCheckTools(t, m, cs, d)
		aud, _ := mcpClaims(t, mcpCurrentToken(t, h)).GetAudience()
		if len(aud) != 1 || aud[0] != m.endpoint() {
			t.Errorf("audience %v", aud)
		}
	})
}

// --- refusals, raw ----------------------------------------------------------

// mcpRaw posts one JSON-RPC body to /mcp (query appended to the URL).
func mcpRaw(t *testing.T, m *mcpEnv, method, token, query, body string, headers ...string) apitest.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, m.endpoint()+query, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

func mcpCall(id int, tool string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, id, tool)
}

// mcpRPCError checks a refusal's JSON-RPC body: the request's id and code.
func mcpRPCError(t *testing.T, r apitest.Response, id any, code int, message string) {
	t.Helper()
	var body struct {
		JSONRPC string `json:"jsonrpc"`
		ID      any    `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.Decode(t, &body)
	if body.JSONRPC != "2.0" || fmt.Sprint(body.ID) != fmt.Sprint(id) || body.Error.Code != code || !strings.Contains(body.Error.Message, message) {
		t.Errorf("JSON-RPC error %s, want id %v, code %d, message with %q", r.Body, id, code, message)
	}
	if r.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("headers %v", r.Header)
	}
}

// mcpPKCE returns a verifier and its S256 challenge.
func mcpPKCE(t *testing.T) (string, string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	v := base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

// mcpToken gets an access token for a public client through the consent
// API (the user's first-party bearer token stands for the browser), for
// scope and the resources (none: the token's audience is the client id).
func mcpToken(t *testing.T, m *mcpEnv, clientID, user, scope string, resources ...string) string {
	t.Helper()
	verifier, challenge := mcpPKCE(t)
	form := url.Values{"approved": {"true"}, "client_id": {clientID}, "redirect_uri": {mcpRedirect}, "scope": {scope},
		"state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": resources}
	r := m.Do(apitest.Request{Method: "POST", Path: mcpProviderPath + "/authorize/consent", Token: user, Body: form.Encode(),
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}})
	if r.Status != http.StatusOK {
		t.Fatalf("consent API: %d, Location %s, %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	to, err := url.Parse(r.JSON(t)["redirect_url"].(string))
	if err != nil || to.Query().Get("code") == "" {
		t.Fatalf("consent answered %s", r.Body)
	}
	tok := m.Do(apitest.Request{Method: "POST", Path: mcpProviderPath + "/token", Body: url.Values{"grant_type": {"authorization_code"},
		"code": {to.Query().Get("code")}, "redirect_uri": {mcpRedirect}, "code_verifier": {verifier}, "client_id": {clientID}}.Encode(),
		Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusOK, "")
	return tok.JSON(t)["access_token"].(string)
}

func TestMCPRefusals(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		d := mcpSeed(t, m)
		id, _ := mcpRegister(t, m, "Raw client", "public")
		prm := m.issuer + mcpMetadataSuffix
		challenge := `Bearer resource_metadata="` + prm + `", scope="` + mcpAllScopes + `"`
		invalid := `Bearer error="invalid_token", resource_metadata="` + prm + `", scope="` + mcpAllScopes + `"`
		good := mcpToken(t, m, id, d.alice.Access, mcpAllScopes, m.endpoint())

		// The good token works.
		r := mcpRaw(t, m, "POST", good, "", mcpCall(1, "whoami"))
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"email":"alice@example.com"`) {
			t.Fatalf("good token: %d %s", r.Status, r.Body)
		}

		// No token, or one outside the Authorization header.
		for _, tc := range []struct {
			name, query, message string
			headers              []string
		}{
			{"no token", "", "needs an OAuth access token for " + m.endpoint(), nil},
			{"query string", "?access_token=" + url.QueryEscape(good), "never in the query string", nil},
			{"another header", "", "needs an OAuth access token", []string{"X-Access-Token", good}},
			{"Basic", "", "needs an OAuth access token", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"))}},
			{"empty bearer", "", "needs an OAuth access token", []string{"Authorization", "Bearer "}},
		} {
			r := mcpRaw(t, m, "POST", "", tc.query, mcpCall(7, "whoami"), tc.headers...)
			if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != challenge || len(r.Header.Values("WWW-Authenticate")) != 1 {
				t.Errorf("%s: %d, WWW-Authenticate %q", tc.name, r.Status, r.Header.Values("WWW-Authenticate"))
			}
			mcpRPCError(t, r, 7, -32001, tc.message)
		}
		// GET (the SSE stream) and notifications need the token too.
		if r := mcpRaw(t, m, "GET", "", "", ""); r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != challenge {
			t.Errorf("GET without a token: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
		}
		r = mcpRaw(t, m, "POST", "", "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
		if r.Status != http.StatusUnauthorized {
			t.Errorf("notification without a token: %d", r.Status)
		}
		mcpRPCError(t, r, nil, -32001, "needs an OAuth access token")

		// Tokens that are not for /mcp, or not valid (any more).
		verified, err := m.App.OAuth.Tokens().VerifyAccess(context.Background(), good, true)
		if err != nil {
			t.Fatal(err)
		}
		expiredClaims := verified
		expiredClaims.IssuedAt = jwt.NewNumericDate(time.Now().Add(-2 * time.Hour))
		expiredClaims.NotBefore = expiredClaims.IssuedAt
		expiredClaims.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Minute))
		expired, err := m.App.OAuth.Tokens().Access(context.Background(), expiredClaims)
		if err != nil {
			t.Fatal(err)
		}
		otherAud := verified
		otherAud.Audience = jwt.ClaimStrings{"https://other.example.com/api"}
		forOther, err := m.App.OAuth.Tokens().Access(context.Background(), otherAud)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(good, ".")
		for _, tc := range []struct{ name, token string }{
			{"audience: the REST API", mcpToken(t, m, id, d.alice.Access, mcpAllScopes, m.issuer+"/api/v1")},
			{"audience: the client id", mcpToken(t, m, id, d.alice.Access, mcpAllScopes)},
			{"audience: another resource the server knows", mcpToken(t, m, id, d.alice.Access, mcpAllScopes, "https://other.example.com/api")},
			{"audience: another server, signed by this one", forOther},
			{"expired", expired},
			{"first-party API token", d.alice.Access},
			{"refresh token of the first-party API", d.alice.Refresh},
			{"tampered", parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))},
			{"garbage", "not-a-token"},
		} {
			r := mcpRaw(t, m, "POST", tc.token, "", mcpCall(3, "whoami"))
			if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != invalid {
				t.Errorf("%s: %d, WWW-Authenticate %q: %s", tc.name, r.Status, r.Header.Get("WWW-Authenticate"), r.Body)
				continue
			}
			mcpRPCError(t, r, 3, -32001, "")
		}
		// A token for both the API and /mcp is a token for /mcp.
		both := mcpToken(t, m, id, d.alice.Access, mcpAllScopes, m.issuer+"/api/v1", m.endpoint())
		if aud, _ := mcpClaims(t, both).GetAudience(); len(aud) != 2 {
			t.Fatalf("audience %v", aud)
		}
		if r := mcpRaw(t, m, "POST", both, "", mcpCall(4, "whoami")); r.Status != http.StatusOK {
			t.Errorf("token for the API and /mcp: %d %s", r.Status, r.Body)
		}

		// A revoked grant stops at once.
		revocable := mcpToken(t, m, id, d.alice.Access, mcpAllScopes, m.endpoint())
		if r := mcpRaw(t, m, "POST", revocable, "", mcpCall(5, "whoami")); r.Status != http.StatusOK {
			t.Fatalf("before revocation: %d", r.Status)
		}
		m.Do(apitest.Request{Method: "POST", Path: mcpProviderPath + "/revoke", Body: url.Values{"token": {revocable}, "client_id": {id}}.Encode(),
			Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusOK, "")
		r = mcpRaw(t, m, "POST", revocable, "", mcpCall(5, "whoami"))
		if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != invalid {
			t.Errorf("revoked grant: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
		}
		// So does a deactivated user's.
		bobs := mcpToken(t, m, id, d.bob.Access, mcpAllScopes, m.endpoint())
		m.Post("/api/v1/admin/users/"+d.bob.UserID+"/deactivate", m.admin.Access, nil).Expect(t, http.StatusOK, "")
		if r := mcpRaw(t, m, "POST", bobs, "", mcpCall(6, "whoami")); r.Status != http.StatusUnauthorized {
			t.Errorf("deactivated user: %d", r.Status)
		}
		// The good token still works, and GET (no SSE stream on a
		// stateless server) reaches the SDK once authenticated.
		if r := mcpRaw(t, m, "POST", good, "", mcpCall(8, "list_sessions")); r.Status != http.StatusOK {
			t.Errorf("good token afterwards: %d %s", r.Status, r.Body)
		}
		if r := mcpRaw(t, m, "GET", good, "", ""); r.Status != http.StatusMethodNotAllowed {
			t.Errorf("GET with a token: %d %s", r.Status, r.Body)
		}
	}, apitest.WithEnv("OAUTH_RESOURCES", "https://other.example.com/api"))
}

// TestMCPInsufficientScope: a tools/call whose scope the token lacks is 403
// with the scopes to ask for (the token's plus the missing one); the same
// token keeps working for its other tools.
func TestMCPInsufficientScope(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		d := mcpSeed(t, m)
		id, _ := mcpRegister(t, m, "Narrow client", "public")
		prm := m.issuer + mcpMetadataSuffix
		narrow := mcpToken(t, m, id, d.alice.Access, "openid read:users", m.endpoint())
		for _, tc := range []struct{ tool, scope, missing string }{
			{"list_organizations", "openid read:organizations read:users", "read:organizations"},
			{"revoke_session", "openid read:users write:users", "write:users"},
		} {
			r := mcpRaw(t, m, "POST", narrow, "", mcpCall(9, tc.tool))
			want := `Bearer error="insufficient_scope", scope="` + tc.scope + `", resource_metadata="` + prm + `"`
			if r.Status != http.StatusForbidden || r.Header.Get("WWW-Authenticate") != want {
				t.Errorf("%s: %d, WWW-Authenticate %q, want %q", tc.tool, r.Status, r.Header.Get("WWW-Authenticate"), want)
			}
			mcpRPCError(t, r, 9, -32003, "needs the "+tc.missing+" scope")
		}
		// A batch (2025-03-26) asks for every missing scope at once.
		r := mcpRaw(t, m, "POST", narrow, "", "["+mcpCall(1, "list_organizations")+","+mcpCall(2, "revoke_session")+"]",
			"MCP-Protocol-Version", "2025-03-26")
		if want := `Bearer error="insufficient_scope", scope="openid read:organizations read:users write:users", resource_metadata="` + prm + `"`; r.Status != http.StatusForbidden || r.Header.Get("WWW-Authenticate") != want {
			t.Errorf("batch: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
		}
		mcpRPCError(t, r, nil, -32003, "scopes read:organizations write:users")
		// String ids come back as they were sent.
		r = mcpRaw(t, m, "POST", narrow, "", `{"jsonrpc":"2.0","id":"call-x","method":"tools/call","params":{"name":"list_organizations"}}`)
		mcpRPCError(t, r, "call-x", -32003, "read:organizations")
		// The same token: the tools of its scope, and the tool list.
		for _, tool := range []string{"whoami", "list_sessions"} {
			r := mcpRaw(t, m, "POST", narrow, "", mcpCall(10, tool))
			var body struct {
				Result mcp.CallToolResult `json:"result"`
			}
			if r.Status != http.StatusOK {
				t.Fatalf("%s: %d %s", tool, r.Status, r.Body)
			}
			r.Decode(t, &body)
			if body.Result.IsError {
				t.Errorf("%s: %s", tool, r.Body)
			}
		}
		r = mcpRaw(t, m, "POST", narrow, "", `{"jsonrpc":"2.0","id":11,"method":"tools/list"}`)
		if r.Status != http.StatusOK || strings.Count(string(r.Body), `"name":"`) < 4 {
			t.Errorf("tools/list: %d %s", r.Status, r.Body)
		}
		// An unknown tool needs no scope: the SDK answers it.
		if r := mcpRaw(t, m, "POST", narrow, "", mcpCall(12, "drop_tables")); r.Status == http.StatusForbidden {
			t.Errorf("unknown tool: %d %s", r.Status, r.Body)
		}
		// The SDK's client parses the challenge (RFC 9110) as intended.
		r = mcpRaw(t, m, "POST", narrow, "", mcpCall(13, "revoke_session"))
		cs, err := oauthex.ParseWWWAuthenticate(r.Header.Values("WWW-Authenticate"))
		if err != nil || len(cs) != 1 || cs[0].Scheme != "bearer" || cs[0].Params["error"] != "insufficient_scope" ||
			cs[0].Params["scope"] != "openid read:users write:users" || cs[0].Params["resource_metadata"] != prm {
			t.Errorf("parsed challenge %+v (%v)", cs, err)
		}
	})
}

// --- metadata ---------------------------------------------------------------

func TestMCPResourceMetadata(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		get := func(path string, headers ...string) apitest.Response {
			t.Helper()
			req, _ := http.NewRequest("GET", m.issuer+path, nil)
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
		}
		for _, tc := range []struct {
			path string
			want string
		}{
			{mcpMetadataSuffix, `{"resource":"` + m.issuer + `/mcp","authorization_servers":["` + m.issuer + `"],` +
				`"scopes_supported":["read:organizations","read:users","write:users"],"bearer_methods_supported":["header"],` +
				`"resource_name":"Gatehouse MCP server"}`},
			{"/.well-known/oauth-protected-resource/api/v1", `{"resource":"` + m.issuer + `/api/v1","authorization_servers":["` + m.issuer + `"],` +
				`"scopes_supported":["read:users","write:users","read:organizations","write:organizations","admin"],` +
				`"bearer_methods_supported":["header"],"resource_name":"Gatehouse REST API","resource_documentation":"` + m.issuer + `/docs"}`},
		} {
			r := get(tc.path, "Origin", "https://inspector.example")
			if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != tc.want {
				t.Errorf("%s: %d\n got %s\nwant %s", tc.path, r.Status, r.Body, tc.want)
			}
			if r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("Content-Type") != "application/json" ||
				r.Header.Get("Cache-Control") != "public, max-age=300" {
				t.Errorf("%s: headers %v", tc.path, r.Header)
			}
		}
		// The SDK's validation (RFC 9728 §3.3: resource = the URL the
		// document was derived from) accepts both documents.
		ctx := context.Background()
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, m.issuer+mcpMetadataSuffix, m.endpoint(), http.DefaultClient)
		if err != nil || prm.AuthorizationServers[0] != m.issuer {
			t.Errorf("SDK on /mcp's document: %+v %v", prm, err)
		}
		if _, err := oauthex.GetProtectedResourceMetadata(ctx, m.issuer+"/.well-known/oauth-protected-resource/api/v1", m.issuer+"/api/v1", http.DefaultClient); err != nil {
			t.Errorf("SDK on the API's document: %v", err)
		}
		// No document at the root (see mcp.go): 404, which the SDK treats
		// as "none here".
		for _, p := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/", "/.well-known/oauth-protected-resource/api"} {
			if r := get(p); r.Status != http.StatusNotFound {
				t.Errorf("%s: %d %s", p, r.Status, r.Body)
			}
		}
		if _, err := oauthex.GetProtectedResourceMetadata(ctx, m.issuer+"/.well-known/oauth-protected-resource", m.issuer, http.DefaultClient); err == nil {
			t.Error("the SDK found a root document")
		}

		// Discovery from the 401, as the SDK's client does it: the
		// challenge's resource_metadata names a document about the URL
		// that answered, whose authorization server publishes metadata.
		r := mcpRaw(t, m, "POST", "", "", mcpCall(1, "whoami"))
		cs, err := oauthex.ParseWWWAuthenticate(r.Header.Values("WWW-Authenticate"))
		if err != nil || len(cs) != 1 || cs[0].Params["scope"] != mcpAllScopes {
			t.Fatalf("challenge %+v %v", cs, err)
		}
		prm, err = oauthex.GetProtectedResourceMetadata(ctx, cs[0].Params["resource_metadata"], m.endpoint(), http.DefaultClient)
		if err != nil {
			t.Fatal(err)
		}
		asm, err := sdkauth.GetAuthServerMetadata(ctx, prm.AuthorizationServers[0], http.DefaultClient)
		if err != nil || asm == nil || asm.Issuer != m.issuer || !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
			t.Errorf("authorization server metadata %+v %v", asm, err)
		}
	})
}

func TestMCPDisabled(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		for _, r := range []apitest.Response{
			e.Get("/.well-known/oauth-protected-resource/mcp", ""),
			e.Get("/.well-known/oauth-protected-resource/api/v1", ""),
			e.Post("/mcp", "", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
			e.Get("/mcp", ""),
		} {
			r.Expect(t, http.StatusNotFound, "SYS_002")
			if _, msg, _ := r.ErrorCode(t); !strings.Contains(msg, "OAUTH_PROVIDER_ENABLED") {
				t.Errorf("message %q", msg)
			}
		}
	})
}

// TestMCPCORS: browser-based MCP clients may call /mcp from any origin
// (bearer tokens only, no cookies) and read the challenge.
func TestMCPCORS(t *testing.T) {
	mcpEach(t, nil, func(t *testing.T, m *mcpEnv) {
		r := mcpRaw(t, m, "OPTIONS", "", "", "", "Origin", "https://inspector.example", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization, content-type, mcp-protocol-version")
		if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "MCP-Protocol-Version") ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
			r.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight: %d %v", r.Status, r.Header)
		}
		r = mcpRaw(t, m, "POST", "", "", mcpCall(1, "whoami"), "Origin", "https://inspector.example")
		if r.Status != http.StatusUnauthorized || r.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Errorf("POST: %d %v", r.Status, r.Header)
		}
	})
}

// TestMCPResourceMetadataIssuerWithPath: with Gatehouse behind a proxy under
// a path (OAUTH_ISSUER https://id.example.com/auth), the documents name the
// resources under that path and are served where RFC 9728 puts them, the
// path after the well-known prefix.
func TestMCPResourceMetadataIssuerWithPath(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		const iss = "https://id.example.com/auth"
		r := e.Get("/.well-known/oauth-protected-resource/auth/mcp", "").Expect(t, http.StatusOK, "")
		if m := r.JSON(t); m["resource"] != iss+"/mcp" || fmt.Sprint(m["authorization_servers"]) != "["+iss+"]" {
			t.Errorf("/mcp document %s", r.Body)
		}
		r = e.Get("/.well-known/oauth-protected-resource/auth/api/v1", "").Expect(t, http.StatusOK, "")
		if m := r.JSON(t); m["resource"] != iss+"/api/v1" {
			t.Errorf("API document %s", r.Body)
		}
		r = e.Post("/mcp", "", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
		if want := `Bearer resource_metadata="https://id.example.com/.well-known/oauth-protected-resource/auth/mcp", scope="` + mcpAllScopes + `"`; r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != want {
			t.Errorf("challenge %d %q, want %q", r.Status, r.Header.Get("WWW-Authenticate"), want)
		}
	}, apitest.WithEnv("OAUTH_PROVIDER_ENABLED", "true"), apitest.WithEnv("OAUTH_ISSUER", "https://id.example.com/auth"))
}
