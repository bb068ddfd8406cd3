package httpapi

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
)

// registrationRequest is the RFC 7591 request body; unknown members are
// ignored (RFC 7591 §2).
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
	ApplicationType         string   `json:"application_type"`
}

// oauthRegister is dynamic client registration (RFC 7591), open or behind
// an initial access token (OAUTH_REGISTRATION).
func (s *server) oauthRegister(w http.ResponseWriter, r *http.Request) {
	switch s.Config.Provider.Registration {
	case "off":
		s.writeOAuthError(w, r, &oauth.Error{Code: "invalid_request", Description: "Dynamic client registration is disabled", Status: http.StatusNotFound})
		return
	case "token":
		raw, ok := auth.BearerToken(r.Header.Get("Authorization"))
		if !ok || subtle.ConstantTimeCompare([]byte(raw), []byte(s.Config.Provider.RegistrationToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			noStore(w)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token",
				"error_description": "A valid initial access token is required to register clients"})
			return
		}
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		s.writeOAuthError(w, r, &oauth.Error{Code: "invalid_client_metadata", Description: "The request body must be JSON", Status: 400})
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeOAuthError(w, r, &oauth.Error{Code: "invalid_client_metadata", Description: "The request body is too large", Status: http.StatusRequestEntityTooLarge})
			return
		}
		s.writeOAuthError(w, r, &oauth.Error{Code: "invalid_request", Description: "The request body could not be read", Status: 400})
		return
	}
	var req registrationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeOAuthError(w, r, &oauth.Error{Code: "invalid_client_metadata", Description: "The request body is not a valid client metadata object", Status: 400})
		return
	}
	reg, err := s.OAuth.RegisterDynamic(r.Context(), oauth.DynamicRegistration{RedirectURIs: req.RedirectURIs,
		TokenEndpointAuthMethod: req.TokenEndpointAuthMethod, GrantTypes: req.GrantTypes, ResponseTypes: req.ResponseTypes,
		ClientName: req.ClientName, Scope: req.Scope, ApplicationType: req.ApplicationType})
	if err != nil {
		s.writeOAuthError(w, r, err)
		return
	}
	c := reg.Client
	out := map[string]any{
		"client_id": c.ClientID, "client_id_issued_at": c.CreatedAt.Unix(), "client_name": c.Name,
		"redirect_uris": c.RedirectURIs, "token_endpoint_auth_method": c.TokenEndpointAuthMethod,
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"application_type": c.ApplicationType, "scope": oauth.JoinScope(c.AllowedScopes),
	}
	if reg.Secret != "" {
		out["client_secret"], out["client_secret_expires_at"] = reg.Secret, 0
	}
	noStore(w)
	writeJSON(w, http.StatusCreated, out)
}
