package oauth

import (
	"context"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// DynamicRegistration is an RFC 7591 client registration request. Fields
// the server does not use (client_uri, logo_uri, contacts, …) are ignored.
type DynamicRegistration struct {
	RedirectURIs            []string
	TokenEndpointAuthMethod string
	GrantTypes              []string
	ResponseTypes           []string
	ClientName              string
	Scope                   string
	ApplicationType         string
}

// dynamicScopes are what self-registered clients may ask for: everything
// but admin.
func dynamicScopes() []string {
	return slices.DeleteFunc(slices.Clone(Scopes), func(s string) bool { return s == "admin" })
}

// RegisterDynamic registers a client on its own request (RFC 7591). Public
// clients (token_endpoint_auth_method none) must use PKCE; confidential ones
// get a secret. The admin scope is never granted this way.
func (s *Service) RegisterDynamic(ctx context.Context, in DynamicRegistration) (Registered, error) {
	bad := func(desc string) (Registered, error) { return Registered{}, oerr("invalid_client_metadata", desc) }
	if len(in.RedirectURIs) == 0 {
		return Registered{}, oerr("invalid_redirect_uri", "redirect_uris is required")
	}
	if len(in.RedirectURIs) > 20 {
		return bad("at most 20 redirect_uris")
	}
	for _, u := range in.RedirectURIs {
		if why := ValidateRedirectURI(u); why != "" {
			return Registered{}, oerr("invalid_redirect_uri", "redirect_uri "+truncate(u, 100)+" "+why)
		}
	}
	typ := Confidential
	switch in.TokenEndpointAuthMethod {
	case "none":
		typ = Public
	case "", "client_secret_basic", "client_secret_post":
		if in.TokenEndpointAuthMethod == "" {
			in.TokenEndpointAuthMethod = "client_secret_basic" // RFC 7591 §2 default
		}
	default:
		return bad("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	for _, g := range in.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return bad("grant_types may only contain authorization_code and refresh_token")
		}
	}
	for _, r := range in.ResponseTypes {
		if r != "code" {
			return bad("response_types may only contain code")
		}
	}
	switch in.ApplicationType {
	case "":
		in.ApplicationType = "web"
	case "web", "native":
	default:
		return bad("application_type must be web or native")
	}
	name := strings.TrimSpace(in.ClientName)
	if utf8.RuneCountInString(name) > 255 || hasControl(name) {
		return bad("client_name must have at most 255 characters without control characters")
	}
	if strings.ContainsAny(name, "<>") {
		// Shown on consent pages: markup is never a legitimate name.
		return bad("client_name must not contain markup (< or >)")
	}
	if name == "" {
		name = "Unnamed client"
	}
	scopes := dynamicScopes()
	if strings.TrimSpace(in.Scope) != "" {
		scopes = intersect(ParseScope(in.Scope), dynamicScopes())
		if len(scopes) == 0 {
			return bad("none of the requested scopes can be granted: " + strings.Join(dynamicScopes(), " "))
		}
	}
	now := s.now()
	c := Client{ID: user.NewID(), ClientID: token.RandomSecret(), Name: name, Type: typ,
		RedirectURIs: slices.Compact(in.RedirectURIs), AllowedScopes: scopes,
		AccessTokenTTL: s.opts.DefaultAccessTTL, RefreshTokenTTL: s.opts.DefaultRefreshTTL, IsActive: true,
		RegistrationType: RegisteredDynamic, ApplicationType: in.ApplicationType,
		TokenEndpointAuthMethod: in.TokenEndpointAuthMethod, CreatedAt: now, UpdatedAt: now}
	var secret string
	if typ == Confidential {
		secret = token.RandomSecret()
		c.SecretHash = HashSecret(secret)
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		return Registered{}, err
	}
	return Registered{Client: c, Secret: secret}, nil
}
