package httpapi

import (
	"context"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/org"
)

// The /api/v1/admin/organizations operations of reference §5.6. They call the
// same org.Service as the member-facing ones, with the superuser as actor.

type adminListOrgsInput struct {
	PageParams
	IsActive string `query:"is_active" doc:"Filter: true/false"`
	Search   string `query:"search" maxLength:"255" doc:"Case-insensitive substring of name, slug or description; % and _ match literally"`
}

func (s *server) adminListOrganizations(ctx context.Context, in *adminListOrgsInput) (*struct {
	Body paginated[organizationResponse]
}, error) {
	active, err := optionalBool("is_active", in.IsActive)
	if err != nil {
		return nil, err
	}
	if err := checkSearch(in.Search); err != nil {
		return nil, err
	}
	list, total, err := s.Orgs.List(ctx, principalFrom(ctx).Actor, org.ListQuery{
		Offset: in.offset(), Limit: in.Limit, IsActive: active, Search: in.Search})
	if err != nil {
		return nil, err
	}
	return &struct {
		Body paginated[organizationResponse]
	}{Body: paginate(orgList(list), total, in.Page, in.Limit)}, nil
}

func (s *server) adminCreateOrganization(ctx context.Context, in *struct{ Body orgCreateBody }) (*orgOutput, error) {
	o, err := s.Orgs.Create(ctx, principalFrom(ctx).Actor, in.Body.input(true), false)
	if err != nil {
		return nil, err
	}
	return &orgOutput{Body: toOrgResponse(o)}, nil
}

type adminOrgIDInput struct {
	OrgID string `path:"org_id" doc:"Organization id (UUID)"`
}

func (s *server) adminGetOrganization(ctx context.Context, in *adminOrgIDInput) (*orgOutput, error) {
	return s.getOrg(ctx, "org_id", in.OrgID)
}

type adminUpdateOrgInput struct {
	OrgID string `path:"org_id" doc:"Organization id (UUID)"`
	Body  orgUpdateBody
}

func (s *server) adminUpdateOrganization(ctx context.Context, in *adminUpdateOrgInput) (*orgOutput, error) {
	return s.updateOrg(ctx, "org_id", in.OrgID, in.Body)
}

func (s *server) adminDeleteOrganization(ctx context.Context, in *adminOrgIDInput) (*struct{ Body messageResponse }, error) {
	id, err := parseID("org_id", in.OrgID)
	if err != nil {
		return nil, err
	}
	o, err := s.Orgs.Delete(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return message(fmt.Sprintf("Organization %s has been deleted", o.Name)), nil
}

type adminMembersInput struct {
	PageParams
	OrgID    string `path:"org_id" doc:"Organization id (UUID)"`
	IsActive string `query:"is_active" doc:"true (default): members; false: removed members"`
}

func (s *server) adminListMembers(ctx context.Context, in *adminMembersInput) (*struct {
	Body paginated[memberResponse]
}, error) {
	return s.members(ctx, "org_id", in.OrgID, in.IsActive, in.PageParams)
}

type adminAddMemberInput struct {
	OrgID string `path:"org_id" doc:"Organization id (UUID)"`
	Body  struct {
		UserID string `json:"user_id" format:"uuid"`
		Role   string `json:"role,omitempty" enum:"owner,admin,member,guest" default:"member"`
	}
}

func (s *server) adminAddMember(ctx context.Context, in *adminAddMemberInput) (*struct{ Body messageResponse }, error) {
	oid, err := parseID("org_id", in.OrgID)
	if err != nil {
		return nil, err
	}
	uid, err := parseID("user_id", in.Body.UserID)
	if err != nil {
		return nil, err
	}
	role, verr := org.ParseRole("role", defaultRole(in.Body.Role))
	if verr != nil {
		return nil, verr
	}
	o, u, err := s.Orgs.AddMember(ctx, principalFrom(ctx).Actor, oid, org.Target{UserID: uid}, role)
	if err != nil {
		return nil, err
	}
	return message(fmt.Sprintf("User %s added to organization %s", u.Email, o.Name)), nil
}

type adminMemberInput struct {
	OrgID  string `path:"org_id" doc:"Organization id (UUID)"`
	UserID string `path:"user_id" doc:"User id (UUID)"`
}

func (s *server) adminRemoveMember(ctx context.Context, in *adminMemberInput) (*struct{ Body messageResponse }, error) {
	return s.removeMemberOf(ctx, "org_id", in.OrgID, in.UserID)
}
