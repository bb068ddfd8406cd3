package httpapi_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/token"
)

const (
	pathRegister = "/api/v1/auth/register"
	pathLogin    = "/api/v1/auth/login"
	pathRefresh  = "/api/v1/auth/refresh"
	pathLogout   = "/api/v1/auth/logout"
	pathMe       = "/api/v1/users/me"
)

func regBody(email, pw string) map[string]any {
	return map[string]any{"email": email, "password": pw, "first_name": "Ann", "last_name": "Lee"}
}

func TestRegister(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		t.Run("creates an active regular user, ignoring is_superuser and is_active (fix 1)", func(t *testing.T) {
			body := regBody("New.User@Example.com", apitest.Password)
			body["is_superuser"], body["is_active"], body["phone_number"] = true, false, "+1 (555) 123-4567"
			r := e.Post(pathRegister, "", body).Expect(t, http.StatusCreated, "")
			u := r.JSON(t)
			if u["email"] != "new.user@example.com" || u["is_superuser"] != false || u["is_active"] != true {
				t.Fatalf("user = %v", u)
			}
			if u["phone_number"] != "+15551234567" {
				t.Fatalf("phone not normalised: %v", u["phone_number"])
			}
			if strings.Contains(string(r.Body), "password") {
				t.Fatalf("response mentions the password: %s", r.Body)
			}
			for _, k := range []string{"email", "first_name", "last_name", "phone_number", "id", "is_active", "is_superuser", "created_at", "updated_at", "locale"} {
				if _, ok := u[k]; !ok {
					t.Errorf("UserResponse lacks %q", k)
				}
			}
		})
		t.Run("duplicate email, any case, gets the generic 400 (fix 33)", func(t *testing.T) {
			e.Register("dup@example.com")
			before := e.Snapshot()
			r := e.Post(pathRegister, "", regBody("DUP@example.COM", apitest.Password)).Expect(t, http.StatusBadRequest, "VAL_006")
			if _, msg, _ := r.ErrorCode(t); msg != "Registration failed. Please check your information and try again." {
				t.Fatalf("message %q", msg)
			}
			if after := e.Snapshot(); after != before {
				t.Fatalf("database changed: %s -> %s", before, after)
			}
		})
		t.Run("duplicate does the same hashing work as a new account (fix 34)", func(t *testing.T) {
			e.Register("timing@example.com")
			h0, _ := e.App.Hasher.Stats()
			e.Post(pathRegister, "", regBody("timing@example.com", apitest.Password)).Expect(t, http.StatusBadRequest, "VAL_006")
			h1, _ := e.App.Hasher.Stats()
			e.Post(pathRegister, "", regBody("timing-new@example.com", apitest.Password)).Expect(t, http.StatusCreated, "")
			h2, _ := e.App.Hasher.Stats()
			if h1-h0 != 1 || h2-h1 != 1 {
				t.Fatalf("hashes: duplicate %d, new %d; want 1 and 1", h1-h0, h2-h1)
			}
		})
		t.Run("validation", func(t *testing.T) {
			for _, tc := range []struct {
				name, field, msg string
				body             map[string]any
			}{
				{"short password", "password", "Value error, Password must be at least 12 characters long", regBody("a@example.com", "weak")},
				{"common password", "password", "Password is too common", regBody("a@example.com", "Password1234")},
				{"missing classes", "password", "at least one special character", regBody("a@example.com", "abcdefghijkL1")},
				{"bad email", "email", "value is not a valid email address", regBody("not-an-email", apitest.Password)},
				{"reserved domain", "email", "special-use or reserved", regBody("a@example.test", apitest.Password)},
				{"blank first name", "first_name", "First name cannot be empty", map[string]any{"email": "a@example.com", "password": apitest.Password, "first_name": "  "}},
				{"long last name", "last_name", "at most 100", map[string]any{"email": "a@example.com", "password": apitest.Password, "first_name": "A", "last_name": strings.Repeat("x", 101)}},
				{"bad phone", "phone_number", "Phone number must start with + or 0", map[string]any{"email": "a@example.com", "password": apitest.Password, "first_name": "A", "phone_number": "12"}},
				{"missing first name", "first_name", "Field required", map[string]any{"email": "a@example.com", "password": apitest.Password}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := e.Post(pathRegister, "", tc.body).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
					var env struct {
						Errors []struct{ Code, Message, Field string }
					}
					r.Decode(t, &env)
					found := false
					for _, it := range env.Errors {
						found = found || (it.Field == tc.field && strings.Contains(it.Message, tc.msg))
					}
					if !found {
						t.Fatalf("no error on %q containing %q: %s", tc.field, tc.msg, r.Body)
					}
				})
			}
			if n := e.Count(`SELECT COUNT(*) FROM users WHERE email = 'a@example.com'`); n != 0 {
				t.Fatalf("invalid registrations created %d users", n)
			}
		})
		t.Run("concurrent registrations of one email: exactly one succeeds", func(t *testing.T) {
			const n = 6
			statuses := make(chan int, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() { statuses <- e.Post(pathRegister, "", regBody("race@example.com", apitest.Password)).Status })
			}
			wg.Wait()
			close(statuses)
			created, refused := 0, 0
			for s := range statuses {
				switch s {
				case http.StatusCreated:
					created++
				case http.StatusBadRequest:
					refused++
				default:
					t.Errorf("unexpected status %d", s)
				}
			}
			if created != 1 || refused != n-1 {
				t.Fatalf("created %d, refused %d", created, refused)
			}
		})
	})
}

func TestLogin(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		uid := e.Register("login@example.com")
		t.Run("success returns the token shape with no-store", func(t *testing.T) {
			r := e.Post(pathLogin, "", map[string]any{"email": "LOGIN@example.com", "password": apitest.Password}).Expect(t, http.StatusOK, "")
			m := r.JSON(t)
			if m["token_type"] != "bearer" || m["expires_in"] != float64(900) || m["access_token"] == "" || m["refresh_token"] == "" {
				t.Fatalf("token response %v", m)
			}
			if m["user"].(map[string]any)["id"] != uid {
				t.Fatalf("user %v", m["user"])
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("Cache-Control %q", r.Header.Get("Cache-Control"))
			}
		})
		failures := []struct {
			name, email, password string
		}{
			{"wrong password", "login@example.com", "Wr0ng!Password"},
			{"unknown email", "nobody@example.com", apitest.Password},
		}
		for _, tc := range failures {
			t.Run(tc.name, func(t *testing.T) {
				_, v0 := e.App.Hasher.Stats()
				r := e.Post(pathLogin, "", map[string]any{"email": tc.email, "password": tc.password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
				if _, msg, _ := r.ErrorCode(t); msg != "Invalid email or password" {
					t.Fatalf("message %q (fix 16: no status prefix)", msg)
				}
				if r.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Fatalf("WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
				}
				if _, v1 := e.App.Hasher.Stats(); v1-v0 != 1 {
					t.Fatalf("%d password verifications, want 1 (equal timing)", v1-v0)
				}
			})
		}
		t.Run("inactive account with the right password", func(t *testing.T) {
			e.Register("inactive@example.com")
			e.Exec(`UPDATE users SET is_active = FALSE WHERE email = 'inactive@example.com'`)
			r := e.Post(pathLogin, "", map[string]any{"email": "inactive@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
			if _, msg, _ := r.ErrorCode(t); msg != "User account is inactive" {
				t.Fatalf("message %q", msg)
			}
		})
		t.Run("account without a password answers like a wrong password (fix 12)", func(t *testing.T) {
			e.Register("social@example.com")
			e.Exec(`UPDATE users SET password_hash = NULL WHERE email = 'social@example.com'`)
			_, v0 := e.App.Hasher.Stats()
			r := e.Post(pathLogin, "", map[string]any{"email": "social@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
			if _, msg, _ := r.ErrorCode(t); msg != "Invalid email or password" {
				t.Fatalf("message %q", msg)
			}
			if _, v1 := e.App.Hasher.Stats(); v1-v0 != 1 {
				t.Fatalf("%d verifications, want 1", v1-v0)
			}
		})
		t.Run("soft-deleted account cannot log in (fix 3)", func(t *testing.T) {
			e.Register("gone@example.com")
			e.Exec(`UPDATE users SET deleted_at = updated_at WHERE email = 'gone@example.com'`)
			e.Post(pathLogin, "", map[string]any{"email": "gone@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
		})
		t.Run("invalid email is a 422", func(t *testing.T) {
			e.Post(pathLogin, "", map[string]any{"email": "nope", "password": "x"}).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
		})
	})
}

func TestPasswordHashUpgrade(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("upgrade@example.com")
		// A bcrypt hash of another cost is replaced by one of the configured cost (4).
		e.Exec(`UPDATE users SET password_hash = $1 WHERE email = 'upgrade@example.com'`, bcryptHash(t, apitest.Password, 5))
		e.Login("upgrade@example.com", apitest.Password)
		if n := e.Count(`SELECT COUNT(*) FROM users WHERE email = 'upgrade@example.com' AND password_hash LIKE '$2a$04$%'`); n != 1 {
			t.Fatal("hash was not upgraded to the configured cost")
		}
		e.Login("upgrade@example.com", apitest.Password)
	})
}

func TestLoginForm(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("form@example.com")
		form := url.Values{"username": {"form@example.com"}, "password": {apitest.Password}, "grant_type": {"password"}}
		r := e.Do(apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth", Body: form.Encode(),
			Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusOK, "")
		if r.JSON(t)["token_type"] != "bearer" {
			t.Fatalf("body %s", r.Body)
		}
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("username", "form@example.com")
		_ = mw.WriteField("password", apitest.Password)
		mw.Close()
		e.Do(apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth", Body: buf.Bytes(),
			Headers: map[string]string{"Content-Type": mw.FormDataContentType()}}).Expect(t, http.StatusOK, "")

		for name, f := range map[string]url.Values{
			"missing password": {"username": {"form@example.com"}},
			"wrong grant_type": {"username": {"form@example.com"}, "password": {apitest.Password}, "grant_type": {"client_credentials"}},
		} {
			t.Run(name, func(t *testing.T) {
				e.Do(apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth", Body: f.Encode(),
					Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
			})
		}
		e.Do(apitest.Request{Method: "POST", Path: "/api/v1/auth/login/oauth", Body: url.Values{"username": {"form@example.com"}, "password": {"Wr0ng!Password"}}.Encode(),
			Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}).Expect(t, http.StatusUnauthorized, "AUTH_001")
	})
}

func TestLoginThrottlePerAccount(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("victim@example.com")
		e.Register("bystander@example.com")
		apitest.FreshWindow(t, burstBudget, e.Config.Auth.LoginFailureWindow)
		for range 3 {
			e.Post(pathLogin, "", map[string]any{"email": "victim@example.com", "password": "Wr0ng!Password"}).Expect(t, http.StatusUnauthorized, "AUTH_001")
		}
		// Even the right password is refused while the account is throttled (fix 42)...
		r := e.Post(pathLogin, "", map[string]any{"email": "victim@example.com", "password": apitest.Password}).Expect(t, http.StatusTooManyRequests, "SYS_004")
		if r.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
		// ...but other accounts are not affected.
		e.Login("bystander@example.com", apitest.Password)
	}, apitest.WithEnv("LOGIN_THROTTLE_ATTEMPTS", "3"))
}

func TestRefresh(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		tok := e.User("refresh@example.com")
		t.Run("rotation: the new pair works, the old refresh token does not", func(t *testing.T) {
			r := e.Post(pathRefresh, "", map[string]any{"refresh_token": tok.Refresh}).Expect(t, http.StatusOK, "")
			m := r.JSON(t)
			if m["refresh_token"] == tok.Refresh || m["user"].(map[string]any)["email"] != "refresh@example.com" {
				t.Fatalf("refresh response %v", m)
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("no Cache-Control: no-store on refresh")
			}
			e.Get(pathMe, m["access_token"].(string)).Expect(t, http.StatusOK, "")
			old := e.Post(pathRefresh, "", map[string]any{"refresh_token": tok.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			if _, msg, _ := old.ErrorCode(t); msg != "Session has been revoked. Please log in again." {
				t.Fatalf("message %q", msg)
			}
			e.Post(pathRefresh, "", map[string]any{"refresh_token": m["refresh_token"]}).Expect(t, http.StatusOK, "")
		})
		t.Run("concurrent refreshes of one token: exactly one succeeds", func(t *testing.T) {
			fresh := e.Login("refresh@example.com", apitest.Password)
			const n = 8
			var wg sync.WaitGroup
			statuses := make(chan int, n)
			for range n {
				wg.Go(func() { statuses <- e.Post(pathRefresh, "", map[string]any{"refresh_token": fresh.Refresh}).Status })
			}
			wg.Wait()
			close(statuses)
			ok := 0
			for s := range statuses {
				if s == http.StatusOK {
					ok++
				} else if s != http.StatusUnauthorized {
					t.Errorf("status %d", s)
				}
			}
			if ok != 1 {
				t.Fatalf("%d refreshes succeeded, want 1", ok)
			}
		})
		t.Run("expired, forged and wrong-type tokens", func(t *testing.T) {
			signer := token.NewSigner(apitest.Secret, time.Minute, time.Hour)
			signer.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
			expired, _, _, _ := signer.IssueRefresh(tok.UserID, uuid.NewString())
			for name, tc := range map[string]struct{ raw, msg string }{
				"expired":       {expired, "Refresh token has expired. Please log in again."},
				"garbage":       {"not-a-token", "Invalid refresh token"},
				"access token":  {tok.Access, "Invalid refresh token"},
				"other secret":  {forge(t, "another-secret-0123456789-0123456789", jwt.MapClaims{"sub": tok.UserID, "sid": uuid.NewString(), "type": "refresh", "jti": "x", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}), "Invalid refresh token"},
				"missing claim": {forge(t, apitest.Secret, jwt.MapClaims{"sub": tok.UserID, "type": "refresh", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}), "Invalid refresh token"},
			} {
				t.Run(name, func(t *testing.T) {
					r := e.Post(pathRefresh, "", map[string]any{"refresh_token": tc.raw}).Expect(t, http.StatusUnauthorized, "AUTH_006")
					if _, msg, _ := r.ErrorCode(t); msg != tc.msg {
						t.Fatalf("message %q, want %q", msg, tc.msg)
					}
				})
			}
		})
		t.Run("inactive or deleted users cannot refresh (fix 3)", func(t *testing.T) {
			for _, state := range []string{"is_active = FALSE", "deleted_at = updated_at"} {
				email := fmt.Sprintf("r%d@example.com", len(state))
				tk := e.User(email)
				e.Exec(`UPDATE users SET `+state+` WHERE email = $1`, email)
				e.Post(pathRefresh, "", map[string]any{"refresh_token": tk.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			}
		})
	})
}

// forge signs arbitrary claims with HS256.
func forge(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBearerTokenRules(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		tok := e.User("bearer@example.com")
		sid := sessionIDOf(t, tok.Access)
		now := time.Now()
		valid := func() jwt.MapClaims {
			return jwt.MapClaims{"sub": tok.UserID, "sid": sid, "type": "access", "jti": uuid.NewString(),
				"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
		}
		with := func(k string, v any) jwt.MapClaims {
			c := valid()
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
			return c
		}
		rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rs256, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, valid()).SignedString(rsaKey)
		hs384, _ := jwt.NewWithClaims(jwt.SigningMethodHS384, valid()).SignedString([]byte(apitest.Secret))
		none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, valid()).SignedString(jwt.UnsafeAllowNoneSignatureType)
		noneCaps := strings.Replace(none, base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)),
			base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"None","typ":"JWT"}`)), 1)

		e.Get(pathMe, forge(t, apitest.Secret, valid())).Expect(t, http.StatusOK, "")
		cases := map[string]struct {
			header string
			msg    string
		}{
			"no header":                       {"", "Not authenticated"},
			"basic scheme":                    {"Basic dXNlcjpwYXNz", "Not authenticated"},
			"malformed":                       {"Bearer abc.def", "Could not validate credentials"},
			"alg none":                        {"Bearer " + none, "Could not validate credentials"},
			"alg None":                        {"Bearer " + noneCaps, "Could not validate credentials"},
			"HS384":                           {"Bearer " + hs384, "Could not validate credentials"},
			"RS256 (algorithm confusion)":     {"Bearer " + rs256, "Could not validate credentials"},
			"refresh token as access (fix 2)": {"Bearer " + tok.Refresh, "Could not validate credentials"},
			"expired":                         {"Bearer " + forge(t, apitest.Secret, with("exp", now.Add(-time.Minute).Unix())), "Token expired"},
			"no sid":                          {"Bearer " + forge(t, apitest.Secret, with("sid", nil)), "Could not validate credentials"},
			"non-UUID sub (fix 17)":           {"Bearer " + forge(t, apitest.Secret, with("sub", "admin")), "Could not validate credentials"},
			"unknown user (fix 17)":           {"Bearer " + forge(t, apitest.Secret, with("sub", uuid.NewString())), "Could not validate credentials"},
			"unknown session":                 {"Bearer " + forge(t, apitest.Secret, with("sid", uuid.NewString())), "Could not validate credentials"},
			"audience claim":                  {"Bearer " + forge(t, apitest.Secret, with("aud", "api")), "Could not validate credentials"},
			"iat in the future":               {"Bearer " + forge(t, apitest.Secret, with("iat", now.Add(time.Hour).Unix())), "Could not validate credentials"},
			"no exp":                          {"Bearer " + forge(t, apitest.Secret, with("exp", nil)), "Could not validate credentials"},
			"other secret":                    {"Bearer " + forge(t, "another-secret-0123456789-0123456789", valid()), "Could not validate credentials"},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				r := e.Do(apitest.Request{Method: "GET", Path: pathMe, Headers: map[string]string{"Authorization": tc.header}}).
					Expect(t, http.StatusUnauthorized, "AUTH_006")
				if _, msg, _ := r.ErrorCode(t); msg != tc.msg {
					t.Fatalf("message %q, want %q", msg, tc.msg)
				}
				if r.Header.Get("WWW-Authenticate") != "Bearer" {
					t.Fatal("401 without WWW-Authenticate: Bearer")
				}
			})
		}
		t.Run("bearer scheme is case-insensitive", func(t *testing.T) {
			e.Do(apitest.Request{Method: "GET", Path: pathMe, Headers: map[string]string{"Authorization": "bEaReR " + tok.Access}}).Expect(t, http.StatusOK, "")
		})
		t.Run("inactive user gets 403, deleted user 401 (fix 3)", func(t *testing.T) {
			in := e.User("inactive-bearer@example.com")
			e.Exec(`UPDATE users SET is_active = FALSE WHERE id = $1`, in.UserID)
			r := e.Get(pathMe, in.Access).Expect(t, http.StatusForbidden, "AUTH_004")
			if _, msg, _ := r.ErrorCode(t); msg != "Inactive user" {
				t.Fatalf("message %q", msg)
			}
			del := e.User("deleted-bearer@example.com")
			e.Exec(`UPDATE users SET deleted_at = updated_at WHERE id = $1`, del.UserID)
			e.Get(pathMe, del.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
		})
	})
}

// sessionIDOf reads the sid claim of a token without verifying it.
func sessionIDOf(t *testing.T, raw string) string {
	t.Helper()
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, c); err != nil {
		t.Fatal(err)
	}
	sid, _ := c["sid"].(string)
	if sid == "" {
		t.Fatal("token has no sid")
	}
	return sid
}

func TestLogout(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		a := e.User("logout-a@example.com")
		b := e.User("logout-b@example.com")
		t.Run("another user's refresh token is refused", func(t *testing.T) {
			r := e.Post(pathLogout, a.Access, map[string]any{"refresh_token": b.Refresh}).Expect(t, http.StatusForbidden, "AUTH_004")
			if _, msg, _ := r.ErrorCode(t); msg != "You can only logout your own sessions" {
				t.Fatalf("message %q", msg)
			}
			e.Get(pathMe, b.Access).Expect(t, http.StatusOK, "")
		})
		t.Run("invalid tokens are ignored", func(t *testing.T) {
			r := e.Post(pathLogout, a.Access, map[string]any{"refresh_token": "garbage-garbage"}).Expect(t, http.StatusOK, "")
			if r.JSON(t)["message"] != "Logged out successfully" {
				t.Fatalf("body %s", r.Body)
			}
		})
		t.Run("short token is a 422", func(t *testing.T) {
			e.Post(pathLogout, a.Access, map[string]any{"refresh_token": "short"}).Expect(t, http.StatusUnprocessableEntity, "VAL_001")
		})
		t.Run("needs authentication", func(t *testing.T) {
			e.Post(pathLogout, "", map[string]any{"refresh_token": a.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
		})
		t.Run("revokes the session: refresh and access tokens stop at once", func(t *testing.T) {
			e.Post(pathLogout, a.Access, map[string]any{"refresh_token": a.Refresh}).Expect(t, http.StatusOK, "")
			e.Post(pathRefresh, "", map[string]any{"refresh_token": a.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Get(pathMe, a.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
		})
	})
}

func TestLogoutAll(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		first := e.User("all@example.com")
		second := e.Login("all@example.com", apitest.Password)
		third := e.Login("all@example.com", apitest.Password)
		other := e.User("other-all@example.com")
		r := e.Post("/api/v1/auth/logout-all", second.Access, nil).Expect(t, http.StatusOK, "")
		if msg := r.JSON(t)["message"]; msg != "Successfully logged out from all devices (3 sessions terminated)" {
			t.Fatalf("message %q", msg)
		}
		for _, tk := range []apitest.Tokens{first, second, third} {
			e.Get(pathMe, tk.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
			e.Post(pathRefresh, "", map[string]any{"refresh_token": tk.Refresh}).Expect(t, http.StatusUnauthorized, "AUTH_006")
		}
		e.Get(pathMe, other.Access).Expect(t, http.StatusOK, "")
	})
}

func TestPasswordResetByEmail(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		e.Register("reset@example.com")
		e.Exec(`UPDATE users SET first_name = '<b>Eve</b>' WHERE email = 'reset@example.com'`)
		old := e.Login("reset@example.com", apitest.Password)
		const okMsg = "If your email is registered, you will receive a password reset link shortly"

		for _, email := range []string{"reset@example.com", "unknown@example.com"} {
			r := e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": email}).Expect(t, http.StatusOK, "")
			if r.JSON(t)["message"] != okMsg {
				t.Fatalf("message for %s: %s", email, r.Body)
			}
		}
		msgs := e.Mail.Wait(t, 1, 10*time.Second)
		m := msgs[0]
		if len(m.To) != 1 || m.To[0] != "reset@example.com" || m.Subject != "Password Reset Request" {
			t.Fatalf("email to %v subject %q", m.To, m.Subject)
		}
		if !strings.Contains(m.Text, "Hello <b>Eve</b>,") || !strings.Contains(m.Text, "This link will expire in 1 hour.") {
			t.Fatalf("text part:\n%s", m.Text)
		}
		if strings.Contains(m.HTML, "<b>Eve</b>") || !strings.Contains(m.HTML, "&lt;b&gt;Eve&lt;/b&gt;") {
			t.Fatalf("HTML part does not escape the name (fix 32):\n%s", m.HTML)
		}
		const prefix = "https://app.example.com/password-reset/confirm?token="
		i := strings.Index(m.Text, prefix)
		if i < 0 {
			t.Fatalf("no reset link with the fixed path (fix 7):\n%s", m.Text)
		}
		link := strings.Fields(m.Text[i:])[0]
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		secret := u.Query().Get("token")
		if secret == "" || !strings.Contains(m.HTML, link) {
			t.Fatalf("link %q missing token or not in HTML", link)
		}
		if n := e.Count(`SELECT COUNT(*) FROM password_reset_tokens WHERE token_hash = $1`, secret); n != 0 {
			t.Fatal("the raw reset token is stored (fix 6)")
		}
		if n := e.Count(`SELECT COUNT(*) FROM password_reset_tokens WHERE token_hash = $1`, token.HashSecret(secret)); n != 1 {
			t.Fatal("the token's hash is not stored")
		}

		confirm := func(tok, pw string) apitest.Response {
			return e.Post("/api/v1/auth/password-reset/confirm", "", map[string]any{"token": tok, "new_password": pw})
		}
		confirm(secret, "short").Expect(t, http.StatusUnprocessableEntity, "VAL_001")
		confirm(secret+"x", "N3w!Password-1").Expect(t, http.StatusBadRequest, "VAL_006")
		r := confirm(secret, "N3w!Password-1").Expect(t, http.StatusOK, "")
		if !strings.Contains(r.JSON(t)["message"].(string), "All devices have been logged out") {
			t.Fatalf("body %s", r.Body)
		}
		// All sessions revoked (fix 5); old password gone; new one works.
		e.Get(pathMe, old.Access).Expect(t, http.StatusUnauthorized, "AUTH_006")
		e.Post(pathLogin, "", map[string]any{"email": "reset@example.com", "password": apitest.Password}).Expect(t, http.StatusUnauthorized, "AUTH_001")
		e.Login("reset@example.com", "N3w!Password-1")
		// Single use (fix 6).
		r = confirm(secret, "An0ther!Password").Expect(t, http.StatusBadRequest, "VAL_006")
		if _, msg, _ := r.ErrorCode(t); msg != "Invalid or expired password reset token" {
			t.Fatalf("message %q", msg)
		}
		if len(e.Mail.Messages()) != 1 {
			t.Fatalf("an email was sent for an unknown address: %d emails", len(e.Mail.Messages()))
		}

		t.Run("expired token", func(t *testing.T) {
			e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "reset@example.com"}).Expect(t, http.StatusOK, "")
			m := e.Mail.Wait(t, 2, 10*time.Second)[1]
			tok := tokenFromEmail(t, m.Text)
			e.Exec(`UPDATE password_reset_tokens SET expires_at = created_at WHERE token_hash = $1`, token.HashSecret(tok))
			confirm(tok, "Exp1red!Password").Expect(t, http.StatusBadRequest, "VAL_006")
		})
		t.Run("a later password change invalidates pending tokens (fix 6)", func(t *testing.T) {
			e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "reset@example.com"}).Expect(t, http.StatusOK, "")
			tok := tokenFromEmail(t, e.Mail.Wait(t, 3, 10*time.Second)[2].Text)
			s := e.Login("reset@example.com", "N3w!Password-1")
			e.Patch("/api/v1/users/me/password", s.Access, map[string]any{"current_password": "N3w!Password-1", "new_password": "Chang3d!Password"}).Expect(t, http.StatusOK, "")
			confirm(tok, "Fr0m!TheToken-1").Expect(t, http.StatusBadRequest, "VAL_006")
		})
		t.Run("inactive accounts get no email", func(t *testing.T) {
			e.Register("reset-inactive@example.com")
			e.Exec(`UPDATE users SET is_active = FALSE WHERE email = 'reset-inactive@example.com'`)
			before := len(e.Mail.Messages())
			e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "reset-inactive@example.com"}).Expect(t, http.StatusOK, "")
			// The request has been handled when the response arrives; give the queue a delivery
			// it must have made by sending a marker email after it.
			e.Post("/api/v1/auth/password-reset/request", "", map[string]any{"email": "reset@example.com"}).Expect(t, http.StatusOK, "")
			// One worker delivers in order: once the marker has arrived, an email
			// queued before it would have arrived too.
			for _, m := range e.Mail.Wait(t, before+1, 10*time.Second)[before:] {
				if m.To[0] == "reset-inactive@example.com" {
					t.Fatal("reset email sent to an inactive account")
				}
			}
		})
	})
}

func tokenFromEmail(t *testing.T, text string) string {
	t.Helper()
	i := strings.Index(text, "token=")
	if i < 0 {
		t.Fatalf("no token in email:\n%s", text)
	}
	v, err := url.QueryUnescape(strings.Fields(text[i+len("token="):])[0])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func bcryptHash(t *testing.T, pw string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}
