package httpapi

import (
	"context"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Social login (reference §5.7 and §6A).

type providerInfo struct {
	Provider string `json:"provider" doc:"Id used in the URLs, e.g. google"`
	Name     string `json:"name" doc:"Display name"`
	Icon     string `json:"icon"`
}

type providersResponse struct {
	Enabled   bool           `json:"enabled" doc:"OAUTH_ENABLED and at least one provider configured"`
	Providers []providerInfo `json:"providers"`
}

func (s *server) socialProviders(context.Context, *struct{}) (*struct{ Body providersResponse }, error) {
	out := providersResponse{Enabled: s.Social.Enabled(), Providers: []providerInfo{}}
	for _, p := range s.Social.Providers() {
		out.Providers = append(out.Providers, providerInfo{Provider: p.Name(), Name: p.DisplayName(), Icon: p.Icon()})
	}
	return &struct{ Body providersResponse }{Body: out}, nil
}

type authorizeSocialInput struct {
	Provider    string `path:"provider" maxLength:"50"`
	RedirectURI string `query:"redirect_uri" required:"true" maxLength:"2048" doc:"Where the provider sends the user back: must start with FRONTEND_URL or be listed in OAUTH_ALLOWED_REDIRECT_URIS"`
}

type authorizationResponse struct {
	AuthorizationURL string `json:"authorization_url"`
	State            string `json:"state"`
}

// socialAuthorize starts a login; with a valid bearer token it links the
// provider account to the caller instead (reference: optional auth).
func (s *server) socialAuthorize(ctx context.Context, in *authorizeSocialInput) (*struct{ Body authorizationResponse }, error) {
	var linkTo *user.Actor
	if p := principalFrom(ctx); p.Actor.UserID != "" {
		linkTo = &p.Actor
	}
	a, err := s.Social.Authorize(ctx, in.Provider, in.RedirectURI, linkTo)
	if err != nil {
		return nil, err
	}
	return &struct{ Body authorizationResponse }{Body: authorizationResponse{AuthorizationURL: a.URL, State: a.State}}, nil
}

// socialLink starts linking a provider account to the caller.
func (s *server) socialLink(ctx context.Context, in *authorizeSocialInput) (*struct{ Body authorizationResponse }, error) {
	actor := principalFrom(ctx).Actor
	a, err := s.Social.Authorize(ctx, in.Provider, in.RedirectURI, &actor)
	if err != nil {
		return nil, err
	}
	return &struct{ Body authorizationResponse }{Body: authorizationResponse{AuthorizationURL: a.URL, State: a.State}}, nil
}

type callbackInput struct {
	DeviceHeaders
	Provider    string `path:"provider" maxLength:"50"`
	RedirectURI string `query:"redirect_uri" required:"true" maxLength:"2048" doc:"The redirect_uri given to the authorize call"`
	Body        struct {
		Code  string `json:"code" maxLength:"4096"`
		State string `json:"state" maxLength:"512"`
	}
}

// socialTokenResponse is the reference's callback answer plus user.
type socialTokenResponse struct {
	AccessToken  string       `json:"access_token"`
	RefreshToken string       `json:"refresh_token"`
	TokenType    string       `json:"token_type" example:"bearer"`
	ExpiresIn    int          `json:"expires_in"`
	IsNewUser    bool         `json:"is_new_user"`
	User         userResponse `json:"user"`
}

func (s *server) socialCallback(ctx context.Context, in *callbackInput) (*struct {
	CacheControl string `header:"Cache-Control"`
	Pragma       string `header:"Pragma"`
	Body         socialTokenResponse
}, error) {
	l, err := s.Social.Callback(ctx, in.Provider, in.RedirectURI, in.Body.Code, in.Body.State, in.device(ctx))
	s.countLogin(metrics.LoginSocial, "socialCallback", err)
	if err != nil {
		return nil, err
	}
	s.Metrics.TokensIssued(metrics.FirstParty, metrics.GrantSocial)
	return &struct {
		CacheControl string `header:"Cache-Control"`
		Pragma       string `header:"Pragma"`
		Body         socialTokenResponse
	}{CacheControl: "no-store", Pragma: "no-cache", Body: socialTokenResponse{
		AccessToken: l.Tokens.AccessToken, RefreshToken: l.Tokens.RefreshToken, TokenType: "bearer",
		ExpiresIn: l.Tokens.ExpiresIn, IsNewUser: l.IsNewUser, User: toUserResponse(l.Tokens.User)}}, nil
}

type linkedAccount struct {
	Provider      string    `json:"provider"`
	ProviderEmail *string   `json:"provider_email"`
	ID            string    `json:"id" format:"uuid"`
	CreatedAt     time.Time `json:"created_at"`
}

func (s *server) socialAccounts(ctx context.Context, _ *struct{}) (*struct {
	Body struct {
		Accounts []linkedAccount `json:"accounts"`
	}
}, error) {
	list, err := s.Social.Accounts(ctx, principalFrom(ctx).Actor)
	if err != nil {
		return nil, err
	}
	out := &struct {
		Body struct {
			Accounts []linkedAccount `json:"accounts"`
		}
	}{}
	out.Body.Accounts = make([]linkedAccount, len(list))
	for i, a := range list {
		out.Body.Accounts[i] = linkedAccount{Provider: a.Provider, ProviderEmail: a.ProviderEmail, ID: a.ID, CreatedAt: a.CreatedAt}
	}
	return out, nil
}

type unlinkInput struct {
	Provider string `path:"provider" maxLength:"50"`
}

func (s *server) socialUnlink(ctx context.Context, in *unlinkInput) (*struct{ Body messageResponse }, error) {
	if err := s.Social.Unlink(ctx, principalFrom(ctx).Actor, in.Provider); err != nil {
		return nil, err
	}
	return message(capitalizeWord(in.Provider) + " account unlinked successfully"), nil
}

// capitalizeWord upper-cases the first letter ("github" → "Github"), as the
// reference words the unlink message.
func capitalizeWord(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
