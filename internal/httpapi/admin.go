package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// The admin API for users and sessions, and the dashboard statistics
// (reference §5.6 and §9). The routes are in routes_admin.go.

type adminListUsersInput struct {
	PageParams
	SortBy      string `query:"sort_by" maxLength:"100" doc:"One of email, first_name, last_name, created_at, updated_at, is_active, is_superuser, locale; default order is created_at descending"`
	SortOrder   string `query:"sort_order" enum:"asc,desc" default:"asc" doc:"Direction of sort_by"`
	IsActive    string `query:"is_active" doc:"Filter: true/false (also 1/0, yes/no, on/off)"`
	IsSuperuser string `query:"is_superuser" doc:"Filter: true/false (also 1/0, yes/no, on/off)"`
	Search      string `query:"search" maxLength:"255" doc:"Case-insensitive substring of the email, first name or last name; %, _, quotes and backslashes match literally"`
}

func (s *server) adminListUsers(ctx context.Context, in *adminListUsersInput) (*struct {
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
	if !utf8.ValidString(in.Search) || strings.ContainsRune(in.Search, 0) {
		return nil, apperr.ValidationField("search", "Search text must be valid UTF-8 without NUL characters")
	}
	users, total, err := s.Users.List(ctx, principalFrom(ctx).Actor, user.ListQuery{
		Offset: in.offset(), Limit: in.Limit, SortBy: in.SortBy, Desc: in.SortOrder == "desc",
		IsActive: active, IsSuperuser: super, Search: in.Search,
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

type adminCreateUserInput struct {
	Body struct {
		Email       string  `json:"email" maxLength:"320" doc:"Email address; stored lower-cased"`
		Password    string  `json:"password" maxLength:"4096" doc:"At least 12 characters with lower and upper case letters, a digit and a special character; at most 72 bytes"`
		FirstName   string  `json:"first_name" maxLength:"1000"`
		LastName    *string `json:"last_name,omitempty" maxLength:"1000"`
		PhoneNumber *string `json:"phone_number,omitempty" maxLength:"1000" doc:"+ or 0 followed by 8-14 digits; spaces, dashes and parentheses are removed"`
		IsSuperuser bool    `json:"is_superuser,omitempty" default:"false" doc:"Create a superuser"`
		IsActive    *bool   `json:"is_active,omitempty" default:"true" doc:"Create an inactive account with false"`
	}
}

func (s *server) adminCreateUser(ctx context.Context, in *adminCreateUserInput) (*userOutput, error) {
	b := in.Body
	active := b.IsActive == nil || *b.IsActive
	u, err := s.Users.AdminCreate(ctx, principalFrom(ctx).Actor, user.NewAccount{Email: b.Email, Password: b.Password,
		FirstName: b.FirstName, LastName: b.LastName, PhoneNumber: b.PhoneNumber, IsSuperuser: b.IsSuperuser, IsActive: active})
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: toUserResponse(u)}, nil
}

func (s *server) adminGetUser(ctx context.Context, in *userIDInput) (*userOutput, error) {
	id, err := parseID("user_id", in.UserID)
	if err != nil {
		return nil, err
	}
	u, err := s.Users.AdminGet(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: toUserResponse(u)}, nil
}

// adminUserUpdateBody is UserUpdate as superusers send it: every field
// optional, an explicit null clears it, and the password may be set.
type adminUserUpdateBody struct {
	FirstName   optional[string]          `json:"first_name,omitempty" maxLength:"1000"`
	LastName    optional[string]          `json:"last_name,omitempty" maxLength:"1000"`
	PhoneNumber optional[string]          `json:"phone_number,omitempty" maxLength:"1000"`
	Preferences optional[json.RawMessage] `json:"preferences,omitempty" doc:"Free-form settings object"`
	Locale      optional[string]          `json:"locale,omitempty" maxLength:"1000" doc:"One of en, en-gb, en-us, it, it-it"`
	IsActive    optional[bool]            `json:"is_active,omitempty" doc:"false revokes every session of the user; never on the caller's own account"`
	IsSuperuser optional[bool]            `json:"is_superuser,omitempty" doc:"Refused: superuser status cannot be changed here"`
	Password    optional[string]          `json:"password,omitempty" maxLength:"4096" doc:"New password (password rule); revokes every session and pending reset token of the user"`
}

func (b adminUserUpdateBody) patch() user.Patch {
	return user.Patch{FirstName: b.FirstName.opt(), LastName: b.LastName.opt(), PhoneNumber: b.PhoneNumber.opt(),
		Preferences: b.Preferences.opt(), Locale: b.Locale.opt(), IsActive: b.IsActive.opt(),
		IsSuperuser: b.IsSuperuser.opt(), Password: b.Password.opt()}
}

type adminUpdateUserInput struct {
	UserID string `path:"user_id" doc:"User id (UUID)"`
	Body   adminUserUpdateBody
}

func (s *server) adminUpdateUser(ctx context.Context, in *adminUpdateUserInput) (*userOutput, error) {
	id, err := parseID("user_id", in.UserID)
	if err != nil {
		return nil, err
	}
	u, err := s.Users.AdminUpdate(ctx, principalFrom(ctx).Actor, id, in.Body.patch())
	if err != nil {
		return nil, err
	}
	return &userOutput{Body: toUserResponse(u)}, nil
}

func (s *server) adminDeleteUser(ctx context.Context, in *userIDInput) (*struct{ Body messageResponse }, error) {
	id, err := parseID("user_id", in.UserID)
	if err != nil {
		return nil, err
	}
	u, err := s.Users.AdminDelete(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return message("User " + u.Email + " has been deleted"), nil
}

func (s *server) adminActivateUser(ctx context.Context, in *userIDInput) (*struct{ Body messageResponse }, error) {
	return s.adminSetActive(ctx, in, true)
}

func (s *server) adminDeactivateUser(ctx context.Context, in *userIDInput) (*struct{ Body messageResponse }, error) {
	return s.adminSetActive(ctx, in, false)
}

func (s *server) adminSetActive(ctx context.Context, in *userIDInput, active bool) (*struct{ Body messageResponse }, error) {
	id, err := parseID("user_id", in.UserID)
	if err != nil {
		return nil, err
	}
	u, err := s.Users.SetActive(ctx, principalFrom(ctx).Actor, id, active)
	if err != nil {
		return nil, err
	}
	if active {
		return message("User " + u.Email + " has been activated"), nil
	}
	return message("User " + u.Email + " has been deactivated"), nil
}

type adminBulkInput struct {
	Body struct {
		Action  string   `json:"action" enum:"activate,deactivate,delete" doc:"What to do to every listed user"`
		UserIDs []string `json:"user_ids" minItems:"1" maxItems:"100" doc:"1 to 100 user ids (UUIDs); duplicates count once"`
	}
}

type bulkActionResponse struct {
	Success       bool     `json:"success" doc:"True when no id was skipped"`
	AffectedCount int      `json:"affected_count"`
	FailedCount   int      `json:"failed_count" doc:"Number of distinct ids skipped"`
	Message       string   `json:"message"`
	FailedIDs     []string `json:"failed_ids" doc:"The skipped ids (unknown, deleted, or the caller), in request order"`
}

func (s *server) adminBulkAction(ctx context.Context, in *adminBulkInput) (*struct{ Body bulkActionResponse }, error) {
	ids := make([]string, len(in.Body.UserIDs))
	var bad []apperr.FieldError
	for i, raw := range in.Body.UserIDs {
		id, err := parseID(fmt.Sprintf("user_ids.%d", i), raw)
		if ae, ok := apperr.As(err); ok {
			bad = append(bad, ae.Fields...)
		}
		ids[i] = id
	}
	if len(bad) > 0 {
		return nil, apperr.Validation(bad...)
	}
	action := user.BulkAction(in.Body.Action)
	res, err := s.Users.Bulk(ctx, principalFrom(ctx).Actor, action, ids)
	if err != nil {
		return nil, err
	}
	failed := len(res.Skipped)
	return &struct{ Body bulkActionResponse }{Body: bulkActionResponse{
		Success: failed == 0, AffectedCount: res.Affected, FailedCount: failed, FailedIDs: res.Skipped,
		Message: fmt.Sprintf("Bulk %s: %d users affected, %d skipped", action, res.Affected, failed),
	}}, nil
}

// adminSessionResponse is the reference's AdminSessionResponse.
type adminSessionResponse struct {
	DeviceName      *string   `json:"device_name"`
	DeviceID        *string   `json:"device_id"`
	ID              string    `json:"id" format:"uuid"`
	UserID          string    `json:"user_id" format:"uuid"`
	UserEmail       string    `json:"user_email"`
	UserFullName    *string   `json:"user_full_name" doc:"First and last name joined by a space; null when both are empty"`
	IPAddress       *string   `json:"ip_address"`
	LocationCity    *string   `json:"location_city"`
	LocationCountry *string   `json:"location_country"`
	LastUsedAt      time.Time `json:"last_used_at"`
	CreatedAt       time.Time `json:"created_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	IsActive        bool      `json:"is_active"`
}

type adminListSessionsInput struct {
	PageParams
	IsActive string `query:"is_active" doc:"true (the default): active sessions only; false: revoked sessions only. Also 1/0, yes/no, on/off"`
}

func (s *server) adminListSessions(ctx context.Context, in *adminListSessionsInput) (*struct {
	Body paginated[adminSessionResponse]
}, error) {
	active, err := optionalBool("is_active", in.IsActive)
	if err != nil {
		return nil, err
	}
	list, total, err := s.Auth.AdminSessions(ctx, principalFrom(ctx).Actor, auth.SessionQuery{
		Offset: in.offset(), Limit: in.Limit, Active: active == nil || *active,
	})
	if err != nil {
		return nil, err
	}
	out := make([]adminSessionResponse, len(list))
	for i, se := range list {
		out[i] = adminSessionResponse{DeviceName: se.DeviceName, DeviceID: se.DeviceID, ID: se.ID, UserID: se.UserID,
			UserEmail: se.UserEmail, UserFullName: se.UserFullName(), IPAddress: se.IPAddress,
			LocationCity: se.LocationCity, LocationCountry: se.LocationCountry, LastUsedAt: se.LastUsedAt,
			CreatedAt: se.CreatedAt, ExpiresAt: se.ExpiresAt, IsActive: se.IsActive}
	}
	return &struct {
		Body paginated[adminSessionResponse]
	}{Body: paginate(out, total, in.Page, in.Limit)}, nil
}

func (s *server) adminRevokeSession(ctx context.Context, in *sessionIDInput) (*struct{ Body messageResponse }, error) {
	id, err := parseID("session_id", in.SessionID)
	if err != nil {
		return nil, err
	}
	se, err := s.Auth.AdminRevokeSession(ctx, principalFrom(ctx).Actor, id)
	if err != nil {
		return nil, err
	}
	return message("Session revoked: " + deviceLabel(se)), nil
}

// The statistics of reference §9.
type (
	userGrowthPoint struct {
		Date        string `json:"date" example:"Jan 02" doc:"UTC day, abbreviated month and zero-padded day"`
		TotalUsers  int    `json:"total_users" doc:"Users created before the end of the day"`
		ActiveUsers int    `json:"active_users" doc:"Those among them active now"`
	}
	nameValue struct {
		Name  string `json:"name"`
		Value int    `json:"value"`
	}
	registrationPoint struct {
		Date          string `json:"date" example:"Jan 02"`
		Registrations int    `json:"registrations" doc:"Users created during the day"`
	}
	statsResponse struct {
		UserGrowth               []userGrowthPoint   `json:"user_growth" doc:"30 days, oldest first, the last one today"`
		OrganizationDistribution []nameValue         `json:"organization_distribution" doc:"Up to 6 organizations with the most active members"`
		RegistrationActivity     []registrationPoint `json:"registration_activity" doc:"14 days, oldest first, the last one today"`
		UserStatus               []nameValue         `json:"user_status" doc:"Active and Inactive user counts"`
	}
)

const statsDateFormat = "Jan 02"

func (s *server) adminStats(ctx context.Context, _ *struct{}) (*struct{ Body statsResponse }, error) {
	st, err := s.Stats.Compute(ctx, principalFrom(ctx).Actor)
	if err != nil {
		return nil, err
	}
	out := statsResponse{
		UserGrowth:               make([]userGrowthPoint, len(st.UserGrowth)),
		OrganizationDistribution: make([]nameValue, len(st.OrganizationDistribution)),
		RegistrationActivity:     make([]registrationPoint, len(st.RegistrationActivity)),
		UserStatus:               []nameValue{{Name: "Active", Value: st.Active}, {Name: "Inactive", Value: st.Inactive}},
	}
	for i, g := range st.UserGrowth {
		out.UserGrowth[i] = userGrowthPoint{Date: g.Date.Format(statsDateFormat), TotalUsers: g.TotalUsers, ActiveUsers: g.ActiveUsers}
	}
	for i, o := range st.OrganizationDistribution {
		out.OrganizationDistribution[i] = nameValue{Name: o.Name, Value: o.Members}
	}
	for i, r := range st.RegistrationActivity {
		out.RegistrationActivity[i] = registrationPoint{Date: r.Date.Format(statsDateFormat), Registrations: r.Count}
	}
	return &struct{ Body statsResponse }{Body: out}, nil
}
