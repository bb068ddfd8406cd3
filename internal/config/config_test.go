package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// env returns a getenv backed by m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// mustLoad loads m and fails the test on an error.
func mustLoad(t *testing.T, m map[string]string) (Config, []string) {
	t.Helper()
	c, warnings, err := Load(env(m))
	if err != nil {
		t.Fatalf("Load(%v) error: %v", m, err)
	}
	return c, warnings
}

// loadErr loads m and returns the error text, failing the test when Load
// succeeds or returns a non-zero Config with its error.
func loadErr(t *testing.T, m map[string]string) string {
	t.Helper()
	c, _, err := Load(env(m))
	if err == nil {
		t.Fatalf("Load(%v) succeeded, want an error", m)
	}
	if c.HTTP.Addr != "" || c.DB.URL != "" {
		t.Errorf("Load returned a partially filled Config with its error: %+v", c)
	}
	return err.Error()
}

// wantProblem fails unless msg reports a problem with variable name that
// contains every fragment.
func wantProblem(t *testing.T, msg, name string, fragments ...string) {
	t.Helper()
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, name+": ") {
			continue
		}
		ok := true
		for _, f := range fragments {
			if !strings.Contains(line, f) {
				ok = false
			}
		}
		if ok {
			return
		}
	}
	t.Errorf("error does not report %s with %q:\n%s", name, fragments, msg)
}

const goodSecret = "0123456789abcdef0123456789abcdef0123456789" // 42 chars

// prodEnv is a minimal valid production environment.
func prodEnv() map[string]string {
	return map[string]string{
		"ENVIRONMENT":              "production",
		"SECRET_KEY":               goodSecret,
		"FIRST_SUPERUSER_EMAIL":    "root@example.com",
		"FIRST_SUPERUSER_PASSWORD": "CorrectHorse42Battery",
	}
}

func TestLoadDefaults(t *testing.T) {
	c, warnings := mustLoad(t, map[string]string{})
	if len(warnings) != 0 {
		t.Errorf("warnings = %q, want none", warnings)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"ProjectName", c.ProjectName, "Gatehouse"},
		{"Version", c.Version, "1.0.0"},
		{"Environment", c.Environment, "development"},
		{"Production()", c.Production(), false},
		{"DemoMode", c.DemoMode, false},
		{"IsTest", c.IsTest, false},
		{"HTTP.Addr", c.HTTP.Addr, ":8000"},
		{"HTTP.CSPMode", c.HTTP.CSPMode, "relaxed"},
		{"HTTP.TrustedProxies", len(c.HTTP.TrustedProxies), 0},
		{"HTTP.MaxBodyBytes", c.HTTP.MaxBodyBytes, int64(1 << 20)},
		{"HTTP.Production", c.HTTP.Production, false},
		{"DB.URL", c.DB.URL, "sqlite://./data/gatehouse.db"},
		{"DB.AutoMigrate", c.DB.AutoMigrate, true},
		{"DB.PoolSize", c.DB.PoolSize, 20},
		{"DB.MaxOverflow", c.DB.MaxOverflow, 50},
		{"DB.PoolTimeout", c.DB.PoolTimeout, 30 * time.Second},
		{"DB.PoolRecycle", c.DB.PoolRecycle, 3600 * time.Second},
		{"DB.ApplicationName", c.DB.ApplicationName, "Gatehouse"},
		{"Auth.SecretKey", c.Auth.SecretKey, ""},
		{"Auth.AccessTokenTTL", c.Auth.AccessTokenTTL, 15 * time.Minute},
		{"Auth.RefreshTokenTTL", c.Auth.RefreshTokenTTL, 7 * 24 * time.Hour},
		{"Auth.ResetTokenTTL", c.Auth.ResetTokenTTL, time.Hour},
		{"Password.Algorithm", c.Password.Algorithm, "bcrypt"},
		{"Password.BcryptCost", c.Password.BcryptCost, 12},
		{"Password.MaxWait", c.Password.MaxWait, 5 * time.Second},
		{"Mail.Host", c.Mail.Host, ""},
		{"Mail.Port", c.Mail.Port, 587},
		{"Mail.TLS", c.Mail.TLS, "starttls"},
		{"RateLimit.Enabled", c.RateLimit.Enabled, true},
		{"RateLimit.Multiplier", c.RateLimit.Multiplier, 1},
		{"Log.Format", c.Log.Format, "text"},
		{"Log.Level", c.Log.Level, "info"},
		{"FrontendURL", c.FrontendURL, "http://localhost:3000"},
		{"PasswordResetPath", c.PasswordResetPath, "/password-reset/confirm"},
		{"SchedulerEnabled", c.SchedulerEnabled, true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if !slices.Equal(c.HTTP.CORSOrigins, []string{"http://localhost:3000"}) {
		t.Errorf("HTTP.CORSOrigins = %q, want [http://localhost:3000]", c.HTTP.CORSOrigins)
	}
	if c.Password.Concurrency < 1 {
		t.Errorf("Password.Concurrency = %d, want >= 1", c.Password.Concurrency)
	}
}

func TestLoadOverrides(t *testing.T) {
	c, _ := mustLoad(t, map[string]string{
		"PROJECT_NAME":                "Acme",
		"HTTP_ADDR":                   "127.0.0.1:9000",
		"DATABASE_URL":                "postgresql://u:p@db:5432/app",
		"ACCESS_TOKEN_EXPIRE_MINUTES": "30",
		"REFRESH_TOKEN_EXPIRE_DAYS":   "14",
		"BCRYPT_COST":                 "10",
		"PASSWORD_HASH_ALGORITHM":     "ARGON2ID",
		"CSP_MODE":                    "STRICT",
		"FRONTEND_URL":                "https://app.example.com/",
		"LOG_FORMAT":                  "JSON",
		"SMTP_TLS":                    "TLS",
		"DEMO_MODE":                   "yes",
	})
	checks := []struct {
		name      string
		got, want any
	}{
		{"ProjectName", c.ProjectName, "Acme"},
		{"DB.ApplicationName", c.DB.ApplicationName, "Acme"},
		{"HTTP.Addr", c.HTTP.Addr, "127.0.0.1:9000"},
		{"DB.URL", c.DB.URL, "postgresql://u:p@db:5432/app"},
		{"Auth.AccessTokenTTL", c.Auth.AccessTokenTTL, 30 * time.Minute},
		{"Auth.RefreshTokenTTL", c.Auth.RefreshTokenTTL, 14 * 24 * time.Hour},
		{"Password.BcryptCost", c.Password.BcryptCost, 10},
		{"Password.Algorithm", c.Password.Algorithm, "argon2id"},
		{"HTTP.CSPMode (lower-cased)", c.HTTP.CSPMode, "strict"},
		{"FrontendURL (trailing slash trimmed)", c.FrontendURL, "https://app.example.com"},
		{"Log.Format", c.Log.Format, "json"},
		{"Mail.TLS", c.Mail.TLS, "tls"},
		{"DemoMode", c.DemoMode, true},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoadSecretKey(t *testing.T) {
	t.Run("31 characters refused", func(t *testing.T) {
		msg := loadErr(t, map[string]string{"SECRET_KEY": strings.Repeat("k", 31)})
		wantProblem(t, msg, "SECRET_KEY", "at least 32 characters")
	})
	t.Run("short key refused in production too", func(t *testing.T) {
		e := prodEnv()
		e["SECRET_KEY"] = "short"
		wantProblem(t, loadErr(t, e), "SECRET_KEY", "at least 32 characters")
	})
	t.Run("exactly 32 characters accepted", func(t *testing.T) {
		key := strings.Repeat("k", 32)
		c, _ := mustLoad(t, map[string]string{"SECRET_KEY": key})
		if c.Auth.SecretKey != key {
			t.Errorf("Auth.SecretKey = %q, want %q", c.Auth.SecretKey, key)
		}
	})
	t.Run("placeholder refused in production", func(t *testing.T) {
		e := prodEnv()
		e["SECRET_KEY"] = "your_secret_key_here_change_this_to_something_random"
		wantProblem(t, loadErr(t, e), "SECRET_KEY", "must be set to a secure random value in production")
	})
	t.Run("placeholder warned outside production", func(t *testing.T) {
		key := "your_secret_key_here_change_this_to_something_random"
		c, warnings := mustLoad(t, map[string]string{"SECRET_KEY": key})
		if c.Auth.SecretKey != key {
			t.Errorf("Auth.SecretKey = %q, want %q", c.Auth.SecretKey, key)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "SECRET_KEY") {
			t.Errorf("warnings = %q, want one naming SECRET_KEY", warnings)
		}
	})
	t.Run("documented default refused in production", func(t *testing.T) {
		e := prodEnv()
		e["SECRET_KEY"] = "dev_only_insecure_key_change_in_production_32chars_min"
		wantProblem(t, loadErr(t, e), "SECRET_KEY", "secure random value")
	})
	t.Run("documented default accepted outside production", func(t *testing.T) {
		mustLoad(t, map[string]string{"SECRET_KEY": "dev_only_insecure_key_change_in_production_32chars_min"})
	})
	t.Run("empty key allowed outside production", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{})
		if c.Auth.SecretKey != "" {
			t.Errorf("Auth.SecretKey = %q, want empty", c.Auth.SecretKey)
		}
	})
}

func TestLoadProduction(t *testing.T) {
	t.Run("valid production", func(t *testing.T) {
		c, warnings := mustLoad(t, prodEnv())
		if !c.Production() || !c.HTTP.Production || !c.Mail.Production {
			t.Errorf("Production() = %v, HTTP.Production = %v, Mail.Production = %v; want all true",
				c.Production(), c.HTTP.Production, c.Mail.Production)
		}
		if len(warnings) != 0 {
			t.Errorf("warnings = %q, want none", warnings)
		}
	})
	t.Run("requires secrets and superuser, refuses demo mode", func(t *testing.T) {
		msg := loadErr(t, map[string]string{"ENVIRONMENT": "production", "DEMO_MODE": "true"})
		wantProblem(t, msg, "SECRET_KEY", "required in production")
		wantProblem(t, msg, "FIRST_SUPERUSER_EMAIL", "required in production")
		wantProblem(t, msg, "FIRST_SUPERUSER_PASSWORD", "required in production")
		wantProblem(t, msg, "DEMO_MODE", "production")
	})
	for _, missing := range []string{"SECRET_KEY", "FIRST_SUPERUSER_EMAIL", "FIRST_SUPERUSER_PASSWORD"} {
		t.Run("missing "+missing, func(t *testing.T) {
			e := prodEnv()
			delete(e, missing)
			wantProblem(t, loadErr(t, e), missing, "required in production")
		})
	}
	t.Run("demo mode refused", func(t *testing.T) {
		e := prodEnv()
		e["DEMO_MODE"] = "True"
		wantProblem(t, loadErr(t, e), "DEMO_MODE", "must not be enabled in production")
	})
	t.Run("only the literal production is production", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{"ENVIRONMENT": "Production", "DEMO_MODE": "true"})
		if c.Production() {
			t.Errorf("ENVIRONMENT=Production: Production() = true, want false")
		}
	})
}

func TestLoadFirstSuperuserPassword(t *testing.T) {
	tests := []struct {
		name    string
		pw      string
		demo    bool
		wantErr string // fragment; "" means accepted
	}{
		{"strong", "CorrectHorse42Battery", false, ""},
		{"12 characters exactly", "Abcdefghij12", false, ""},
		{"11 characters", "Abcdefghi12", false, "must be at least 12 characters"},
		{"length counts characters, not bytes", "Ééééééééé1a", false, "must be at least 12 characters"},
		{"weak list", "123456789012", false, "too weak"},
		{"no uppercase", "correcthorse42", false, "must contain lowercase, uppercase and digit"},
		{"no lowercase", "CORRECTHORSE42", false, "must contain lowercase, uppercase and digit"},
		{"no digit", "CorrectHorseBattery", false, "must contain lowercase, uppercase and digit"},
		{"Demo123! in demo mode", "Demo123!", true, ""},
		{"Admin123! in demo mode", "Admin123!", true, ""},
		{"Demo123! outside demo mode", "Demo123!", false, "must be at least 12 characters"},
		{"Admin123! outside demo mode", "Admin123!", false, "must be at least 12 characters"},
		{"other short password in demo mode", "Demo1234!", true, "must be at least 12 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{"FIRST_SUPERUSER_EMAIL": "root@example.com", "FIRST_SUPERUSER_PASSWORD": tc.pw}
			if tc.demo {
				e["DEMO_MODE"] = "true"
			}
			if tc.wantErr == "" {
				c, _ := mustLoad(t, e)
				if c.FirstSuperuserPassword != tc.pw || c.FirstSuperuserEmail != "root@example.com" {
					t.Errorf("FirstSuperuser = %q / %q, want root@example.com / %q", c.FirstSuperuserEmail, c.FirstSuperuserPassword, tc.pw)
				}
				return
			}
			wantProblem(t, loadErr(t, e), "FIRST_SUPERUSER_PASSWORD", tc.wantErr)
		})
	}
	t.Run("email without password", func(t *testing.T) {
		msg := loadErr(t, map[string]string{"FIRST_SUPERUSER_EMAIL": "root@example.com"})
		wantProblem(t, msg, "FIRST_SUPERUSER_EMAIL", "FIRST_SUPERUSER_PASSWORD", "together")
	})
	t.Run("password without email", func(t *testing.T) {
		msg := loadErr(t, map[string]string{"FIRST_SUPERUSER_PASSWORD": "CorrectHorse42Battery"})
		wantProblem(t, msg, "FIRST_SUPERUSER_EMAIL", "together")
	})
}

func TestLoadInvalidValuesNameTheirVariable(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"ACCESS_TOKEN_EXPIRE_MINUTES", "abc"},
		{"ACCESS_TOKEN_EXPIRE_MINUTES", "0"},
		{"REFRESH_TOKEN_EXPIRE_DAYS", "-1"},
		{"DATABASE_URL", "mysql://x"},
		{"DATABASE_URL", "sqlite://"},
		{"SMTP_TLS", "maybe"},
		{"SMTP_PORT", "70000"},
		{"LOG_FORMAT", "xml"},
		{"LOG_LEVEL", "trace"},
		{"TRUSTED_PROXIES", "not-a-cidr"},
		{"TRUSTED_PROXIES", "10.0.0.0/8, 300.1.1.1"},
		{"DEMO_MODE", "perhaps"},
		{"RATE_LIMIT_ENABLED", "2"},
		{"BCRYPT_COST", "3"},
		{"BCRYPT_COST", "32"},
		{"PASSWORD_HASH_ALGORITHM", "md5"},
		{"ALGORITHM", "RS256"},
		{"API_V1_STR", "/api/v2"},
		{"FRONTEND_URL", "ftp://example.com"},
		{"FRONTEND_URL", "localhost:3000"},
		{"PASSWORD_RESET_PATH", "reset"},
		{"BACKEND_CORS_ORIGINS", `["http://a.example",`},
		{"db_pool_size", "0"},
		{"DB_POOL_SIZE", "lots"},
		{"db_max_overflow", "-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			msg := loadErr(t, map[string]string{tc.name: tc.value})
			wantProblem(t, msg, tc.name)
		})
	}
}

func TestLoadReportsEveryProblemAtOnce(t *testing.T) {
	msg := loadErr(t, map[string]string{
		"ACCESS_TOKEN_EXPIRE_MINUTES": "abc",
		"DATABASE_URL":                "mysql://x",
		"SMTP_TLS":                    "maybe",
		"LOG_FORMAT":                  "xml",
		"TRUSTED_PROXIES":             "not-a-cidr",
		"SECRET_KEY":                  "too-short",
	})
	wantProblem(t, msg, "ACCESS_TOKEN_EXPIRE_MINUTES", `"abc"`)
	wantProblem(t, msg, "DATABASE_URL", "sqlite://")
	wantProblem(t, msg, "SMTP_TLS", `"maybe"`)
	wantProblem(t, msg, "LOG_FORMAT", `"xml"`)
	wantProblem(t, msg, "TRUSTED_PROXIES", `"not-a-cidr"`)
	wantProblem(t, msg, "SECRET_KEY", "at least 32 characters")
}

func TestLoadCORSOrigins(t *testing.T) {
	tests := []struct {
		name, value string
		want        []string
	}{
		{"JSON list", `["https://app.example.com", "http://localhost:3000"]`, []string{"https://app.example.com", "http://localhost:3000"}},
		{"comma list", "https://app.example.com, http://localhost:3000", []string{"https://app.example.com", "http://localhost:3000"}},
		{"comma list with blanks", " https://a.example ,, https://b.example, ", []string{"https://a.example", "https://b.example"}},
		{"single origin", "https://app.example.com", []string{"https://app.example.com"}},
		{"empty JSON list", "[]", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, map[string]string{"BACKEND_CORS_ORIGINS": tc.value})
			if !slices.Equal(c.HTTP.CORSOrigins, tc.want) {
				t.Errorf("CORSOrigins = %q, want %q", c.HTTP.CORSOrigins, tc.want)
			}
		})
	}
}

func TestLoadTrustedProxies(t *testing.T) {
	tests := []struct {
		name, value string
		want        []string
	}{
		{"CIDRs", "10.0.0.0/8, 172.16.0.0/12", []string{"10.0.0.0/8", "172.16.0.0/12"}},
		{"plain IPv4", "192.168.1.10", []string{"192.168.1.10/32"}},
		{"plain IPv6", "2001:db8::1", []string{"2001:db8::1/128"}},
		{"mixed", "10.0.0.0/8,192.168.1.10, fd00::/8", []string{"10.0.0.0/8", "192.168.1.10/32", "fd00::/8"}},
		{"host bits masked", "10.1.2.3/8", []string{"10.0.0.0/8"}},
		{"JSON list", `["10.0.0.0/8", "127.0.0.1"]`, []string{"10.0.0.0/8", "127.0.0.1/32"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, map[string]string{"TRUSTED_PROXIES": tc.value})
			var got []string
			for _, p := range c.HTTP.TrustedProxies {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("TrustedProxies = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("plain IP contains only itself", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{"TRUSTED_PROXIES": "192.168.1.10"})
		p := c.HTTP.TrustedProxies[0]
		if !p.Contains(netip.MustParseAddr("192.168.1.10")) || p.Contains(netip.MustParseAddr("192.168.1.11")) {
			t.Errorf("prefix %s: want it to contain exactly 192.168.1.10", p)
		}
	})
}

func TestLoadDBPoolNames(t *testing.T) {
	tests := []struct {
		name         string
		env          map[string]string
		wantPool     int
		wantOverflow int
	}{
		{"lowercase (reference names)", map[string]string{"db_pool_size": "5", "db_max_overflow": "0"}, 5, 0},
		{"uppercase", map[string]string{"DB_POOL_SIZE": "7", "DB_MAX_OVERFLOW": "9"}, 7, 9},
		{"lowercase wins", map[string]string{"db_pool_size": "5", "DB_POOL_SIZE": "7"}, 5, 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, tc.env)
			if c.DB.PoolSize != tc.wantPool || c.DB.MaxOverflow != tc.wantOverflow {
				t.Errorf("PoolSize, MaxOverflow = %d, %d; want %d, %d", c.DB.PoolSize, c.DB.MaxOverflow, tc.wantPool, tc.wantOverflow)
			}
		})
	}
	t.Run("timeouts in seconds", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{"db_pool_timeout": "12", "db_pool_recycle": "60"})
		if c.DB.PoolTimeout != 12*time.Second || c.DB.PoolRecycle != time.Minute {
			t.Errorf("PoolTimeout, PoolRecycle = %v, %v; want 12s, 1m", c.DB.PoolTimeout, c.DB.PoolRecycle)
		}
	})
}

func TestLoadIsTest(t *testing.T) {
	tests := []struct {
		name          string
		env           map[string]string
		wantTest      bool
		wantMult      int
		wantScheduler bool
	}{
		{"unset", map[string]string{}, false, 1, true},
		{"True", map[string]string{"IS_TEST": "True"}, true, 100, false},
		{"only the literal True counts", map[string]string{"IS_TEST": "true"}, false, 1, true},
		{"1 does not count", map[string]string{"IS_TEST": "1"}, false, 1, true},
		{"explicit scheduler wins", map[string]string{"IS_TEST": "True", "SCHEDULER_ENABLED": "true"}, true, 100, true},
		{"scheduler off outside tests", map[string]string{"SCHEDULER_ENABLED": "off"}, false, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := mustLoad(t, tc.env)
			if c.IsTest != tc.wantTest || c.RateLimit.Multiplier != tc.wantMult || c.SchedulerEnabled != tc.wantScheduler {
				t.Errorf("IsTest, Multiplier, SchedulerEnabled = %v, %d, %v; want %v, %d, %v",
					c.IsTest, c.RateLimit.Multiplier, c.SchedulerEnabled, tc.wantTest, tc.wantMult, tc.wantScheduler)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	tests := []struct {
		in       string
		want, ok bool
	}{
		{"true", true, true}, {"True", true, true}, {"TRUE", true, true},
		{"1", true, true}, {"yes", true, true}, {"Yes", true, true}, {"on", true, true},
		{"ON", true, true}, {"t", true, true}, {"T", true, true}, {"y", true, true}, {" true ", true, true},
		{"false", false, true}, {"False", false, true}, {"FALSE", false, true},
		{"0", false, true}, {"no", false, true}, {"NO", false, true}, {"off", false, true},
		{"Off", false, true}, {"f", false, true}, {"n", false, true}, {"\tfalse\n", false, true},
		{"", false, false}, {"maybe", false, false}, {"2", false, false}, {"-1", false, false},
		{"truee", false, false}, {"enabled", false, false}, {"nope", false, false},
	}
	for _, tc := range tests {
		got, ok := ParseBool(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseBool(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLoadBooleans(t *testing.T) {
	c, _ := mustLoad(t, map[string]string{"DEMO_MODE": "on", "AUTO_MIGRATE": "No", "RATE_LIMIT_ENABLED": "0"})
	if !c.DemoMode || c.DB.AutoMigrate || c.RateLimit.Enabled {
		t.Errorf("DemoMode, AutoMigrate, RateLimit.Enabled = %v, %v, %v; want true, false, false", c.DemoMode, c.DB.AutoMigrate, c.RateLimit.Enabled)
	}
}

func TestParseDotEnv(t *testing.T) {
	content := strings.Join([]string{
		"# Gatehouse settings",
		"",
		"PROJECT_NAME=Gatehouse",
		"export SECRET_KEY=abc123",
		`DATABASE_URL="postgresql://u:p@db/app"`,
		`FRONTEND_URL='https://app.example.com'`,
		"LOG_LEVEL=debug # verbose while developing",
		"   # indented comment",
		"  SPACED  =  value with spaces  ",
		"HASH_IN_VALUE=abc#def",
		`QUOTED_HASH="abc # not a comment"`,
		"EQUALS=a=b=c",
		"EMPTY=",
		`EMPTY_QUOTES=""`,
		"WINDOWS=crlf\r",
		`QUOTED_WITH_COMMENT="quoted value" # trailing comment`,
		`SINGLE_WITH_COMMENT='single' # trailing comment`,
		`QUOTED_HASH_WITH_COMMENT="a # b" # c`,
		`UNTERMINATED="abc`,
		"",
	}, "\n")
	got, err := ParseDotEnv(content)
	if err != nil {
		t.Fatalf("ParseDotEnv error: %v", err)
	}
	want := map[string]string{
		"PROJECT_NAME":             "Gatehouse",
		"SECRET_KEY":               "abc123",
		"DATABASE_URL":             "postgresql://u:p@db/app",
		"FRONTEND_URL":             "https://app.example.com",
		"LOG_LEVEL":                "debug",
		"SPACED":                   "value with spaces",
		"HASH_IN_VALUE":            "abc#def",
		"QUOTED_HASH":              "abc # not a comment",
		"EQUALS":                   "a=b=c",
		"EMPTY":                    "",
		"EMPTY_QUOTES":             "",
		"WINDOWS":                  "crlf",
		"QUOTED_WITH_COMMENT":      "quoted value",
		"SINGLE_WITH_COMMENT":      "single",
		"QUOTED_HASH_WITH_COMMENT": "a # b",
		"UNTERMINATED":             `"abc`,
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s missing", k)
			continue
		}
		if g != w {
			t.Errorf("%s = %q, want %q", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected key %q = %q", k, got[k])
		}
	}
}

func TestParseDotEnvBadLine(t *testing.T) {
	_, err := ParseDotEnv("A=1\n# comment\nTHIS IS NOT AN ASSIGNMENT\nB=2\n")
	if err == nil {
		t.Fatal("ParseDotEnv accepted a line without '='")
	}
	if !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %q does not name line 3", err)
	}
}

func TestParseDotEnvFeedsLoad(t *testing.T) {
	m, err := ParseDotEnv("ENVIRONMENT=production\nSECRET_KEY=\"" + goodSecret + "\"\nFIRST_SUPERUSER_EMAIL=root@example.com\nFIRST_SUPERUSER_PASSWORD='CorrectHorse42Battery'\nexport db_pool_size=3\n")
	if err != nil {
		t.Fatalf("ParseDotEnv error: %v", err)
	}
	c, _ := mustLoad(t, m)
	if !c.Production() || c.Auth.SecretKey != goodSecret || c.DB.PoolSize != 3 {
		t.Errorf("Production, SecretKey, PoolSize = %v, %q, %d", c.Production(), c.Auth.SecretKey, c.DB.PoolSize)
	}
}

func TestLoadProvider(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{"OAUTH_ISSUER": "https://auth.example.com/"})
		p := c.Provider
		if p.Issuer != "https://auth.example.com" || p.MCPResource != "https://auth.example.com/mcp" ||
			p.APIResource != "https://auth.example.com/api/v1" || len(p.Resources) != 2 {
			t.Fatalf("issuer %q, resources %q %q %v", p.Issuer, p.MCPResource, p.APIResource, p.Resources)
		}
		if p.Registration != "open" || p.CIMDAllowPrivate {
			t.Fatalf("registration %q, CIMD private %v", p.Registration, p.CIMDAllowPrivate)
		}
	})
	t.Run("extra resources", func(t *testing.T) {
		c, _ := mustLoad(t, map[string]string{"OAUTH_RESOURCES": "https://mcp.example.com/mcp/, https://api.example.com"})
		p := c.Provider
		if len(p.Resources) != 4 || p.Resources[2] != "https://mcp.example.com/mcp" || p.Resources[3] != "https://api.example.com" {
			t.Fatalf("resources %v", p.Resources)
		}
	})
	t.Run("refused", func(t *testing.T) {
		msg := loadErr(t, map[string]string{"OAUTH_ISSUER": "https://auth.example.com/?x=1", "OAUTH_RESOURCES": "relative/path,https://a.example/#frag",
			"OAUTH_REGISTRATION": "sometimes"})
		wantProblem(t, msg, "OAUTH_ISSUER", "query or fragment")
		wantProblem(t, msg, "OAUTH_RESOURCES", "relative/path")
		wantProblem(t, msg, "OAUTH_RESOURCES", "#frag")
		wantProblem(t, msg, "OAUTH_REGISTRATION", "open, token or off")
		wantProblem(t, loadErr(t, map[string]string{"OAUTH_REGISTRATION": "token", "OAUTH_REGISTRATION_TOKEN": "short"}),
			"OAUTH_REGISTRATION_TOKEN", "at least 16")
	})
	t.Run("production", func(t *testing.T) {
		e := prodEnv()
		e["OAUTH_PROVIDER_ENABLED"] = "true"
		e["OAUTH_ISSUER"] = "http://auth.example.com"
		e["OAUTH_CIMD_ALLOW_PRIVATE"] = "true"
		msg := loadErr(t, e)
		wantProblem(t, msg, "OAUTH_ISSUER", "https URL in production")
		wantProblem(t, msg, "OAUTH_CIMD_ALLOW_PRIVATE", "production")
		e["OAUTH_ISSUER"] = "https://auth.example.com"
		delete(e, "OAUTH_CIMD_ALLOW_PRIVATE")
		if c, _ := mustLoad(t, e); !c.Provider.Enabled || c.Provider.Issuer != "https://auth.example.com" {
			t.Fatalf("provider %+v", c.Provider)
		}
	})
}

func TestLoadRedis(t *testing.T) {
	c, _ := mustLoad(t, map[string]string{})
	if c.Redis.URL != "" || c.Redis.KeyPrefix != "gatehouse:" {
		t.Errorf("defaults: %+v, want no Redis and prefix gatehouse:", c.Redis)
	}
	for _, good := range []string{
		"redis://127.0.0.1:6379/0",
		"redis://:s3cret@redis.internal/2",
		"rediss://user:s3cret@redis.example.com:6380",
		"redis://localhost",
		"unix:///run/redis.sock?db=1",
	} {
		c, _ := mustLoad(t, map[string]string{"REDIS_URL": good, "REDIS_KEY_PREFIX": "prod-eu:"})
		if c.Redis.URL != good || c.Redis.KeyPrefix != "prod-eu:" {
			t.Errorf("REDIS_URL=%s: %+v", good, c.Redis)
		}
	}
	for _, bad := range []string{
		"127.0.0.1:6379",
		"http://redis:6379",
		"redis://redis:6379/zero",
		"redis://redis:6379/0/1",
		"unix://",
		"redis://redis:6379/0?no_such_option=1",
		"redis://user:s3cret@[::1:6379/0",
	} {
		msg := loadErr(t, map[string]string{"REDIS_URL": bad})
		wantProblem(t, msg, "REDIS_URL")
		if strings.Contains(msg, "s3cret") {
			t.Errorf("REDIS_URL=%s: the error repeats the password: %s", bad, msg)
		}
	}
}

func TestLoadMetrics(t *testing.T) {
	const token = "scrape-0123456789abcdef"
	tests := []struct {
		name        string
		env         map[string]string
		enabled     bool
		token       string
		wantWarning string // a fragment of the one expected warning; "" for none
	}{
		{"off by default", map[string]string{}, false, "", ""},
		{"enabled without a token is open", map[string]string{"METRICS_ENABLED": "true"}, true, "", "firewall"},
		{"a token alone enables", map[string]string{"METRICS_TOKEN": token}, true, token, ""},
		{"enabled with a token", map[string]string{"METRICS_ENABLED": "yes", "METRICS_TOKEN": " " + token + " "}, true, token, ""},
		{"explicitly off wins over a token", map[string]string{"METRICS_ENABLED": "false", "METRICS_TOKEN": token}, false, token, "METRICS_ENABLED=false"},
		{"explicitly off", map[string]string{"METRICS_ENABLED": "0"}, false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, warnings := mustLoad(t, tc.env)
			if c.Metrics.Enabled != tc.enabled || c.Metrics.Token != tc.token {
				t.Errorf("Metrics = %+v, want Enabled %v Token %q", c.Metrics, tc.enabled, tc.token)
			}
			switch {
			case tc.wantWarning == "" && len(warnings) != 0:
				t.Errorf("warnings %q, want none", warnings)
			case tc.wantWarning != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tc.wantWarning)):
				t.Errorf("warnings %q, want one containing %q", warnings, tc.wantWarning)
			}
		})
	}
	for _, bad := range []map[string]string{
		{"METRICS_ENABLED": "maybe"},
		{"METRICS_TOKEN": "short-s3cret"},
		{"METRICS_TOKEN": "with a space-0123456789"},
		{"METRICS_TOKEN": "non-ascii-é-0123456789"},
		{"METRICS_TOKEN": "control\x01-0123456789abcdef"},
	} {
		msg := loadErr(t, bad)
		name := "METRICS_TOKEN"
		if _, ok := bad["METRICS_ENABLED"]; ok {
			name = "METRICS_ENABLED"
		}
		wantProblem(t, msg, name)
		if tok := bad["METRICS_TOKEN"]; tok != "" && strings.Contains(msg, tok) {
			t.Errorf("the error repeats the token: %s", msg)
		}
	}
}

func TestLoadConsentTTL(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{
		{"", 365 * 24 * time.Hour},
		{"30", 30 * 24 * time.Hour},
		{"0", 0}, // never expires
	} {
		c, _ := mustLoad(t, map[string]string{"OAUTH_CONSENT_TTL_DAYS": tc.value})
		if c.Provider.ConsentTTL != tc.want {
			t.Errorf("OAUTH_CONSENT_TTL_DAYS=%q: %v, want %v", tc.value, c.Provider.ConsentTTL, tc.want)
		}
	}
	for _, bad := range []string{"-1", "36501", "a year"} {
		wantProblem(t, loadErr(t, map[string]string{"OAUTH_CONSENT_TTL_DAYS": bad}), "OAUTH_CONSENT_TTL_DAYS", "between 0 and 36500")
	}
}

// A retired signing key must stay published for at least the access-token
// lifetime plus an hour, or tokens it signed stop verifying while valid.
func TestLoadProviderKeyRetentionCoversAccessTokens(t *testing.T) {
	for _, tc := range []struct {
		access, retention string
		need              string // "" when the pair is accepted
	}{
		{"", "", ""},             // 3600 s, 48 h
		{"3600", "2", ""},        // exactly one hour more
		{"7200", "2", "3 hours"}, // two hours of tokens, two of keys
		{"86400", "24", "25 hours"},
		{"86400", "25", ""},
		{"5400", "2", "3 hours"}, // 1.5 h + 1 h rounds up
	} {
		m := map[string]string{"OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS": tc.access, "OAUTH_KEY_RETENTION_HOURS": tc.retention}
		if tc.need == "" {
			c, _ := mustLoad(t, m)
			if c.Provider.KeyRetention < c.Provider.AccessTokenTTL+time.Hour {
				t.Fatalf("%v: retention %s for tokens of %s", m, c.Provider.KeyRetention, c.Provider.AccessTokenTTL)
			}
			continue
		}
		wantProblem(t, loadErr(t, m), "OAUTH_KEY_RETENTION_HOURS", "OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS", tc.need, "got "+tc.retention)
	}
}
