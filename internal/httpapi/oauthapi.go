package httpapi

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// The JSON side of the authorization server (reference §6B.2 and §6B.11):
// client management for superusers and consents for users.

type clientRegisteredResponse struct {
	ClientID      string   `json:"client_id"`
	ClientName    string   `json:"client_name"`
	ClientType    string   `json:"client_type" enum:"public,confidential"`
	RedirectURIs  []string `json:"redirect_uris"`
	AllowedScopes []string `json:"allowed_scopes"`
	ClientSecret  *string  `json:"client_secret,omitempty" doc:"Confidential clients only; shown once"`
	Warning       *string  `json:"warning,omitempty"`
}

type registerClientInput struct {
	ContentType string `header:"Content-Type"`
	RawBody     []byte `contentType:"application/x-www-form-urlencoded"`
}

func (s *server) registerClient(ctx context.Context, in *registerClientInput) (*struct{ Body clientRegisteredResponse }, error) {
	form, err := parseForm(in.ContentType, in.RawBody)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(form.Get("client_name")) == "" {
		return nil, apperr.ValidationField("client_name", "Field required")
	}
	if !form.Has("redirect_uris") {
		return nil, apperr.ValidationField("redirect_uris", "Field required")
	}
	var uris []string
	for _, u := range strings.Split(form.Get("redirect_uris"), ",") {
		if u = strings.TrimSpace(u); u != "" {
			uris = append(uris, u)
		}
	}
	nc := oauth.NewClient{Name: form.Get("client_name"), Type: form.Get("client_type"), RedirectURIs: uris,
		Scopes: strings.Fields(form.Get("scopes"))}
	if d := form.Get("client_description"); d != "" {
		nc.Description = &d
	}
	if m := form.Get("mcp_server_url"); m != "" {
		nc.MCPServerURL = &m
	}
	actor := principalFrom(ctx).Actor
	nc.OwnerUserID = &actor.UserID
	reg, err := s.OAuth.RegisterClient(ctx, actor, nc)
	if err != nil {
		return nil, err
	}
	out := clientRegisteredResponse{ClientID: reg.Client.ClientID, ClientName: reg.Client.Name, ClientType: reg.Client.Type,
		RedirectURIs: reg.Client.RedirectURIs, AllowedScopes: reg.Client.AllowedScopes}
	if reg.Secret != "" {
		warning := "Store the client_secret securely! It will not be shown again."
		out.ClientSecret, out.Warning = &reg.Secret, &warning
	}
	return &struct{ Body clientRegisteredResponse }{Body: out}, nil
}

type clientResponse struct {
	ClientName        string    `json:"client_name"`
	ClientDescription *string   `json:"client_description"`
	RedirectURIs      []string  `json:"redirect_uris"`
	AllowedScopes     []string  `json:"allowed_scopes"`
	ID                string    `json:"id" format:"uuid"`
	ClientID          string    `json:"client_id"`
	ClientType        string    `json:"client_type" enum:"public,confidential"`
	IsActive          bool      `json:"is_active"`
	CreatedAt         time.Time `json:"created_at"`
}

func (s *server) listClients(ctx context.Context, _ *struct{}) (*struct{ Body []clientResponse }, error) {
	list, err := s.OAuth.Clients(ctx, principalFrom(ctx).Actor)
	if err != nil {
		return nil, err
	}
	out := make([]clientResponse, len(list))
	for i, c := range list {
		out[i] = clientResponse{ClientName: c.Name, ClientDescription: c.Description, RedirectURIs: c.RedirectURIs,
			AllowedScopes: c.AllowedScopes, ID: c.ID, ClientID: c.ClientID, ClientType: c.Type, IsActive: c.IsActive, CreatedAt: c.CreatedAt}
	}
	return &struct{ Body []clientResponse }{Body: out}, nil
}

type clientIDInput struct {
	ClientID string `path:"client_id" maxLength:"2048"`
}

func (s *server) deleteClient(ctx context.Context, in *clientIDInput) (*struct{ Status int }, error) {
	if err := s.OAuth.DeleteClient(ctx, principalFrom(ctx).Actor, in.ClientID); err != nil {
		return nil, err
	}
	return &struct{ Status int }{Status: http.StatusNoContent}, nil
}

type consentResponse struct {
	ClientID          string    `json:"client_id"`
	ClientName        string    `json:"client_name"`
	ClientDescription *string   `json:"client_description"`
	GrantedScopes     []string  `json:"granted_scopes"`
	GrantedAt         time.Time `json:"granted_at"`
}

func (s *server) listConsents(ctx context.Context, _ *struct{}) (*struct{ Body []consentResponse }, error) {
	list, err := s.OAuth.Consents(ctx, principalFrom(ctx).Actor)
	if err != nil {
		return nil, err
	}
	out := make([]consentResponse, len(list))
	for i, c := range list {
		out[i] = consentResponse{ClientID: c.ClientID, ClientName: c.ClientName, ClientDescription: c.ClientDescription,
			GrantedScopes: c.Scopes, GrantedAt: c.CreatedAt}
	}
	return &struct{ Body []consentResponse }{Body: out}, nil
}

func (s *server) revokeConsent(ctx context.Context, in *clientIDInput) (*struct{ Status int }, error) {
	if err := s.OAuth.RevokeConsent(ctx, principalFrom(ctx).Actor, in.ClientID); err != nil {
		return nil, err
	}
	return &struct{ Status int }{Status: http.StatusNoContent}, nil
}
