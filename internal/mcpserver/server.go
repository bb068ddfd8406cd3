// Package mcpserver is Gatehouse's Model Context Protocol server (contract
// §4.4, issue 6): a few tools over the caller's own data — who am I, my
// organizations, my sessions, revoke one of my sessions — served over
// streamable HTTP with the official Go SDK.
//
// The package knows nothing of HTTP authentication. The HTTP edge
// (internal/httpapi, /mcp) verifies the OAuth access token, checks that its
// audience is the MCP endpoint, refuses a tools/call whose scope the token
// lacks (403 insufficient_scope, RequiredScopes), and hands the verified
// identity to the SDK as an auth.TokenInfo built by NewTokenInfo. Every tool
// takes the caller from that TokenInfo only — never from its arguments
// (MCP security best practices, "state handle hijacking") — and checks its
// own scope again, so a request that slipped past the edge's peek at the
// body still cannot use a tool the token was not granted.
package mcpserver

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Scopes the tools need (the authorization server's scope names).
const (
	ScopeReadUsers         = "read:users"
	ScopeWriteUsers        = "write:users"
	ScopeReadOrganizations = "read:organizations"
)

// Tool names.
const (
	ToolWhoami            = "whoami"
	ToolListOrganizations = "list_organizations"
	ToolListSessions      = "list_sessions"
	ToolRevokeSession     = "revoke_session"
)

// toolScopes is the scope each tool requires.
var toolScopes = map[string]string{
	ToolWhoami:            ScopeReadUsers,
	ToolListOrganizations: ScopeReadOrganizations,
	ToolListSessions:      ScopeReadUsers,
	ToolRevokeSession:     ScopeWriteUsers,
}

// ToolScope returns the scope a tool requires; false for unknown tools.
func ToolScope(tool string) (string, bool) {
	s, ok := toolScopes[tool]
	return s, ok
}

// Scopes returns every scope the tools need, sorted: what the protected
// resource metadata lists and what a 401 challenge asks for.
func Scopes() []string {
	var out []string
	for _, s := range toolScopes {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Deps are the domain services the tools call and the server's identity.
type Deps struct {
	Users   *user.Service
	Orgs    *org.Service
	Auth    *auth.Service
	Name    string // PROJECT_NAME, shown to clients as the server's title
	Version string
	Logger  *slog.Logger
}

// New returns the MCP server with its tools. It is safe for concurrent use
// by any number of sessions.
func New(d Deps) *mcp.Server {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	title := d.Name
	if title == "" {
		title = "Gatehouse"
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "gatehouse", Title: title, Version: d.Version,
		Description: "Your account on " + title + ": profile, organizations and signed-in sessions."},
		&mcp.ServerOptions{
			Instructions: "These tools act on the account of the person who authorized this connection, and only on it: " +
				"their profile (whoami), their organizations and roles (list_organizations), the devices and browsers " +
				"signed in to their account (list_sessions), and signing one of those out (revoke_session). " +
				"Each tool needs one OAuth scope; a tool whose scope was not granted asks the user to authorize it.",
			Logger: quiet(d.Logger),
			// Tools only: no logging capability, and no list-changed
			// notifications (the tool list never changes, and the server
			// is stateless).
			Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}},
		})
	t := &tools{d: d}
	t.register(s)
	return s
}

// Handler serves s over streamable HTTP. The handler expects to sit behind
// the edge's bearer-token check (the identity arrives as the SDK's
// auth.TokenInfo in the request context).
//
//   - Stateless: no Mcp-Session-Id. Every request stands alone and carries
//     its own bearer token, so several Gatehouse instances behind a load
//     balancer serve one client without sticky sessions, and no session
//     handle can ever stand in for authentication. This is also the
//     direction of the 2026-07-28 revision; the SDK still answers
//     2025-03-26 to 2025-11-25 clients (initialize included).
//   - JSON responses: every answer is a single JSON-RPC message; the tools
//     neither stream nor notify.
//   - The SDK's DNS-rebinding guard (403 for requests that reach a
//     loopback listener with a non-loopback Host) is off: it protects
//     unauthenticated local servers, whereas /mcp requires a bearer token
//     on every request, and the guard would refuse Gatehouse behind a
//     reverse proxy on the same host that keeps the public Host header.
func Handler(s *mcp.Server, maxBody int64, logger *slog.Logger) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		Stateless:                  true,
		JSONResponse:               true,
		DisableLocalhostProtection: true,
		MaxRequestBodyBytes:        maxBody,
		Logger:                     quiet(logger),
	})
}

// quiet keeps the SDK's warnings and errors only: a stateless server
// connects and disconnects a session for every request, which the SDK logs
// at info level.
func quiet(l *slog.Logger) *slog.Logger {
	if l == nil {
		return nil
	}
	return slog.New(warnAndAbove{l.Handler()})
}

type warnAndAbove struct{ slog.Handler }

func (h warnAndAbove) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn && h.Handler.Enabled(ctx, level)
}

func (h warnAndAbove) WithAttrs(attrs []slog.Attr) slog.Handler {
	return warnAndAbove{h.Handler.WithAttrs(attrs)}
}

func (h warnAndAbove) WithGroup(name string) slog.Handler {
	return warnAndAbove{h.Handler.WithGroup(name)}
}

// Keys of TokenInfo.Extra.
const (
	extraClientID = "client_id"
)

// NewTokenInfo is the identity the edge hands to the SDK for a verified
// access token: the user (the token's sub), the client it was issued to,
// the granted scopes and the expiry.
func NewTokenInfo(userID, clientID string, scopes []string, expires time.Time) *sdkauth.TokenInfo {
	return &sdkauth.TokenInfo{UserID: userID, Scopes: slices.Clone(scopes), Expiration: expires,
		Extra: map[string]any{extraClientID: clientID}}
}
