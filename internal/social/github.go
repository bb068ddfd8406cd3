package social

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/config"
)

// GitHub logs in with a GitHub OAuth app: no OpenID Connect, so the identity
// comes from the API's /user and the primary verified address of
// /user/emails.
type GitHub struct {
	cfg    config.GitHubProvider
	client *http.Client
}

// NewGitHub returns the GitHub provider.
func NewGitHub(cfg config.GitHubProvider, client *http.Client) *GitHub {
	return &GitHub{cfg: cfg, client: client}
}

func (g *GitHub) Name() string        { return "github" }
func (g *GitHub) DisplayName() string { return "GitHub" }
func (g *GitHub) Icon() string        { return "github" }
func (g *GitHub) UsesPKCE() bool      { return false }
func (g *GitHub) UsesNonce() bool     { return false }

func (g *GitHub) oauth2Config(redirectURI string) *oauth2.Config {
	return &oauth2.Config{ClientID: g.cfg.ClientID, ClientSecret: g.cfg.ClientSecret, RedirectURL: redirectURI,
		Scopes: []string{"read:user", "user:email"},
		Endpoint: oauth2.Endpoint{AuthURL: g.cfg.URL + "/login/oauth/authorize", TokenURL: g.cfg.URL + "/login/oauth/access_token",
			AuthStyle: oauth2.AuthStyleInHeader}}
}

// AuthURL implements Provider.
func (g *GitHub) AuthURL(_ context.Context, req AuthRequest) (string, error) {
	return g.oauth2Config(req.RedirectURI).AuthCodeURL(req.State), nil
}

// Exchange implements Provider.
func (g *GitHub) Exchange(ctx context.Context, code string, req AuthRequest) (Identity, error) {
	tok, err := g.oauth2Config(req.RedirectURI).Exchange(context.WithValue(ctx, oauth2.HTTPClient, g.client), code)
	if err != nil {
		return Identity{}, ErrExchange.Wrap(err)
	}
	var u struct {
		ID    json.Number `json:"id"`
		Login string      `json:"login"`
		Name  string      `json:"name"`
		Email string      `json:"email"`
	}
	if err := g.get(ctx, tok.AccessToken, "/user", &u); err != nil {
		return Identity{}, ErrUserInfo.Wrap(err)
	}
	if _, err := strconv.ParseInt(u.ID.String(), 10, 64); err != nil {
		return Identity{}, ErrNoSubject
	}
	id := Identity{Subject: u.ID.String(), Tokens: tokensOf(tok)}
	id.FirstName, id.LastName = splitName(u.Name)
	if id.FirstName == "" {
		id.FirstName = u.Login
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := g.get(ctx, tok.AccessToken, "/user/emails", &emails); err != nil {
		// Without the list nobody knows whether an address is verified.
		// Falling back to the public profile email (unverified) would let an
		// outage decide where a login lands and which email a link records,
		// so the login is refused like a failed /user (docs/DECISIONS.md).
		return Identity{}, ErrUserInfo.Wrap(err)
	}
	for _, e := range emails {
		if e.Primary && e.Verified {
			id.Email, id.EmailVerified = e.Email, true
		}
	}
	if id.Email == "" {
		// No primary verified address: the public profile email,
		// unverified as far as we know.
		id.Email = u.Email
	}
	id.Email = strings.ToLower(strings.TrimSpace(id.Email))
	return id, nil
}

// get calls the GitHub API and decodes a JSON answer of at most 1 MiB.
func (g *GitHub) get(ctx context.Context, accessToken, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.APIURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
