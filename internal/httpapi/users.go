package httpapi

import (
	"context"
	"encoding/json"

	"github.com/gatehouse-dev/gatehouse/internal/user"
)

type listUsersInput struct {
	PageParams
	SortBy      string `query:"sort_by" maxLength:"100" doc:"One of email, first_name, last_name, created_at, updated_at, is_active, is_superuser, locale; default order is created_at descending"`
	SortOrder   string `query:"sort_order" enum:"asc,desc" default:"asc"`
	IsActive    string `query:"is_active" doc:"Filter: true/false (also 1/0, yes/no, on/off)"`
	IsSuperuser string `query:"is_superuser" doc:"Filter: true/false (also 1/0, yes/no, on/off)"`
}

func (s *server) listUsers(ctx context.Context, in *listUsersInput) (*struct {
	Body paginated[userResponse]
}, error) {
	active, err := optionalBool("is_active", in.IsActive)
	if err != nil {
		return nil, err
	}
	super, err := optionalBool("is_superuser", in.IsSuperuser)
	if err != nil {
		return nil, err
	}
	users, total, err := s.Users.List(ctx, principalFrom(ctx).Actor, user.ListQuery{
		Offset: in.offset(), Limit: in.Limit, SortBy: in.SortBy, Desc: in.SortOrder == "desc",
		IsActive: active, IsSuperuser: super,
	})
	if err != nil {
		return nil, err
	}
	out := make([]userResponse, len(users))
	for i, u := range users {
		out[i] = toUserResponse(u)
	}
	return &struct{ Body paginated[userResponse] }{Body: paginate(out, total, in.Page, in.Limit)}, nil
}

type userOutput struct{ Body userResponse }

func (s *server) getMe(ctx context.Context, _ *struct{}) (*userOutput, error) {
	return &userOutput{Body: toUserResponse(principalFrom(ctx).User)}, nil
}

// userPatchBody is UserUpdate: every field optional; an explicit null clears it.
type userPatchBody struct {
	FirstName   optional[string]          `json:"first_name,omitempty" maxLength:"1000"`
	LastName    optional[string]          `json:"last_name,omitempty" maxLength:"1000"`
	PhoneNumber optional[string]          `json:"phone_number,omitempty" maxLength:"1000"`
	Preferences optional[json.RawMessage] `json:"preferences,omitempty" doc:"Free-form settings object"`
	Locale      optional[string]          `json:"locale,omitempty" maxLength:"1000" doc:"One of en, en-gb, en-us, it, it-it"`
	IsActive    optional[bool]            `json:"is_active,omitempty" doc:"Superusers only, and never on their own account"`
	IsSuperuser optional[bool]            `json:"is_superuser,omitempty" doc:"Refused: superuser status cannot be changed here"`
	Password    optional[string]          `json:"password,omitempty" doc:"Refused: use PATCH /api/v1/users/me/password"`
}

func (b userPatchBody) patch() user.Patch {
	return user.Patch{FirstName: b.FirstName.opt(), LastName: b.LastName.opt(), PhoneNumber: b.PhoneNumber.opt(),
		Preferences: b.Preferences.opt(), Locale: b.Locale.opt(), IsActive: b.IsActive.opt(),
		IsSuperuser: b.IsSuperuser.opt(), Password: b.Password.opt()}
}

type patchMeInput struct {
	Body userPatchBody
}

func (s *server) patchMe(ctx context.Context, in *patchMeInput) (*userOutput, error) {
	p := principalFrom(ctx)
	u, err := s.Users.Update(ctx, p.Actor, p.Actor.UserID, in.Body.patch())
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: toUserResponse(u)}, nil
}

type changePasswordInput struct {
	Body struct {
		CurrentPassword string `json:"current_password" maxLength:"4096"`
		NewPassword     string `json:"new_password" maxLength:"4096"`
	}
}

func (s *server) changePassword(ctx context.Context, in *changePasswordInput) (*struct{ Body messageResponse }, error) {
	if err := s.Users.ChangePassword(ctx, principalFrom(ctx).Actor, in.Body.CurrentPassword, in.Body.NewPassword); err != nil {
		return nil, err
	}
	return message("Password changed successfully"), nil
}

type userIDInput struct {
	UserID string `path:"user_id" doc:"User id (UUID)"`
}

func (s *server) getUser(ctx context.Context, in *userIDInput) (*userOutput, error) {
	id, err := parseID("user_id", in.UserID)
	if err != nil {
		return nil, err
	}
	u, err := s.Users.Get(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: toUserResponse(u)}, nil
}

type patchUserInput struct {
	UserID string `path:"user_id" doc:"User id (UUID)"`
	Body   userPatchBody
}

func (s *server) patchUser(ctx context.Context, in *patchUserInput) (*userOutput, error) {
	id, err := parseID("user_id", in.UserID)
	if err != nil {
		return nil, err
	}
	u, err := s.Users.Update(ctx, principalFrom(ctx).Actor, id, in.Body.patch())
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: toUserResponse(u)}, nil
}

func (s *server) deleteUser(ctx context.Context, in *userIDInput) (*struct{ Body messageResponse }, error) {
	id, err := parseID("user_id", in.UserID)
	if err != nil {
		return nil, err
	}
	if err := s.Users.Delete(ctx, principalFrom(ctx).Actor, id); err != nil {
		return nil, err
	}
	return message("User " + id + " deleted successfully"), nil
}
