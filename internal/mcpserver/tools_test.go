package mcpserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/mcpserver"
	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// The tools against the real domain services (apitest's wiring, both
// engines), served by mcpserver.Handler behind a stand-in for the edge: a
// bearer check whose "tokens" map to identities chosen by the test. The
// edge's own checks (signature, audience, 401/403) are tested in
// internal/httpapi/mcp_test.go.

// tsFixture is one running MCP server with two users.
type tsFixture struct {
	e          *apitest.Env
	url        string
	alice, bob apitest.Tokens
	mu         sync.Mutex
	identities map[string]*sdkauth.TokenInfo // bearer → identity
}

// tsStart serves the tools; bare leaves out the bearer check (and the users).
func tsStart(t *testing.T, e *apitest.Env, bare bool) *tsFixture {
	t.Helper()
	f := &tsFixture{e: e, identities: map[string]*sdkauth.TokenInfo{}}
	if !bare {
		f.alice = e.User("alice@example.com")
		f.bob = e.User("bob@example.com")
	}
	srv := mcpserver.New(mcpserver.Deps{Users: e.App.Users, Orgs: e.App.Orgs, Auth: e.App.Auth, Name: "Gatehouse", Version: "test"})
	var h http.Handler = mcpserver.Handler(srv, 1<<20, nil)
	if !bare {
		verify := func(_ context.Context, tok string, _ *http.Request) (*sdkauth.TokenInfo, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if ti, ok := f.identities[tok]; ok {
				return ti, nil
			}
			return nil, sdkauth.ErrInvalidToken
		}
		h = sdkauth.RequireBearerToken(verify, nil)(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

// as registers a bearer for userID with scopes.
func (f *tsFixture) as(userID string, scopes ...string) string {
	tok := "tok-" + userID + "-" + strings.Join(scopes, "+")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.identities[tok] = mcpserver.NewTokenInfo(userID, "client-123", scopes, time.Now().Add(time.Hour))
	return tok
}

type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if b.token != "" {
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (f *tsFixture) connect(t *testing.T, token string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "tools-test", Version: "1"}, nil)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: f.url,
		HTTPClient: &http.Client{Transport: bearerTransport{token}, Timeout: 30 * time.Second}}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call calls a tool and decodes its structured result into out (unless
// the call is expected to fail); it returns the result's text.
func call(t *testing.T, cs *mcp.ClientSession, tool string, args any, wantError bool, out any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var text string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if res.IsError != wantError {
		t.Fatalf("%s: isError %v, want %v: %s", tool, res.IsError, wantError, text)
	}
	if out != nil {
		raw, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: structured content %s: %v", tool, raw, err)
		}
	}
	return text
}

func TestToolsList(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		f := tsStart(t, e, false)
		cs := f.connect(t, f.as(f.alice.UserID, mcpserver.Scopes()...))
		res, err := cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		byName := map[string]*mcp.Tool{}
		for _, tool := range res.Tools {
			byName[tool.Name] = tool
		}
		if len(byName) != 4 {
			t.Fatalf("tools %v", byName)
		}
		for name, want := range map[string]struct {
			title, scope string
			readOnly     bool
		}{
			"whoami": {"Who am I", "read:users", true}, "list_organizations": {"My organizations", "read:organizations", true},
			"list_sessions": {"My sessions", "read:users", true}, "revoke_session": {"Revoke a session", "write:users", false},
		} {
			tool := byName[name]
			if tool == nil {
				t.Errorf("no tool %s", name)
				continue
			}
			if tool.Title != want.title || !strings.Contains(tool.Description, "Requires the "+want.scope+" scope") || len(tool.Description) < 100 {
				t.Errorf("%s: title %q, description %q", name, tool.Title, tool.Description)
			}
			if tool.Annotations == nil || tool.Annotations.ReadOnlyHint != want.readOnly || tool.Annotations.OpenWorldHint == nil || *tool.Annotations.OpenWorldHint {
				t.Errorf("%s: annotations %+v", name, tool.Annotations)
			}
			if tool.OutputSchema == nil {
				t.Errorf("%s: no output schema", name)
			}
			schema, _ := json.Marshal(tool.InputSchema)
			var in struct {
				Type       string                    `json:"type"`
				Properties map[string]map[string]any `json:"properties"`
				Required   []string                  `json:"required"`
				Additional *bool                     `json:"additionalProperties"`
			}
			if err := json.Unmarshal(schema, &in); err != nil || in.Type != "object" || in.Additional == nil || *in.Additional {
				t.Errorf("%s: input schema %s", name, schema)
			}
			if name == "revoke_session" {
				p := in.Properties["session_id"]
				if p["type"] != "string" || p["format"] != "uuid" || !strings.Contains(p["description"].(string), "list_sessions") ||
					!slices.Equal(in.Required, []string{"session_id"}) {
					t.Errorf("revoke_session input schema %s", schema)
				}
			} else if len(in.Properties) != 0 {
				t.Errorf("%s takes arguments: %s", name, schema)
			}
		}
		if d := byName["revoke_session"].Annotations; d.DestructiveHint == nil || !*d.DestructiveHint || !d.IdempotentHint {
			t.Errorf("revoke_session annotations %+v", d)
		}
		init := cs.InitializeResult()
		if init == nil || init.ServerInfo.Name != "gatehouse" || init.ServerInfo.Title != "Gatehouse" || !strings.Contains(init.Instructions, "only on it") {
			t.Fatalf("initialize result %+v", init)
		}
		// Tools only: no logging, no list-changed notifications.
		if caps, _ := json.Marshal(init.Capabilities); string(caps) != `{"tools":{}}` {
			t.Errorf("capabilities %s", caps)
		}
	})
}

func TestToolsOwnDataOnly(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		f := tsStart(t, e, false)
		ctx := context.Background()
		alice := user.Actor{UserID: f.alice.UserID}
		bob := user.Actor{UserID: f.bob.UserID}
		mine, err := e.App.Orgs.Create(ctx, alice, org.Input{Name: "Alice & Co", Slug: "alice-co"}, true)
		if err != nil {
			t.Fatal(err)
		}
		shared, err := e.App.Orgs.Create(ctx, bob, org.Input{Name: "Bob's", Slug: "bobs"}, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.App.Orgs.AddMember(ctx, bob, shared.ID, org.Target{UserID: f.alice.UserID}, org.RoleGuest); err != nil {
			t.Fatal(err)
		}
		if _, err := e.App.Orgs.Create(ctx, bob, org.Input{Name: "Bob only", Slug: "bob-only"}, true); err != nil {
			t.Fatal(err)
		}
		left, err := e.App.Orgs.Create(ctx, bob, org.Input{Name: "Left", Slug: "left"}, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.App.Orgs.AddMember(ctx, bob, left.ID, org.Target{UserID: f.alice.UserID}, org.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.App.Orgs.RemoveMember(ctx, alice, left.ID, f.alice.UserID); err != nil {
			t.Fatal(err)
		}
		aliceSecond := e.Login("alice@example.com", apitest.Password) // a second device

		cs := f.connect(t, f.as(f.alice.UserID, "openid", "read:users", "read:organizations", "write:users"))

		var p mcpserver.Profile
		call(t, cs, "whoami", nil, false, &p)
		if p.ID != f.alice.UserID || p.Email != "alice@example.com" || p.FirstName != "Test" || p.LastName == nil || *p.LastName != "User" ||
			p.FullName != "Test User" || p.IsSuperuser || !p.HasPassword || p.CreatedAt.IsZero() || p.ClientID != "client-123" ||
			strings.Join(p.GrantedScopes, " ") != "openid read:users read:organizations write:users" {
			t.Errorf("whoami %+v", p)
		}
		// Arguments cannot choose the user: whoami takes none at all.
		call(t, cs, "whoami", map[string]any{"user_id": f.bob.UserID}, true, nil)

		var orgs mcpserver.Organizations
		call(t, cs, "list_organizations", nil, false, &orgs)
		roles := map[string]string{}
		for _, o := range orgs.Organizations {
			roles[o.Slug] = o.Role
			if o.Slug == "alice-co" && (o.ID != mine.ID || o.Name != "Alice & Co" || !o.IsActive || o.MemberCount != 1 || o.JoinedAt.IsZero()) {
				t.Errorf("organization %+v", o)
			}
			if o.Slug == "bobs" && o.MemberCount != 2 {
				t.Errorf("organization %+v", o)
			}
		}
		if orgs.Total != 2 || len(roles) != 2 || roles["alice-co"] != "owner" || roles["bobs"] != "guest" {
			t.Errorf("list_organizations %+v", orgs)
		}

		var sessions mcpserver.Sessions
		call(t, cs, "list_sessions", nil, false, &sessions)
		ids := map[string]bool{}
		for _, s := range sessions.Sessions {
			ids[s.ID] = true
			if s.Kind != "api" || s.ExpiresAt.Before(time.Now()) || s.CreatedAt.IsZero() || s.LastUsedAt.IsZero() {
				t.Errorf("session %+v", s)
			}
		}
		aliceIDs := sessionIDs(t, e, f.alice.Access)
		bobIDs := sessionIDs(t, e, f.bob.Access)
		if sessions.Total != 2 || len(ids) != 2 || !ids[aliceIDs[0]] || !ids[aliceIDs[1]] || ids[bobIDs[0]] {
			t.Errorf("list_sessions %+v; alice %v, bob %v", sessions, aliceIDs, bobIDs)
		}

		// revoke_session: bob's session is "not yours", answered exactly
		// like an unknown id; bad ids are refused; nothing changes.
		other := call(t, cs, "revoke_session", map[string]any{"session_id": bobIDs[0]}, true, nil)
		unknown := call(t, cs, "revoke_session", map[string]any{"session_id": "0190f5a4-7c1e-7d3a-9b2f-4e8a1c2d3e4f"}, true, nil)
		if other != strings.Replace(unknown, "0190f5a4-7c1e-7d3a-9b2f-4e8a1c2d3e4f", bobIDs[0], 1) || !strings.Contains(other, "no session with id") {
			t.Errorf("another user's session: %q; unknown: %q", other, unknown)
		}
		for _, bad := range []any{map[string]any{"session_id": "not-a-uuid"}, map[string]any{"session_id": strings.ToUpper(bobIDs[0]) + "x"},
			map[string]any{}, map[string]any{"session_id": 42}, map[string]any{"session_id": bobIDs[0], "user_id": f.bob.UserID}, nil} {
			call(t, cs, "revoke_session", bad, true, nil)
		}
		e.Get("/api/v1/users/me", f.bob.Access).Expect(t, http.StatusOK, "")

		// Her own second device: revoked, its token stops working, the
		// first device keeps working.
		var revoked mcpserver.Revoked
		second := otherThan(aliceIDs, currentSession(t, e, f.alice.Access))
		call(t, cs, "revoke_session", map[string]any{"session_id": second}, false, &revoked)
		if !revoked.Revoked || revoked.Session.ID != second {
			t.Errorf("revoke_session %+v", revoked)
		}
		e.Get("/api/v1/users/me", aliceSecond.Access).Expect(t, http.StatusUnauthorized, "")
		e.Get("/api/v1/users/me", f.alice.Access).Expect(t, http.StatusOK, "")
		call(t, cs, "list_sessions", nil, false, &sessions)
		if sessions.Total != 1 || sessions.Sessions[0].ID == second {
			t.Errorf("after the revocation: %+v", sessions)
		}
		// Revoking it again succeeds again.
		call(t, cs, "revoke_session", map[string]any{"session_id": second}, false, &revoked)

		// Bob's connection sees Bob.
		bobCS := f.connect(t, f.as(f.bob.UserID, "read:users", "read:organizations"))
		call(t, bobCS, "whoami", nil, false, &p)
		call(t, bobCS, "list_organizations", nil, false, &orgs)
		if p.ID != f.bob.UserID || orgs.Total != 3 {
			t.Errorf("bob: %+v, %d organizations", p, orgs.Total)
		}
	})
}

// TestToolsCheckScopes: each tool checks its scope itself, whatever the
// edge let through, and refuses a call that carries no verified identity.
func TestToolsCheckScopes(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		f := tsStart(t, e, false)
		cs := f.connect(t, f.as(f.alice.UserID, "read:organizations"))
		for _, tool := range []string{"whoami", "list_sessions"} {
			if msg := call(t, cs, tool, nil, true, nil); !strings.Contains(msg, "needs the read:users scope") {
				t.Errorf("%s without read:users: %q", tool, msg)
			}
		}
		if msg := call(t, cs, "revoke_session", map[string]any{"session_id": sessionIDs(t, e, f.alice.Access)[0]}, true, nil); !strings.Contains(msg, "needs the write:users scope") {
			t.Errorf("revoke_session without write:users: %q", msg)
		}
		e.Get("/api/v1/users/me", f.alice.Access).Expect(t, http.StatusOK, "")
		call(t, cs, "list_organizations", nil, false, nil)

		bare := tsStart(t, e, true)
		bareCS := bare.connect(t, "")
		for _, tool := range []string{"whoami", "list_organizations", "list_sessions"} {
			if msg := call(t, bareCS, tool, nil, true, nil); !strings.Contains(msg, "no verified access token") {
				t.Errorf("%s without a token: %q", tool, msg)
			}
		}
	})
}

// sessionIDs lists the session ids of the token's user through the REST API.
func sessionIDs(t *testing.T, e *apitest.Env, access string) []string {
	t.Helper()
	var body struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	e.Get("/api/v1/sessions/me", access).Expect(t, http.StatusOK, "").Decode(t, &body)
	var ids []string
	for _, s := range body.Sessions {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

func currentSession(t *testing.T, e *apitest.Env, access string) string {
	t.Helper()
	var body struct {
		Sessions []struct {
			ID        string `json:"id"`
			IsCurrent bool   `json:"is_current"`
		} `json:"sessions"`
	}
	e.Get("/api/v1/sessions/me", access).Expect(t, http.StatusOK, "").Decode(t, &body)
	for _, s := range body.Sessions {
		if s.IsCurrent {
			return s.ID
		}
	}
	t.Fatal("no current session")
	return ""
}

func otherThan(ids []string, not string) string {
	for _, id := range ids {
		if id != not {
			return id
		}
	}
	return ""
}
