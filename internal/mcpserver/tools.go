package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

type tools struct{ d Deps }

func ptr[T any](v T) *T { return &v }

// register adds the tools. Their descriptions and schemas are what MCP
// clients show to users and models, so they say what each tool reads or
// changes, whose data it is, and which scope it needs.
func (t *tools) register(s *mcp.Server) {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(false)}
	mcp.AddTool(s, &mcp.Tool{
		Name:  ToolWhoami,
		Title: "Who am I",
		Description: "Returns the profile of the signed-in user this connection acts for: id, email, name, phone number, " +
			"locale, whether the account is an administrator (superuser), when it was created, and which application " +
			"and scopes this connection was granted. Takes no arguments. Requires the read:users scope.",
		Annotations: withTitle(readOnly, "Who am I"),
	}, t.whoami)
	mcp.AddTool(s, &mcp.Tool{
		Name:  ToolListOrganizations,
		Title: "My organizations",
		Description: "Lists the organizations the signed-in user is an active member of, each with the user's role in it " +
			"(owner, admin, member or guest), whether the organization is active, its number of members and when the " +
			"user joined. Takes no arguments. Requires the read:organizations scope.",
		Annotations: withTitle(readOnly, "My organizations"),
	}, t.listOrganizations)
	mcp.AddTool(s, &mcp.Tool{
		Name:  ToolListSessions,
		Title: "My sessions",
		Description: "Lists the signed-in user's active sessions: every device, app or browser currently signed in to the " +
			"account, with its id, kind, device name, IP address, approximate location, and when it was created, last " +
			"used and expires. Use a session's id with revoke_session to sign it out. Applications the user authorized " +
			"(such as this one) are not sessions and are not listed. Takes no arguments. Requires the read:users scope.",
		Annotations: withTitle(readOnly, "My sessions"),
	}, t.listSessions)
	mcp.AddTool(s, &mcp.Tool{
		Name:  ToolRevokeSession,
		Title: "Revoke a session",
		Description: "Signs one of the signed-in user's own sessions out: its tokens stop working at once and that device " +
			"or browser must sign in again. Take the id from list_sessions. Only the user's own sessions can be revoked; " +
			"revoking a session that is already signed out succeeds again. Requires the write:users scope.",
		InputSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"session_id": map[string]any{"type": "string", "format": "uuid", "minLength": 36, "maxLength": 36,
					"description": "The id of the session to revoke, as returned by list_sessions (a UUID)."},
			},
			"required":             []string{"session_id"},
			"additionalProperties": false,
		},
		Annotations: &mcp.ToolAnnotations{Title: "Revoke a session", DestructiveHint: ptr(true), IdempotentHint: true,
			OpenWorldHint: ptr(false)},
	}, t.revokeSession)
}

func withTitle(a *mcp.ToolAnnotations, title string) *mcp.ToolAnnotations {
	c := *a
	c.Title = title
	return &c
}

// caller is the verified identity of a tool call.
type caller struct {
	actor    user.Actor
	clientID string
	scopes   []string
}

// errNoToken is returned when a call reaches a tool without a verified
// token: the server is mounted without the edge's authentication.
var errNoToken = errors.New("this request carries no verified access token")

// callerOf returns the caller of req from the verified token the edge
// attached, after checking that the token grants scope. Nothing in the
// request's arguments or headers can change who the caller is. The actor
// never carries superuser rights: the tools act on the caller's own data
// only, whoever the caller is.
func callerOf(req *mcp.CallToolRequest, scope string) (caller, error) {
	if req == nil || req.Extra == nil || req.Extra.TokenInfo == nil || req.Extra.TokenInfo.UserID == "" {
		return caller{}, errNoToken
	}
	ti := req.Extra.TokenInfo
	if !slices.Contains(ti.Scopes, scope) {
		return caller{}, fmt.Errorf("this tool needs the %s scope, which this connection was not granted; "+
			"authorize the application again and allow it", scope)
	}
	clientID, _ := ti.Extra[extraClientID].(string)
	return caller{actor: user.Actor{UserID: ti.UserID}, clientID: clientID, scopes: slices.Clone(ti.Scopes)}, nil
}

// failure turns a domain error into a tool error: the message of a
// classified error is client-safe; anything else is logged and replaced by
// a generic message (no SQL or internals in tool results).
func (t *tools) failure(ctx context.Context, tool string, err error) error {
	if ae, ok := apperr.As(err); ok && ae.Kind != apperr.Internal {
		return errors.New(ae.Message)
	}
	t.d.Logger.ErrorContext(ctx, "mcp tool failed", "tool", tool, "err", err)
	return errors.New("the request could not be completed; try again later")
}

// --- whoami ----------------------------------------------------------------

// Profile is the output of whoami.
type Profile struct {
	ID            string    `json:"id" jsonschema:"The user's id (a UUID)"`
	Email         string    `json:"email" jsonschema:"The account's email address"`
	FirstName     string    `json:"first_name" jsonschema:"First name"`
	LastName      *string   `json:"last_name,omitempty" jsonschema:"Last name, absent when not set"`
	FullName      string    `json:"full_name" jsonschema:"First and last name (the email when both are empty)"`
	PhoneNumber   *string   `json:"phone_number,omitempty" jsonschema:"Phone number, absent when not set"`
	Locale        *string   `json:"locale,omitempty" jsonschema:"Preferred locale, absent when not set"`
	IsSuperuser   bool      `json:"is_superuser" jsonschema:"Whether the account is a Gatehouse administrator (these tools never use administrator rights)"`
	HasPassword   bool      `json:"has_password" jsonschema:"Whether the account can sign in with a password (false for accounts created by social login)"`
	CreatedAt     time.Time `json:"created_at" jsonschema:"When the account was created (RFC 3339)"`
	ClientID      string    `json:"client_id" jsonschema:"The OAuth client id of the application this connection acts through"`
	GrantedScopes []string  `json:"granted_scopes" jsonschema:"The scopes the user granted this connection"`
}

func (t *tools) whoami(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, Profile, error) {
	c, err := callerOf(req, toolScopes[ToolWhoami])
	if err != nil {
		return nil, Profile{}, err
	}
	u, err := t.d.Users.Get(ctx, c.actor, c.actor.UserID)
	if err != nil {
		return nil, Profile{}, t.failure(ctx, ToolWhoami, err)
	}
	full := strings.TrimSpace(u.FirstName + " " + deref(u.LastName))
	if full == "" {
		full = u.Email
	}
	return nil, Profile{ID: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName, FullName: full,
		PhoneNumber: u.PhoneNumber, Locale: u.Locale, IsSuperuser: u.IsSuperuser, HasPassword: u.HasPassword(),
		CreatedAt: u.CreatedAt, ClientID: c.clientID, GrantedScopes: c.scopes}, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// --- list_organizations ----------------------------------------------------

// Organization is one organization of the caller, with the caller's role.
type Organization struct {
	ID          string    `json:"id" jsonschema:"The organization's id (a UUID)"`
	Name        string    `json:"name" jsonschema:"Display name"`
	Slug        string    `json:"slug" jsonschema:"URL-friendly unique name"`
	Description *string   `json:"description,omitempty" jsonschema:"Description, absent when not set"`
	Role        string    `json:"role" jsonschema:"The user's role: owner, admin, member or guest"`
	IsActive    bool      `json:"is_active" jsonschema:"False when the organization has been deactivated (read-only for its members)"`
	MemberCount int       `json:"member_count" jsonschema:"Number of active members"`
	JoinedAt    time.Time `json:"joined_at" jsonschema:"When the user became a member (RFC 3339)"`
}

// Organizations is the output of list_organizations.
type Organizations struct {
	Organizations []Organization `json:"organizations" jsonschema:"The user's organizations, as the account lists them (newest first)"`
	Total         int            `json:"total" jsonschema:"Number of organizations listed"`
}

func (t *tools) listOrganizations(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, Organizations, error) {
	c, err := callerOf(req, toolScopes[ToolListOrganizations])
	if err != nil {
		return nil, Organizations{}, err
	}
	list, err := t.d.Orgs.MyAffiliations(ctx, c.actor)
	if err != nil {
		return nil, Organizations{}, t.failure(ctx, ToolListOrganizations, err)
	}
	out := Organizations{Organizations: make([]Organization, 0, len(list))}
	for _, a := range list {
		o, m := a.Organization, a.Membership
		out.Organizations = append(out.Organizations, Organization{ID: o.ID, Name: o.Name, Slug: o.Slug,
			Description: o.Description, Role: string(m.Role), IsActive: o.IsActive, MemberCount: o.MemberCount, JoinedAt: m.CreatedAt})
	}
	out.Total = len(out.Organizations)
	return nil, out, nil
}

// --- list_sessions ---------------------------------------------------------

// Session is one signed-in device or browser of the caller.
type Session struct {
	ID              string    `json:"id" jsonschema:"The session's id (a UUID); pass it to revoke_session to sign the session out"`
	Kind            string    `json:"kind" jsonschema:"api: an app or device signed in through the API; browser: a sign-in on Gatehouse's own pages"`
	DeviceName      *string   `json:"device_name,omitempty" jsonschema:"Device or browser name, absent when unknown"`
	IPAddress       *string   `json:"ip_address,omitempty" jsonschema:"IP address the session signed in from, absent when unknown"`
	LocationCity    *string   `json:"location_city,omitempty" jsonschema:"Approximate city, absent when unknown"`
	LocationCountry *string   `json:"location_country,omitempty" jsonschema:"Approximate country, absent when unknown"`
	CreatedAt       time.Time `json:"created_at" jsonschema:"When the session signed in (RFC 3339)"`
	LastUsedAt      time.Time `json:"last_used_at" jsonschema:"When the session was last used (RFC 3339)"`
	ExpiresAt       time.Time `json:"expires_at" jsonschema:"When the session ends unless it is used again (RFC 3339)"`
}

// Sessions is the output of list_sessions.
type Sessions struct {
	Sessions []Session `json:"sessions" jsonschema:"Active sessions, most recently used first"`
	Total    int       `json:"total" jsonschema:"Number of active sessions"`
}

func toSession(s auth.Session) Session {
	return Session{ID: s.ID, Kind: s.Kind, DeviceName: s.DeviceName, IPAddress: s.IPAddress, LocationCity: s.LocationCity,
		LocationCountry: s.LocationCountry, CreatedAt: s.CreatedAt, LastUsedAt: s.LastUsedAt, ExpiresAt: s.ExpiresAt}
}

func (t *tools) listSessions(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, Sessions, error) {
	c, err := callerOf(req, toolScopes[ToolListSessions])
	if err != nil {
		return nil, Sessions{}, err
	}
	list, err := t.d.Auth.Sessions(ctx, c.actor)
	if err != nil {
		return nil, Sessions{}, t.failure(ctx, ToolListSessions, err)
	}
	out := Sessions{Sessions: make([]Session, 0, len(list)), Total: len(list)}
	for _, s := range list {
		out.Sessions = append(out.Sessions, toSession(s))
	}
	return nil, out, nil
}

// --- revoke_session --------------------------------------------------------

// RevokeInput is the input of revoke_session.
type RevokeInput struct {
	SessionID string `json:"session_id"`
}

// Revoked is the output of revoke_session.
type Revoked struct {
	Revoked bool    `json:"revoked" jsonschema:"Always true: the session is signed out"`
	Session Session `json:"session" jsonschema:"The session that was revoked"`
}

func (t *tools) revokeSession(ctx context.Context, req *mcp.CallToolRequest, in RevokeInput) (*mcp.CallToolResult, Revoked, error) {
	c, err := callerOf(req, toolScopes[ToolRevokeSession])
	if err != nil {
		return nil, Revoked{}, err
	}
	id, err := uuid.Parse(in.SessionID)
	if err != nil || len(in.SessionID) != 36 {
		return nil, Revoked{}, errors.New("session_id must be a session id from list_sessions (a UUID such as 0190f5a4-7c1e-7d3a-9b2f-4e8a1c2d3e4f)")
	}
	s, err := t.d.Auth.RevokeSession(ctx, c.actor, id.String())
	// Another user's session answers exactly like an unknown one: the tool
	// does not tell which session ids exist.
	if errors.Is(err, auth.ErrSessionNotFound) || errors.Is(err, auth.ErrNotOwnSession) {
		return nil, Revoked{}, fmt.Errorf("you have no session with id %s; list_sessions shows your sessions", id)
	}
	if err != nil {
		return nil, Revoked{}, t.failure(ctx, ToolRevokeSession, err)
	}
	return nil, Revoked{Revoked: true, Session: toSession(s)}, nil
}
