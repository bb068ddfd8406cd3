package httpapi_test

// End-to-end tests of personal access tokens (issue 9, docs/FEATURE_EXAMPLE.md),
// on every engine: the management endpoints, authentication with a token
// on /api/v1 within its scopes, the ways a token stops working, last use,
// and the daily clean-up.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

const (
	patsAPI      = "/api/v1/users/me/tokens"
	adminPATsAPI = "/api/v1/admin/tokens"
)

// patJSON is a token as the API describes it; Token is set only by creation.
type patJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Prefix     string   `json:"prefix"`
	Scopes     []string `json:"scopes"`
	CreatedAt  string   `json:"created_at"`
	LastUsedAt *string  `json:"last_used_at"`
	ExpiresAt  *string  `json:"expires_at"`
	Token      string   `json:"token"`
	// Admin listing only.
	UserID    string  `json:"user_id"`
	UserEmail string  `json:"user_email"`
	RevokedAt *string `json:"revoked_at"`
	IsActive  *bool   `json:"is_active"`
}

// patCreate creates a token with the given scopes (and body extras) as the
// holder of access and returns it with its secret.
func patCreate(t *testing.T, e *apitest.Env, access string, scopes []string, extra ...any) patJSON {
	t.Helper()
	body := map[string]any{"name": "ci", "scopes": scopes}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	var p patJSON
	e.Post(patsAPI, access, body).Expect(t, http.StatusCreated, "").Decode(t, &p)
	if !strings.HasPrefix(p.Token, "gatehouse_pat_") {
		t.Fatalf("created token %q", p.Token)
	}
	return p
}

func patMine(t *testing.T, e *apitest.Env, access string) []patJSON {
	t.Helper()
	var out struct {
		Tokens []patJSON `json:"tokens"`
		Total  int       `json:"total"`
	}
	e.Get(patsAPI, access).Expect(t, http.StatusOK, "").Decode(t, &out)
	if out.Total != len(out.Tokens) {
		t.Fatalf("total %d for %d tokens", out.Total, len(out.Tokens))
	}
	return out.Tokens
}

// patRefused checks a 401 for a token that does not work: the envelope,
// its message, and the API's challenge.
func patRefused(t *testing.T, e *apitest.Env, secret, msg string) {
	t.Helper()
	r := e.Get(pathMe, secret)
	expectError(t, r, http.StatusUnauthorized, "AUTH_006", msg, "")
	if got := r.Header.Get("WWW-Authenticate"); got != "Bearer" {
		t.Fatalf("WWW-Authenticate %q, want Bearer", got)
	}
}

const (
	msgPATInvalid  = "Invalid personal access token"
	msgPATRevoked  = "This personal access token has been revoked"
	msgPATExpired  = "This personal access token has expired"
	msgPATInactive = "The account that owns this personal access token is inactive"
	msgPATNotHere  = "This endpoint does not accept personal access tokens; sign in to Gatehouse directly"
)

func TestPATCreateListUseRevoke(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		alice := e.User("alice@example.com")
		bob := e.User("bob@example.com")
		before := time.Now().UTC()

		r := e.Post(patsAPI, alice.Access, map[string]any{"name": "  deploy bot ", "scopes": []string{"write:users", "read:users"}}).
			Expect(t, http.StatusCreated, "")
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control %q, want no-store", cc)
		}
		var created patJSON
		r.Decode(t, &created)
		secret := created.Token
		if len(secret) != len("gatehouse_pat_")+43 || created.Prefix != secret[:22] || created.Name != "deploy bot" ||
			!slices.Equal(created.Scopes, []string{"read:users", "write:users"}) || created.LastUsedAt != nil || created.ExpiresAt == nil {
			t.Fatalf("created %+v", created)
		}
		exp, err := time.Parse(time.RFC3339Nano, *created.ExpiresAt)
		if err != nil || exp.Before(before.AddDate(0, 0, 90).Add(-time.Minute)) || exp.After(time.Now().AddDate(0, 0, 90).Add(time.Minute)) {
			t.Fatalf("expires_at %s, want 90 days from now (%v)", *created.ExpiresAt, err)
		}
		// Only the digest is stored.
		if e.Count(`SELECT COUNT(*) FROM personal_access_tokens WHERE token_hash = $1`, token.HashSecret(secret)) != 1 ||
			e.Count(`SELECT COUNT(*) FROM personal_access_tokens WHERE token_hash = $1 OR name = $1 OR prefix = $1`, secret) != 0 {
			t.Fatal("the token is not stored as its digest only")
		}

		// The list never shows the token or its digest.
		lr := e.Get(patsAPI, alice.Access).Expect(t, http.StatusOK, "")
		if strings.Contains(string(lr.Body), secret) || strings.Contains(string(lr.Body), token.HashSecret(secret)) ||
			strings.Contains(string(lr.Body), `"token"`) {
			t.Fatalf("the list shows the token: %s", lr.Body)
		}
		mine := patMine(t, e, alice.Access)
		if len(mine) != 1 || mine[0].ID != created.ID || mine[0].Prefix != created.Prefix || mine[0].Name != "deploy bot" ||
			!slices.Equal(mine[0].Scopes, created.Scopes) || mine[0].CreatedAt != created.CreatedAt || *mine[0].ExpiresAt != *created.ExpiresAt {
			t.Fatalf("list %+v", mine)
		}
		if len(patMine(t, e, bob.Access)) != 0 {
			t.Fatal("bob sees alice's token")
		}

		// The token works as a bearer token, as Alice.
		me := e.Get(pathMe, secret).Expect(t, http.StatusOK, "").JSON(t)
		if me["id"] != alice.UserID {
			t.Fatalf("users/me with the token: %v", me)
		}
		e.Patch(pathMe, secret, map[string]any{"first_name": "Alicia"}).Expect(t, http.StatusOK, "")

		// Bob cannot revoke it: the same 404 as an unknown id.
		other := e.Delete(patsAPI+"/"+created.ID, bob.Access)
		unknown := e.Delete(patsAPI+"/"+unknownID, bob.Access)
		expectError(t, other, http.StatusNotFound, "SYS_002", "Personal access token not found", "")
		if string(other.Body) != string(unknown.Body) || other.Status != unknown.Status {
			t.Fatalf("another user's token answers differently from an unknown one:\n%s\n%s", other.Body, unknown.Body)
		}
		e.Get(pathMe, secret).Expect(t, http.StatusOK, "")

		// Alice revokes it: it stops at once; revoking again succeeds.
		if msg := messageOf(t, e.Delete(patsAPI+"/"+created.ID, alice.Access).Expect(t, http.StatusOK, "")); msg != "Personal access token revoked: deploy bot" {
			t.Fatalf("message %q", msg)
		}
		patRefused(t, e, secret, msgPATRevoked)
		e.Delete(patsAPI+"/"+created.ID, alice.Access).Expect(t, http.StatusOK, "")
		if len(patMine(t, e, alice.Access)) != 0 {
			t.Fatal("a revoked token is listed")
		}
		// Alice's session is untouched.
		e.Get(pathMe, alice.Access).Expect(t, http.StatusOK, "")
	})
}

func TestPATExpiryChoices(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		alice := e.User("alice@example.com")
		in := func(p patJSON) time.Duration {
			t.Helper()
			exp, err := time.Parse(time.RFC3339Nano, *p.ExpiresAt)
			if err != nil {
				t.Fatal(err)
			}
			return time.Until(exp)
		}
		if d := in(patCreate(t, e, alice.Access, []string{"read:users"}, "expires_in_days", 1)); d < 23*time.Hour || d > 25*time.Hour {
			t.Fatalf("1 day: expires in %v", d)
		}
		if d := in(patCreate(t, e, alice.Access, []string{"read:users"}, "expires_in_days", 30)); d < 29*24*time.Hour || d > 31*24*time.Hour {
			t.Fatalf("30 days: expires in %v", d)
		}
		forever := patCreate(t, e, alice.Access, []string{"read:users"}, "no_expiry", true)
		if forever.ExpiresAt != nil {
			t.Fatalf("no_expiry: expires_at %v", *forever.ExpiresAt)
		}
		e.Get(pathMe, forever.Token).Expect(t, http.StatusOK, "")
		// Past the limit here: 30 days.
		expectError(t, e.Post(patsAPI, alice.Access, map[string]any{"name": "n", "scopes": []string{"read:users"}, "expires_in_days": 31}),
			http.StatusUnprocessableEntity, "VAL_001", "Value error, The expiry must be at most 30 days away", "expires_in_days")
	}, apitest.WithEnv("PAT_ALLOW_NO_EXPIRY", "true"), apitest.WithEnv("PAT_MAX_EXPIRY_DAYS", "30"), apitest.WithEnv("PAT_DEFAULT_EXPIRY_DAYS", "7"))
}

// Bad input: each answered with the envelope and a clear message, nothing
// stored, never a 500.
func TestPATBadInput(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		alice := e.User("alice@example.com")
		root := e.Superuser("root@example.com")
		valid := func(extra map[string]any) map[string]any {
			b := map[string]any{"name": "ci", "scopes": []string{"read:users"}}
			for k, v := range extra {
				b[k] = v
			}
			return b
		}
		for _, tc := range []struct {
			name        string
			body        any
			status      int
			code, field string
			msg         string // fragment of the first message
		}{
			{"10 000-character name", valid(map[string]any{"name": strings.Repeat("n", 10_000)}), 422, "VAL_001", "name", "at most 100 characters"},
			{"101 characters", valid(map[string]any{"name": strings.Repeat("n", 101)}), 422, "VAL_001", "name", "at most 100 characters"},
			{"blank name", valid(map[string]any{"name": "   "}), 422, "VAL_001", "name", "must not be empty"},
			{"control characters", valid(map[string]any{"name": "ci\u0000bot"}), 422, "VAL_001", "name", "control characters"},
			{"newline", valid(map[string]any{"name": "ci\nSet-Cookie: x"}), 422, "VAL_001", "name", "control characters"},
			{"markup", valid(map[string]any{"name": "<script>alert(1)</script>"}), 422, "VAL_001", "name", "< or >"},
			{"unknown scope", valid(map[string]any{"scopes": []string{"read:users", "delete:world"}}), 422, "VAL_001", "scopes", `Unknown scope "delete:world"`},
			{"no scopes", valid(map[string]any{"scopes": []string{}}), 422, "VAL_001", "scopes", "At least one scope"},
			{"scopes not a list", valid(map[string]any{"scopes": "read:users"}), 422, "VAL_001", "scopes", ""},
			{"name missing", map[string]any{"scopes": []string{"read:users"}}, 422, "VAL_001", "name", "Field required"},
			{"scopes missing", map[string]any{"name": "ci"}, 422, "VAL_001", "scopes", "Field required"},
			{"expiry today", valid(map[string]any{"expires_in_days": 0}), 422, "VAL_001", "expires_in_days", "must be in the future"},
			{"expiry in the past", valid(map[string]any{"expires_in_days": -7}), 422, "VAL_001", "expires_in_days", "must be in the future"},
			{"beyond the limit", valid(map[string]any{"expires_in_days": 366}), 422, "VAL_001", "expires_in_days", "at most 365 days"},
			{"far beyond", valid(map[string]any{"expires_in_days": 1e15}), 422, "VAL_001", "expires_in_days", "at most 365 days"},
			{"out of range", valid(map[string]any{"expires_in_days": 1e30}), 422, "VAL_001", "", ""},
			{"fraction", valid(map[string]any{"expires_in_days": 1.5}), 422, "VAL_001", "expires_in_days", ""},
			{"text", valid(map[string]any{"expires_in_days": "30"}), 422, "VAL_001", "expires_in_days", ""},
			{"null expiry", valid(map[string]any{"expires_in_days": nil}), 422, "VAL_001", "expires_in_days", `send "no_expiry": true`},
			{"no expiry here", valid(map[string]any{"no_expiry": true}), 422, "VAL_001", "no_expiry", "not allowed on this server"},
			{"both", valid(map[string]any{"no_expiry": true, "expires_in_days": 3}), 422, "VAL_001", "expires_in_days", "either expires_in_days or no_expiry"},
			{"admin scope, regular user", valid(map[string]any{"scopes": []string{"admin"}}), 403, "AUTH_004", "", "Only superusers"},
			{"not JSON", "{name:", 422, "VAL_001", "", "Invalid JSON"},
			{"JSON array", "[]", 422, "VAL_001", "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.Count(`SELECT COUNT(*) FROM personal_access_tokens`)
				r := e.Post(patsAPI, alice.Access, tc.body)
				r.Expect(t, tc.status, tc.code)
				_, msg, field := r.ErrorCode(t)
				if tc.field != "" && field != tc.field {
					t.Errorf("field %v, want %s (%s)", field, tc.field, msg)
				}
				if !strings.Contains(msg, tc.msg) || len(msg) > 400 {
					t.Errorf("message %q, want it to contain %q", msg, tc.msg)
				}
				if after := e.Count(`SELECT COUNT(*) FROM personal_access_tokens`); after != before {
					t.Errorf("a refused request stored a token")
				}
			})
		}
		// A superuser may have admin.
		patCreate(t, e, root.Access, []string{"admin"})

		// Paths: not a UUID, unknown, another user's.
		theirs := patCreate(t, e, root.Access, []string{"read:users"})
		for _, p := range []string{"not-a-uuid", "00000000-0000-0000-0000-00000000000", strings.Repeat("9", 300), "%27%20OR%201=1"} {
			expectError(t, e.Delete(patsAPI+"/"+p, alice.Access), http.StatusUnprocessableEntity, "VAL_001",
				"Input should be a valid UUID, invalid character or length", "token_id")
			expectError(t, e.Delete(adminPATsAPI+"/"+p, root.Access), http.StatusUnprocessableEntity, "VAL_001",
				"Input should be a valid UUID, invalid character or length", "token_id")
		}
		expectError(t, e.Delete(patsAPI+"/"+theirs.ID, alice.Access), http.StatusNotFound, "SYS_002", "Personal access token not found", "")
		e.Get(pathMe, theirs.Token).Expect(t, http.StatusOK, "")
		for _, q := range []string{"?user_id=nope", "?is_active=maybe", "?page=0", "?limit=1000", "?page=%zz"} {
			if r := e.Get(adminPATsAPI+q, root.Access); r.Status != http.StatusUnprocessableEntity {
				t.Errorf("GET %s: %d %s", q, r.Status, r.Body)
			}
		}
	})
}

// Guessing by prefix never authenticates, and nothing about a refused
// token is a server error.
func TestPATGuessing(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		alice := e.User("alice@example.com")
		p := patCreate(t, e, alice.Access, []string{"read:users"})
		rest := p.Token[22:]
		for _, guess := range []string{
			p.Prefix + strings.Repeat("A", len(rest)),                    // right prefix, wrong rest
			p.Token[:len(p.Token)-1] + string(p.Token[len(p.Token)-1]^1), // one character off
			p.Token[:len(p.Token)-1],                                     // cut short
			p.Token + "A",                                                // too long
			p.Prefix,                                                     // the prefix alone
			"gatehouse_pat_" + token.HashSecret(p.Token),                 // the digest
			"gatehouse_pat_" + strings.Repeat("%", 43),
			"gatehouse_pat_' OR '1'='1",
		} {
			patRefused(t, e, guess, msgPATInvalid)
		}
		e.Get(pathMe, p.Token).Expect(t, http.StatusOK, "")
	})
}

// Scope enforcement uses the API's one scope table (docs/SCOPES.md).
func TestPATScopes(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		alice := e.User("alice@example.com")
		root := e.Superuser("root@example.com")
		insufficient := func(r apitest.Response, need string) {
			t.Helper()
			expectError(t, r, http.StatusForbidden, "AUTH_004", "The personal access token lacks the "+need+" scope this endpoint needs", "")
			if got, want := r.Header.Get("WWW-Authenticate"), `Bearer error="insufficient_scope", scope="`+need+`"`; got != want {
				t.Fatalf("WWW-Authenticate %q, want %q", got, want)
			}
		}

		read := patCreate(t, e, alice.Access, []string{"read:users"}).Token
		e.Get(pathMe, read).Expect(t, http.StatusOK, "")
		e.Get("/api/v1/users/"+alice.UserID, read).Expect(t, http.StatusOK, "")
		e.Get("/api/v1/sessions/me", read).Expect(t, http.StatusOK, "")
		expectUnchanged(t, e, func() {
			insufficient(e.Patch(pathMe, read, map[string]any{"first_name": "Mallory"}), "write:users")
			insufficient(e.Get("/api/v1/organizations/me", read), "read:organizations")
			insufficient(e.Post("/api/v1/organizations", read, map[string]any{"name": "Acme", "slug": "acme"}), "write:organizations")
			insufficient(e.Get("/api/v1/admin/stats", read), "admin")
		})

		write := patCreate(t, e, alice.Access, []string{"write:users", "write:organizations"}).Token
		e.Patch(pathMe, write, map[string]any{"first_name": "Alicia"}).Expect(t, http.StatusOK, "")
		if me := e.Get(pathMe, alice.Access).JSON(t); me["first_name"] != "Alicia" {
			t.Fatalf("PATCH with write:users not applied: %v", me["first_name"])
		}
		insufficient(e.Get(pathMe, write), "read:users") // write does not imply read
		e.Post("/api/v1/organizations", write, map[string]any{"name": "Acme", "slug": "acme"}).Expect(t, http.StatusCreated, "")
		orgs := patCreate(t, e, alice.Access, []string{"read:organizations"}).Token
		if list := e.Get("/api/v1/organizations/me", orgs).Expect(t, http.StatusOK, ""); !strings.Contains(string(list.Body), `"acme"`) {
			t.Fatalf("organizations/me: %s", list.Body)
		}

		// admin: superusers only, and superuser powers only with it.
		expectError(t, e.Post(patsAPI, alice.Access, map[string]any{"name": "x", "scopes": []string{"read:users", "admin"}}),
			http.StatusForbidden, "AUTH_004", "Only superusers can create personal access tokens with the admin scope", "")
		rootAdmin := patCreate(t, e, root.Access, []string{"admin", "read:users"}).Token
		rootPlain := patCreate(t, e, root.Access, []string{"read:users"}).Token
		e.Get("/api/v1/admin/stats", rootAdmin).Expect(t, http.StatusOK, "")
		e.Get("/api/v1/users", rootAdmin).Expect(t, http.StatusOK, "")
		e.Get("/api/v1/users/"+alice.UserID, rootAdmin).Expect(t, http.StatusOK, "")
		insufficient(e.Get("/api/v1/admin/stats", rootPlain), "admin")
		expectError(t, e.Get("/api/v1/users/"+alice.UserID, rootPlain), http.StatusForbidden, "AUTH_004", "Not enough permissions to view this user", "")
		// A demoted superuser's admin token is a regular user's; promoted
		// again, it works again.
		e.Exec(`UPDATE users SET is_superuser = FALSE WHERE id = $1`, root.UserID)
		expectError(t, e.Get("/api/v1/admin/stats", rootAdmin), http.StatusForbidden, "AUTH_004", "Superuser privileges required", "")
		expectError(t, e.Get("/api/v1/users", rootAdmin), http.StatusForbidden, "AUTH_004", "Not enough permissions", "")
		e.Get(pathMe, rootAdmin).Expect(t, http.StatusOK, "")
		e.Exec(`UPDATE users SET is_superuser = TRUE WHERE id = $1`, root.UserID)
		e.Get("/api/v1/admin/stats", rootAdmin).Expect(t, http.StatusOK, "")
	})
}

// Credentials, sign-in state and the tokens themselves are never managed
// with a personal access token, whatever its scopes.
func TestPATNotAcceptedForFirstPartyOperations(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		alice := e.User("alice@example.com")
		root := e.Superuser("root@example.com")
		all := patCreate(t, e, alice.Access, []string{"read:users", "write:users", "read:organizations", "write:organizations"})
		rootAll := patCreate(t, e, root.Access, []string{"read:users", "write:users", "read:organizations", "write:organizations", "admin"})
		reqs := []apitest.Request{
			{Method: "POST", Path: patsAPI, Body: map[string]any{"name": "child", "scopes": []string{"read:users"}}},
			{Method: "GET", Path: patsAPI},
			{Method: "DELETE", Path: patsAPI + "/" + all.ID},
			{Method: "GET", Path: adminPATsAPI},
			{Method: "DELETE", Path: adminPATsAPI + "/" + all.ID},
			{Method: "PATCH", Path: "/api/v1/users/me/password", Body: map[string]any{"current_password": apitest.Password, "new_password": "An0ther!Passw0rd"}},
			{Method: "POST", Path: "/api/v1/auth/logout-all"},
			{Method: "POST", Path: "/api/v1/auth/logout", Body: map[string]any{"refresh_token": alice.Refresh}},
		}
		for _, tok := range []string{all.Token, rootAll.Token} {
			expectUnchanged(t, e, func() {
				before := e.Count(`SELECT COUNT(*) FROM personal_access_tokens WHERE revoked_at IS NULL`)
				for _, req := range reqs {
					req.Token = tok
					expectError(t, e.Do(req), http.StatusForbidden, "AUTH_004", msgPATNotHere, "")
				}
				if after := e.Count(`SELECT COUNT(*) FROM personal_access_tokens WHERE revoked_at IS NULL`); after != before {
					t.Fatalf("live tokens %d -> %d", before, after)
				}
			})
		}
		e.Get(pathMe, all.Token).Expect(t, http.StatusOK, "")
		e.Get(pathMe, alice.Access).Expect(t, http.StatusOK, "")
		// Optional sign-in (social login) ignores the token: the answer is
		// the anonymous one.
		path := "/api/v1/oauth/authorize/google?redirect_uri=" + url.QueryEscape("https://app.example.com/cb")
		anon, withPAT := e.Get(path, ""), e.Get(path, all.Token)
		if anon.Status != withPAT.Status || string(anon.Body) != string(withPAT.Body) {
			t.Fatalf("social authorize with a token: %d %s, anonymous: %d %s", withPAT.Status, withPAT.Body, anon.Status, anon.Body)
		}
	})
}

// The ways a token stops working, each on the next request.
func TestPATStopsWorking(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		root := e.Superuser("root@example.com")
		newOwner := func(name string) (apitest.Tokens, string) {
			t.Helper()
			u := e.User(name + "@example.com")
			tok := patCreate(t, e, u.Access, []string{"read:users"}).Token
			e.Get(pathMe, tok).Expect(t, http.StatusOK, "")
			return u, tok
		}

		t.Run("expiry", func(t *testing.T) {
			_, tok := newOwner("expiring")
			e.Exec(`UPDATE personal_access_tokens SET expires_at = $2 WHERE token_hash = $1`, token.HashSecret(tok), time.Now().UTC().Add(-time.Second))
			patRefused(t, e, tok, msgPATExpired)
		})
		t.Run("inactive owner", func(t *testing.T) {
			u, tok := newOwner("idle")
			e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, u.UserID) // behind the API's back: the check itself refuses
			patRefused(t, e, tok, msgPATInactive)
			e.Exec(`UPDATE users SET is_active = TRUE WHERE id = $1`, u.UserID)
			e.Get(pathMe, tok).Expect(t, http.StatusOK, "")
		})
		t.Run("deactivation revokes, so reactivation does not bring tokens back", func(t *testing.T) {
			u, tok := newOwner("deactivated")
			e.Post(adminUser(u.UserID)+"/deactivate", root.Access, nil).Expect(t, http.StatusOK, "")
			patRefused(t, e, tok, msgPATRevoked)
			e.Post(adminUser(u.UserID)+"/activate", root.Access, nil).Expect(t, http.StatusOK, "")
			patRefused(t, e, tok, msgPATRevoked)
		})
		t.Run("deleted owner", func(t *testing.T) {
			u, tok := newOwner("deleted")
			e.Delete(adminUser(u.UserID), root.Access).Expect(t, http.StatusOK, "")
			patRefused(t, e, tok, msgPATInvalid)
		})
		t.Run("deleted behind the API's back", func(t *testing.T) {
			u, tok := newOwner("vanished")
			e.Exec(`UPDATE users SET deleted_at = created_at WHERE id = $1`, u.UserID)
			patRefused(t, e, tok, msgPATInvalid)
		})
		t.Run("password change", func(t *testing.T) {
			u, tok := newOwner("changer")
			other := patCreate(t, e, u.Access, []string{"write:users"}).Token
			e.Patch("/api/v1/users/me/password", u.Access, map[string]any{"current_password": apitest.Password, "new_password": "N3w!Passw0rd-x"}).
				Expect(t, http.StatusOK, "")
			patRefused(t, e, tok, msgPATRevoked)
			patRefused(t, e, other, msgPATRevoked)
			if len(patMine(t, e, u.Access)) != 0 {
				t.Fatal("revoked tokens are listed")
			}
		})
		t.Run("password set by a superuser", func(t *testing.T) {
			u, tok := newOwner("adminset")
			put(e, adminUser(u.UserID), root.Access, map[string]any{"password": "N3w!Passw0rd-y"}).Expect(t, http.StatusOK, "")
			patRefused(t, e, tok, msgPATRevoked)
		})
		t.Run("password reset", func(t *testing.T) {
			_, tok := newOwner("resetter")
			e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "resetter@example.com"}).Expect(t, http.StatusOK, "")
			var secret string
			for _, m := range e.Mail.Wait(t, 1, 10*time.Second) {
				if slices.Contains(m.To, "resetter@example.com") {
					secret = tokenFromEmail(t, m.Text)
				}
			}
			e.Post("/api/v1/auth/password-reset/confirm", "", map[string]any{"token": secret, "new_password": "N3w!Passw0rd-z"}).
				Expect(t, http.StatusOK, "")
			patRefused(t, e, tok, msgPATRevoked)
		})
		t.Run("logging out everywhere does not", func(t *testing.T) {
			u, tok := newOwner("leaver")
			e.Post("/api/v1/auth/logout-all", u.Access, nil).Expect(t, http.StatusOK, "")
			e.Get(pathMe, tok).Expect(t, http.StatusOK, "")
		})
	})
}

// PAT_REVOKE_ON_PASSWORD_CHANGE=false keeps tokens across password changes
// (deactivation still revokes them).
func TestPATKeptOnPasswordChangeWhenConfigured(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		root := e.Superuser("root@example.com")
		u := e.User("keeper@example.com")
		tok := patCreate(t, e, u.Access, []string{"read:users"}).Token
		e.Patch("/api/v1/users/me/password", u.Access, map[string]any{"current_password": apitest.Password, "new_password": "N3w!Passw0rd-x"}).
			Expect(t, http.StatusOK, "")
		e.Get(pathMe, tok).Expect(t, http.StatusOK, "")
		put(e, adminUser(u.UserID), root.Access, map[string]any{"password": "N3w!Passw0rd-y"}).Expect(t, http.StatusOK, "")
		e.Get(pathMe, tok).Expect(t, http.StatusOK, "")
		e.Post(adminUser(u.UserID)+"/deactivate", root.Access, nil).Expect(t, http.StatusOK, "")
		patRefused(t, e, tok, msgPATRevoked)
	}, apitest.WithEnv("PAT_REVOKE_ON_PASSWORD_CHANGE", "false"))
}

func TestPATAdminEndpoints(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		root := e.Superuser("root@example.com")
		alice := e.User("alice@example.com")
		bob := e.User("bob@example.com")
		gone := e.User("gone@example.com")
		a1 := patCreate(t, e, alice.Access, []string{"read:users"})
		b1 := patCreate(t, e, bob.Access, []string{"read:organizations"})
		a2 := patCreate(t, e, alice.Access, []string{"write:users"})
		patCreate(t, e, gone.Access, []string{"read:users"})
		e.Delete(patsAPI+"/"+a2.ID, alice.Access).Expect(t, http.StatusOK, "")
		e.Delete(adminUser(gone.UserID), root.Access).Expect(t, http.StatusOK, "")

		type page struct {
			Data       []patJSON     `json:"data"`
			Pagination orgPagination `json:"pagination"`
		}
		list := func(q string) page {
			t.Helper()
			var p page
			e.Get(adminPATsAPI+q, root.Access).Expect(t, http.StatusOK, "").Decode(t, &p)
			return p
		}
		ids := func(p page) []string {
			out := []string{}
			for _, d := range p.Data {
				out = append(out, d.ID)
			}
			return out
		}
		live := list("")
		if !slices.Equal(ids(live), []string{b1.ID, a1.ID}) || live.Pagination.Total != 2 {
			t.Fatalf("live tokens %v (total %d)", ids(live), live.Pagination.Total)
		}
		d := live.Data[0]
		if d.UserID != bob.UserID || d.UserEmail != "bob@example.com" || d.Prefix != b1.Prefix || d.IsActive == nil || !*d.IsActive ||
			d.RevokedAt != nil || d.Token != "" || !slices.Equal(d.Scopes, []string{"read:organizations"}) {
			t.Fatalf("row %+v", d)
		}
		if body := e.Get(adminPATsAPI, root.Access).Body; strings.Contains(string(body), b1.Token) || strings.Contains(string(body), token.HashSecret(b1.Token)) {
			t.Fatal("the admin list shows a token or its digest")
		}
		ended := list("?is_active=false")
		if !slices.Equal(ids(ended), []string{a2.ID}) || ended.Data[0].RevokedAt == nil || *ended.Data[0].IsActive {
			t.Fatalf("ended tokens %+v", ended.Data)
		}
		if got := ids(list("?user_id=" + alice.UserID)); !slices.Equal(got, []string{a1.ID}) {
			t.Fatalf("alice's live tokens %v", got)
		}
		if got := ids(list("?user_id=" + gone.UserID + "&is_active=false")); len(got) != 0 {
			t.Fatalf("a deleted user's tokens are listed: %v", got)
		}
		if p := list("?limit=1&page=2"); !slices.Equal(ids(p), []string{a1.ID}) || p.Pagination.Total != 2 || p.Pagination.TotalPages != 2 || p.Pagination.HasNext || !p.Pagination.HasPrev {
			t.Fatalf("page 2: %v %+v", ids(p), p.Pagination)
		}

		// Regular users are refused, and so are tokens (see also
		// TestPATNotAcceptedForFirstPartyOperations).
		expectUnchanged(t, e, func() {
			expectError(t, e.Get(adminPATsAPI, alice.Access), http.StatusForbidden, "AUTH_004", "Superuser privileges required", "")
			expectError(t, e.Delete(adminPATsAPI+"/"+b1.ID, alice.Access), http.StatusForbidden, "AUTH_004", "Superuser privileges required", "")
			expectError(t, e.Get(adminPATsAPI, ""), http.StatusUnauthorized, "AUTH_006", "Not authenticated", "")
		})
		e.Get("/api/v1/organizations/me", b1.Token).Expect(t, http.StatusOK, "")

		// Revoking anyone's token.
		if msg := messageOf(t, e.Delete(adminPATsAPI+"/"+b1.ID, root.Access).Expect(t, http.StatusOK, "")); msg != "Personal access token revoked: ci" {
			t.Fatalf("message %q", msg)
		}
		patRefused(t, e, b1.Token, msgPATRevoked)
		e.Delete(adminPATsAPI+"/"+b1.ID, root.Access).Expect(t, http.StatusOK, "")
		expectError(t, e.Delete(adminPATsAPI+"/"+unknownID, root.Access), http.StatusNotFound, "SYS_002", "Personal access token not found", "")
	})
}

// last_used_at is recorded off the request's path, at most once a minute
// (the minute itself is tested with a fake clock in internal/pat).
func TestPATLastUsed(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		alice := e.User("alice@example.com")
		p := patCreate(t, e, alice.Access, []string{"read:users"})
		unused := patCreate(t, e, alice.Access, []string{"read:users"})
		start := time.Now().UTC().Add(-time.Second)
		e.Get(pathMe, p.Token).Expect(t, http.StatusOK, "")
		var first string
		deadline := time.Now().Add(10 * time.Second)
		for first == "" {
			for _, tk := range patMine(t, e, alice.Access) {
				if tk.ID == p.ID && tk.LastUsedAt != nil {
					first = *tk.LastUsedAt
				}
				if tk.ID == unused.ID && tk.LastUsedAt != nil {
					t.Fatal("an unused token has a last use")
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("last_used_at was never recorded")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if at, err := time.Parse(time.RFC3339Nano, first); err != nil || at.Before(start) || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("last_used_at %s (%v)", first, err)
		}
		// Another use within the minute changes nothing.
		e.Get(pathMe, p.Token).Expect(t, http.StatusOK, "")
		time.Sleep(200 * time.Millisecond)
		for _, tk := range patMine(t, e, alice.Access) {
			if tk.ID == p.ID && *tk.LastUsedAt != first {
				t.Fatalf("last_used_at moved from %s to %s within a minute", first, *tk.LastUsedAt)
			}
		}
	})
}

// Creation is rate limited per client address, and refused input does not
// use up the budget.
func TestPATCreateRateLimit(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		alice := e.User("alice@example.com")
		apitest.FreshWindow(t, 20*time.Second, time.Minute)
		for range 3 {
			e.Post(patsAPI, alice.Access, map[string]any{"name": "<bad>", "scopes": []string{"read:users"}}).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
		}
		for i := range 10 {
			r := e.Post(patsAPI, alice.Access, map[string]any{"name": fmt.Sprintf("t%d", i), "scopes": []string{"read:users"}})
			r.Expect(t, http.StatusCreated, "")
			if r.Header.Get("X-RateLimit-Limit") != "10" {
				t.Fatalf("X-RateLimit-Limit %q", r.Header.Get("X-RateLimit-Limit"))
			}
		}
		r := e.Post(patsAPI, alice.Access, map[string]any{"name": "one more", "scopes": []string{"read:users"}})
		r.Expect(t, http.StatusTooManyRequests, "SYS_004")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	}, apitest.WithEnv("RATE_LIMIT_ENABLED", "true"))
}

// With the authorization server on, a refused token gets the API's
// resource-metadata challenge, and applications' tokens cannot manage
// personal access tokens either.
func TestPATWithAuthorizationServer(t *testing.T) {
	oaEach(t, func(t *testing.T, e *apitest.Env) {
		s := oaStart(t, e)
		p := patCreate(t, e, s.alice.Access, []string{"read:users"})
		e.Get(pathMe, p.Token).Expect(t, http.StatusOK, "")
		e.Delete(patsAPI+"/"+p.ID, s.alice.Access).Expect(t, http.StatusOK, "")
		r := e.Get(pathMe, p.Token)
		expectError(t, r, http.StatusUnauthorized, "AUTH_006", msgPATRevoked, "")
		want := `Bearer error="invalid_token", resource_metadata="` + e.Config.Provider.Issuer + `/.well-known/oauth-protected-resource/api/v1", scope="read:users"`
		if got := r.Header.Get("WWW-Authenticate"); got != want {
			t.Fatalf("WWW-Authenticate %q, want %q", got, want)
		}

		api := oaNewClient(t, e, s.admin.Access, oauth.Confidential, allAPIScopes)
		app := apiToken(t, e, api, s.alice.Access, "read:users write:users read:organizations write:organizations")
		expectUnchanged(t, e, func() {
			for _, req := range []apitest.Request{
				{Method: "POST", Path: patsAPI, Body: map[string]any{"name": "x", "scopes": []string{"read:users"}}},
				{Method: "GET", Path: patsAPI},
				{Method: "DELETE", Path: patsAPI + "/" + p.ID},
			} {
				req.Token = app.AccessToken
				r := e.Do(req).Expect(t, http.StatusForbidden, "AUTH_004")
				if _, msg, _ := r.ErrorCode(t); !strings.Contains(msg, "does not accept OAuth access tokens") {
					t.Fatalf("%s %s: %q", req.Method, req.Path, msg)
				}
			}
		})
		rootApp := apiToken(t, e, api, s.admin.Access, "admin read:users")
		for _, req := range []apitest.Request{{Method: "GET", Path: adminPATsAPI}, {Method: "DELETE", Path: adminPATsAPI + "/" + p.ID}} {
			req.Token = rootApp.AccessToken
			e.Do(req).Expect(t, http.StatusForbidden, "AUTH_004")
		}
	})
}

// patInsert stores a token row directly (test setup for states the API
// cannot reach quickly, such as a token that expired 40 days ago).
func patInsert(e *apitest.Env, userID string, created time.Time, expires, revoked *time.Time) string {
	e.T.Helper()
	id := user.NewID()
	e.Exec(`INSERT INTO personal_access_tokens (id, user_id, name, token_hash, prefix, scopes, expires_at, last_used_at, revoked_at, created_at)
		VALUES ($1, $2, 'seeded', $3, 'gatehouse_pat_seeded00', 'read:users', $4, NULL, $5, $6)`,
		id, userID, id+id[:28], expires, revoked, created)
	return id
}

// The daily job deletes tokens that expired, or were revoked, more than 30
// days ago, and nothing else.
func TestPATScheduledPurge(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		u := e.User("owner@example.com")
		now := time.Now().UTC()
		old, recent := now.Add(-40*24*time.Hour), now.Add(-20*24*time.Hour)
		later := now.Add(24 * time.Hour)
		gone := []string{
			patInsert(e, u.UserID, old.Add(-time.Hour), &old, nil),
			patInsert(e, u.UserID, old.Add(-time.Hour), nil, &old),
		}
		kept := []string{
			patInsert(e, u.UserID, old, &recent, nil),
			patInsert(e, u.UserID, old, nil, &recent),
			patInsert(e, u.UserID, old, nil, nil),
			patInsert(e, u.UserID, old, &later, nil),
		}
		if err := e.App.Scheduler.RunNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, id := range gone {
			if e.Count(`SELECT COUNT(*) FROM personal_access_tokens WHERE id = $1`, id) != 0 {
				t.Errorf("token %s, expired or revoked 40 days ago, survived", id)
			}
		}
		for _, id := range kept {
			if e.Count(`SELECT COUNT(*) FROM personal_access_tokens WHERE id = $1`, id) != 1 {
				t.Errorf("token %s was purged", id)
			}
		}
		if !strings.Contains(e.Logs.String(), "job=purge-personal-access-tokens affected=2") {
			t.Errorf("the job's result is not logged:\n%s", e.Logs.String())
		}
	})
}

// The OpenAPI document describes the rules a client needs: the expiry
// shape, the limits, who may call, and the answers.
func TestPATOpenAPI(t *testing.T) {
	t.Parallel()
	e := apitest.New(t, sqlstore.SQLite)
	var doc struct {
		Paths map[string]map[string]struct {
			Description string                `json:"description"`
			Security    []map[string][]string `json:"security"`
			Responses   map[string]any        `json:"responses"`
		} `json:"paths"`
	}
	e.Get("/api/v1/openapi.json", "").Expect(t, http.StatusOK, "").Decode(t, &doc)
	for _, want := range []struct {
		method, path string
		statuses     []string
		phrases      []string
	}{
		{"post", patsAPI, []string{"201", "401", "403", "409", "422", "429"},
			[]string{"expires_in_days", "no_expiry", "PAT_ALLOW_NO_EXPIRY", "100 live tokens", "admin for superusers only", "first-party"}},
		{"get", patsAPI, []string{"200", "401", "403"}, []string{"Never the token", "first-party"}},
		{"delete", patsAPI + "/{token_id}", []string{"200", "404", "422"}, []string{"Another user's token answers 404", "first-party"}},
		{"get", adminPATsAPI, []string{"200", "403", "422"}, []string{"Superusers only", "user_id", "first-party"}},
		{"delete", adminPATsAPI + "/{token_id}", []string{"200", "404", "422"}, []string{"Superusers only", "first-party"}},
	} {
		op, ok := doc.Paths[want.path][want.method]
		if !ok {
			t.Errorf("%s %s is not documented", want.method, want.path)
			continue
		}
		for _, s := range want.statuses {
			if _, ok := op.Responses[s]; !ok {
				t.Errorf("%s %s: response %s not documented", want.method, want.path, s)
			}
		}
		for _, p := range want.phrases {
			if !strings.Contains(op.Description, p) {
				t.Errorf("%s %s: the description does not mention %q", want.method, want.path, p)
			}
		}
		// Bearer only: no OAuth scope opens these operations.
		if len(op.Security) != 1 || op.Security[0]["bearer"] == nil {
			t.Errorf("%s %s: security %v, want the first-party bearer only", want.method, want.path, op.Security)
		}
	}
}
