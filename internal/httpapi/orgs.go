package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/org"
)

// organizationResponse is the reference's OrganizationResponse.
type organizationResponse struct {
	Name        string          `json:"name"`
	Slug        string          `json:"slug"`
	Description *string         `json:"description"`
	IsActive    bool            `json:"is_active"`
	Settings    json.RawMessage `json:"settings" doc:"Free-form settings object, or null"`
	ID          string          `json:"id" format:"uuid"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	MemberCount int             `json:"member_count" doc:"Number of active members"`
}

func toOrgResponse(o org.Organization) organizationResponse {
	settings := o.Settings
	if len(settings) == 0 {
		settings = json.RawMessage("null")
	}
	return organizationResponse{Name: o.Name, Slug: o.Slug, Description: o.Description, IsActive: o.IsActive,
		Settings: settings, ID: o.ID, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, MemberCount: o.MemberCount}
}

type orgOutput struct{ Body organizationResponse }

// memberResponse is the reference's OrganizationMemberResponse.
type memberResponse struct {
	UserID    string    `json:"user_id" format:"uuid"`
	Email     string    `json:"email"`
	FirstName string    `json:"first_name"`
	LastName  *string   `json:"last_name"`
	Role      org.Role  `json:"role" enum:"owner,admin,member,guest"`
	IsActive  bool      `json:"is_active" doc:"false for removed members"`
	JoinedAt  time.Time `json:"joined_at"`
}

func toMemberResponse(m org.Member) memberResponse {
	return memberResponse{UserID: m.UserID, Email: m.Email, FirstName: m.FirstName, LastName: m.LastName,
		Role: m.Role, IsActive: m.IsActive, JoinedAt: m.CreatedAt}
}

// invitationResponse describes an invitation (never its token).
type invitationResponse struct {
	ID             string     `json:"id" format:"uuid"`
	OrganizationID string     `json:"organization_id" format:"uuid"`
	Email          string     `json:"email"`
	Role           org.Role   `json:"role" enum:"owner,admin,member,guest"`
	Status         string     `json:"status" enum:"pending,accepted,revoked,expired"`
	InvitedBy      *string    `json:"invited_by" doc:"Id of the inviting user"`
	ExpiresAt      time.Time  `json:"expires_at"`
	AcceptedAt     *time.Time `json:"accepted_at"`
	RevokedAt      *time.Time `json:"revoked_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

func toInvitationResponse(i org.Invitation, now time.Time) invitationResponse {
	return invitationResponse{ID: i.ID, OrganizationID: i.OrganizationID, Email: i.Email, Role: i.Role,
		Status: i.Status(now), InvitedBy: i.InvitedBy, ExpiresAt: i.ExpiresAt, AcceptedAt: i.AcceptedAt,
		RevokedAt: i.RevokedAt, CreatedAt: i.CreatedAt}
}

// orgCreateBody is OrganizationCreate.
type orgCreateBody struct {
	Name        string          `json:"name" maxLength:"1000"`
	Slug        string          `json:"slug" maxLength:"1000" doc:"Lowercase letters, digits and single hyphens, not at either end"`
	Description *string         `json:"description,omitempty" maxLength:"10000"`
	IsActive    *bool           `json:"is_active,omitempty" doc:"Admin API only; default true"`
	Settings    json.RawMessage `json:"settings,omitempty" doc:"Free-form settings object; default {}"`
}

func (b orgCreateBody) input(admin bool) org.Input {
	in := org.Input{Name: b.Name, Slug: b.Slug, Description: b.Description, Settings: b.Settings}
	if admin {
		in.IsActive = b.IsActive
	}
	return in
}

// orgUpdateBody is OrganizationUpdate: partial, explicit nulls clear.
type orgUpdateBody struct {
	Name        optional[string]          `json:"name,omitempty" maxLength:"1000"`
	Slug        optional[string]          `json:"slug,omitempty" maxLength:"1000"`
	Description optional[string]          `json:"description,omitempty" maxLength:"10000"`
	IsActive    optional[bool]            `json:"is_active,omitempty"`
	Settings    optional[json.RawMessage] `json:"settings,omitempty"`
}

func (b orgUpdateBody) patch() org.Patch {
	return org.Patch{Name: b.Name.opt(), Slug: b.Slug.opt(), Description: b.Description.opt(),
		IsActive: b.IsActive.opt(), Settings: b.Settings.opt()}
}

func orgList(list []org.Organization) []organizationResponse {
	out := make([]organizationResponse, len(list))
	for i, o := range list {
		out[i] = toOrgResponse(o)
	}
	return out
}

// --- member-facing operations -------------------------------------------------

type myOrgsInput struct {
	IsActive string `query:"is_active" doc:"Membership filter: true (default) lists current memberships, false the organizations you were removed from"`
}

func (s *server) myOrganizations(ctx context.Context, in *myOrgsInput) (*struct{ Body []organizationResponse }, error) {
	active, err := optionalBool("is_active", in.IsActive)
	if err != nil {
		return nil, err
	}
	list, err := s.Orgs.Mine(ctx, principalFrom(ctx).Actor, active == nil || *active)
	if err != nil {
		return nil, err
	}
	return &struct{ Body []organizationResponse }{Body: orgList(list)}, nil
}

func (s *server) createOrganization(ctx context.Context, in *struct{ Body orgCreateBody }) (*orgOutput, error) {
	o, err := s.Orgs.Create(ctx, principalFrom(ctx).Actor, in.Body.input(false), true)
	if err != nil {
		return nil, err
	}
	return &orgOutput{Body: toOrgResponse(o)}, nil
}

type orgIDInput struct {
	OrganizationID string `path:"organization_id" doc:"Organization id (UUID)"`
}

func (s *server) getOrganization(ctx context.Context, in *orgIDInput) (*orgOutput, error) {
	return s.getOrg(ctx, "organization_id", in.OrganizationID)
}

func (s *server) getOrg(ctx context.Context, field, raw string) (*orgOutput, error) {
	id, err := parseID(field, raw)
	if err != nil {
		return nil, err
	}
	o, err := s.Orgs.Get(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return &orgOutput{Body: toOrgResponse(o)}, nil
}

type updateOrgInput struct {
	OrganizationID string `path:"organization_id" doc:"Organization id (UUID)"`
	Body           orgUpdateBody
}

func (s *server) updateOrganization(ctx context.Context, in *updateOrgInput) (*orgOutput, error) {
	return s.updateOrg(ctx, "organization_id", in.OrganizationID, in.Body)
}

func (s *server) updateOrg(ctx context.Context, field, raw string, body orgUpdateBody) (*orgOutput, error) {
	id, err := parseID(field, raw)
	if err != nil {
		return nil, err
	}
	o, err := s.Orgs.Update(ctx, principalFrom(ctx).Actor, id, body.patch())
	if err != nil {
		return nil, err
	}
	return &orgOutput{Body: toOrgResponse(o)}, nil
}

type membersInput struct {
	PageParams
	OrganizationID string `path:"organization_id" doc:"Organization id (UUID)"`
	IsActive       string `query:"is_active" doc:"true (default): members; false: removed members (owners and admins only)"`
}

func (s *server) members(ctx context.Context, orgParam, rawID, rawActive string, p PageParams) (*struct {
	Body paginated[memberResponse]
}, error) {
	id, err := parseID(orgParam, rawID)
	if err != nil {
		return nil, err
	}
	active, err := optionalBool("is_active", rawActive)
	if err != nil {
		return nil, err
	}
	list, total, err := s.Orgs.Members(ctx, principalFrom(ctx).Actor, id, active == nil || *active, p.offset(), p.Limit)
	if err != nil {
		return nil, err
	}
	out := make([]memberResponse, len(list))
	for i, m := range list {
		out[i] = toMemberResponse(m)
	}
	return &struct{ Body paginated[memberResponse] }{Body: paginate(out, total, p.Page, p.Limit)}, nil
}

func (s *server) listMembers(ctx context.Context, in *membersInput) (*struct {
	Body paginated[memberResponse]
}, error) {
	return s.members(ctx, "organization_id", in.OrganizationID, in.IsActive, in.PageParams)
}

type addMemberInput struct {
	OrganizationID string `path:"organization_id" doc:"Organization id (UUID)"`
	Body           struct {
		UserID *string `json:"user_id,omitempty" format:"uuid" doc:"The user to add; give either user_id or email"`
		Email  *string `json:"email,omitempty" maxLength:"320" doc:"The email of an existing account; give either user_id or email"`
		Role   string  `json:"role,omitempty" enum:"owner,admin,member,guest" default:"member" doc:"Admins cannot grant owner"`
	}
}

func (s *server) addMember(ctx context.Context, in *addMemberInput) (*struct{ Body memberResponse }, error) {
	id, err := parseID("organization_id", in.OrganizationID)
	if err != nil {
		return nil, err
	}
	var t org.Target
	switch b := in.Body; {
	case (b.UserID == nil) == (b.Email == nil):
		return nil, apperr.ValidationField("user_id", "Give exactly one of user_id and email")
	case b.UserID != nil:
		if t.UserID, err = parseID("user_id", *b.UserID); err != nil {
			return nil, err
		}
	default:
		t.Email = *b.Email
	}
	role, verr := org.ParseRole("role", defaultRole(in.Body.Role))
	if verr != nil {
		return nil, verr
	}
	_, u, err := s.Orgs.AddMember(ctx, principalFrom(ctx).Actor, id, t, role)
	if err != nil {
		return nil, err
	}
	m, err := s.Orgs.MemberOf(ctx, principalFrom(ctx).Actor, id, u.ID)
	if err != nil {
		return nil, err
	}
	return &struct{ Body memberResponse }{Body: toMemberResponse(m)}, nil
}

func defaultRole(r string) string {
	if r == "" {
		return string(org.RoleMember)
	}
	return r
}

// MemberPath holds the path parameters of a membership (exported because
// huma reads parameters of embedded structs only when exported).
type MemberPath struct {
	OrganizationID string `path:"organization_id" doc:"Organization id (UUID)"`
	UserID         string `path:"user_id" doc:"Member's user id (UUID)"`
}

func (p MemberPath) ids() (string, string, error) {
	return memberIDs("organization_id", p.OrganizationID, p.UserID)
}

func memberIDs(orgField, rawOrg, rawUser string) (string, string, error) {
	oid, err := parseID(orgField, rawOrg)
	if err != nil {
		return "", "", err
	}
	uid, err := parseID("user_id", rawUser)
	return oid, uid, err
}

type changeRoleInput struct {
	MemberPath
	Body struct {
		Role string `json:"role" enum:"owner,admin,member,guest"`
	}
}

func (s *server) changeRole(ctx context.Context, in *changeRoleInput) (*struct{ Body memberResponse }, error) {
	oid, uid, err := in.ids()
	if err != nil {
		return nil, err
	}
	role, verr := org.ParseRole("role", in.Body.Role)
	if verr != nil {
		return nil, verr
	}
	actor := principalFrom(ctx).Actor
	if _, err := s.Orgs.ChangeRole(ctx, actor, oid, uid, role); err != nil {
		return nil, err
	}
	m, err := s.Orgs.MemberOf(ctx, actor, oid, uid)
	if err != nil {
		return nil, err
	}
	return &struct{ Body memberResponse }{Body: toMemberResponse(m)}, nil
}

func (s *server) removeMember(ctx context.Context, in *MemberPath) (*struct{ Body messageResponse }, error) {
	return s.removeMemberOf(ctx, "organization_id", in.OrganizationID, in.UserID)
}

func (s *server) removeMemberOf(ctx context.Context, orgField, rawOrg, rawUser string) (*struct{ Body messageResponse }, error) {
	oid, uid, err := memberIDs(orgField, rawOrg, rawUser)
	if err != nil {
		return nil, err
	}
	o, u, err := s.Orgs.RemoveMember(ctx, principalFrom(ctx).Actor, oid, uid)
	if err != nil {
		return nil, err
	}
	return message(fmt.Sprintf("User %s removed from organization %s", u.Email, o.Name)), nil
}

type inviteInput struct {
	OrganizationID string `path:"organization_id" doc:"Organization id (UUID)"`
	Body           struct {
		Email string `json:"email" maxLength:"320" doc:"An address without an account"`
		Role  string `json:"role,omitempty" enum:"owner,admin,member,guest" default:"member" doc:"Admins cannot invite owners"`
	}
}

func (s *server) invite(ctx context.Context, in *inviteInput) (*struct{ Body invitationResponse }, error) {
	id, err := parseID("organization_id", in.OrganizationID)
	if err != nil {
		return nil, err
	}
	role, verr := org.ParseRole("role", defaultRole(in.Body.Role))
	if verr != nil {
		return nil, verr
	}
	inv, err := s.Orgs.Invite(ctx, principalFrom(ctx).Actor, id, in.Body.Email, role)
	if err != nil {
		return nil, err
	}
	return &struct{ Body invitationResponse }{Body: toInvitationResponse(inv, s.Now())}, nil
}

func (s *server) listInvitations(ctx context.Context, in *orgIDInput) (*struct{ Body []invitationResponse }, error) {
	id, err := parseID("organization_id", in.OrganizationID)
	if err != nil {
		return nil, err
	}
	list, err := s.Orgs.Invitations(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	out := make([]invitationResponse, len(list))
	for i, inv := range list {
		out[i] = toInvitationResponse(inv, now)
	}
	return &struct{ Body []invitationResponse }{Body: out}, nil
}

type invitationIDInput struct {
	OrganizationID string `path:"organization_id" doc:"Organization id (UUID)"`
	InvitationID   string `path:"invitation_id" doc:"Invitation id (UUID)"`
}

func (s *server) revokeInvitation(ctx context.Context, in *invitationIDInput) (*struct{ Body messageResponse }, error) {
	oid, err := parseID("organization_id", in.OrganizationID)
	if err != nil {
		return nil, err
	}
	iid, err := parseID("invitation_id", in.InvitationID)
	if err != nil {
		return nil, err
	}
	if err := s.Orgs.RevokeInvitation(ctx, principalFrom(ctx).Actor, oid, iid); err != nil {
		return nil, err
	}
	return message("Invitation revoked"), nil
}

type acceptInput struct {
	Body struct {
		Token string `json:"token" maxLength:"4096" doc:"The token from the invitation email"`
	}
}

type acceptResponse struct {
	Organization organizationResponse `json:"organization"`
	Role         org.Role             `json:"role" enum:"owner,admin,member,guest"`
}

func (s *server) acceptInvitation(ctx context.Context, in *acceptInput) (*struct{ Body acceptResponse }, error) {
	actor := principalFrom(ctx).Actor
	o, m, err := s.Orgs.AcceptInvitation(ctx, actor, in.Body.Token)
	if err != nil {
		return nil, err
	}
	if o, err = s.Orgs.Get(ctx, actor, o.ID); err != nil {
		return nil, err
	}
	return &struct{ Body acceptResponse }{Body: acceptResponse{Organization: toOrgResponse(o), Role: m.Role}}, nil
}
