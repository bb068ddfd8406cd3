package httpapi_test

// End-to-end tests of the organization endpoints, member-facing (reference
// §5.5 and contract §4.1) and admin (reference §5.6), on every engine.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/mailtest"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

const (
	orgsAPI      = "/api/v1/organizations"
	adminOrgsAPI = "/api/v1/admin/organizations"
	acceptAPI    = orgsAPI + "/invitations/accept"

	msgNotMember   = "Not a member of this organization"
	msgRoleMember  = "Role member not authorized. Required: owner, admin"
	msgRoleGuest   = "Role guest not authorized. Required: owner, admin"
	msgOwnerOnly   = "Only owners can grant, change or remove the owner role"
	msgInactiveOrg = "This organization is inactive: its members have read access only"
	msgWrongUser   = "This invitation was sent to another email address"
	msgSuperOnly   = "Superuser privileges required"
)

func orgURL(id string, rest ...string) string { return orgsAPI + "/" + id + strings.Join(rest, "") }

func adminOrgURL(id string, rest ...string) string {
	return adminOrgsAPI + "/" + id + strings.Join(rest, "")
}

// orgWant is an expected outcome: a status and, for errors, the envelope's
// code and exact message ("" accepts any message).
type orgWant struct {
	status    int
	code, msg string
}

var (
	orgOK200       = orgWant{status: http.StatusOK}
	orgOK201       = orgWant{status: http.StatusCreated}
	orgNotMember   = orgWant{http.StatusForbidden, "AUTH_004", msgNotMember}
	orgAsMember    = orgWant{http.StatusForbidden, "AUTH_004", msgRoleMember}
	orgAsGuest     = orgWant{http.StatusForbidden, "AUTH_004", msgRoleGuest}
	orgOwnerOnly   = orgWant{http.StatusForbidden, "AUTH_004", msgOwnerOnly}
	orgInactiveOrg = orgWant{http.StatusForbidden, "AUTH_004", msgInactiveOrg}
	orgLastOwner   = orgWant{http.StatusConflict, "ORG_001", ""}
	orgWrongUser   = orgWant{http.StatusForbidden, "AUTH_004", msgWrongUser}
	orgInactiveU   = orgWant{http.StatusForbidden, "AUTH_004", "Inactive user"}
	orgDeletedU    = orgWant{http.StatusUnauthorized, "AUTH_006", ""}
	orgAnonymous   = orgWant{http.StatusUnauthorized, "AUTH_006", "Not authenticated"}
	orgSuperOnly   = orgWant{http.StatusForbidden, "AUTH_004", msgSuperOnly}
)

func (w orgWant) check(t *testing.T, r apitest.Response) {
	t.Helper()
	if r.Status != w.status {
		t.Fatalf("status %d, want %d; body %.600s", r.Status, w.status, r.Body)
	}
	if w.status < 400 {
		return
	}
	code, msg, _ := r.ErrorCode(t)
	if code != w.code || (w.msg != "" && msg != w.msg) || msg == "" {
		t.Fatalf("error %s %q, want %s %q", code, msg, w.code, w.msg)
	}
}

// JSON shapes of the responses.
type orgJSON struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Slug        string          `json:"slug"`
	Description *string         `json:"description"`
	IsActive    bool            `json:"is_active"`
	Settings    json.RawMessage `json:"settings"`
	CreatedAt   string          `json:"created_at"`
	UpdatedAt   string          `json:"updated_at"`
	MemberCount int             `json:"member_count"`
}

type orgMemberJSON struct {
	UserID    string  `json:"user_id"`
	Email     string  `json:"email"`
	FirstName string  `json:"first_name"`
	LastName  *string `json:"last_name"`
	Role      string  `json:"role"`
	IsActive  bool    `json:"is_active"`
	JoinedAt  string  `json:"joined_at"`
}

type orgPagination struct {
	Total      int  `json:"total"`
	Page       int  `json:"page"`
	PageSize   int  `json:"page_size"`
	TotalPages int  `json:"total_pages"`
	HasNext    bool `json:"has_next"`
	HasPrev    bool `json:"has_prev"`
}

type orgMembersPage struct {
	Data       []orgMemberJSON `json:"data"`
	Pagination orgPagination   `json:"pagination"`
}

type orgListPage struct {
	Data       []orgJSON     `json:"data"`
	Pagination orgPagination `json:"pagination"`
}

type orgInvitationJSON struct {
	ID             string  `json:"id"`
	OrganizationID string  `json:"organization_id"`
	Email          string  `json:"email"`
	Role           string  `json:"role"`
	Status         string  `json:"status"`
	InvitedBy      *string `json:"invited_by"`
	ExpiresAt      string  `json:"expires_at"`
	AcceptedAt     *string `json:"accepted_at"`
	RevokedAt      *string `json:"revoked_at"`
	CreatedAt      string  `json:"created_at"`
}

func orgMustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func orgDecode[T any](t *testing.T, r apitest.Response) T {
	t.Helper()
	var v T
	r.Decode(t, &v)
	return v
}

func orgTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time %q: %v", s, err)
	}
	return v
}

// orgCreate creates an organization through the member-facing endpoint.
func orgCreate(t *testing.T, e *apitest.Env, tok, name, slug string) orgJSON {
	t.Helper()
	r := e.Post(orgsAPI, tok, map[string]any{"name": name, "slug": slug})
	r.Expect(t, http.StatusCreated, "")
	return orgDecode[orgJSON](t, r)
}

// orgAdd adds a user by id with a role.
func orgAdd(t *testing.T, e *apitest.Env, tok, orgID, userID, role string) orgMemberJSON {
	t.Helper()
	r := e.Post(orgURL(orgID, "/members"), tok, map[string]any{"user_id": userID, "role": role})
	r.Expect(t, http.StatusCreated, "")
	return orgDecode[orgMemberJSON](t, r)
}

func orgPut(e *apitest.Env, path, tok string, body any) apitest.Response {
	e.T.Helper()
	return e.Do(apitest.Request{Method: "PUT", Path: path, Token: tok, Body: body})
}

// orgMembers lists members (query like "?is_active=false").
func orgMembers(t *testing.T, e *apitest.Env, tok, orgID, query string) orgMembersPage {
	t.Helper()
	r := e.Get(orgURL(orgID, "/members", query), tok)
	r.Expect(t, http.StatusOK, "")
	return orgDecode[orgMembersPage](t, r)
}

func orgMemberIDs(list []orgMemberJSON) []string {
	out := make([]string, len(list))
	for i, m := range list {
		out[i] = m.UserID
	}
	return out
}

// orgRole returns the membership's role and flag, or "" when there is none.
func orgRole(t *testing.T, e *apitest.Env, orgID, userID string) (string, bool) {
	t.Helper()
	var (
		role   string
		active bool
	)
	err := e.App.Store.DB().QueryRowContext(context.Background(),
		`SELECT role, is_active FROM user_organizations WHERE organization_id = $1 AND user_id = $2`, orgID, userID).Scan(&role, &active)
	if err == sql.ErrNoRows {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return role, active
}

func orgActiveOwners(t *testing.T, e *apitest.Env, orgID string) int {
	t.Helper()
	return e.Count(`SELECT COUNT(*) FROM user_organizations WHERE organization_id = $1 AND role = 'owner' AND is_active = TRUE`, orgID)
}

// orgDump is everything an organization request could change: the row
// counts of apitest's Snapshot plus the content of the organization,
// membership and invitation tables.
func orgDump(t *testing.T, e *apitest.Env) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(e.Snapshot())
	b.WriteByte('\n')
	for _, q := range []string{
		`SELECT id, name, slug, description, is_active, settings, created_at, updated_at FROM organizations ORDER BY id`,
		`SELECT organization_id, user_id, role, is_active, created_at, updated_at FROM user_organizations ORDER BY organization_id, user_id`,
		`SELECT id, organization_id, email, role, token_hash, invited_by, expires_at, accepted_at, accepted_by, revoked_at, created_at
			FROM organization_invitations ORDER BY id`,
		`SELECT id, email, is_active, deleted_at, updated_at FROM users ORDER BY id`,
	} {
		rows, err := e.App.Store.DB().QueryContext(context.Background(), q)
		if err != nil {
			t.Fatalf("dump %q: %v", q, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]sql.NullString, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dump scan: %v", err)
			}
			for _, v := range vals {
				fmt.Fprintf(&b, "%v|%q ", v.Valid, v.String)
			}
			b.WriteByte('\n')
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

// orgUnchanged runs req and checks that the database is as before.
func orgUnchanged(t *testing.T, e *apitest.Env, req apitest.Request, want orgWant) apitest.Response {
	t.Helper()
	before := orgDump(t, e)
	r := e.Do(req)
	want.check(t, r)
	if after := orgDump(t, e); after != before {
		t.Fatalf("%s %s (status %d) changed the database:\nbefore:\n%s\nafter:\n%s", req.Method, req.Path, r.Status, before, after)
	}
	return r
}

// orgMailsTo waits until at least k emails to addr have arrived and returns
// them in arrival order.
func orgMailsTo(t *testing.T, e *apitest.Env, addr string, k int) []mailtest.Message {
	t.Helper()
	seen := 0
	for {
		all := e.Mail.Wait(t, seen+1, 15*time.Second)
		var mine []mailtest.Message
		for _, m := range all {
			if len(m.To) == 1 && m.To[0] == addr {
				mine = append(mine, m)
			}
		}
		if len(mine) >= k {
			return mine
		}
		seen = len(all)
	}
}

// orgInviteToken is the token of the k-th invitation mailed to addr.
func orgInviteToken(t *testing.T, e *apitest.Env, addr string, k int) string {
	t.Helper()
	return tokenFromEmail(t, orgMailsTo(t, e, addr, k)[k-1].Text)
}

// orgInvite invites addr and returns the invitation.
func orgInvite(t *testing.T, e *apitest.Env, tok, orgID, addr, role string) orgInvitationJSON {
	t.Helper()
	body := map[string]any{"email": addr}
	if role != "" {
		body["role"] = role
	}
	r := e.Post(orgURL(orgID, "/invitations"), tok, body)
	r.Expect(t, http.StatusCreated, "")
	return orgDecode[orgInvitationJSON](t, r)
}

// orgRawDo performs a request without touching testing.T, for goroutines.
func orgRawDo(e *apitest.Env, method, path, tok string, body any) (apitest.Response, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return apitest.Response{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.Server.URL+path, rd)
	if err != nil {
		return apitest.Response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := e.Server.Client().Do(req)
	if err != nil {
		return apitest.Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return apitest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// orgCallers are the users of the permission tests. Fixtures make owner,
// admin, member and guest members with those roles; inactive and deleted
// are admins of every fixture (their account state must stop them anyway).
type orgCallers struct {
	su, owner, admin, member, guest, outsider, inactive, deleted apitest.Tokens
	extra, candidate                                             apitest.Tokens
}

func orgSetupCallers(t *testing.T, e *apitest.Env) *orgCallers {
	t.Helper()
	c := &orgCallers{
		su: e.Superuser("root@example.com"), owner: e.User("owner@example.com"), admin: e.User("admin@example.com"),
		member: e.User("member@example.com"), guest: e.User("guest@example.com"), outsider: e.User("outsider@example.com"),
		inactive: e.User("inactive@example.com"), deleted: e.User("deleted@example.com"),
		extra: e.User("extra@example.com"), candidate: e.User("candidate@example.com"),
	}
	e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, c.inactive.UserID)
	e.Exec(`UPDATE users SET deleted_at = updated_at WHERE id = $1`, c.deleted.UserID)
	return c
}

// orgFixture is a fresh organization of the callers with one pending
// invitation.
type orgFixture struct {
	id, name, slug  string
	invID, invEmail string
	e               *apitest.Env
	num             int
}

func (c *orgCallers) fixture(t *testing.T, e *apitest.Env, n int) orgFixture {
	t.Helper()
	f := orgFixture{name: fmt.Sprintf("Org %d", n), slug: fmt.Sprintf("org-%d", n), e: e, num: n}
	f.id = orgCreate(t, e, c.owner.Access, f.name, f.slug).ID
	orgAdd(t, e, c.owner.Access, f.id, c.admin.UserID, "admin")
	orgAdd(t, e, c.owner.Access, f.id, c.member.UserID, "member")
	orgAdd(t, e, c.owner.Access, f.id, c.guest.UserID, "guest")
	orgAdd(t, e, c.owner.Access, f.id, c.extra.UserID, "member")
	now := time.Now().UTC()
	for _, u := range []string{c.inactive.UserID, c.deleted.UserID} {
		e.Exec(`INSERT INTO user_organizations (user_id, organization_id, role, is_active, created_at, updated_at)
			VALUES ($1, $2, 'admin', TRUE, $3, $3)`, u, f.id, now)
	}
	f.invEmail = fmt.Sprintf("invitee-%d@example.com", n)
	f.invID = orgInvite(t, e, c.owner.Access, f.id, f.invEmail, "").ID
	return f
}

// ---------------------------------------------------------------------------
// 1. The permission matrix

type orgCaller struct {
	name     string
	tok      apitest.Tokens
	isMember bool
}

type orgMatrixRow struct {
	name   string
	method string
	path   func(f orgFixture) string
	body   func(t *testing.T, f orgFixture) any
	// wants for superuser (not a member), owner, admin, member, guest,
	// non-member; inactive, deleted and anonymous callers are refused by the
	// gate on every endpoint.
	wants [6]orgWant
	check func(t *testing.T, f orgFixture, who orgCaller, r apitest.Response)
}

func TestOrgPermissionMatrix(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		c := orgSetupCallers(t, e)
		callers := []orgCaller{
			{"superuser", c.su, false}, {"owner", c.owner, true}, {"admin", c.admin, true}, {"member", c.member, true},
			{"guest", c.guest, true}, {"non-member", c.outsider, false},
			{"inactive user", c.inactive, true}, {"deleted user", c.deleted, true}, {"anonymous", apitest.Tokens{}, false},
		}
		gateWants := []orgWant{orgInactiveU, orgDeletedU, orgAnonymous}
		managers := [6]orgWant{orgOK200, orgOK200, orgOK200, orgAsMember, orgAsGuest, orgNotMember}
		readers := [6]orgWant{orgOK200, orgOK200, orgOK200, orgOK200, orgOK200, orgNotMember}
		fixed := func(p string) func(orgFixture) string { return func(orgFixture) string { return p } }

		rows := []orgMatrixRow{
			{name: "GET /organizations/me", method: "GET", path: fixed(orgsAPI + "/me"),
				wants: [6]orgWant{orgOK200, orgOK200, orgOK200, orgOK200, orgOK200, orgOK200},
				check: func(t *testing.T, f orgFixture, who orgCaller, r apitest.Response) {
					list := orgDecode[[]orgJSON](t, r)
					has := slices.ContainsFunc(list, func(o orgJSON) bool { return o.ID == f.id })
					if has != who.isMember {
						t.Fatalf("lists the fixture: %v, want %v", has, who.isMember)
					}
				}},
			{name: "POST /organizations", method: "POST", path: fixed(orgsAPI),
				body: func(_ *testing.T, f orgFixture) any {
					return map[string]any{"name": "Created " + f.name, "slug": "created-" + f.slug}
				},
				wants: [6]orgWant{orgOK201, orgOK201, orgOK201, orgOK201, orgOK201, orgOK201},
				check: func(t *testing.T, f orgFixture, who orgCaller, r apitest.Response) {
					o := orgDecode[orgJSON](t, r)
					if o.Slug != "created-"+f.slug || o.MemberCount != 1 {
						t.Fatalf("created %+v", o)
					}
					if role, active := orgRole(t, f.e, o.ID, who.tok.UserID); role != "owner" || !active {
						t.Fatalf("creator's membership %q %v, want active owner", role, active)
					}
				}},
			{name: "GET /organizations/{id}", method: "GET", path: func(f orgFixture) string { return orgURL(f.id) },
				wants: readers,
				check: func(t *testing.T, f orgFixture, _ orgCaller, r apitest.Response) {
					if o := orgDecode[orgJSON](t, r); o.ID != f.id || o.Name != f.name || o.Slug != f.slug {
						t.Fatalf("organization %+v", o)
					}
				}},
			{name: "PUT /organizations/{id}", method: "PUT", path: func(f orgFixture) string { return orgURL(f.id) },
				body:  func(*testing.T, orgFixture) any { return map[string]any{"description": "changed"} },
				wants: managers,
				check: func(t *testing.T, f orgFixture, _ orgCaller, r apitest.Response) {
					if o := orgDecode[orgJSON](t, r); o.Description == nil || *o.Description != "changed" || o.Name != f.name {
						t.Fatalf("updated %+v", o)
					}
					if n := f.e.Count(`SELECT COUNT(*) FROM organizations WHERE id = $1 AND description = 'changed'`, f.id); n != 1 {
						t.Fatal("description not stored")
					}
				}},
			{name: "GET /organizations/{id}/members", method: "GET", path: func(f orgFixture) string { return orgURL(f.id, "/members") },
				wants: readers,
				check: func(t *testing.T, _ orgFixture, _ orgCaller, r apitest.Response) {
					// owner, admin, member, guest, extra, inactive; not the deleted user.
					if p := orgDecode[orgMembersPage](t, r); p.Pagination.Total != 6 || len(p.Data) != 6 {
						t.Fatalf("members %+v", p)
					}
				}},
			{name: "GET /organizations/{id}/members?is_active=false", method: "GET",
				path:  func(f orgFixture) string { return orgURL(f.id, "/members?is_active=false") },
				wants: managers,
				check: func(t *testing.T, _ orgFixture, _ orgCaller, r apitest.Response) {
					if p := orgDecode[orgMembersPage](t, r); p.Pagination.Total != 0 || len(p.Data) != 0 {
						t.Fatalf("removed members %+v", p)
					}
				}},
			{name: "POST /organizations/{id}/members", method: "POST", path: func(f orgFixture) string { return orgURL(f.id, "/members") },
				body:  func(*testing.T, orgFixture) any { return map[string]any{"user_id": c.candidate.UserID} },
				wants: [6]orgWant{orgOK201, orgOK201, orgOK201, orgAsMember, orgAsGuest, orgNotMember},
				check: func(t *testing.T, f orgFixture, _ orgCaller, r apitest.Response) {
					if m := orgDecode[orgMemberJSON](t, r); m.UserID != c.candidate.UserID || m.Role != "member" || !m.IsActive {
						t.Fatalf("added %+v", m)
					}
					if role, active := orgRole(t, f.e, f.id, c.candidate.UserID); role != "member" || !active {
						t.Fatalf("stored %q %v", role, active)
					}
				}},
			{name: "PATCH /organizations/{id}/members/{user_id}", method: "PATCH",
				path:  func(f orgFixture) string { return orgURL(f.id, "/members/", c.extra.UserID) },
				body:  func(*testing.T, orgFixture) any { return map[string]any{"role": "guest"} },
				wants: managers,
				check: func(t *testing.T, f orgFixture, _ orgCaller, r apitest.Response) {
					if m := orgDecode[orgMemberJSON](t, r); m.UserID != c.extra.UserID || m.Role != "guest" || !m.IsActive {
						t.Fatalf("changed %+v", m)
					}
					if role, active := orgRole(t, f.e, f.id, c.extra.UserID); role != "guest" || !active {
						t.Fatalf("stored %q %v", role, active)
					}
				}},
			{name: "DELETE /organizations/{id}/members/{user_id}", method: "DELETE",
				path:  func(f orgFixture) string { return orgURL(f.id, "/members/", c.extra.UserID) },
				wants: managers,
				check: func(t *testing.T, f orgFixture, _ orgCaller, r apitest.Response) {
					want := fmt.Sprintf("User extra@example.com removed from organization %s", f.name)
					if m := r.JSON(t); m["success"] != true || m["message"] != want {
						t.Fatalf("body %s, want message %q", r.Body, want)
					}
					if role, active := orgRole(t, f.e, f.id, c.extra.UserID); role != "member" || active {
						t.Fatalf("stored %q %v, want a removed member", role, active)
					}
				}},
			{name: "POST /organizations/{id}/invitations", method: "POST", path: func(f orgFixture) string { return orgURL(f.id, "/invitations") },
				body: func(_ *testing.T, f orgFixture) any {
					return map[string]any{"email": fmt.Sprintf("new-%d@example.com", f.num), "role": "guest"}
				},
				wants: [6]orgWant{orgOK201, orgOK201, orgOK201, orgAsMember, orgAsGuest, orgNotMember},
				check: func(t *testing.T, f orgFixture, _ orgCaller, r apitest.Response) {
					addr := fmt.Sprintf("new-%d@example.com", f.num)
					if inv := orgDecode[orgInvitationJSON](t, r); inv.Email != addr || inv.Role != "guest" || inv.Status != "pending" {
						t.Fatalf("invitation %+v", inv)
					}
					if n := f.e.Count(`SELECT COUNT(*) FROM organization_invitations WHERE organization_id = $1 AND email = $2`, f.id, addr); n != 1 {
						t.Fatalf("%d invitations stored", n)
					}
				}},
			{name: "GET /organizations/{id}/invitations", method: "GET", path: func(f orgFixture) string { return orgURL(f.id, "/invitations") },
				wants: managers,
				check: func(t *testing.T, f orgFixture, _ orgCaller, r apitest.Response) {
					list := orgDecode[[]orgInvitationJSON](t, r)
					if len(list) != 1 || list[0].ID != f.invID || list[0].Status != "pending" || list[0].Email != f.invEmail {
						t.Fatalf("invitations %+v", list)
					}
				}},
			{name: "DELETE /organizations/{id}/invitations/{invitation_id}", method: "DELETE",
				path:  func(f orgFixture) string { return orgURL(f.id, "/invitations/", f.invID) },
				wants: managers,
				check: func(t *testing.T, f orgFixture, _ orgCaller, r apitest.Response) {
					if m := r.JSON(t); m["success"] != true || m["message"] != "Invitation revoked" {
						t.Fatalf("body %s", r.Body)
					}
					if n := f.e.Count(`SELECT COUNT(*) FROM organization_invitations WHERE id = $1 AND revoked_at IS NOT NULL`, f.invID); n != 1 {
						t.Fatal("invitation not revoked")
					}
				}},
			{name: "POST /organizations/invitations/accept", method: "POST", path: fixed(acceptAPI),
				body: func(t *testing.T, f orgFixture) any {
					return map[string]any{"token": orgInviteToken(t, f.e, f.invEmail, 1)}
				},
				// Nobody but the invited address may accept, superusers included.
				wants: [6]orgWant{orgWrongUser, orgWrongUser, orgWrongUser, orgWrongUser, orgWrongUser, orgWrongUser}},
		}

		n := 0
		for _, row := range rows {
			t.Run(row.name, func(t *testing.T) {
				for i, who := range callers {
					want := orgWant{}
					if i < len(row.wants) {
						want = row.wants[i]
					} else {
						want = gateWants[i-len(row.wants)]
					}
					t.Run(who.name, func(t *testing.T) {
						n++
						f := c.fixture(t, e, n)
						req := apitest.Request{Method: row.method, Path: row.path(f), Token: who.tok.Access}
						if row.body != nil {
							req.Body = row.body(t, f)
						}
						if want.status >= 400 {
							orgUnchanged(t, e, req, want)
							return
						}
						r := e.Do(req)
						want.check(t, r)
						if row.check != nil {
							row.check(t, f, who, r)
						}
					})
				}
			})
		}

		t.Run("organization that does not exist", func(t *testing.T) {
			missing := uuid.NewString()
			reqs := []apitest.Request{
				{Method: "GET", Path: orgURL(missing)},
				{Method: "PUT", Path: orgURL(missing), Body: map[string]any{"name": "X"}},
				{Method: "GET", Path: orgURL(missing, "/members")},
				{Method: "GET", Path: orgURL(missing, "/members?is_active=false")},
				{Method: "POST", Path: orgURL(missing, "/members"), Body: map[string]any{"user_id": c.candidate.UserID}},
				{Method: "PATCH", Path: orgURL(missing, "/members/", c.member.UserID), Body: map[string]any{"role": "guest"}},
				{Method: "DELETE", Path: orgURL(missing, "/members/", c.member.UserID)},
				{Method: "POST", Path: orgURL(missing, "/invitations"), Body: map[string]any{"email": "ghost@example.com"}},
				{Method: "GET", Path: orgURL(missing, "/invitations")},
				{Method: "DELETE", Path: orgURL(missing, "/invitations/", uuid.NewString())},
			}
			superWant := orgWant{http.StatusNotFound, "SYS_002", "Organization " + missing + " not found"}
			for _, req := range reqs {
				t.Run(req.Method+" "+strings.TrimPrefix(req.Path, orgURL(missing)), func(t *testing.T) {
					for _, who := range []apitest.Tokens{c.owner, c.member, c.outsider} {
						req.Token = who.Access
						orgUnchanged(t, e, req, orgNotMember)
					}
					req.Token = c.su.Access
					orgUnchanged(t, e, req, superWant)
				})
			}
			// Leaving an organization that does not exist.
			for _, who := range []apitest.Tokens{c.member, c.outsider} {
				orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: orgURL(missing, "/members/", who.UserID), Token: who.Access}, orgNotMember)
			}
			orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: orgURL(missing, "/members/", c.su.UserID), Token: c.su.Access}, superWant)
		})
	})
}

// ---------------------------------------------------------------------------
// 2. Role rules

func TestOrgRoleRules(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		c := orgSetupCallers(t, e)
		n := 0
		fresh := func(t *testing.T) orgFixture {
			t.Helper()
			n++
			return c.fixture(t, e, n)
		}
		patch := func(f orgFixture, tok, userID, role string) apitest.Request {
			return apitest.Request{Method: "PATCH", Path: orgURL(f.id, "/members/", userID), Token: tok, Body: map[string]any{"role": role}}
		}
		del := func(f orgFixture, tok, userID string) apitest.Request {
			return apitest.Request{Method: "DELETE", Path: orgURL(f.id, "/members/", userID), Token: tok}
		}

		t.Run("admins cannot grant, change or remove the owner role", func(t *testing.T) {
			f := fresh(t)
			a := c.admin.Access
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: orgURL(f.id, "/members"), Token: a,
				Body: map[string]any{"user_id": c.candidate.UserID, "role": "owner"}}, orgOwnerOnly)
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: orgURL(f.id, "/members"), Token: a,
				Body: map[string]any{"email": "candidate@example.com", "role": "owner"}}, orgOwnerOnly)
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: orgURL(f.id, "/invitations"), Token: a,
				Body: map[string]any{"email": "future-owner@example.com", "role": "owner"}}, orgOwnerOnly)
			orgUnchanged(t, e, patch(f, a, c.member.UserID, "owner"), orgOwnerOnly)
			orgUnchanged(t, e, patch(f, a, c.admin.UserID, "owner"), orgOwnerOnly)
			orgUnchanged(t, e, patch(f, a, c.owner.UserID, "admin"), orgOwnerOnly)
			orgUnchanged(t, e, patch(f, a, c.owner.UserID, "owner"), orgOwnerOnly)
			orgUnchanged(t, e, del(f, a, c.owner.UserID), orgOwnerOnly)
		})

		t.Run("admins manage admins, members and guests", func(t *testing.T) {
			f := fresh(t)
			a := c.admin.Access
			e.Do(patch(f, a, c.member.UserID, "admin")).Expect(t, http.StatusOK, "")
			e.Do(patch(f, a, c.guest.UserID, "member")).Expect(t, http.StatusOK, "")
			e.Do(patch(f, a, c.member.UserID, "guest")).Expect(t, http.StatusOK, "")
			orgAdd(t, e, a, f.id, c.candidate.UserID, "admin")
			e.Do(del(f, a, c.candidate.UserID)).Expect(t, http.StatusOK, "")
			inv := orgInvite(t, e, a, f.id, "admin-invite@example.com", "admin")
			if inv.Role != "admin" {
				t.Fatalf("invitation role %q", inv.Role)
			}
			for user, want := range map[string]string{c.member.UserID: "guest", c.guest.UserID: "member", c.candidate.UserID: "admin"} {
				role, active := orgRole(t, e, f.id, user)
				if role != want || active != (user != c.candidate.UserID) {
					t.Fatalf("%s: %q %v, want %q", user, role, active, want)
				}
			}
		})

		t.Run("owners grant, change and remove the owner role", func(t *testing.T) {
			f := fresh(t)
			o := c.owner.Access
			if m := orgAdd(t, e, o, f.id, c.candidate.UserID, "owner"); m.Role != "owner" {
				t.Fatalf("added %+v", m)
			}
			e.Do(patch(f, o, c.candidate.UserID, "admin")).Expect(t, http.StatusOK, "")
			e.Do(patch(f, o, c.member.UserID, "owner")).Expect(t, http.StatusOK, "")
			if got := orgActiveOwners(t, e, f.id); got != 2 {
				t.Fatalf("%d owners, want 2", got)
			}
			r := e.Do(del(f, o, c.member.UserID)).Expect(t, http.StatusOK, "")
			if m := r.JSON(t)["message"]; m != "User member@example.com removed from organization "+f.name {
				t.Fatalf("message %q", m)
			}
			if inv := orgInvite(t, e, o, f.id, "owner-invite@example.com", "owner"); inv.Role != "owner" {
				t.Fatalf("invitation %+v", inv)
			}
			if got := orgActiveOwners(t, e, f.id); got != 1 {
				t.Fatalf("%d owners, want 1", got)
			}
		})

		t.Run("members and guests may leave but not remove others", func(t *testing.T) {
			f := fresh(t)
			orgUnchanged(t, e, del(f, c.member.Access, c.extra.UserID), orgAsMember)
			orgUnchanged(t, e, del(f, c.guest.Access, c.member.UserID), orgAsGuest)
			orgUnchanged(t, e, patch(f, c.member.Access, c.member.UserID, "admin"), orgAsMember)
			for email, who := range map[string]apitest.Tokens{"member@example.com": c.member, "guest@example.com": c.guest, "admin@example.com": c.admin} {
				r := e.Do(del(f, who.Access, who.UserID)).Expect(t, http.StatusOK, "")
				if m := r.JSON(t)["message"]; m != fmt.Sprintf("User %s removed from organization %s", email, f.name) {
					t.Fatalf("leave message %q", m)
				}
				if _, active := orgRole(t, e, f.id, who.UserID); active {
					t.Fatal("still an active member after leaving")
				}
				orgNotMember.check(t, e.Get(orgURL(f.id), who.Access))
				orgNotMember.check(t, e.Get(orgURL(f.id, "/members"), who.Access))
				// Leaving twice: no longer a member.
				orgUnchanged(t, e, del(f, who.Access, who.UserID), orgNotMember)
				gone := orgDecode[[]orgJSON](t, e.Get(orgsAPI+"/me?is_active=false", who.Access).Expect(t, http.StatusOK, ""))
				if !slices.ContainsFunc(gone, func(o orgJSON) bool { return o.ID == f.id }) {
					t.Fatal("GET /organizations/me?is_active=false does not list the organization left")
				}
				mine := orgDecode[[]orgJSON](t, e.Get(orgsAPI+"/me", who.Access).Expect(t, http.StatusOK, ""))
				if slices.ContainsFunc(mine, func(o orgJSON) bool { return o.ID == f.id }) {
					t.Fatal("GET /organizations/me still lists the organization left")
				}
			}
		})

		t.Run("the last active owner can neither leave nor be demoted nor removed", func(t *testing.T) {
			f := fresh(t)
			o := c.owner.Access
			for _, req := range []apitest.Request{
				del(f, o, c.owner.UserID),
				patch(f, o, c.owner.UserID, "admin"),
				patch(f, o, c.owner.UserID, "guest"),
				patch(f, c.su.Access, c.owner.UserID, "member"),
				del(f, c.su.Access, c.owner.UserID),
				{Method: "DELETE", Path: adminOrgURL(f.id, "/members/", c.owner.UserID), Token: c.su.Access},
			} {
				r := orgUnchanged(t, e, req, orgLastOwner)
				if _, msg, _ := r.ErrorCode(t); !strings.Contains(msg, "owner") {
					t.Fatalf("%s %s: message %q does not explain the rule", req.Method, req.Path, msg)
				}
			}
			// Setting an owner's role to owner again changes nothing harmful.
			e.Do(patch(f, o, c.owner.UserID, "owner")).Expect(t, http.StatusOK, "")
			if got := orgActiveOwners(t, e, f.id); got != 1 {
				t.Fatalf("%d owners", got)
			}
		})

		t.Run("with two owners one may be demoted, then the other is the last", func(t *testing.T) {
			f := fresh(t)
			orgAdd(t, e, c.owner.Access, f.id, c.candidate.UserID, "owner")
			e.Do(patch(f, c.owner.Access, c.owner.UserID, "admin")).Expect(t, http.StatusOK, "")
			if role, _ := orgRole(t, e, f.id, c.owner.UserID); role != "admin" {
				t.Fatalf("demoted owner is %q", role)
			}
			orgUnchanged(t, e, patch(f, c.candidate.Access, c.candidate.UserID, "member"), orgLastOwner)
			orgUnchanged(t, e, del(f, c.candidate.Access, c.candidate.UserID), orgLastOwner)
			// The former owner is an admin now: they cannot touch the owner.
			orgUnchanged(t, e, patch(f, c.owner.Access, c.candidate.UserID, "admin"), orgOwnerOnly)
			orgUnchanged(t, e, patch(f, c.owner.Access, c.owner.UserID, "owner"), orgOwnerOnly)
		})

		t.Run("with two owners one may leave or be removed", func(t *testing.T) {
			f := fresh(t)
			orgAdd(t, e, c.owner.Access, f.id, c.candidate.UserID, "owner")
			e.Do(del(f, c.candidate.Access, c.candidate.UserID)).Expect(t, http.StatusOK, "")
			orgUnchanged(t, e, del(f, c.owner.Access, c.owner.UserID), orgLastOwner)
			// Re-added as owner, then removed by the other owner.
			orgAdd(t, e, c.owner.Access, f.id, c.candidate.UserID, "owner")
			e.Do(del(f, c.owner.Access, c.candidate.UserID)).Expect(t, http.StatusOK, "")
			if got := orgActiveOwners(t, e, f.id); got != 1 {
				t.Fatalf("%d owners, want 1", got)
			}
		})

		t.Run("changing or removing a member who is not one", func(t *testing.T) {
			f := fresh(t)
			gone := orgWant{http.StatusNotFound, "SYS_002", "User is not a member of this organization"}
			orgUnchanged(t, e, patch(f, c.owner.Access, c.outsider.UserID, "member"), gone)
			orgUnchanged(t, e, del(f, c.owner.Access, c.outsider.UserID), gone)
			e.Do(del(f, c.owner.Access, c.extra.UserID)).Expect(t, http.StatusOK, "")
			orgUnchanged(t, e, patch(f, c.owner.Access, c.extra.UserID, "admin"), gone)
			orgUnchanged(t, e, del(f, c.owner.Access, c.extra.UserID), gone)
			orgUnchanged(t, e, patch(f, c.owner.Access, uuid.NewString(), "member"), gone)
			orgUnchanged(t, e, del(f, c.owner.Access, uuid.NewString()), orgWant{http.StatusNotFound, "SYS_002", ""})
		})
	})
}

func TestOrgInactiveOrganizationIsReadOnly(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		c := orgSetupCallers(t, e)
		f := c.fixture(t, e, 1)
		r := orgPut(e, orgURL(f.id), c.admin.Access, map[string]any{"is_active": false}).Expect(t, http.StatusOK, "")
		if o := orgDecode[orgJSON](t, r); o.IsActive {
			t.Fatalf("still active: %+v", o)
		}

		for _, who := range []apitest.Tokens{c.owner, c.admin, c.member, c.guest} {
			o := orgDecode[orgJSON](t, e.Get(orgURL(f.id), who.Access).Expect(t, http.StatusOK, ""))
			if o.IsActive || o.ID != f.id {
				t.Fatalf("read %+v", o)
			}
			if p := orgMembers(t, e, who.Access, f.id, ""); p.Pagination.Total != 6 {
				t.Fatalf("members %+v", p.Pagination)
			}
			mine := orgDecode[[]orgJSON](t, e.Get(orgsAPI+"/me", who.Access).Expect(t, http.StatusOK, ""))
			if !slices.ContainsFunc(mine, func(o orgJSON) bool { return o.ID == f.id && !o.IsActive }) {
				t.Fatal("GET /organizations/me does not list the inactive organization")
			}
		}
		for _, tok := range []string{c.owner.Access, c.admin.Access} {
			for _, req := range []apitest.Request{
				{Method: "PUT", Path: orgURL(f.id), Body: map[string]any{"name": "Renamed"}},
				{Method: "PUT", Path: orgURL(f.id), Body: map[string]any{"is_active": true}},
				{Method: "POST", Path: orgURL(f.id, "/members"), Body: map[string]any{"user_id": c.candidate.UserID}},
				{Method: "PATCH", Path: orgURL(f.id, "/members/", c.extra.UserID), Body: map[string]any{"role": "guest"}},
				{Method: "DELETE", Path: orgURL(f.id, "/members/", c.extra.UserID)},
				{Method: "POST", Path: orgURL(f.id, "/invitations"), Body: map[string]any{"email": "late@example.com"}},
				{Method: "DELETE", Path: orgURL(f.id, "/invitations/", f.invID)},
			} {
				req.Token = tok
				orgUnchanged(t, e, req, orgInactiveOrg)
			}
		}
		orgUnchanged(t, e, apitest.Request{Method: "PUT", Path: orgURL(f.id), Token: c.member.Access, Body: map[string]any{"name": "X"}}, orgAsMember)
		orgUnchanged(t, e, apitest.Request{Method: "PUT", Path: orgURL(f.id), Token: c.guest.Access, Body: map[string]any{"is_active": true}}, orgAsGuest)

		// Members may still leave (docs/ORGANIZATIONS.md), the last owner may not.
		e.Delete(orgURL(f.id, "/members/", c.member.UserID), c.member.Access).Expect(t, http.StatusOK, "")
		if _, active := orgRole(t, e, f.id, c.member.UserID); active {
			t.Fatal("the member did not leave")
		}
		orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: orgURL(f.id, "/members/", c.owner.UserID), Token: c.owner.Access}, orgLastOwner)

		// A superuser may change it (treated as an owner) and reactivates it
		// through the admin API; then the owner may change it again.
		r = orgPut(e, orgURL(f.id), c.su.Access, map[string]any{"description": "Dormant"}).Expect(t, http.StatusOK, "")
		if o := orgDecode[orgJSON](t, r); o.IsActive || o.Description == nil || *o.Description != "Dormant" {
			t.Fatalf("superuser's change: %+v", o)
		}
		r = orgPut(e, adminOrgURL(f.id), c.su.Access, map[string]any{"is_active": true}).Expect(t, http.StatusOK, "")
		if o := orgDecode[orgJSON](t, r); !o.IsActive {
			t.Fatalf("not reactivated: %+v", o)
		}
		orgPut(e, orgURL(f.id), c.owner.Access, map[string]any{"name": "Renamed"}).Expect(t, http.StatusOK, "")
		e.Patch(orgURL(f.id, "/members/", c.extra.UserID), c.admin.Access, map[string]any{"role": "guest"}).Expect(t, http.StatusOK, "")
	})
}

// ---------------------------------------------------------------------------
// 3. Concurrency

// orgReq is one request of a race.
type orgReq struct {
	method, path, tok string
	body              any
}

// orgOwnerRace sends the two requests at once, each of which would leave
// orgID's other owner the last one: exactly one must succeed, the other get
// 409 ORG_001, and one active owner remain.
func orgOwnerRace(t *testing.T, e *apitest.Env, round int, orgID string, rs [2]orgReq) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		out  [2]apitest.Response
		errs [2]error
	)
	start := make(chan struct{})
	for i := range 2 {
		wg.Go(func() {
			<-start
			out[i], errs[i] = orgRawDo(e, rs[i].method, rs[i].path, rs[i].tok, rs[i].body)
		})
	}
	close(start)
	wg.Wait()
	statuses := []int{}
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("round %d: %v", round, errs[i])
		}
		statuses = append(statuses, out[i].Status)
		if out[i].Status == http.StatusConflict {
			orgLastOwner.check(t, out[i])
		}
	}
	sort.Ints(statuses)
	if !slices.Equal(statuses, []int{http.StatusOK, http.StatusConflict}) {
		t.Fatalf("round %d: statuses %v, want one 200 and one 409; bodies %s / %s", round, statuses, out[0].Body, out[1].Body)
	}
	if got := orgActiveOwners(t, e, orgID); got != 1 {
		t.Fatalf("round %d: %d active owners left, want 1", round, got)
	}
}

func TestOrgLastOwnerUnderConcurrency(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		su := e.Superuser("root@example.com")
		a, b := e.User("a@example.com"), e.User("b@example.com")
		variants := []struct {
			name string
			reqs func(orgID string) [2]orgReq
		}{
			{"a superuser demotes both owners", func(id string) [2]orgReq {
				return [2]orgReq{{"PATCH", orgURL(id, "/members/", a.UserID), su.Access, map[string]any{"role": "member"}},
					{"PATCH", orgURL(id, "/members/", b.UserID), su.Access, map[string]any{"role": "admin"}}}
			}},
			{"both owners demote themselves", func(id string) [2]orgReq {
				return [2]orgReq{{"PATCH", orgURL(id, "/members/", a.UserID), a.Access, map[string]any{"role": "guest"}},
					{"PATCH", orgURL(id, "/members/", b.UserID), b.Access, map[string]any{"role": "member"}}}
			}},
			{"both owners leave", func(id string) [2]orgReq {
				return [2]orgReq{{"DELETE", orgURL(id, "/members/", a.UserID), a.Access, nil},
					{"DELETE", orgURL(id, "/members/", b.UserID), b.Access, nil}}
			}},
			{"the admin API removes both owners", func(id string) [2]orgReq {
				return [2]orgReq{{"DELETE", adminOrgURL(id, "/members/", a.UserID), su.Access, nil},
					{"DELETE", adminOrgURL(id, "/members/", b.UserID), su.Access, nil}}
			}},
		}
		n := 0
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				for round := range 4 {
					n++
					id := orgCreate(t, e, a.Access, fmt.Sprintf("Race %d", n), fmt.Sprintf("race-%d", n)).ID
					orgAdd(t, e, a.Access, id, b.UserID, "owner")
					orgOwnerRace(t, e, round, id, v.reqs(id))
				}
			})
		}
	})
}

// Deleting an account ends its memberships, so the last active owner of an
// organization cannot be deleted (409 ORG_001, nothing changed), through the
// admin API, DELETE /users/{id} or a bulk delete (skipped there), and two
// co-owners deleted at once leave one.
func TestOrgOwnerAccountDeletion(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		su := e.Superuser("root@example.com")
		a, b := e.User("a@example.com"), e.User("b@example.com")
		id := orgCreate(t, e, a.Access, "Acme", "acme").ID
		orgAdd(t, e, a.Access, id, b.UserID, "admin")
		for _, path := range []string{adminUser(a.UserID), "/api/v1/users/" + a.UserID} {
			r := orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: path, Token: su.Access}, orgLastOwner)
			if !strings.Contains(string(r.Body), `organization \"Acme\"`) {
				t.Errorf("DELETE %s: %s does not name the organization", path, r.Body)
			}
		}
		var res bulkResult
		e.Post(adminUsers+"/bulk-action", su.Access, map[string]any{"action": "delete", "user_ids": []string{a.UserID}}).
			Expect(t, http.StatusOK, "").Decode(t, &res)
		if res.AffectedCount != 0 || res.FailedIDs == nil || !slices.Equal(*res.FailedIDs, []string{a.UserID}) {
			t.Fatalf("bulk delete of the last owner: %+v, want it skipped", res)
		}
		e.Get(pathMe, a.Access).Expect(t, http.StatusOK, "")

		// Once b is an owner too, a's account can go; b is then the last.
		e.Do(apitest.Request{Method: "PATCH", Path: orgURL(id, "/members/", b.UserID), Token: a.Access,
			Body: map[string]any{"role": "owner"}}).Expect(t, http.StatusOK, "")
		e.Delete(adminUser(a.UserID), su.Access).Expect(t, http.StatusOK, "")
		if got := orgActiveOwners(t, e, id); got != 1 {
			t.Fatalf("%d active owners after deleting one of two, want 1", got)
		}
		orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: adminUser(b.UserID), Token: su.Access}, orgLastOwner)

		for round := range 4 {
			x := e.User(fmt.Sprintf("x%d@example.com", round))
			y := e.User(fmt.Sprintf("y%d@example.com", round))
			oid := orgCreate(t, e, x.Access, fmt.Sprintf("Pair %d", round), fmt.Sprintf("pair-%d", round)).ID
			orgAdd(t, e, x.Access, oid, y.UserID, "owner")
			orgOwnerRace(t, e, round, oid, [2]orgReq{{"DELETE", adminUser(x.UserID), su.Access, nil}, {"DELETE", adminUser(y.UserID), su.Access, nil}})
		}
	})
}

// An owner whose account is deactivated still holds the role but does not
// count as an active owner: the last owner who can sign in can neither
// leave, be demoted nor be deleted while the others are deactivated, and
// may remove a deactivated co-owner.
func TestOrgDeactivatedOwnersDoNotCount(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		su := e.Superuser("root@example.com")
		a, b, c := e.User("a@example.com"), e.User("b@example.com"), e.User("c@example.com")
		id := orgCreate(t, e, a.Access, "Acme", "acme").ID
		orgAdd(t, e, a.Access, id, b.UserID, "owner")
		orgAdd(t, e, a.Access, id, c.UserID, "owner")
		for _, u := range []apitest.Tokens{b, c} {
			e.Post(adminUser(u.UserID)+"/deactivate", su.Access, nil).Expect(t, http.StatusOK, "")
		}
		orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: orgURL(id, "/members/", a.UserID), Token: a.Access}, orgLastOwner)
		orgUnchanged(t, e, apitest.Request{Method: "PATCH", Path: orgURL(id, "/members/", a.UserID), Token: a.Access,
			Body: map[string]any{"role": "admin"}}, orgLastOwner)
		orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: adminUser(a.UserID), Token: su.Access}, orgLastOwner)

		// a may remove the deactivated co-owner c.
		e.Delete(orgURL(id, "/members/", c.UserID), a.Access).Expect(t, http.StatusOK, "")
		if role, active := orgRole(t, e, id, c.UserID); role != "owner" || active {
			t.Fatalf("c after removal: role %q active %v", role, active)
		}
		// Once b's account is active again, a may leave.
		e.Post(adminUser(b.UserID)+"/activate", su.Access, nil).Expect(t, http.StatusOK, "")
		e.Delete(orgURL(id, "/members/", a.UserID), a.Access).Expect(t, http.StatusOK, "")
		if got := orgActiveOwners(t, e, id); got != 1 {
			t.Fatalf("%d active owners, want 1 (b)", got)
		}
	})
}

func TestOrgInvitationAcceptedOnceUnderConcurrency(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		owner := e.User("owner@example.com")
		id := orgCreate(t, e, owner.Access, "Invites", "invites").ID
		for round := range 4 {
			addr := fmt.Sprintf("race-%d@example.com", round)
			orgInvite(t, e, owner.Access, id, addr, "admin")
			secret := orgInviteToken(t, e, addr, 1)
			e.Register(addr)
			sessions := []apitest.Tokens{e.Login(addr, apitest.Password), e.Login(addr, apitest.Password), e.Login(addr, apitest.Password)}
			const n = 6
			var (
				wg   sync.WaitGroup
				out  [n]apitest.Response
				errs [n]error
			)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					out[i], errs[i] = orgRawDo(e, "POST", acceptAPI, sessions[i%len(sessions)].Access, map[string]any{"token": secret})
				})
			}
			close(start)
			wg.Wait()
			ok := 0
			for i := range n {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				switch out[i].Status {
				case http.StatusOK:
					ok++
				case http.StatusBadRequest:
					out[i].Expect(t, http.StatusBadRequest, "VAL_006")
				default:
					t.Fatalf("round %d: status %d: %s", round, out[i].Status, out[i].Body)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d of %d concurrent acceptances succeeded, want exactly 1", round, ok, n)
			}
			if role, active := orgRole(t, e, id, sessions[0].UserID); role != "admin" || !active {
				t.Fatalf("round %d: membership %q %v", round, role, active)
			}
			if got := e.Count(`SELECT COUNT(*) FROM organization_invitations WHERE email = $1 AND accepted_at IS NOT NULL`, addr); got != 1 {
				t.Fatalf("round %d: %d accepted invitations", round, got)
			}
		}
	})
}

// TestOrgConcurrentSlugs races creations and renames to one slug: exactly
// one wins, the others get 409 SYS_005, never a 500.
func TestOrgConcurrentSlugs(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		owner := e.User("owner@example.com")
		for round := range 3 {
			slug := fmt.Sprintf("contested-%d", round)
			const n = 6
			// Half create a new organization with the slug, half rename an
			// existing one to it.
			renamed := make([]string, n/2)
			for i := range renamed {
				renamed[i] = orgCreate(t, e, owner.Access, "Rename", fmt.Sprintf("rename-%d-%d", round, i)).ID
			}
			var (
				wg   sync.WaitGroup
				out  [n]apitest.Response
				errs [n]error
			)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					if i%2 == 0 {
						out[i], errs[i] = orgRawDo(e, "POST", orgsAPI, owner.Access, map[string]any{"name": "Contested", "slug": slug})
					} else {
						out[i], errs[i] = orgRawDo(e, "PUT", orgURL(renamed[i/2]), owner.Access, map[string]any{"slug": slug})
					}
				})
			}
			close(start)
			wg.Wait()
			won := 0
			for i := range n {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				switch out[i].Status {
				case http.StatusOK, http.StatusCreated:
					won++
				default:
					orgWant{http.StatusConflict, "SYS_005", "Organization with slug '" + slug + "' already exists"}.check(t, out[i])
				}
			}
			if won != 1 {
				t.Fatalf("round %d: %d requests took the slug, want 1", round, won)
			}
			if got := e.Count(`SELECT COUNT(*) FROM organizations WHERE slug = $1`, slug); got != 1 {
				t.Fatalf("round %d: %d organizations with the slug", round, got)
			}
			// A failed creation leaves no membership behind.
			if got := e.Count(`SELECT COUNT(*) FROM user_organizations m LEFT JOIN organizations o ON o.id = m.organization_id WHERE o.id IS NULL`); got != 0 {
				t.Fatalf("round %d: %d memberships without organization", round, got)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// 4. Adding members and organization fields

func TestOrgAddMember(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		owner := e.User("owner@example.com")
		x := e.User("x@example.com")
		y := e.User("y@example.com")
		id := orgCreate(t, e, owner.Access, "Adders", "adders").ID
		path := orgURL(id, "/members")

		t.Run("by user_id, default role member", func(t *testing.T) {
			r := e.Post(path, owner.Access, map[string]any{"user_id": x.UserID}).Expect(t, http.StatusCreated, "")
			m := orgDecode[orgMemberJSON](t, r)
			if m.UserID != x.UserID || m.Email != "x@example.com" || m.FirstName != "Test" || m.LastName == nil || *m.LastName != "User" ||
				m.Role != "member" || !m.IsActive {
				t.Fatalf("member %+v", m)
			}
			orgTime(t, m.JoinedAt)
		})
		t.Run("by email, case-insensitively, with a role", func(t *testing.T) {
			r := e.Post(path, owner.Access, map[string]any{"email": "Y@Example.COM", "role": "guest"}).Expect(t, http.StatusCreated, "")
			if m := orgDecode[orgMemberJSON](t, r); m.UserID != y.UserID || m.Email != "y@example.com" || m.Role != "guest" {
				t.Fatalf("member %+v", m)
			}
		})
		t.Run("unknown user", func(t *testing.T) {
			ghost := uuid.NewString()
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: owner.Access, Body: map[string]any{"user_id": ghost}},
				orgWant{http.StatusNotFound, "SYS_002", "User " + ghost + " not found"})
			r := orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: owner.Access, Body: map[string]any{"email": "nobody@example.com"}},
				orgWant{http.StatusNotFound, "SYS_002", ""})
			if _, _, field := r.ErrorCode(t); field != "email" {
				t.Fatalf("field %v, want email", field)
			}
		})
		t.Run("a deleted user is unknown", func(t *testing.T) {
			d := e.User("gone@example.com")
			e.Exec(`UPDATE users SET deleted_at = updated_at WHERE id = $1`, d.UserID)
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: owner.Access, Body: map[string]any{"user_id": d.UserID}},
				orgWant{http.StatusNotFound, "SYS_002", ""})
		})
		t.Run("both or neither of user_id and email", func(t *testing.T) {
			for _, body := range []map[string]any{
				{"user_id": x.UserID, "email": "x@example.com"},
				{},
				{"role": "member"},
				{"user_id": nil, "email": nil},
			} {
				r := orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: owner.Access, Body: body},
					orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})
				if _, _, field := r.ErrorCode(t); field != "user_id" {
					t.Fatalf("body %v: field %v, want user_id", body, field)
				}
			}
		})
		t.Run("already an active member", func(t *testing.T) {
			for _, body := range []map[string]any{{"user_id": x.UserID, "role": "admin"}, {"email": "x@example.com"}, {"user_id": owner.UserID}} {
				r := orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: owner.Access, Body: body},
					orgWant{http.StatusConflict, "USER_002", "User is already a member of this organization"})
				if _, _, field := r.ErrorCode(t); field != "user_id" {
					t.Fatalf("field %v, want user_id", field)
				}
			}
		})
		t.Run("unknown role", func(t *testing.T) {
			for _, role := range []any{"superadmin", "Owner", 3, true} {
				r := orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: owner.Access, Body: map[string]any{"user_id": y.UserID, "role": role}},
					orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})
				if _, _, field := r.ErrorCode(t); field != "role" {
					t.Fatalf("role %v: field %v", role, field)
				}
			}
		})
		t.Run("a removed member is re-added with the new role and keeps joined_at", func(t *testing.T) {
			z := e.User("z@example.com")
			first := orgAdd(t, e, owner.Access, id, z.UserID, "member")
			e.Delete(orgURL(id, "/members/", z.UserID), owner.Access).Expect(t, http.StatusOK, "")
			again := orgAdd(t, e, owner.Access, id, z.UserID, "admin")
			if again.Role != "admin" || !again.IsActive || again.JoinedAt != first.JoinedAt {
				t.Fatalf("re-added %+v, first %+v", again, first)
			}
			if n := e.Count(`SELECT COUNT(*) FROM user_organizations WHERE organization_id = $1 AND user_id = $2`, id, z.UserID); n != 1 {
				t.Fatalf("%d membership rows", n)
			}
		})
	})
}

func TestOrgCreateAndUpdateFields(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		su := e.Superuser("root@example.com")
		owner := e.User("owner@example.com")

		var acme orgJSON
		t.Run("create", func(t *testing.T) {
			r := e.Post(orgsAPI, owner.Access, map[string]any{"name": "  Acme Corp  ", "slug": "acme", "is_active": false}).Expect(t, http.StatusCreated, "")
			acme = orgDecode[orgJSON](t, r)
			if acme.Name != "Acme Corp" || acme.Slug != "acme" || acme.Description != nil || !acme.IsActive || acme.MemberCount != 1 ||
				string(acme.Settings) != "{}" || acme.CreatedAt != acme.UpdatedAt {
				t.Fatalf("created %+v (settings %s)", acme, acme.Settings)
			}
			if _, err := uuid.Parse(acme.ID); err != nil {
				t.Fatalf("id %q", acme.ID)
			}
			// Key order of the reference's OrganizationResponse.
			keys := []string{"name", "slug", "description", "is_active", "settings", "id", "created_at", "updated_at", "member_count"}
			last := -1
			for _, k := range keys {
				i := bytes.Index(r.Body, []byte(`"`+k+`":`))
				if i <= last {
					t.Fatalf("key %s out of order in %s", k, r.Body)
				}
				last = i
			}
			p := orgMembers(t, e, owner.Access, acme.ID, "")
			if p.Pagination.Total != 1 || p.Data[0].UserID != owner.UserID || p.Data[0].Role != "owner" {
				t.Fatalf("creator's membership %+v", p)
			}
			r = e.Post(orgsAPI, owner.Access, map[string]any{"name": "Described", "slug": "described", "description": "Hi", "settings": map[string]any{"tier": "gold"}}).
				Expect(t, http.StatusCreated, "")
			if o := orgDecode[orgJSON](t, r); o.Description == nil || *o.Description != "Hi" || string(o.Settings) != `{"tier":"gold"}` {
				t.Fatalf("created %+v settings %s", o, o.Settings)
			}
		})

		slugCases := []struct{ slug, msg string }{
			{"acme corp", "Value error, Slug must contain only lowercase letters, numbers, and hyphens"},
			{"Acme", "Value error, Slug must contain only lowercase letters, numbers, and hyphens"},
			{"acme_corp", "Value error, Slug must contain only lowercase letters, numbers, and hyphens"},
			{"-acme", "Value error, Slug cannot start or end with a hyphen"},
			{"acme-", "Value error, Slug cannot start or end with a hyphen"},
			{"ac--me", "Value error, Slug cannot contain consecutive hyphens"},
			{"", "String should have at least 1 character"},
			{strings.Repeat("a", 256), "String should have at most 255 characters"},
		}
		t.Run("slug rules", func(t *testing.T) {
			for _, c := range slugCases {
				for _, req := range []apitest.Request{
					{Method: "POST", Path: orgsAPI, Token: owner.Access, Body: map[string]any{"name": "Slugs", "slug": c.slug}},
					{Method: "PUT", Path: orgURL(acme.ID), Token: owner.Access, Body: map[string]any{"slug": c.slug}},
					{Method: "POST", Path: adminOrgsAPI, Token: su.Access, Body: map[string]any{"name": "Slugs", "slug": c.slug}},
				} {
					r := orgUnchanged(t, e, req, orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})
					if got := fieldErrors(t, r)["slug"]; got != c.msg {
						t.Errorf("%s %s slug %.20q: message %q, want %q", req.Method, req.Path, c.slug, got, c.msg)
					}
				}
			}
			// 255 characters is fine.
			orgCreate(t, e, owner.Access, "Long slug", strings.Repeat("a", 255))
		})

		t.Run("duplicate slug is 409 SYS_005, never 500 (fix 20)", func(t *testing.T) {
			other := orgCreate(t, e, owner.Access, "Other", "other")
			want := orgWant{http.StatusConflict, "SYS_005", "Organization with slug 'acme' already exists"}
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: orgsAPI, Token: owner.Access, Body: map[string]any{"name": "Dup", "slug": "acme"}}, want)
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: adminOrgsAPI, Token: su.Access, Body: map[string]any{"name": "Dup", "slug": "acme"}}, want)
			orgUnchanged(t, e, apitest.Request{Method: "PUT", Path: orgURL(other.ID), Token: owner.Access, Body: map[string]any{"name": "Changed", "slug": "acme"}}, want)
			orgUnchanged(t, e, apitest.Request{Method: "PUT", Path: adminOrgURL(other.ID), Token: su.Access, Body: map[string]any{"slug": "acme"}}, want)
			// Keeping one's own slug is no conflict.
			orgPut(e, orgURL(acme.ID), owner.Access, map[string]any{"slug": "acme"}).Expect(t, http.StatusOK, "")
		})

		t.Run("name rules", func(t *testing.T) {
			for _, name := range []any{"", "   ", "\t\n", nil, strings.Repeat("n", 256), "bad\x00name"} {
				reqs := []apitest.Request{{Method: "PUT", Path: orgURL(acme.ID), Token: owner.Access, Body: map[string]any{"name": name}}}
				if name != nil {
					reqs = append(reqs, apitest.Request{Method: "POST", Path: orgsAPI, Token: owner.Access, Body: map[string]any{"name": name, "slug": "named"}})
				}
				for _, req := range reqs {
					r := orgUnchanged(t, e, req, orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})
					if _, ok := fieldErrors(t, r)["name"]; !ok {
						t.Errorf("%s name %.20q: no error for field name: %s", req.Method, name, r.Body)
					}
				}
			}
			r := orgUnchanged(t, e, apitest.Request{Method: "POST", Path: orgsAPI, Token: owner.Access, Body: map[string]any{"name": "  ", "slug": "blank"}},
				orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})
			if got := fieldErrors(t, r)["name"]; got != "Value error, Organization name cannot be empty" {
				t.Fatalf("blank name message %q", got)
			}
			// Both problems at once are both reported.
			r = orgUnchanged(t, e, apitest.Request{Method: "POST", Path: orgsAPI, Token: owner.Access, Body: map[string]any{"name": " ", "slug": "A B"}},
				orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})
			if f := fieldErrors(t, r); f["name"] == "" || f["slug"] == "" {
				t.Fatalf("field errors %v, want name and slug", f)
			}
		})

		t.Run("settings must be an object", func(t *testing.T) {
			for _, s := range []any{"dark", []any{1, 2}, 5, true, []any{}} {
				for _, req := range []apitest.Request{
					{Method: "POST", Path: orgsAPI, Token: owner.Access, Body: map[string]any{"name": "S", "slug": "settings", "settings": s}},
					{Method: "PUT", Path: orgURL(acme.ID), Token: owner.Access, Body: map[string]any{"settings": s}},
				} {
					r := orgUnchanged(t, e, req, orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})
					if _, ok := fieldErrors(t, r)["settings"]; !ok {
						t.Errorf("%s settings %v: %s", req.Method, s, r.Body)
					}
				}
			}
		})

		t.Run("partial PUT keeps absent keys, null clears", func(t *testing.T) {
			r := orgPut(e, orgURL(acme.ID), owner.Access, map[string]any{"description": "Anvils", "settings": map[string]any{"a": 1}}).Expect(t, http.StatusOK, "")
			before := orgDecode[orgJSON](t, r)
			r = orgPut(e, orgURL(acme.ID), owner.Access, map[string]any{"name": "  Acme Renamed "}).Expect(t, http.StatusOK, "")
			o := orgDecode[orgJSON](t, r)
			if o.Name != "Acme Renamed" || o.Slug != "acme" || o.Description == nil || *o.Description != "Anvils" || string(o.Settings) != `{"a":1}` ||
				!o.IsActive || o.CreatedAt != before.CreatedAt || o.MemberCount != 1 {
				t.Fatalf("after partial update %+v settings %s", o, o.Settings)
			}
			if !orgTime(t, o.UpdatedAt).After(orgTime(t, o.CreatedAt)) {
				t.Fatalf("updated_at %s not after created_at %s", o.UpdatedAt, o.CreatedAt)
			}
			r = orgPut(e, orgURL(acme.ID), owner.Access, map[string]any{"description": nil}).Expect(t, http.StatusOK, "")
			if o := orgDecode[orgJSON](t, r); o.Description != nil || o.Name != "Acme Renamed" || string(o.Settings) != `{"a":1}` {
				t.Fatalf("after clearing description %+v", o)
			}
			if n := e.Count(`SELECT COUNT(*) FROM organizations WHERE id = $1 AND description IS NULL`, acme.ID); n != 1 {
				t.Fatal("description not NULL in the database")
			}
			r = orgPut(e, orgURL(acme.ID), owner.Access, map[string]any{"settings": nil}).Expect(t, http.StatusOK, "")
			if o := orgDecode[orgJSON](t, r); string(o.Settings) != "null" {
				t.Fatalf("settings %s, want null", o.Settings)
			}
			// An empty body changes nothing but is accepted.
			orgPut(e, orgURL(acme.ID), owner.Access, map[string]any{}).Expect(t, http.StatusOK, "")
			got := orgDecode[orgJSON](t, e.Get(orgURL(acme.ID), owner.Access).Expect(t, http.StatusOK, ""))
			if got.Name != "Acme Renamed" || got.Slug != "acme" || got.Description != nil {
				t.Fatalf("reread %+v", got)
			}
		})
	})
}

// ---------------------------------------------------------------------------
// 5. Invitations

func TestOrgInvitations(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		owner := e.User("owner@example.com")
		o := orgCreate(t, e, owner.Access, "Globex & <Co>", "globex")
		e.User("taken@example.com")

		r := e.Post(orgURL(o.ID, "/invitations"), owner.Access, map[string]any{"email": "New.Person@Example.com", "role": "admin"}).
			Expect(t, http.StatusCreated, "")
		inv := orgDecode[orgInvitationJSON](t, r)
		if inv.Email != "new.person@example.com" || inv.Role != "admin" || inv.Status != "pending" || inv.OrganizationID != o.ID ||
			inv.InvitedBy == nil || *inv.InvitedBy != owner.UserID || inv.AcceptedAt != nil || inv.RevokedAt != nil {
			t.Fatalf("invitation %+v", inv)
		}
		if d := orgTime(t, inv.ExpiresAt).Sub(orgTime(t, inv.CreatedAt)); d != 7*24*time.Hour {
			t.Fatalf("valid for %v, want 7 days", d)
		}
		if bytes.Contains(r.Body, []byte("token")) {
			t.Fatalf("the response reveals the token: %s", r.Body)
		}

		var secret string
		t.Run("the email", func(t *testing.T) {
			m := orgMailsTo(t, e, "new.person@example.com", 1)[0]
			if m.Subject != "Invitation to join Globex & <Co>" {
				t.Fatalf("subject %q", m.Subject)
			}
			const prefix = "https://app.example.com/invitations/accept?token="
			i := strings.Index(m.Text, prefix)
			if i < 0 {
				t.Fatalf("no accept link in:\n%s", m.Text)
			}
			link := strings.Fields(m.Text[i:])[0]
			u, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			secret = u.Query().Get("token")
			if secret == "" || !strings.Contains(m.HTML, link) {
				t.Fatalf("link %q has no token or is not in the HTML part", link)
			}
			for _, s := range []string{"Test invited you", "Globex & <Co>", "as admin", "7 days"} {
				if !strings.Contains(m.Text, s) {
					t.Errorf("text part lacks %q:\n%s", s, m.Text)
				}
			}
			if strings.Contains(m.HTML, "<Co>") || !strings.Contains(m.HTML, "Globex &amp; &lt;Co&gt;") {
				t.Errorf("HTML part does not escape the organization name:\n%s", m.HTML)
			}
			if n := e.Count(`SELECT COUNT(*) FROM organization_invitations WHERE token_hash = $1`, secret); n != 0 {
				t.Fatal("the raw token is stored")
			}
			if n := e.Count(`SELECT COUNT(*) FROM organization_invitations WHERE id = $1 AND token_hash = $2`, inv.ID, token.HashSecret(secret)); n != 1 {
				t.Fatal("the token's SHA-256 is not stored")
			}
		})

		t.Run("an address with an account gets the same answer and can accept", func(t *testing.T) {
			// docs/DECISIONS.md: invitations may go to any address, so they
			// reveal no accounts.
			r := e.Post(orgURL(o.ID, "/invitations"), owner.Access, map[string]any{"email": "TAKEN@example.com"}).Expect(t, http.StatusCreated, "")
			var withAccount, without map[string]any
			r.Decode(t, &withAccount)
			if err := json.Unmarshal(orgMustJSON(t, inv), &without); err != nil {
				t.Fatal(err)
			}
			if withAccount["email"] != "taken@example.com" || withAccount["status"] != "pending" || withAccount["role"] != "member" || len(withAccount) != len(without) {
				t.Fatalf("invitation of an existing account: %s", r.Body)
			}
			for k := range without {
				if _, ok := withAccount[k]; !ok {
					t.Fatalf("key %s missing from %s", k, r.Body)
				}
			}
			secret := orgInviteToken(t, e, "taken@example.com", 1)
			taken := e.Login("taken@example.com", apitest.Password)
			r = e.Post(acceptAPI, taken.Access, map[string]any{"token": secret}).Expect(t, http.StatusOK, "")
			if role := r.JSON(t)["role"]; role != "member" {
				t.Fatalf("accepted as %v", role)
			}
			if role, active := orgRole(t, e, o.ID, taken.UserID); role != "member" || !active {
				t.Fatalf("membership %q %v", role, active)
			}
		})

		t.Run("an active member who accepts keeps their role", func(t *testing.T) {
			keeper := e.User("keeper@example.com")
			orgAdd(t, e, owner.Access, o.ID, keeper.UserID, "guest")
			orgInvite(t, e, owner.Access, o.ID, "keeper@example.com", "admin")
			secret := orgInviteToken(t, e, "keeper@example.com", 1)
			r := e.Post(acceptAPI, keeper.Access, map[string]any{"token": secret}).Expect(t, http.StatusOK, "")
			if role := r.JSON(t)["role"]; role != "guest" {
				t.Fatalf("answer role %v, want guest (kept)", role)
			}
			if role, active := orgRole(t, e, o.ID, keeper.UserID); role != "guest" || !active {
				t.Fatalf("membership %q %v, want guest", role, active)
			}
		})

		t.Run("accepting", func(t *testing.T) {
			person := e.User("new.person@example.com")
			other := e.User("other@example.com")
			accept := func(tok, secret string) apitest.Request {
				return apitest.Request{Method: "POST", Path: acceptAPI, Token: tok, Body: map[string]any{"token": secret}}
			}
			// The wrong user is refused and the invitation stays usable.
			orgUnchanged(t, e, accept(other.Access, secret), orgWrongUser)
			orgUnchanged(t, e, accept(person.Access, secret+"x"), orgWant{http.StatusBadRequest, "VAL_006", "Invalid or expired invitation"})
			orgUnchanged(t, e, accept("", secret), orgAnonymous)

			r := e.Do(accept(person.Access, secret)).Expect(t, http.StatusOK, "")
			var body struct {
				Organization orgJSON `json:"organization"`
				Role         string  `json:"role"`
			}
			r.Decode(t, &body)
			// owner, taken, keeper and now the new person.
			if body.Role != "admin" || body.Organization.ID != o.ID || body.Organization.Name != o.Name || body.Organization.MemberCount != 4 {
				t.Fatalf("accept response %s", r.Body)
			}
			if role, active := orgRole(t, e, o.ID, person.UserID); role != "admin" || !active {
				t.Fatalf("membership %q %v", role, active)
			}
			e.Get(orgURL(o.ID), person.Access).Expect(t, http.StatusOK, "")
			// The new admin manages members.
			orgInvite(t, e, person.Access, o.ID, "by-admin@example.com", "member")

			// Single use.
			orgUnchanged(t, e, accept(person.Access, secret), orgWant{http.StatusBadRequest, "VAL_006", "Invalid or expired invitation"})
			// Nor can it be revoked once accepted.
			orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: orgURL(o.ID, "/invitations/", inv.ID), Token: owner.Access},
				orgWant{http.StatusNotFound, "SYS_002", "Invitation not found"})
		})

		t.Run("expired", func(t *testing.T) {
			orgInvite(t, e, owner.Access, o.ID, "late@example.com", "")
			secret := orgInviteToken(t, e, "late@example.com", 1)
			e.Exec(`UPDATE organization_invitations SET expires_at = created_at WHERE token_hash = $1`, token.HashSecret(secret))
			late := e.User("late@example.com")
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: acceptAPI, Token: late.Access, Body: map[string]any{"token": secret}},
				orgWant{http.StatusBadRequest, "VAL_006", "Invalid or expired invitation"})
			if role, _ := orgRole(t, e, o.ID, late.UserID); role != "" {
				t.Fatal("an expired invitation made a membership")
			}
		})

		t.Run("revoked", func(t *testing.T) {
			rv := orgInvite(t, e, owner.Access, o.ID, "revoked@example.com", "guest")
			secret := orgInviteToken(t, e, "revoked@example.com", 1)
			r := e.Delete(orgURL(o.ID, "/invitations/", rv.ID), owner.Access).Expect(t, http.StatusOK, "")
			if m := r.JSON(t); m["success"] != true || m["message"] != "Invitation revoked" {
				t.Fatalf("body %s", r.Body)
			}
			orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: orgURL(o.ID, "/invitations/", rv.ID), Token: owner.Access},
				orgWant{http.StatusNotFound, "SYS_002", "Invitation not found"})
			u := e.User("revoked@example.com")
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: acceptAPI, Token: u.Access, Body: map[string]any{"token": secret}},
				orgWant{http.StatusBadRequest, "VAL_006", "Invalid or expired invitation"})
			// An invitation of another organization cannot be revoked through this one.
			elsewhere := orgCreate(t, e, owner.Access, "Elsewhere", "elsewhere")
			foreign := orgInvite(t, e, owner.Access, elsewhere.ID, "foreign@example.com", "")
			orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: orgURL(o.ID, "/invitations/", foreign.ID), Token: owner.Access},
				orgWant{http.StatusNotFound, "SYS_002", "Invitation not found"})
		})

		t.Run("listing shows every status, newest first", func(t *testing.T) {
			orgInvite(t, e, owner.Access, o.ID, "pending@example.com", "member")
			list := orgDecode[[]orgInvitationJSON](t, e.Get(orgURL(o.ID, "/invitations"), owner.Access).Expect(t, http.StatusOK, ""))
			got := map[string]string{}
			var order []string
			for _, i := range list {
				got[i.Email] = i.Status
				order = append(order, i.Email)
				if i.OrganizationID != o.ID {
					t.Fatalf("invitation of another organization listed: %+v", i)
				}
			}
			want := map[string]string{"new.person@example.com": "accepted", "taken@example.com": "accepted", "keeper@example.com": "accepted",
				"by-admin@example.com": "pending", "late@example.com": "expired", "revoked@example.com": "revoked", "pending@example.com": "pending"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("statuses %v, want %v", got, want)
			}
			wantOrder := []string{"pending@example.com", "revoked@example.com", "late@example.com", "by-admin@example.com",
				"keeper@example.com", "taken@example.com", "new.person@example.com"}
			if !slices.Equal(order, wantOrder) {
				t.Fatalf("order %v, want %v", order, wantOrder)
			}
			for _, i := range list {
				if (i.Status == "accepted") != (i.AcceptedAt != nil) || (i.Status == "revoked") != (i.RevokedAt != nil) {
					t.Fatalf("timestamps do not match the status: %+v", i)
				}
			}
		})

		t.Run("an invitation to an inactive organization cannot be accepted", func(t *testing.T) {
			orgInvite(t, e, owner.Access, o.ID, "dormant@example.com", "member")
			secret := orgInviteToken(t, e, "dormant@example.com", 1)
			orgPut(e, orgURL(o.ID), owner.Access, map[string]any{"is_active": false}).Expect(t, http.StatusOK, "")
			u := e.User("dormant@example.com")
			// orgUnchanged also proves the invitation stays pending and no membership appears.
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: acceptAPI, Token: u.Access, Body: map[string]any{"token": secret}}, orgInactiveOrg)
			if role, _ := orgRole(t, e, o.ID, u.UserID); role != "" {
				t.Fatal("membership created for an inactive organization")
			}
			if n := e.Count(`SELECT COUNT(*) FROM organization_invitations WHERE email = 'dormant@example.com' AND accepted_at IS NULL`); n != 1 {
				t.Fatal("the invitation was consumed")
			}
		})
	})
}

// ---------------------------------------------------------------------------
// 6. Member listing and counts

func TestOrgMemberListing(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		su := e.Superuser("root@example.com")
		owner := e.User("owner@example.com")
		id := orgCreate(t, e, owner.Access, "Listing", "listing").ID
		roles := []string{"admin", "member", "guest", "member", "member"}
		users := make([]apitest.Tokens, len(roles))
		for i, role := range roles {
			users[i] = e.User(fmt.Sprintf("u%d@example.com", i+1))
			orgAdd(t, e, owner.Access, id, users[i].UserID, role)
		}
		admin, removed, guest, doomed, member := users[0], users[1], users[2], users[3], users[4]
		newestFirst := []string{member.UserID, doomed.UserID, guest.UserID, removed.UserID, admin.UserID, owner.UserID}

		t.Run("pagination shape and newest first", func(t *testing.T) {
			pages := []struct {
				query string
				ids   []string
				p     orgPagination
			}{
				{"?limit=2", newestFirst[:2], orgPagination{Total: 6, Page: 1, PageSize: 2, TotalPages: 3, HasNext: true}},
				{"?limit=2&page=2", newestFirst[2:4], orgPagination{Total: 6, Page: 2, PageSize: 2, TotalPages: 3, HasNext: true, HasPrev: true}},
				{"?limit=4&page=2", newestFirst[4:], orgPagination{Total: 6, Page: 2, PageSize: 2, TotalPages: 2, HasPrev: true}},
				{"?limit=2&page=9", []string{}, orgPagination{Total: 6, Page: 9, PageSize: 0, TotalPages: 3, HasPrev: true}},
				{"", newestFirst, orgPagination{Total: 6, Page: 1, PageSize: 6, TotalPages: 1}},
			}
			for _, pg := range pages {
				got := orgMembers(t, e, guest.Access, id, pg.query)
				if !slices.Equal(orgMemberIDs(got.Data), pg.ids) || got.Pagination != pg.p {
					t.Errorf("%q: ids %v pagination %+v; want %v %+v", pg.query, orgMemberIDs(got.Data), got.Pagination, pg.ids, pg.p)
				}
			}
			all := orgMembers(t, e, owner.Access, id, "")
			for i := 1; i < len(all.Data); i++ {
				if orgTime(t, all.Data[i-1].JoinedAt).Before(orgTime(t, all.Data[i].JoinedAt)) {
					t.Fatalf("joined_at not descending: %+v", all.Data)
				}
			}
		})

		t.Run("removed members", func(t *testing.T) {
			e.Delete(orgURL(id, "/members/", removed.UserID), owner.Access).Expect(t, http.StatusOK, "")
			for _, tok := range []string{owner.Access, admin.Access, su.Access} {
				p := orgMembers(t, e, tok, id, "?is_active=false")
				if p.Pagination.Total != 1 || len(p.Data) != 1 || p.Data[0].UserID != removed.UserID || p.Data[0].IsActive {
					t.Fatalf("removed members %+v", p)
				}
			}
			orgUnchanged(t, e, apitest.Request{Method: "GET", Path: orgURL(id, "/members?is_active=false"), Token: member.Access}, orgAsMember)
			orgUnchanged(t, e, apitest.Request{Method: "GET", Path: orgURL(id, "/members?is_active=false"), Token: guest.Access}, orgAsGuest)
			orgUnchanged(t, e, apitest.Request{Method: "GET", Path: orgURL(id, "/members?is_active=false"), Token: removed.Access}, orgNotMember)
			if p := orgMembers(t, e, owner.Access, id, "?is_active=true"); p.Pagination.Total != 5 {
				t.Fatalf("active members %+v", p.Pagination)
			}
			o := orgDecode[orgJSON](t, e.Get(orgURL(id), owner.Access).Expect(t, http.StatusOK, ""))
			if o.MemberCount != 5 {
				t.Fatalf("member_count %d, want 5 (active members only)", o.MemberCount)
			}
		})

		t.Run("deleted users are neither listed nor counted", func(t *testing.T) {
			e.Delete("/api/v1/users/"+doomed.UserID, su.Access).Expect(t, http.StatusOK, "")
			p := orgMembers(t, e, owner.Access, id, "")
			if p.Pagination.Total != 4 || slices.Contains(orgMemberIDs(p.Data), doomed.UserID) {
				t.Fatalf("members after deleting a user %+v", p)
			}
			if p := orgMembers(t, e, owner.Access, id, "?is_active=false"); slices.Contains(orgMemberIDs(p.Data), doomed.UserID) || p.Pagination.Total != 1 {
				t.Fatalf("removed members list the deleted user: %+v", p)
			}
			if o := orgDecode[orgJSON](t, e.Get(orgURL(id), owner.Access).Expect(t, http.StatusOK, "")); o.MemberCount != 4 {
				t.Fatalf("member_count %d, want 4", o.MemberCount)
			}
		})

		t.Run("GET /organizations/me", func(t *testing.T) {
			second := orgCreate(t, e, admin.Access, "Second", "second")
			orgAdd(t, e, admin.Access, second.ID, owner.UserID, "guest")
			mine := orgDecode[[]orgJSON](t, e.Get(orgsAPI+"/me", owner.Access).Expect(t, http.StatusOK, ""))
			if len(mine) != 2 || mine[0].ID != second.ID || mine[1].ID != id || mine[0].MemberCount != 2 || mine[1].MemberCount != 4 {
				t.Fatalf("my organizations %+v, want Second (2 members) then Listing (4), most recently joined first", mine)
			}
			for _, q := range []string{"?is_active=true", "?is_active=1", "?is_active=yes"} {
				again := orgDecode[[]orgJSON](t, e.Get(orgsAPI+"/me"+q, owner.Access).Expect(t, http.StatusOK, ""))
				if len(again) != 2 {
					t.Fatalf("%s: %d organizations", q, len(again))
				}
			}
			if gone := orgDecode[[]orgJSON](t, e.Get(orgsAPI+"/me?is_active=false", owner.Access).Expect(t, http.StatusOK, "")); len(gone) != 0 {
				t.Fatalf("owner was removed from nothing: %+v", gone)
			}
			gone := orgDecode[[]orgJSON](t, e.Get(orgsAPI+"/me?is_active=false", removed.Access).Expect(t, http.StatusOK, ""))
			if len(gone) != 1 || gone[0].ID != id || gone[0].MemberCount != 4 {
				t.Fatalf("removed from %+v", gone)
			}
			if now := orgDecode[[]orgJSON](t, e.Get(orgsAPI+"/me", removed.Access).Expect(t, http.StatusOK, "")); len(now) != 0 {
				t.Fatalf("removed member still lists %+v", now)
			}
			r := e.Get(orgsAPI+"/me", su.Access).Expect(t, http.StatusOK, "")
			if strings.TrimSpace(string(r.Body)) != "[]" {
				t.Fatalf("superuser (a member of nothing): %s, want []", r.Body)
			}
			orgUnchanged(t, e, apitest.Request{Method: "GET", Path: orgsAPI + "/me?is_active=maybe", Token: owner.Access}, orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})
		})
	})
}

// ---------------------------------------------------------------------------
// 7. Admin organization endpoints

func TestOrgAdminEndpoints(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		su := e.Superuser("root@example.com")
		regular := e.User("regular@example.com")
		x := e.User("x@example.com")

		create := func(t *testing.T, body map[string]any) orgJSON {
			t.Helper()
			return orgDecode[orgJSON](t, e.Post(adminOrgsAPI, su.Access, body).Expect(t, http.StatusCreated, ""))
		}

		var main orgJSON
		t.Run("create", func(t *testing.T) {
			main = create(t, map[string]any{"name": "Admin Org", "slug": "admin-org", "description": "Made by root",
				"is_active": false, "settings": map[string]any{"tier": "gold"}})
			if main.MemberCount != 0 || main.IsActive || main.Description == nil || *main.Description != "Made by root" || string(main.Settings) != `{"tier":"gold"}` {
				t.Fatalf("created %+v", main)
			}
			if n := e.Count(`SELECT COUNT(*) FROM user_organizations WHERE organization_id = $1`, main.ID); n != 0 {
				t.Fatal("the creating superuser was made a member")
			}
			if r := e.Get(orgsAPI+"/me", su.Access).Expect(t, http.StatusOK, ""); strings.TrimSpace(string(r.Body)) != "[]" {
				t.Fatalf("superuser's organizations %s", r.Body)
			}
			plain := create(t, map[string]any{"name": "Defaults", "slug": "defaults"})
			if !plain.IsActive || string(plain.Settings) != "{}" || plain.Description != nil {
				t.Fatalf("defaults %+v", plain)
			}
			orgPut(e, adminOrgURL(main.ID), su.Access, map[string]any{"is_active": true}).Expect(t, http.StatusOK, "")
		})

		t.Run("get, update", func(t *testing.T) {
			got := orgDecode[orgJSON](t, e.Get(adminOrgURL(main.ID), su.Access).Expect(t, http.StatusOK, ""))
			if got.ID != main.ID || got.Name != "Admin Org" || !got.IsActive {
				t.Fatalf("get %+v", got)
			}
			missing := uuid.NewString()
			notFound := orgWant{http.StatusNotFound, "SYS_002", "Organization " + missing + " not found"}
			orgUnchanged(t, e, apitest.Request{Method: "GET", Path: adminOrgURL(missing), Token: su.Access}, notFound)
			orgUnchanged(t, e, apitest.Request{Method: "PUT", Path: adminOrgURL(missing), Token: su.Access, Body: map[string]any{"name": "X"}}, notFound)
			orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: adminOrgURL(missing), Token: su.Access}, notFound)
			orgUnchanged(t, e, apitest.Request{Method: "GET", Path: adminOrgURL(missing, "/members"), Token: su.Access}, notFound)
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: adminOrgURL(missing, "/members"), Token: su.Access, Body: map[string]any{"user_id": x.UserID}}, notFound)
			orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: adminOrgURL(missing, "/members/", x.UserID), Token: su.Access}, notFound)

			r := orgPut(e, adminOrgURL(main.ID), su.Access, map[string]any{"name": "Admin Org 2", "description": nil}).Expect(t, http.StatusOK, "")
			if o := orgDecode[orgJSON](t, r); o.Name != "Admin Org 2" || o.Description != nil || o.Slug != "admin-org" || string(o.Settings) != `{"tier":"gold"}` {
				t.Fatalf("updated %+v", o)
			}
		})

		t.Run("members: add, re-add, remove", func(t *testing.T) {
			path := adminOrgURL(main.ID, "/members")
			r := e.Post(path, su.Access, map[string]any{"user_id": x.UserID}).Expect(t, http.StatusOK, "")
			if m := r.JSON(t); m["success"] != true || m["message"] != "User x@example.com added to organization Admin Org 2" {
				t.Fatalf("add: %s", r.Body)
			}
			p := orgDecode[orgMembersPage](t, e.Get(path, su.Access).Expect(t, http.StatusOK, ""))
			if p.Pagination.Total != 1 || p.Data[0].UserID != x.UserID || p.Data[0].Role != "member" {
				t.Fatalf("members %+v", p)
			}
			joined := p.Data[0].JoinedAt
			r = orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: su.Access, Body: map[string]any{"user_id": x.UserID, "role": "admin"}},
				orgWant{http.StatusConflict, "USER_002", "User is already a member of this organization"})
			if _, _, field := r.ErrorCode(t); field != "user_id" {
				t.Fatalf("field %v", field)
			}
			ghost := uuid.NewString()
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: su.Access, Body: map[string]any{"user_id": ghost}},
				orgWant{http.StatusNotFound, "SYS_002", "User " + ghost + " not found"})
			orgUnchanged(t, e, apitest.Request{Method: "POST", Path: path, Token: su.Access, Body: map[string]any{"user_id": x.UserID, "role": "boss"}},
				orgWant{http.StatusUnprocessableEntity, "VAL_001", ""})

			r = e.Delete(adminOrgURL(main.ID, "/members/", x.UserID), su.Access).Expect(t, http.StatusOK, "")
			if m := r.JSON(t); m["success"] != true || m["message"] != "User x@example.com removed from organization Admin Org 2" {
				t.Fatalf("remove: %s", r.Body)
			}
			if removed := orgDecode[orgMembersPage](t, e.Get(path+"?is_active=false", su.Access).Expect(t, http.StatusOK, "")); removed.Pagination.Total != 1 {
				t.Fatalf("removed members %+v", removed)
			}
			// Re-added with the new role, joined_at kept.
			e.Post(path, su.Access, map[string]any{"user_id": x.UserID, "role": "owner"}).Expect(t, http.StatusOK, "")
			p = orgDecode[orgMembersPage](t, e.Get(path, su.Access).Expect(t, http.StatusOK, ""))
			if p.Pagination.Total != 1 || p.Data[0].Role != "owner" || !p.Data[0].IsActive || p.Data[0].JoinedAt != joined {
				t.Fatalf("re-added %+v, joined before %s", p.Data, joined)
			}
			// Removing a user who never was a member.
			orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: adminOrgURL(main.ID, "/members/", regular.UserID), Token: su.Access},
				orgWant{http.StatusNotFound, "SYS_002", "User is not a member of this organization"})
			orgUnchanged(t, e, apitest.Request{Method: "DELETE", Path: adminOrgURL(main.ID, "/members/", ghost), Token: su.Access},
				orgWant{http.StatusNotFound, "SYS_002", ""})
		})

		t.Run("regular users get 403, anonymous 401", func(t *testing.T) {
			reqs := []apitest.Request{
				{Method: "GET", Path: adminOrgsAPI},
				{Method: "POST", Path: adminOrgsAPI, Body: map[string]any{"name": "Nope", "slug": "nope"}},
				{Method: "GET", Path: adminOrgURL(main.ID)},
				{Method: "PUT", Path: adminOrgURL(main.ID), Body: map[string]any{"name": "Nope"}},
				{Method: "DELETE", Path: adminOrgURL(main.ID)},
				{Method: "GET", Path: adminOrgURL(main.ID, "/members")},
				{Method: "POST", Path: adminOrgURL(main.ID, "/members"), Body: map[string]any{"user_id": regular.UserID}},
				{Method: "DELETE", Path: adminOrgURL(main.ID, "/members/", x.UserID)},
			}
			// Even an owner of the organization is no superuser.
			for _, req := range reqs {
				for _, tok := range []string{regular.Access, x.Access} {
					req.Token = tok
					orgUnchanged(t, e, req, orgSuperOnly)
				}
				req.Token = ""
				orgUnchanged(t, e, req, orgAnonymous)
			}
		})

		t.Run("list, filter and literal search", func(t *testing.T) {
			specs := []struct {
				name, slug string
				active     bool
			}{
				{"100% Pure", "pure", true},
				{"snake_case Ltd", "snake", true},
				{`O'Brien "Quoted"`, "obrien", true},
				{`Back\slash`, "backslash", false},
				{"Émile Zola", "emile", true},
				{"Plain", "plain-co", true},
			}
			ids := map[string]string{}
			for _, s := range specs {
				ids[s.slug] = create(t, map[string]any{"name": s.name, "slug": s.slug, "is_active": s.active}).ID
			}
			list := func(t *testing.T, query string) orgListPage {
				t.Helper()
				return orgDecode[orgListPage](t, e.Get(adminOrgsAPI+query, su.Access).Expect(t, http.StatusOK, ""))
			}
			all := list(t, "?limit=100")
			if all.Pagination.Total != 8 || len(all.Data) != 8 || all.Data[0].ID != ids["plain-co"] || all.Data[7].ID != main.ID {
				t.Fatalf("all organizations %+v", all)
			}
			byID := map[string]orgJSON{}
			for _, o := range all.Data {
				byID[o.ID] = o
			}
			if byID[main.ID].MemberCount != 1 {
				t.Fatalf("member_count of the admin org %d, want 1", byID[main.ID].MemberCount)
			}
			p := list(t, "?limit=3&page=3")
			if want := (orgPagination{Total: 8, Page: 3, PageSize: 2, TotalPages: 3, HasPrev: true}); p.Pagination != want {
				t.Fatalf("page 3: %+v, want %+v", p.Pagination, want)
			}
			if p := list(t, "?is_active=false"); p.Pagination.Total != 1 || p.Data[0].ID != ids["backslash"] {
				t.Fatalf("inactive %+v", p)
			}
			if p := list(t, "?is_active=true&limit=100"); p.Pagination.Total != 7 {
				t.Fatalf("active total %d", p.Pagination.Total)
			}
			for q, want := range map[string][]string{
				"%":       {ids["pure"]},
				"_":       {ids["snake"]},
				"'":       {ids["obrien"]},
				`"`:       {ids["obrien"]},
				`"QUOTED`: {ids["obrien"]},
				`\`:       {ids["backslash"]},
				`K\S`:     {ids["backslash"]},
				"émile":   {ids["emile"]},
				"ÉMILE":   {ids["emile"]},
				"PLAIN":   {ids["plain-co"]},
				"snake-":  nil,
				"p_re":    nil,
				"%%":      nil,
			} {
				got := list(t, "?limit=100&search="+url.QueryEscape(q))
				var gotIDs []string
				for _, o := range got.Data {
					gotIDs = append(gotIDs, o.ID)
				}
				if !slices.Equal(gotIDs, want) || got.Pagination.Total != len(want) {
					t.Errorf("search %q: %v (total %d), want %v", q, gotIDs, got.Pagination.Total, want)
				}
			}
		})

		t.Run("delete cascades", func(t *testing.T) {
			orgInvite(t, e, su.Access, main.ID, "pending-admin@example.com", "")
			if n := e.Count(`SELECT COUNT(*) FROM organization_invitations WHERE organization_id = $1`, main.ID); n != 1 {
				t.Fatalf("%d invitations before the delete", n)
			}
			r := e.Delete(adminOrgURL(main.ID), su.Access).Expect(t, http.StatusOK, "")
			if m := r.JSON(t); m["success"] != true || m["message"] != "Organization Admin Org 2 has been deleted" {
				t.Fatalf("delete: %s", r.Body)
			}
			for _, q := range []string{
				`SELECT COUNT(*) FROM organizations WHERE id = $1`,
				`SELECT COUNT(*) FROM user_organizations WHERE organization_id = $1`,
				`SELECT COUNT(*) FROM organization_invitations WHERE organization_id = $1`,
			} {
				if n := e.Count(q, main.ID); n != 0 {
					t.Errorf("%s: %d rows left", q, n)
				}
			}
			e.Get(adminOrgURL(main.ID), su.Access).Expect(t, http.StatusNotFound, "SYS_002")
			e.Delete(adminOrgURL(main.ID), su.Access).Expect(t, http.StatusNotFound, "SYS_002")
			e.Get(orgURL(main.ID), x.Access).Expect(t, http.StatusForbidden, "AUTH_004")
			e.Get("/api/v1/users/me", x.Access).Expect(t, http.StatusOK, "")
		})
	})
}

// ---------------------------------------------------------------------------
// 9. Bad input never causes a 500 and changes nothing

func TestOrgBadInputNever500s(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		su := e.Superuser("root@example.com")
		c := &orgCallers{su: su, owner: e.User("owner@example.com"), admin: e.User("admin@example.com"), member: e.User("member@example.com"),
			guest: e.User("guest@example.com"), extra: e.User("extra@example.com"), candidate: e.User("candidate@example.com")}
		c.inactive, c.deleted = e.User("inactive@example.com"), e.User("deleted@example.com")
		f := c.fixture(t, e, 1)
		o := c.owner.Access
		long := strings.Repeat("x", 10_000)
		type tc struct {
			name   string
			req    apitest.Request
			status int    // 0: any 4xx
			field  string // first error's field, "" to skip
		}
		r := func(name, method, path, tok, body string, status int, field string) tc {
			var b any
			if body != "" {
				b = body
			}
			return tc{name, apitest.Request{Method: method, Path: path, Token: tok, Body: b}, status, field}
		}
		oid, member := f.id, c.member.UserID
		cases := []tc{
			// Invalid UUIDs in paths.
			r("get org not a uuid", "GET", orgURL("not-a-uuid"), o, "", 422, "organization_id"),
			r("get org short", "GET", orgURL("123"), o, "", 422, "organization_id"),
			r("get org emoji", "GET", orgURL(url.PathEscape("😀")), o, "", 422, "organization_id"),
			r("get org uuid without hyphens", "GET", orgURL(strings.ReplaceAll(oid, "-", "")), o, "", 422, "organization_id"),
			r("put org not a uuid", "PUT", orgURL("nope"), o, `{"name":"X"}`, 422, "organization_id"),
			r("members not a uuid", "GET", orgURL("nope", "/members"), o, "", 422, "organization_id"),
			r("add member org not a uuid", "POST", orgURL("nope", "/members"), o, `{"user_id":"`+member+`"}`, 422, "organization_id"),
			r("patch member user not a uuid", "PATCH", orgURL(oid, "/members/nope"), o, `{"role":"guest"}`, 422, "user_id"),
			r("patch member org not a uuid", "PATCH", orgURL("nope", "/members/", member), o, `{"role":"guest"}`, 422, "organization_id"),
			r("delete member user not a uuid", "DELETE", orgURL(oid, "/members/123"), o, "", 422, "user_id"),
			r("invite org not a uuid", "POST", orgURL("nope", "/invitations"), o, `{"email":"a@example.com"}`, 422, "organization_id"),
			r("list invitations not a uuid", "GET", orgURL("nope", "/invitations"), o, "", 422, "organization_id"),
			r("revoke invitation not a uuid", "DELETE", orgURL(oid, "/invitations/nope"), o, "", 422, "invitation_id"),
			r("admin get not a uuid", "GET", adminOrgURL("nope"), su.Access, "", 422, "org_id"),
			r("admin put not a uuid", "PUT", adminOrgURL("nope"), su.Access, `{"name":"X"}`, 422, "org_id"),
			r("admin delete not a uuid", "DELETE", adminOrgURL("nope"), su.Access, "", 422, "org_id"),
			r("admin members not a uuid", "GET", adminOrgURL("nope", "/members"), su.Access, "", 422, "org_id"),
			r("admin add member org not a uuid", "POST", adminOrgURL("nope", "/members"), su.Access, `{"user_id":"`+member+`"}`, 422, "org_id"),
			r("admin remove member user not a uuid", "DELETE", adminOrgURL(oid, "/members/nope"), su.Access, "", 422, "user_id"),

			// Create.
			r("create invalid JSON", "POST", orgsAPI, o, `{"name":`, 422, ""),
			r("create array", "POST", orgsAPI, o, `[{"name":"A","slug":"a"}]`, 422, ""),
			r("create JSON null", "POST", orgsAPI, o, `null`, 422, ""),
			r("create missing fields", "POST", orgsAPI, o, `{}`, 422, ""),
			r("create numbers", "POST", orgsAPI, o, `{"name":1,"slug":2}`, 422, "name"),
			r("create nulls", "POST", orgsAPI, o, `{"name":null,"slug":null}`, 422, "name"),
			r("create 10k name", "POST", orgsAPI, o, `{"name":"`+long+`","slug":"long-name"}`, 422, "name"),
			r("create 10k slug", "POST", orgsAPI, o, `{"name":"Long","slug":"`+long+`"}`, 422, "slug"),
			r("create 10k+1 description", "POST", orgsAPI, o, `{"name":"Long","slug":"long-desc","description":"`+long+`x"}`, 422, "description"),
			r("create NUL in name", "POST", orgsAPI, o, `{"name":"A\u0000B","slug":"nul-name"}`, 422, "name"),
			r("create NUL in description", "POST", orgsAPI, o, `{"name":"A","slug":"nul-desc","description":"x\u0000y"}`, 422, "description"),
			r("create NUL in settings value", "POST", orgsAPI, o, `{"name":"A","slug":"nul-set","settings":{"k":"v\u0000"}}`, 422, "settings"),
			r("create NUL in settings key", "POST", orgsAPI, o, `{"name":"A","slug":"nul-key","settings":{"\u0000":1}}`, 422, "settings"),
			r("create settings string", "POST", orgsAPI, o, `{"name":"A","slug":"set-str","settings":"x"}`, 422, "settings"),
			r("create settings number out of range", "POST", orgsAPI, o, `{"name":"A","slug":"set-big","settings":{"a":1e999}}`, 422, ""),
			r("create is_active string", "POST", orgsAPI, o, `{"name":"A","slug":"act","is_active":"yes please"}`, 422, "is_active"),
			r("create description number", "POST", orgsAPI, o, `{"name":"A","slug":"desc-num","description":5}`, 422, "description"),
			r("admin create 10k name", "POST", adminOrgsAPI, su.Access, `{"name":"`+long+`","slug":"a"}`, 422, "name"),
			r("admin create NUL in description", "POST", adminOrgsAPI, su.Access, `{"name":"A","slug":"nul-desc","description":"\u0000"}`, 422, "description"),
			r("admin create is_active string", "POST", adminOrgsAPI, su.Access, `{"name":"A","slug":"act-null","is_active":"no"}`, 422, "is_active"),

			// Update.
			r("put name number", "PUT", orgURL(oid), o, `{"name":123}`, 422, "name"),
			r("put is_active string", "PUT", orgURL(oid), o, `{"is_active":"maybe"}`, 422, "is_active"),
			r("put is_active null", "PUT", orgURL(oid), o, `{"is_active":null}`, 422, "is_active"),
			r("put slug null", "PUT", orgURL(oid), o, `{"slug":null}`, 422, "slug"),
			r("put name null", "PUT", orgURL(oid), o, `{"name":null}`, 422, "name"),
			r("put settings array", "PUT", orgURL(oid), o, `{"settings":[1]}`, 422, "settings"),
			r("put NUL in settings", "PUT", orgURL(oid), o, `{"settings":{"a":"\u0000"}}`, 422, "settings"),
			r("put NUL in description", "PUT", orgURL(oid), o, `{"description":"a\u0000"}`, 422, "description"),
			r("put NUL in name", "PUT", orgURL(oid), o, `{"name":"a\u0000"}`, 422, "name"),
			r("put 10k name", "PUT", orgURL(oid), o, `{"name":"`+long+`"}`, 422, "name"),
			r("put 10k slug", "PUT", orgURL(oid), o, `{"slug":"`+long+`"}`, 422, "slug"),
			r("put 10k+1 description", "PUT", orgURL(oid), o, `{"description":"`+long+`x"}`, 422, "description"),
			r("put array body", "PUT", orgURL(oid), o, `[{"name":"A"}]`, 422, ""),
			r("put invalid JSON", "PUT", orgURL(oid), o, `{"name":"A",}`, 422, ""),
			r("admin put NUL in description", "PUT", adminOrgURL(oid), su.Access, `{"description":"\u0000"}`, 422, "description"),
			r("admin put settings number", "PUT", adminOrgURL(oid), su.Access, `{"settings":5}`, 422, "settings"),

			// Members.
			r("add member user_id number", "POST", orgURL(oid, "/members"), o, `{"user_id":123}`, 422, "user_id"),
			r("add member user_id not a uuid", "POST", orgURL(oid, "/members"), o, `{"user_id":"not-a-uuid"}`, 422, "user_id"),
			r("add member role number", "POST", orgURL(oid, "/members"), o, `{"user_id":"`+c.candidate.UserID+`","role":5}`, 422, "role"),
			r("add member role unknown", "POST", orgURL(oid, "/members"), o, `{"user_id":"`+c.candidate.UserID+`","role":"boss"}`, 422, "role"),
			r("add member 10k email", "POST", orgURL(oid, "/members"), o, `{"email":"`+long+`@example.com"}`, 422, "email"),
			r("add member not an email", "POST", orgURL(oid, "/members"), o, `{"email":"nope"}`, 422, "email"),
			r("add member NUL in email", "POST", orgURL(oid, "/members"), o, `{"email":"a\u0000@example.com"}`, 422, "email"),
			r("add member nulls", "POST", orgURL(oid, "/members"), o, `{"user_id":null,"email":null}`, 422, "user_id"),
			r("add member empty body", "POST", orgURL(oid, "/members"), o, ``, 422, ""),
			r("patch role null", "PATCH", orgURL(oid, "/members/", member), o, `{"role":null}`, 422, "role"),
			r("patch role missing", "PATCH", orgURL(oid, "/members/", member), o, `{}`, 422, "role"),
			r("patch role unknown", "PATCH", orgURL(oid, "/members/", member), o, `{"role":"boss"}`, 422, "role"),
			r("patch role number", "PATCH", orgURL(oid, "/members/", member), o, `{"role":1}`, 422, "role"),
			r("patch role 10k", "PATCH", orgURL(oid, "/members/", member), o, `{"role":"`+long+`"}`, 422, "role"),
			r("admin add member missing user_id", "POST", adminOrgURL(oid, "/members"), su.Access, `{"role":"member"}`, 422, "user_id"),
			r("admin add member user_id not a uuid", "POST", adminOrgURL(oid, "/members"), su.Access, `{"user_id":"x"}`, 422, "user_id"),
			r("admin add member role unknown", "POST", adminOrgURL(oid, "/members"), su.Access, `{"user_id":"`+c.candidate.UserID+`","role":"boss"}`, 422, "role"),

			// Invitations.
			r("invite 10k email", "POST", orgURL(oid, "/invitations"), o, `{"email":"`+long+`@example.com"}`, 422, "email"),
			r("invite not an email", "POST", orgURL(oid, "/invitations"), o, `{"email":"😀"}`, 422, "email"),
			r("invite null email", "POST", orgURL(oid, "/invitations"), o, `{"email":null}`, 422, "email"),
			r("invite missing email", "POST", orgURL(oid, "/invitations"), o, `{}`, 422, "email"),
			r("invite NUL in email", "POST", orgURL(oid, "/invitations"), o, `{"email":"a\u0000@example.com"}`, 422, "email"),
			r("invite unknown role", "POST", orgURL(oid, "/invitations"), o, `{"email":"a@example.com","role":"boss"}`, 422, "role"),
			r("accept 10k token", "POST", acceptAPI, o, `{"token":"`+long+`"}`, 422, "token"),
			r("accept null token", "POST", acceptAPI, o, `{"token":null}`, 422, "token"),
			r("accept number token", "POST", acceptAPI, o, `{"token":123}`, 422, "token"),
			r("accept missing token", "POST", acceptAPI, o, `{}`, 422, "token"),
			r("accept empty token", "POST", acceptAPI, o, `{"token":""}`, 0, ""),
			r("accept NUL token", "POST", acceptAPI, o, `{"token":"a\u0000b"}`, 0, ""),
			r("accept garbage token", "POST", acceptAPI, o, `{"token":"😀😀😀"}`, 400, ""),

			// Query parameters.
			r("members limit=0", "GET", orgURL(oid, "/members?limit=0"), o, "", 422, "limit"),
			r("members limit=101", "GET", orgURL(oid, "/members?limit=101"), o, "", 422, "limit"),
			r("members page=-1", "GET", orgURL(oid, "/members?page=-1"), o, "", 422, "page"),
			r("members page=0", "GET", orgURL(oid, "/members?page=0"), o, "", 422, "page"),
			r("members page=abc", "GET", orgURL(oid, "/members?page=abc"), o, "", 422, "page"),
			r("members is_active=maybe", "GET", orgURL(oid, "/members?is_active=maybe"), o, "", 422, "is_active"),
			r("me is_active=2", "GET", orgsAPI+"/me?is_active=2", o, "", 422, "is_active"),
			r("admin list limit=0", "GET", adminOrgsAPI+"?limit=0", su.Access, "", 422, "limit"),
			r("admin list limit=101", "GET", adminOrgsAPI+"?limit=101", su.Access, "", 422, "limit"),
			r("admin list page=-1", "GET", adminOrgsAPI+"?page=-1", su.Access, "", 422, "page"),
			r("admin list is_active=maybe", "GET", adminOrgsAPI+"?is_active=maybe", su.Access, "", 422, "is_active"),
			r("admin list 10k search", "GET", adminOrgsAPI+"?search="+long, su.Access, "", 422, "search"),
			r("admin list NUL search", "GET", adminOrgsAPI+"?search=a%00b", su.Access, "", 422, "search"),
			r("admin list invalid UTF-8 search", "GET", adminOrgsAPI+"?search=%FF%FE", su.Access, "", 422, "search"),
			r("admin members limit=101", "GET", adminOrgURL(oid, "/members?limit=101"), su.Access, "", 422, "limit"),
			r("admin members page=-1", "GET", adminOrgURL(oid, "/members?page=-1"), su.Access, "", 422, "page"),
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := orgDump(t, e)
				r := e.Do(c.req)
				if r.Status < 400 || r.Status > 499 {
					t.Fatalf("%s %.80s: status %d, want 4xx; body %.500s", c.req.Method, c.req.Path, r.Status, r.Body)
				}
				if c.status != 0 && r.Status != c.status {
					t.Errorf("status %d, want %d; body %.500s", r.Status, c.status, r.Body)
				}
				_, msg, field := r.ErrorCode(t)
				if msg == "" {
					t.Errorf("empty error message: %s", r.Body)
				}
				if c.field != "" && field != c.field {
					t.Errorf("field %v, want %q; body %.500s", field, c.field, r.Body)
				}
				if after := orgDump(t, e); after != before {
					t.Errorf("the database changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			})
		}

		t.Run("absurd but valid pages answer an empty page", func(t *testing.T) {
			for _, path := range []string{orgURL(oid, "/members?page=9223372036854775807&limit=100"), adminOrgURL(oid, "/members?page=99999999999"),
				adminOrgsAPI + "?page=9223372036854775807"} {
				tok := o
				if strings.HasPrefix(path, adminOrgsAPI) {
					tok = su.Access
				}
				r := e.Get(path, tok).Expect(t, http.StatusOK, "")
				if p := orgDecode[orgMembersPage](t, r); len(p.Data) != 0 || p.Pagination.HasNext || p.Pagination.Total == 0 {
					t.Fatalf("%s: %s", path, r.Body)
				}
			}
		})

		// Text the JSON decoder accepts but PostgreSQL's jsonb does not (a
		// lone surrogate escape) must not reach the database as a 500.
		t.Run("lone surrogate in settings", func(t *testing.T) {
			for _, req := range []apitest.Request{
				{Method: "POST", Path: orgsAPI, Token: o, Body: `{"name":"Surrogate","slug":"surrogate","settings":{"a":"\ud800"}}`},
				{Method: "PUT", Path: orgURL(oid), Token: o, Body: `{"settings":{"a":"\udc00x"}}`},
				{Method: "POST", Path: adminOrgsAPI, Token: su.Access, Body: `{"name":"Surrogate","slug":"surrogate-2","settings":{"\ud800":1}}`},
			} {
				if r := e.Do(req); r.Status >= 500 {
					t.Errorf("%s %s: status %d: %s", req.Method, req.Path, r.Status, r.Body)
				}
			}
		})
	})
}
