package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadSocial(t *testing.T) {
	// acme is a complete generic OpenID Connect provider.
	acme := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"OAUTH_OIDC_PROVIDERS":          "acme",
			"OAUTH_OIDC_ACME_ISSUER":        "https://acme.example/oauth2/default",
			"OAUTH_OIDC_ACME_CLIENT_ID":     "acme-id",
			"OAUTH_OIDC_ACME_CLIENT_SECRET": "acme-secret",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}

	t.Run("defaults", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{})
		s := c.Social
		checks := []struct {
			name      string
			got, want any
		}{
			{"Enabled", s.Enabled, false},
			{"AutoLinkByEmail", s.AutoLinkByEmail, true},
			{"StateTTL", s.StateTTL, 10 * time.Minute},
			{"HTTPTimeout", s.HTTPTimeout, 10 * time.Second},
			{"AllowedRedirectURIs", len(s.AllowedRedirectURIs), 0},
			{"FrontendURL", s.FrontendURL, "http://localhost:3000"},
			{"Google.Name", s.Google.Name, "google"},
			{"Google.DisplayName", s.Google.DisplayName, "Google"},
			{"Google.Icon", s.Google.Icon, "google"},
			{"Google.Issuer", s.Google.Issuer, "https://accounts.google.com"},
			{"Google.ClientID", s.Google.ClientID, ""},
			{"Google.ClientSecret", s.Google.ClientSecret, ""},
			{"Google.Scopes", strings.Join(s.Google.Scopes, " "), "openid email profile"},
			{"GitHub.URL", s.GitHub.URL, "https://github.com"},
			{"GitHub.APIURL", s.GitHub.APIURL, "https://api.github.com"},
			{"GitHub.ClientID", s.GitHub.ClientID, ""},
			{"OIDC", len(s.OIDC), 0},
		}
		for _, ch := range checks {
			if ch.got != ch.want {
				t.Errorf("Social.%s = %v, want %v", ch.name, ch.got, ch.want)
			}
		}
	})

	t.Run("overrides", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{
			"OAUTH_ENABLED":               "true",
			"OAUTH_AUTO_LINK_BY_EMAIL":    "false",
			"OAUTH_STATE_EXPIRE_MINUTES":  "3",
			"OAUTH_HTTP_TIMEOUT_SECONDS":  "1",
			"OAUTH_ALLOWED_REDIRECT_URIS": "com.example.app:/callback, https://other.example/cb",
			"FRONTEND_URL":                "https://app.example.com/",
			"OAUTH_GOOGLE_ISSUER":         " https://accounts.example.com/ ",
			"OAUTH_GOOGLE_CLIENT_ID":      "g-id",
			"OAUTH_GOOGLE_CLIENT_SECRET":  "g-secret",
			"OAUTH_GITHUB_CLIENT_ID":      "gh-id",
			"OAUTH_GITHUB_CLIENT_SECRET":  "gh-secret",
			"OAUTH_GITHUB_URL":            "https://github.example.com/",
			"OAUTH_GITHUB_API_URL":        "https://github.example.com/api/v3/",
		})
		s := c.Social
		if !s.Enabled || s.AutoLinkByEmail || s.StateTTL != 3*time.Minute || s.HTTPTimeout != time.Second {
			t.Errorf("switches %+v", s)
		}
		if !slices.Equal(s.AllowedRedirectURIs, []string{"com.example.app:/callback", "https://other.example/cb"}) {
			t.Errorf("AllowedRedirectURIs %q", s.AllowedRedirectURIs)
		}
		if s.FrontendURL != "https://app.example.com" {
			t.Errorf("FrontendURL %q", s.FrontendURL)
		}
		// The issuer keeps its trailing slash (discovery compares it
		// exactly); GitHub's URLs, only ever used to build URLs, lose it.
		if g := s.Google; g.Issuer != "https://accounts.example.com/" || g.ClientID != "g-id" || g.ClientSecret != "g-secret" {
			t.Errorf("Google %+v", g)
		}
		want := GitHubProvider{ClientID: "gh-id", ClientSecret: "gh-secret", URL: "https://github.example.com", APIURL: "https://github.example.com/api/v3"}
		if s.GitHub != want {
			t.Errorf("GitHub %+v, want %+v", s.GitHub, want)
		}
		for _, v := range []string{"0", "121", "ten"} {
			wantProblem(t, loadErr(t, map[string]string{"OAUTH_HTTP_TIMEOUT_SECONDS": v}), "OAUTH_HTTP_TIMEOUT_SECONDS", "between 1 and 120", v)
		}
		if c, _ := mustLoad(t, map[string]string{"OAUTH_HTTP_TIMEOUT_SECONDS": "120"}); c.Social.HTTPTimeout != 2*time.Minute {
			t.Errorf("HTTPTimeout %v, want 2m", c.Social.HTTPTimeout)
		}
		wantProblem(t, loadErr(t, map[string]string{"OAUTH_STATE_EXPIRE_MINUTES": "0"}), "OAUTH_STATE_EXPIRE_MINUTES", "between 1 and 1440")
	})

	t.Run("generic providers: names, variable prefixes, defaults, scopes", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{
			"OAUTH_OIDC_PROVIDERS": " Acme-SSO , keycloak,entra_id",
			// Acme-SSO → acme-sso → OAUTH_OIDC_ACME_SSO_
			"OAUTH_OIDC_ACME_SSO_ISSUER":        "https://acme.example.auth0.com/",
			"OAUTH_OIDC_ACME_SSO_CLIENT_ID":     "acme-id",
			"OAUTH_OIDC_ACME_SSO_CLIENT_SECRET": "acme-secret",
			"OAUTH_OIDC_ACME_SSO_DISPLAY_NAME":  "Acme SSO",
			"OAUTH_OIDC_ACME_SSO_SCOPES":        "email profile groups",
			"OAUTH_OIDC_KEYCLOAK_ISSUER":        "http://localhost:8080/realms/main",
			"OAUTH_OIDC_KEYCLOAK_CLIENT_ID":     "kc-id",
			"OAUTH_OIDC_KEYCLOAK_CLIENT_SECRET": "kc-secret",
			"OAUTH_OIDC_ENTRA_ID_ISSUER":        "https://login.microsoftonline.com/tenant/v2.0",
			"OAUTH_OIDC_ENTRA_ID_CLIENT_ID":     "entra-id",
			"OAUTH_OIDC_ENTRA_ID_CLIENT_SECRET": "entra-secret",
			"OAUTH_OIDC_ENTRA_ID_SCOPES":        "profile openid email offline_access",
		})
		want := []OIDCProvider{
			{Name: "acme-sso", DisplayName: "Acme SSO", Icon: "acme-sso", Issuer: "https://acme.example.auth0.com/",
				ClientID: "acme-id", ClientSecret: "acme-secret", Scopes: []string{"openid", "email", "profile", "groups"}},
			{Name: "keycloak", DisplayName: "keycloak", Icon: "keycloak", Issuer: "http://localhost:8080/realms/main",
				ClientID: "kc-id", ClientSecret: "kc-secret", Scopes: []string{"openid", "email", "profile"}},
			{Name: "entra_id", DisplayName: "entra_id", Icon: "entra_id", Issuer: "https://login.microsoftonline.com/tenant/v2.0",
				ClientID: "entra-id", ClientSecret: "entra-secret", Scopes: []string{"profile", "openid", "email", "offline_access"}},
		}
		got := c.Social.OIDC
		if len(got) != len(want) {
			t.Fatalf("OIDC providers %+v, want %+v", got, want)
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.Name != w.Name || g.DisplayName != w.DisplayName || g.Icon != w.Icon || g.Issuer != w.Issuer ||
				g.ClientID != w.ClientID || g.ClientSecret != w.ClientSecret || !slices.Equal(g.Scopes, w.Scopes) {
				t.Errorf("provider %d = %+v, want %+v", i, g, w)
			}
		}
		// The JSON list form works too.
		c, _ = mustLoad(t, acme(map[string]string{"OAUTH_OIDC_PROVIDERS": `["acme"]`}))
		if len(c.Social.OIDC) != 1 || c.Social.OIDC[0].Name != "acme" {
			t.Errorf("OIDC %+v", c.Social.OIDC)
		}
	})

	t.Run("refused", func(t *testing.T) {
		tests := []struct {
			name      string
			env       map[string]string
			variable  string
			fragments []string
		}{
			{"reserved name google", acme(map[string]string{"OAUTH_OIDC_PROVIDERS": "acme,google"}), "OAUTH_OIDC_PROVIDERS", []string{`"google"`, "not google or github"}},
			{"reserved name GitHub, any case", acme(map[string]string{"OAUTH_OIDC_PROVIDERS": "GitHub,acme"}), "OAUTH_OIDC_PROVIDERS", []string{`"GitHub"`}},
			{"name starting with a digit", acme(map[string]string{"OAUTH_OIDC_PROVIDERS": "acme,1sso"}), "OAUTH_OIDC_PROVIDERS", []string{`"1sso"`, "not a valid provider name"}},
			{"name with a dot", acme(map[string]string{"OAUTH_OIDC_PROVIDERS": "acme,sso.example"}), "OAUTH_OIDC_PROVIDERS", []string{`"sso.example"`}},
			{"name with a space", acme(map[string]string{"OAUTH_OIDC_PROVIDERS": "acme,my sso"}), "OAUTH_OIDC_PROVIDERS", []string{`"my sso"`}},
			{"name over 32 characters", acme(map[string]string{"OAUTH_OIDC_PROVIDERS": "acme," + strings.Repeat("a", 33)}), "OAUTH_OIDC_PROVIDERS", []string{"not a valid provider name"}},
			{"duplicate name", acme(map[string]string{"OAUTH_OIDC_PROVIDERS": "acme,ACME"}), "OAUTH_OIDC_PROVIDERS", []string{`"acme" is listed twice`}},
			{"names sharing a variable prefix", acme(map[string]string{"OAUTH_OIDC_PROVIDERS": "acme,a-b,a_b",
				"OAUTH_OIDC_A_B_ISSUER": "https://ab.example", "OAUTH_OIDC_A_B_CLIENT_ID": "ab", "OAUTH_OIDC_A_B_CLIENT_SECRET": "ab"}),
				"OAUTH_OIDC_PROVIDERS", []string{`"a-b"`, `"a_b"`, "OAUTH_OIDC_A_B_*"}},
			{"missing issuer", acme(map[string]string{"OAUTH_OIDC_ACME_ISSUER": ""}), "OAUTH_OIDC_ACME_ISSUER", []string{"is required", `"acme"`}},
			{"relative issuer", acme(map[string]string{"OAUTH_OIDC_ACME_ISSUER": "acme.example"}), "OAUTH_OIDC_ACME_ISSUER", []string{"absolute http(s) URL"}},
			{"issuer with a query", acme(map[string]string{"OAUTH_OIDC_ACME_ISSUER": "https://acme.example/?tenant=1"}), "OAUTH_OIDC_ACME_ISSUER", []string{"query or fragment"}},
			{"missing client id", acme(map[string]string{"OAUTH_OIDC_ACME_CLIENT_ID": ""}), "OAUTH_OIDC_ACME_CLIENT_ID", []string{"OAUTH_OIDC_ACME_CLIENT_SECRET", "required", `"acme"`}},
			{"missing client secret", acme(map[string]string{"OAUTH_OIDC_ACME_CLIENT_SECRET": ""}), "OAUTH_OIDC_ACME_CLIENT_ID", []string{"OAUTH_OIDC_ACME_CLIENT_SECRET", "required"}},
			{"variables under the wrong prefix", map[string]string{"OAUTH_OIDC_PROVIDERS": "acme-sso",
				"OAUTH_OIDC_ACME-SSO_ISSUER": "https://acme.example", "OAUTH_OIDC_ACME-SSO_CLIENT_ID": "id", "OAUTH_OIDC_ACME-SSO_CLIENT_SECRET": "secret"},
				"OAUTH_OIDC_ACME_SSO_ISSUER", []string{"is required"}},
			{"Google issuer not a URL", map[string]string{"OAUTH_GOOGLE_ISSUER": "accounts.google.com"}, "OAUTH_GOOGLE_ISSUER", []string{"absolute http(s) URL"}},
			{"Google issuer with a fragment", map[string]string{"OAUTH_GOOGLE_ISSUER": "https://accounts.google.com/#x"}, "OAUTH_GOOGLE_ISSUER", []string{"query or fragment"}},
			{"GitHub URL not a URL", map[string]string{"OAUTH_GITHUB_URL": "github.com"}, "OAUTH_GITHUB_URL", []string{"absolute http(s) URL"}},
			{"GitHub API URL not a URL", map[string]string{"OAUTH_GITHUB_API_URL": "ftp://api.github.com"}, "OAUTH_GITHUB_API_URL", []string{"absolute http(s) URL"}},
			{"OAUTH_ENABLED not a boolean", map[string]string{"OAUTH_ENABLED": "sometimes"}, "OAUTH_ENABLED", []string{"boolean"}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				wantProblem(t, loadErr(t, tc.env), tc.variable, tc.fragments...)
			})
		}
		// A client secret never appears in an error.
		msg := loadErr(t, acme(map[string]string{"OAUTH_OIDC_ACME_CLIENT_ID": "", "OAUTH_OIDC_ACME_CLIENT_SECRET": "s3cret-value"}))
		if strings.Contains(msg, "s3cret-value") {
			t.Errorf("the error repeats the client secret: %s", msg)
		}
	})
}
