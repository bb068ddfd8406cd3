package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"mime/multipart"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

type registerInput struct {
	Body struct {
		Email       string  `json:"email" maxLength:"320" doc:"Email address; stored lower-cased"`
		Password    string  `json:"password" doc:"At least 12 characters with lower and upper case letters, a digit and a special character; at most 72 bytes"`
		FirstName   string  `json:"first_name" maxLength:"1000"`
		LastName    *string `json:"last_name,omitempty" maxLength:"1000"`
		PhoneNumber *string `json:"phone_number,omitempty" maxLength:"1000" doc:"+ or 0 followed by 8-14 digits; spaces, dashes and parentheses are removed"`
		IsSuperuser *bool   `json:"is_superuser,omitempty" doc:"Ignored: public registration never creates superusers"`
		IsActive    *bool   `json:"is_active,omitempty" doc:"Ignored: new accounts are always active"`
	}
}

func (s *server) register(ctx context.Context, in *registerInput) (*struct {
	Body userResponse
}, error) {
	u, err := s.Users.Register(ctx, user.Registration{Email: in.Body.Email, Password: in.Body.Password,
		FirstName: in.Body.FirstName, LastName: in.Body.LastName, PhoneNumber: in.Body.PhoneNumber})
	if err != nil {
		return nil, err
	}
	return &struct{ Body userResponse }{Body: toUserResponse(u)}, nil
}

// DeviceHeaders is the request metadata a login records. (Exported only
// because huma reads parameters of embedded structs only when exported.)
type DeviceHeaders struct {
	UserAgent string `header:"User-Agent" hidden:"true"`
	DeviceID  string `header:"X-Device-Id" doc:"Optional client-chosen device identifier, stored with the session"`
}

func (d DeviceHeaders) device(ctx context.Context) auth.Device {
	return auth.Device{UserAgent: d.UserAgent, DeviceID: d.DeviceID, IP: ClientIP(ctx)}
}

type loginInput struct {
	DeviceHeaders
	Body struct {
		Email    string `json:"email" maxLength:"320"`
		Password string `json:"password" maxLength:"4096"`
	}
}

func (s *server) login(ctx context.Context, in *loginInput) (*tokenOutput, error) {
	email, verr := user.ParseEmail("email", in.Body.Email)
	if verr != nil {
		return nil, verr
	}
	t, err := s.Auth.Login(ctx, email, in.Body.Password, in.device(ctx))
	s.countLogin(metrics.LoginPassword, "login", err)
	if err != nil {
		return nil, err
	}
	s.Metrics.TokensIssued(metrics.FirstParty, metrics.GrantPassword)
	return toTokenOutput(t), nil
}

// loginFormInput is the OAuth2 password form of /auth/login/oauth
// (urlencoded or multipart, as Swagger's "Authorize" dialog sends it).
type loginFormInput struct {
	DeviceHeaders
	ContentType string `header:"Content-Type"`
	RawBody     []byte `contentType:"application/x-www-form-urlencoded"`
}

func (s *server) loginForm(ctx context.Context, in *loginFormInput) (*tokenOutput, error) {
	form, err := parseForm(in.ContentType, in.RawBody)
	if err != nil {
		return nil, err
	}
	var fields []apperr.FieldError
	for _, f := range []string{"username", "password"} {
		if !form.Has(f) {
			fields = append(fields, apperr.FieldError{Field: f, Message: "Field required"})
		}
	}
	if gt := form.Get("grant_type"); form.Has("grant_type") && gt != "password" {
		fields = append(fields, apperr.FieldError{Field: "grant_type", Message: "String should match pattern '^password$'"})
	}
	if len(fields) > 0 {
		return nil, apperr.Validation(fields...)
	}
	t, err := s.Auth.Login(ctx, form.Get("username"), form.Get("password"), in.device(ctx))
	s.countLogin(metrics.LoginPassword, "loginForm", err)
	if err != nil {
		return nil, err
	}
	s.Metrics.TokensIssued(metrics.FirstParty, metrics.GrantPassword)
	return toTokenOutput(t), nil
}

// parseForm reads an urlencoded or multipart form body.
func parseForm(contentType string, body []byte) (url.Values, error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "application/x-www-form-urlencoded", "":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, apperr.ValidationField("", "Invalid form body: "+err.Error())
		}
		return v, nil
	case "multipart/form-data":
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		form, err := mr.ReadForm(1 << 20)
		if err != nil {
			return nil, apperr.ValidationField("", "Invalid multipart form body")
		}
		defer form.RemoveAll()
		v := url.Values{}
		for k, vs := range form.Value {
			v[k] = vs
		}
		return v, nil
	}
	return nil, &apperr.Error{Kind: apperr.BadRequest, Code: apperr.CodeInvalidInput,
		Message: fmt.Sprintf("Unsupported content type %q; send a form", mt)}
}

type refreshInput struct {
	Body struct {
		RefreshToken string `json:"refresh_token" maxLength:"4096"`
	}
}

func (s *server) refresh(ctx context.Context, in *refreshInput) (*tokenOutput, error) {
	t, err := s.Auth.Refresh(ctx, in.Body.RefreshToken)
	if err != nil {
		return nil, err
	}
	s.Metrics.TokensIssued(metrics.FirstParty, metrics.GrantRefresh)
	return toTokenOutput(t), nil
}

type logoutInput struct {
	Body struct {
		RefreshToken string `json:"refresh_token" minLength:"10" maxLength:"4096"`
	}
}

func (s *server) logout(ctx context.Context, in *logoutInput) (*struct{ Body messageResponse }, error) {
	if err := s.Auth.Logout(ctx, principalFrom(ctx).Actor, in.Body.RefreshToken); err != nil {
		return nil, err
	}
	return message("Logged out successfully"), nil
}

func (s *server) logoutAll(ctx context.Context, _ *struct{}) (*struct{ Body messageResponse }, error) {
	n, err := s.Auth.LogoutAll(ctx, principalFrom(ctx).Actor)
	if err != nil {
		return nil, err
	}
	return message(fmt.Sprintf("Successfully logged out from all devices (%d sessions terminated)", n)), nil
}

type resetRequestInput struct {
	Body struct {
		Email string `json:"email" maxLength:"320"`
	}
}

// resetRequested is the one answer of a reset request, whatever happened.
const resetRequested = "If your email is registered, you will receive a password reset link shortly"

func (s *server) passwordResetRequest(ctx context.Context, in *resetRequestInput) (*struct{ Body messageResponse }, error) {
	email, verr := user.ParseEmail("email", in.Body.Email)
	if verr != nil {
		return nil, verr
	}
	if err := s.Auth.RequestPasswordReset(ctx, email); err != nil {
		// The answer must not depend on the account; a failure is only logged.
		s.logger.ErrorContext(ctx, "password reset request failed", "err", err, "request_id", requestIDFrom(ctx))
	}
	return message(resetRequested), nil
}

type resetConfirmInput struct {
	Body struct {
		Token       string `json:"token" maxLength:"4096"`
		NewPassword string `json:"new_password" minLength:"8" maxLength:"4096"`
	}
}

func (s *server) passwordResetConfirm(ctx context.Context, in *resetConfirmInput) (*struct{ Body messageResponse }, error) {
	if err := s.Auth.ConfirmPasswordReset(ctx, in.Body.Token, in.Body.NewPassword); err != nil {
		return nil, err
	}
	return message("Password has been reset successfully. All devices have been logged out for security. You can now log in with your new password."), nil
}
