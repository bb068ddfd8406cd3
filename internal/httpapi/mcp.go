package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/mcpserver"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// The protected MCP server at /mcp (contract §4.4, issue 6) and the RFC 9728
// protected-resource metadata of the resources Gatehouse serves: /mcp and the
// REST API. The MCP authorization rules this file implements are rows 21 to
// 28 of the checklist in ../shared/docs/mcp-authorization.md:
//
//   - every request to /mcp carries a bearer token in the Authorization
//     header (never the query string), verified with the authorization
//     server (signature, issuer, expiry, grant not revoked, user active)
//     and accepted only when its audience is the MCP resource itself,
//     {issuer}/mcp: a token for the REST API, for a client id or for any
//     other resource is refused (no token passthrough);
//   - a 401 carries WWW-Authenticate: Bearer resource_metadata="…", scope="…"
//     (with error="invalid_token" when a token was presented), the scope
//     listing every scope the tools need, so one authorization covers them;
//   - a tools/call for a tool whose scope the token lacks is 403 with
//     error="insufficient_scope" and the scopes to ask for (the token's plus
//     the missing ones), which MCP clients answer with a step-up
//     authorization; the token's other tools keep working;
//   - the tools take the user from the verified token only (mcpserver).
//
// Why not the SDK's auth.RequireBearerToken alone: it has one scope list for
// the whole endpoint (no per-tool step-up), writes neither error="…" nor
// the same challenge for 401 and 403, and answers plain text, which the
// SDK's client reads as a broken connection rather than a failed call. So
// the checks happen here, and RequireBearerToken only carries the verified
// identity into the SDK (its TokenInfo context key is private to the SDK).

const (
	mcpPath = "/mcp"
	// prmPrefix is the RFC 9728 well-known prefix; a resource's metadata is
	// at prmPrefix + the resource's path.
	prmPrefix = "/.well-known/oauth-protected-resource"

	// JSON-RPC error codes of refused requests (implementation-defined
	// server errors, -32000 to -32099).
	mcpCodeUnauthorized      = -32001
	mcpCodeInsufficientScope = -32003
)

// apiScopes are the scopes of provider tokens at the REST API (contract §4.4).
var apiScopes = []string{"read:users", "write:users", "read:organizations", "write:organizations", "admin"}

// mcpResource is the canonical resource identifier of /mcp: the audience an
// access token must carry, and the "resource" clients send (RFC 8707).
func (s *server) mcpResource() string { return oauth.CanonicalResource(s.Config.Provider.MCPResource) }

// apiResource is the REST API's resource identifier.
func (s *server) apiResource() string { return oauth.CanonicalResource(s.Config.Provider.APIResource) }

// metadataURL is where RFC 9728 §3.1 puts a resource's metadata: the
// well-known prefix inserted between the host and the path.
func metadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	u.Path = prmPrefix + strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String()
}

// metadataPath is the path at which requests for a resource's metadata
// reach Gatehouse: /.well-known/oauth-protected-resource/mcp when the issuer
// is an origin, as documented; with an issuer that has a path (Gatehouse
// behind a proxy under /auth), the well-known URL keeps that path after the
// prefix (…/oauth-protected-resource/auth/mcp), and a proxy that forwards
// /.well-known/ unchanged delivers it as such.
func metadataPath(resource string) string {
	u, err := url.Parse(metadataURL(resource))
	if err != nil {
		return prmPrefix + mcpPath
	}
	return u.Path
}

// resourceMetadata is an RFC 9728 protected-resource metadata document.
type resourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

func (s *server) mcpMetadata() resourceMetadata {
	return resourceMetadata{Resource: s.mcpResource(), AuthorizationServers: []string{s.Config.Provider.Issuer},
		ScopesSupported: mcpserver.Scopes(), BearerMethodsSupported: []string{"header"},
		ResourceName: s.Config.ProjectName + " MCP server"}
}

func (s *server) apiMetadata() resourceMetadata {
	return resourceMetadata{Resource: s.apiResource(), AuthorizationServers: []string{s.Config.Provider.Issuer},
		ScopesSupported: apiScopes, BearerMethodsSupported: []string{"header"},
		ResourceName: s.Config.ProjectName + " REST API", ResourceDocumentation: s.Config.Provider.Issuer + "/docs"}
}

// mcpResourceMetadata serves GET /.well-known/oauth-protected-resource/mcp.
func (s *server) mcpResourceMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.mcpMetadata())
}

// apiResourceMetadata serves GET /.well-known/oauth-protected-resource/api/v1.
func (s *server) apiResourceMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, s.apiMetadata())
}

// There is deliberately no document at the root, /.well-known/oauth-
// protected-resource. RFC 9728 §3.3 requires a document's "resource" to be
// the identifier the well-known URL was built from, and the root URL is
// built from the bare origin: the MCP SDK's client, trying the path-specific
// URL and then the root, checks the root document's resource against
// "{origin}" and rejects anything else. Gatehouse protects no resource named
// by the bare origin (tokens for it would be refused everywhere: the
// authorization server answers invalid_target, /mcp checks its own
// audience), so a root document would either break §3.3 (a copy of the /mcp
// document) or send clients after tokens nobody accepts (an origin
// document). Clients find /mcp's document through the 401's
// resource_metadata or the path-specific URL; one that still reaches the
// root gets 404 and falls back to the origin as the authorization server,
// which is right for Gatehouse.

type mcpTokenKey struct{}

// newMCPHandler builds the /mcp handler: the bearer check and per-tool
// scope check of serveMCP in front of the SDK's streamable handler.
func (s *server) newMCPHandler() http.HandlerFunc {
	srv := mcpserver.New(mcpserver.Deps{Users: s.Users, Orgs: s.Orgs, Auth: s.Auth, Name: s.Config.ProjectName,
		Version: s.Config.Version, Logger: s.logger})
	sdk := mcpserver.Handler(srv, s.Config.HTTP.MaxBodyBytes, s.logger)
	// RequireBearerToken only hands the identity verified by serveMCP to the
	// SDK (TokenInfo in each request's Extra); it never sees a token that
	// serveMCP has not accepted.
	verified := func(ctx context.Context, _ string, _ *http.Request) (*sdkauth.TokenInfo, error) {
		if ti, ok := ctx.Value(mcpTokenKey{}).(*sdkauth.TokenInfo); ok {
			return ti, nil
		}
		return nil, sdkauth.ErrInvalidToken
	}
	inner := sdkauth.RequireBearerToken(verified, nil)(sdk)
	return func(w http.ResponseWriter, r *http.Request) { s.serveMCP(w, r, inner) }
}

// serveMCP authenticates a request to /mcp and checks the scopes of the
// tools it calls before the SDK sees it.
func (s *server) serveMCP(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ctx := r.Context()
	// Peek at the JSON-RPC body (bounded; limitBody already caps it while
	// it is read) for the tools it calls and the id to answer a refusal
	// with, then restore it for the SDK.
	var msgs []mcpserver.Message
	if r.Method == http.MethodPost && r.Body != nil && r.Body != http.NoBody {
		limit := s.Config.HTTP.MaxBodyBytes
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe) || int64(len(body)) > limit:
			writeEnvelope(w, tooLarge(limit))
			return
		case err != nil:
			return // the client went away
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		msgs, _ = mcpserver.Peek(body)
	}

	raw, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		desc := "This MCP server needs an OAuth access token for " + s.mcpResource() + " in the Authorization header (Bearer)"
		if r.URL.Query().Has("access_token") {
			desc = "Access tokens are accepted in the Authorization header only, never in the query string"
		}
		s.mcpRefuse(w, msgs, http.StatusUnauthorized, "", s.mcpChallenge(""), desc)
		return
	}
	claims, err := s.OAuth.VerifyAccessToken(ctx, raw)
	if err != nil {
		if !errors.Is(err, oauth.ErrBadToken) && !errors.Is(err, oauth.ErrTokenInactive) {
			s.writeAPIError(w, r, err) // the database, not the token
			return
		}
		s.mcpRefuse(w, msgs, http.StatusUnauthorized, "invalid_token", s.mcpChallenge("invalid_token"),
			"The access token is invalid, expired or revoked")
		return
	}
	resource := s.mcpResource()
	if !slices.ContainsFunc(claims.Audience, func(a string) bool { return oauth.CanonicalResource(a) == resource }) {
		s.logger.InfoContext(ctx, "mcp: access token for another audience refused", "client_id", claims.ClientID,
			"aud", strings.Join(claims.Audience, " "), "request_id", requestIDFrom(ctx))
		s.mcpRefuse(w, msgs, http.StatusUnauthorized, "invalid_token", s.mcpChallenge("invalid_token"),
			"The access token was not issued for this resource; request one with resource="+resource)
		return
	}
	granted := oauth.ParseScope(claims.Scope)
	if missing := mcpserver.MissingScopes(msgs, granted); len(missing) > 0 {
		want := oauth.ParseScope(oauth.JoinScope(append(slices.Clone(granted), missing...)))
		challenge := `Bearer error="insufficient_scope", scope=` + quote(oauth.JoinScope(want)) +
			", resource_metadata=" + quote(metadataURL(resource))
		what := "This tool needs the " + missing[0] + " scope, which the access token was not granted"
		if len(missing) > 1 {
			what = "These tools need the scopes " + strings.Join(missing, " ") + ", which the access token was not granted"
		}
		s.mcpRefuse(w, msgs, http.StatusForbidden, "insufficient_scope", challenge, what)
		return
	}
	ti := mcpserver.NewTokenInfo(claims.Subject, claims.ClientID, granted, claims.ExpiresAt.Time)
	next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, mcpTokenKey{}, ti)))
}

// mcpChallenge is the WWW-Authenticate value of a 401: where the metadata
// is and every scope the tools need (one authorization covers them all),
// with the error code when a token was presented.
func (s *server) mcpChallenge(code string) string {
	params := []string{"resource_metadata=" + quote(metadataURL(s.mcpResource())), "scope=" + quote(oauth.JoinScope(mcpserver.Scopes()))}
	if code != "" {
		params = append([]string{"error=" + quote(code)}, params...)
	}
	return "Bearer " + strings.Join(params, ", ")
}

// quote is an RFC 9110 quoted-string.
func quote(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// mcpRefuse answers a refused request: the challenge, and a JSON-RPC error
// response, with the request's id when the body was one request, so that MCP
// clients report a failed call rather than a broken connection.
func (s *server) mcpRefuse(w http.ResponseWriter, msgs []mcpserver.Message, status int, code, challenge, desc string) {
	id := json.RawMessage("null")
	if len(msgs) == 1 && msgs[0].ID != nil {
		id = msgs[0].ID
	}
	rpcCode := mcpCodeUnauthorized
	if status == http.StatusForbidden {
		rpcCode = mcpCodeInsufficientScope
	}
	type rpcError struct {
		Code    int               `json:"code"`
		Message string            `json:"message"`
		Data    map[string]string `json:"data,omitempty"`
	}
	e := rpcError{Code: rpcCode, Message: desc}
	if code != "" {
		e.Data = map[string]string{"error": code}
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   rpcError        `json:"error"`
	}{"2.0", id, e})
}
