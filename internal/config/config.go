// Package config reads Gatehouse's configuration from environment variables
// (names as in the reference, plus Gatehouse's own) once at start-up.
//
// Load takes a getenv function so tests pass a map and no package reads the
// process environment itself. Every problem is collected, so a bad start-up
// names all offending variables at once.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the whole configuration, split by concern; each constructor in
// main receives only its part.
type Config struct {
	ProjectName string // PROJECT_NAME
	Version     string // VERSION
	Environment string // ENVIRONMENT; only "production" changes behaviour
	DemoMode    bool   // DEMO_MODE
	IsTest      bool   // IS_TEST=True: no scheduler, rate limits ×100 where the reference does so

	HTTP      HTTP
	DB        DB
	Social    Social
	Provider  Provider
	Auth      Auth
	Password  Password
	Mail      Mail
	RateLimit RateLimit
	Redis     Redis
	Metrics   Metrics
	Log       Log

	FrontendURL       string // FRONTEND_URL
	PasswordResetPath string // PASSWORD_RESET_PATH

	InvitationTTL        time.Duration // INVITATION_EXPIRE_DAYS
	InvitationAcceptPath string        // INVITATION_ACCEPT_PATH

	PAT PAT // PAT_*: personal access tokens

	FirstSuperuserEmail    string // FIRST_SUPERUSER_EMAIL
	FirstSuperuserPassword string // FIRST_SUPERUSER_PASSWORD

	SchedulerEnabled bool // SCHEDULER_ENABLED (default true, false when IS_TEST)
}

// HTTP is the listener and the HTTP middleware settings.
type HTTP struct {
	Addr            string         // HTTP_ADDR
	CORSOrigins     []string       // BACKEND_CORS_ORIGINS
	CSPMode         string         // CSP_MODE: strict | relaxed | disabled
	TrustedProxies  []netip.Prefix // TRUSTED_PROXIES
	MaxBodyBytes    int64          // MAX_REQUEST_BODY_BYTES
	ShutdownTimeout time.Duration  // SHUTDOWN_TIMEOUT
	Production      bool
}

// DB is the database connection and pool.
type DB struct {
	URL             string        // DATABASE_URL
	AutoMigrate     bool          // AUTO_MIGRATE
	PoolSize        int           // db_pool_size
	MaxOverflow     int           // db_max_overflow
	PoolTimeout     time.Duration // db_pool_timeout (seconds)
	PoolRecycle     time.Duration // db_pool_recycle (seconds)
	ApplicationName string        // PROJECT_NAME, reported to PostgreSQL
}

// Auth is first-party token and session settings.
type Auth struct {
	SecretKey          string        // SECRET_KEY; empty means "generate and keep one" (not in production)
	AccessTokenTTL     time.Duration // ACCESS_TOKEN_EXPIRE_MINUTES
	RefreshTokenTTL    time.Duration // REFRESH_TOKEN_EXPIRE_DAYS
	ResetTokenTTL      time.Duration // PASSWORD_RESET_EXPIRE_MINUTES
	LoginMaxFailures   int           // LOGIN_THROTTLE_ATTEMPTS
	LoginFailureWindow time.Duration // LOGIN_THROTTLE_WINDOW_MINUTES
}

// Social is social login (reference §6A): Google, GitHub and any OpenID
// Connect provider configured by environment.
type Social struct {
	Enabled             bool          // OAUTH_ENABLED
	AutoLinkByEmail     bool          // OAUTH_AUTO_LINK_BY_EMAIL
	StateTTL            time.Duration // OAUTH_STATE_EXPIRE_MINUTES
	AllowedRedirectURIs []string      // OAUTH_ALLOWED_REDIRECT_URIS, besides FRONTEND_URL
	HTTPTimeout         time.Duration // OAUTH_HTTP_TIMEOUT_SECONDS, for every call to a provider
	FrontendURL         string
	Google              OIDCProvider   // OAUTH_GOOGLE_*
	GitHub              GitHubProvider // OAUTH_GITHUB_*
	OIDC                []OIDCProvider // OAUTH_OIDC_PROVIDERS and OAUTH_OIDC_<NAME>_*
}

// OIDCProvider is an OpenID Connect provider; enabled when it has a client
// id and secret.
type OIDCProvider struct {
	Name         string // id in URLs: google, or the lower-cased name from OAUTH_OIDC_PROVIDERS
	DisplayName  string
	Icon         string
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string
}

// GitHubProvider is GitHub (no OpenID Connect: /user and /user/emails).
type GitHubProvider struct {
	ClientID     string // OAUTH_GITHUB_CLIENT_ID
	ClientSecret string // OAUTH_GITHUB_CLIENT_SECRET
	URL          string // OAUTH_GITHUB_URL
	APIURL       string // OAUTH_GITHUB_API_URL
}

// Provider is the OAuth 2.1 / OpenID Connect authorization server.
type Provider struct {
	Enabled           bool          // OAUTH_PROVIDER_ENABLED
	Issuer            string        // OAUTH_ISSUER, trailing slash removed
	UI                string        // OAUTH_PROVIDER_UI: builtin | frontend
	CodeTTL           time.Duration // OAUTH_CODE_EXPIRE_SECONDS
	AccessTokenAlg    string        // OAUTH_ACCESS_TOKEN_ALG: ES256 | RS256
	AccessTokenTTL    time.Duration // OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS, default for new clients
	RefreshTokenTTL   time.Duration // OAUTH_REFRESH_TOKEN_EXPIRE_SECONDS, default for new clients
	KeyRetention      time.Duration // OAUTH_KEY_RETENTION_HOURS: how long a rotated key stays published
	BrowserSessionTTL time.Duration // OAUTH_BROWSER_SESSION_HOURS: the built-in login pages' cookie
	ConsentTTL        time.Duration // OAUTH_CONSENT_TTL_DAYS: a consent's lifetime from its last grant; 0 = never expires
	FrontendURL       string

	// Resources this server protects (RFC 8707 resource indicators): the MCP
	// endpoint, the REST API, and any listed in OAUTH_RESOURCES.
	MCPResource string // {OAUTH_ISSUER}/mcp
	APIResource string // {OAUTH_ISSUER}/api/v1
	Resources   []string

	Registration      string // OAUTH_REGISTRATION: open | token | off (RFC 7591 dynamic registration)
	RegistrationToken string // OAUTH_REGISTRATION_TOKEN: the initial access token when Registration is token
	CIMDAllowPrivate  bool   // OAUTH_CIMD_ALLOW_PRIVATE: fetch client metadata documents from private addresses (tests)
}

// Password is the password hashing policy.
type Password struct {
	Algorithm    string        // PASSWORD_HASH_ALGORITHM: bcrypt | argon2id
	BcryptCost   int           // BCRYPT_COST
	ArgonMemory  uint32        // ARGON2_MEMORY_KIB
	ArgonTime    uint32        // ARGON2_ITERATIONS
	ArgonThreads uint8         // ARGON2_PARALLELISM
	Concurrency  int           // PASSWORD_HASH_CONCURRENCY
	MaxWait      time.Duration // PASSWORD_HASH_MAX_WAIT_MS
}

// Mail is the outgoing email configuration.
type Mail struct {
	Host       string // SMTP_HOST; empty: emails go to the log
	Port       int    // SMTP_PORT
	Username   string // SMTP_USERNAME
	Password   string // SMTP_PASSWORD
	From       string // SMTP_FROM
	TLS        string // SMTP_TLS: none | starttls | tls
	Timeout    time.Duration
	Production bool
}

// RateLimit is the per-IP per-endpoint limiter.
type RateLimit struct {
	Enabled    bool // RATE_LIMIT_ENABLED
	Multiplier int  // 100 when IS_TEST=True for the endpoints the reference multiplies
}

// Redis is the optional Redis server that several instances share their
// rate-limit counts through. Without it every instance counts for itself.
type Redis struct {
	URL       string // REDIS_URL: redis://[user:password@]host[:port][/db], rediss:// (TLS) or unix://; empty: no Redis
	KeyPrefix string // REDIS_KEY_PREFIX: prepended to every key, so one Redis can serve several deployments
}

// Metrics is the Prometheus endpoint /metrics.
type Metrics struct {
	// Enabled is METRICS_ENABLED, or true when only METRICS_TOKEN is set.
	Enabled bool
	// Token is METRICS_TOKEN: when set, scrapers must send it as a bearer
	// token; when empty, /metrics is open to whoever reaches the port.
	Token string
}

// MinMetricsTokenLength is the shortest METRICS_TOKEN accepted.
const MinMetricsTokenLength = 16

// Log is the logger.
type Log struct {
	Format string // LOG_FORMAT: json | text
	Level  string // LOG_LEVEL: debug | info | warn | error
}

// Production reports whether ENVIRONMENT is exactly "production".
func (c Config) Production() bool { return c.Environment == "production" }

// Placeholders the reference refuses or warns about.
const (
	placeholderSecretPrefix = "your_secret_key_here"
	referenceDefaultSecret  = "dev_only_insecure_key_change_in_production_32chars_min"
)

var weakSuperuserPasswords = []string{"admin123", "Admin123", "password123", "Password123", "123456789012"}

// Load builds a Config from getenv. Warnings (not errors) are returned for
// the caller to log.
func Load(getenv func(string) string) (Config, []string, error) {
	r := reader{getenv: getenv}
	var c Config
	c.ProjectName = r.str("PROJECT_NAME", "Gatehouse")
	c.Version = r.str("VERSION", "1.0.0")
	c.Environment = r.str("ENVIRONMENT", "development")
	c.DemoMode = r.boolean("DEMO_MODE", false)
	c.IsTest = getenv("IS_TEST") == "True"
	if v := getenv("API_V1_STR"); v != "" && v != "/api/v1" {
		r.fail("API_V1_STR", "only /api/v1 is supported, got %q", v)
	}

	c.HTTP.Addr = r.str("HTTP_ADDR", ":8000")
	c.HTTP.CORSOrigins = r.list("BACKEND_CORS_ORIGINS", []string{"http://localhost:3000"})
	c.HTTP.CSPMode = strings.ToLower(r.str("CSP_MODE", "relaxed"))
	c.HTTP.TrustedProxies = r.prefixes("TRUSTED_PROXIES")
	c.HTTP.MaxBodyBytes = int64(r.integer("MAX_REQUEST_BODY_BYTES", 1<<20, 1024, 1<<30))
	c.HTTP.ShutdownTimeout = time.Duration(r.integer("SHUTDOWN_TIMEOUT_SECONDS", 15, 1, 3600)) * time.Second
	c.HTTP.Production = c.Production()

	c.DB.URL = r.str("DATABASE_URL", "sqlite://./data/gatehouse.db")
	c.DB.AutoMigrate = r.boolean("AUTO_MIGRATE", true)
	c.DB.PoolSize = r.integerAlias([]string{"db_pool_size", "DB_POOL_SIZE"}, 20, 1, 10000)
	c.DB.MaxOverflow = r.integerAlias([]string{"db_max_overflow", "DB_MAX_OVERFLOW"}, 50, 0, 10000)
	c.DB.PoolTimeout = time.Duration(r.integerAlias([]string{"db_pool_timeout", "DB_POOL_TIMEOUT"}, 30, 1, 3600)) * time.Second
	c.DB.PoolRecycle = time.Duration(r.integerAlias([]string{"db_pool_recycle", "DB_POOL_RECYCLE"}, 3600, 1, 1<<30)) * time.Second
	c.DB.ApplicationName = c.ProjectName
	checkDatabaseURL(&r, c.DB.URL)

	c.Auth.SecretKey = getenv("SECRET_KEY")
	if alg := r.str("ALGORITHM", "HS256"); alg != "HS256" {
		r.fail("ALGORITHM", "only HS256 is supported for first-party tokens, got %q", alg)
	}
	c.Auth.AccessTokenTTL = time.Duration(r.integer("ACCESS_TOKEN_EXPIRE_MINUTES", 15, 1, 24*60)) * time.Minute
	c.Auth.RefreshTokenTTL = time.Duration(r.integer("REFRESH_TOKEN_EXPIRE_DAYS", 7, 1, 3650)) * 24 * time.Hour
	c.Auth.ResetTokenTTL = time.Duration(r.integer("PASSWORD_RESET_EXPIRE_MINUTES", 60, 1, 7*24*60)) * time.Minute
	c.Auth.LoginMaxFailures = r.integer("LOGIN_THROTTLE_ATTEMPTS", 10, 1, 1000000)
	c.Auth.LoginFailureWindow = time.Duration(r.integer("LOGIN_THROTTLE_WINDOW_MINUTES", 15, 1, 24*60)) * time.Minute

	c.Password.Algorithm = strings.ToLower(r.str("PASSWORD_HASH_ALGORITHM", "bcrypt"))
	if c.Password.Algorithm != "bcrypt" && c.Password.Algorithm != "argon2id" {
		r.fail("PASSWORD_HASH_ALGORITHM", "must be bcrypt or argon2id, got %q", c.Password.Algorithm)
	}
	c.Password.BcryptCost = r.integer("BCRYPT_COST", 12, 4, 31)
	c.Password.ArgonMemory = uint32(r.integer("ARGON2_MEMORY_KIB", 19456, 1024, 4<<20))
	c.Password.ArgonTime = uint32(r.integer("ARGON2_ITERATIONS", 2, 1, 100))
	c.Password.ArgonThreads = uint8(r.integer("ARGON2_PARALLELISM", 1, 1, 255))
	c.Password.Concurrency = r.integer("PASSWORD_HASH_CONCURRENCY", runtime.NumCPU(), 1, 1024)
	c.Password.MaxWait = time.Duration(r.integer("PASSWORD_HASH_MAX_WAIT_MS", 5000, 1, 600000)) * time.Millisecond

	c.Mail.Host = getenv("SMTP_HOST")
	c.Mail.Port = r.integer("SMTP_PORT", 587, 1, 65535)
	c.Mail.Username = getenv("SMTP_USERNAME")
	c.Mail.Password = getenv("SMTP_PASSWORD")
	c.Mail.From = r.str("SMTP_FROM", "Gatehouse <no-reply@localhost>")
	c.Mail.TLS = strings.ToLower(r.str("SMTP_TLS", "starttls"))
	if !slices.Contains([]string{"none", "starttls", "tls"}, c.Mail.TLS) {
		r.fail("SMTP_TLS", "must be none, starttls or tls, got %q", c.Mail.TLS)
	}
	c.Mail.Timeout = time.Duration(r.integer("SMTP_TIMEOUT_SECONDS", 15, 1, 600)) * time.Second
	c.Mail.Production = c.Production()

	c.RateLimit.Enabled = r.boolean("RATE_LIMIT_ENABLED", true)
	c.RateLimit.Multiplier = 1
	if c.IsTest {
		c.RateLimit.Multiplier = 100
	}

	c.Redis.URL = r.str("REDIS_URL", "")
	c.Redis.KeyPrefix = r.str("REDIS_KEY_PREFIX", "gatehouse:")
	checkRedisURL(&r, c.Redis.URL)

	loadMetrics(&r, &c)

	c.Log.Format = strings.ToLower(r.str("LOG_FORMAT", "text"))
	if c.Log.Format != "json" && c.Log.Format != "text" {
		r.fail("LOG_FORMAT", "must be json or text, got %q", c.Log.Format)
	}
	c.Log.Level = strings.ToLower(r.str("LOG_LEVEL", "info"))
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		r.fail("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.Log.Level)
	}

	c.FrontendURL = strings.TrimRight(r.str("FRONTEND_URL", "http://localhost:3000"), "/")
	if u, err := url.Parse(c.FrontendURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail("FRONTEND_URL", "must be an absolute http(s) URL, got %q", c.FrontendURL)
	}
	c.PasswordResetPath = r.str("PASSWORD_RESET_PATH", "/password-reset/confirm")
	if !strings.HasPrefix(c.PasswordResetPath, "/") {
		r.fail("PASSWORD_RESET_PATH", "must start with /, got %q", c.PasswordResetPath)
	}

	c.InvitationTTL = time.Duration(r.integer("INVITATION_EXPIRE_DAYS", 7, 1, 365)) * 24 * time.Hour
	c.InvitationAcceptPath = r.str("INVITATION_ACCEPT_PATH", "/invitations/accept")
	if !strings.HasPrefix(c.InvitationAcceptPath, "/") {
		r.fail("INVITATION_ACCEPT_PATH", "must start with /, got %q", c.InvitationAcceptPath)
	}

	loadSocial(&r, &c)
	loadProvider(&r, &c)
	loadPAT(&r, &c)

	c.FirstSuperuserEmail = strings.TrimSpace(getenv("FIRST_SUPERUSER_EMAIL"))
	c.FirstSuperuserPassword = getenv("FIRST_SUPERUSER_PASSWORD")
	c.SchedulerEnabled = r.boolean("SCHEDULER_ENABLED", !c.IsTest)

	r.checkSecrets(c)
	if len(r.errs) > 0 {
		return Config{}, r.warnings, fmt.Errorf("invalid configuration:\n  %s", strings.Join(r.errs, "\n  "))
	}
	return c, r.warnings, nil
}

var providerName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// oidcPrefix is the prefix of the variables of OIDC provider name:
// "acme-sso" reads OAUTH_OIDC_ACME_SSO_ISSUER and so on.
func oidcPrefix(name string) string {
	return "OAUTH_OIDC_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
}

// loadSocial reads the social-login settings.
func loadSocial(r *reader, c *Config) {
	s := &c.Social
	s.Enabled = r.boolean("OAUTH_ENABLED", false)
	s.AutoLinkByEmail = r.boolean("OAUTH_AUTO_LINK_BY_EMAIL", true)
	s.StateTTL = time.Duration(r.integer("OAUTH_STATE_EXPIRE_MINUTES", 10, 1, 24*60)) * time.Minute
	s.AllowedRedirectURIs = r.list("OAUTH_ALLOWED_REDIRECT_URIS", nil)
	s.HTTPTimeout = time.Duration(r.integer("OAUTH_HTTP_TIMEOUT_SECONDS", 10, 1, 120)) * time.Second
	s.FrontendURL = c.FrontendURL
	// Issuers are kept exactly as configured, trailing "/" included: OpenID
	// Connect discovery requires the document's issuer (and every ID
	// token's iss) to equal the configured one character for character, and
	// some providers' issuers end in "/" (Auth0's do).
	s.Google = OIDCProvider{Name: "google", DisplayName: "Google", Icon: "google",
		Issuer:   r.str("OAUTH_GOOGLE_ISSUER", "https://accounts.google.com"),
		ClientID: r.getenv("OAUTH_GOOGLE_CLIENT_ID"), ClientSecret: r.getenv("OAUTH_GOOGLE_CLIENT_SECRET"),
		Scopes: []string{"openid", "email", "profile"}}
	r.issuerURL("OAUTH_GOOGLE_ISSUER", s.Google.Issuer)
	s.GitHub = GitHubProvider{ClientID: r.getenv("OAUTH_GITHUB_CLIENT_ID"), ClientSecret: r.getenv("OAUTH_GITHUB_CLIENT_SECRET"),
		URL:    strings.TrimRight(r.str("OAUTH_GITHUB_URL", "https://github.com"), "/"),
		APIURL: strings.TrimRight(r.str("OAUTH_GITHUB_API_URL", "https://api.github.com"), "/")}
	r.absoluteURL("OAUTH_GITHUB_URL", s.GitHub.URL)
	r.absoluteURL("OAUTH_GITHUB_API_URL", s.GitHub.APIURL)
	for _, raw := range r.list("OAUTH_OIDC_PROVIDERS", nil) {
		name := strings.ToLower(raw)
		if !providerName.MatchString(name) || name == "google" || name == "github" {
			r.fail("OAUTH_OIDC_PROVIDERS", "%q is not a valid provider name (lowercase letters, digits, - and _; not google or github)", raw)
			continue
		}
		prefix := oidcPrefix(name)
		p := OIDCProvider{Name: name, Icon: name,
			Issuer:       r.str(prefix+"ISSUER", ""),
			ClientID:     r.getenv(prefix + "CLIENT_ID"),
			ClientSecret: r.getenv(prefix + "CLIENT_SECRET"),
			DisplayName:  r.str(prefix+"DISPLAY_NAME", name),
			Scopes:       strings.Fields(r.str(prefix+"SCOPES", "openid email profile")),
		}
		if p.Issuer == "" {
			r.fail(prefix+"ISSUER", "is required for OIDC provider %q", name)
		} else {
			r.issuerURL(prefix+"ISSUER", p.Issuer)
		}
		if p.ClientID == "" || p.ClientSecret == "" {
			r.fail(prefix+"CLIENT_ID", "%sCLIENT_ID and %sCLIENT_SECRET are required for OIDC provider %q", prefix, prefix, name)
		}
		if !slices.Contains(p.Scopes, "openid") {
			p.Scopes = append([]string{"openid"}, p.Scopes...)
		}
		dup := false
		for _, q := range s.OIDC {
			switch {
			case q.Name == name:
				r.fail("OAUTH_OIDC_PROVIDERS", "provider %q is listed twice", name)
				dup = true
			case oidcPrefix(q.Name) == prefix:
				// "a-b" and "a_b" would read the same variables.
				r.fail("OAUTH_OIDC_PROVIDERS", "providers %q and %q would share the variables %s*", q.Name, name, prefix)
				dup = true
			}
		}
		if !dup {
			s.OIDC = append(s.OIDC, p)
		}
	}
}

// loadProvider reads the authorization-server settings.
func loadProvider(r *reader, c *Config) {
	p := &c.Provider
	p.Enabled = r.boolean("OAUTH_PROVIDER_ENABLED", false)
	p.Issuer = strings.TrimRight(r.str("OAUTH_ISSUER", "http://localhost:8000"), "/")
	r.absoluteURL("OAUTH_ISSUER", p.Issuer)
	if u, err := url.Parse(p.Issuer); err == nil && (u.RawQuery != "" || u.Fragment != "") {
		r.fail("OAUTH_ISSUER", "must not have a query or fragment, got %q", p.Issuer)
	}
	if c.Production() && p.Enabled && !strings.HasPrefix(p.Issuer, "https://") {
		r.fail("OAUTH_ISSUER", "must be an https URL in production, got %q", p.Issuer)
	}
	p.UI = strings.ToLower(r.str("OAUTH_PROVIDER_UI", "builtin"))
	if p.UI != "builtin" && p.UI != "frontend" {
		r.fail("OAUTH_PROVIDER_UI", "must be builtin or frontend, got %q", p.UI)
	}
	p.CodeTTL = time.Duration(r.integer("OAUTH_CODE_EXPIRE_SECONDS", 600, 10, 3600)) * time.Second
	p.AccessTokenAlg = strings.ToUpper(r.str("OAUTH_ACCESS_TOKEN_ALG", "ES256"))
	if p.AccessTokenAlg != "ES256" && p.AccessTokenAlg != "RS256" {
		r.fail("OAUTH_ACCESS_TOKEN_ALG", "must be ES256 or RS256, got %q", p.AccessTokenAlg)
	}
	p.AccessTokenTTL = time.Duration(r.integer("OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS", 3600, 60, 86400)) * time.Second
	p.RefreshTokenTTL = time.Duration(r.integer("OAUTH_REFRESH_TOKEN_EXPIRE_SECONDS", 604800, 300, 365*86400)) * time.Second
	p.KeyRetention = time.Duration(r.integer("OAUTH_KEY_RETENTION_HOURS", 48, 2, 24*365)) * time.Hour
	// A retired key must stay published until the last token it signed has
	// expired (plus an hour for clocks and caches), or those tokens stop
	// verifying early.
	if need := p.AccessTokenTTL + time.Hour; p.KeyRetention < need {
		r.fail("OAUTH_KEY_RETENTION_HOURS", "must be at least OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS plus one hour, so a retired key "+
			"stays published while tokens it signed are valid: %d hours or more for OAUTH_ACCESS_TOKEN_EXPIRE_SECONDS=%d, got %d",
			int((need+time.Hour-1)/time.Hour), int(p.AccessTokenTTL.Seconds()), int(p.KeyRetention.Hours()))
	}
	p.BrowserSessionTTL = time.Duration(r.integer("OAUTH_BROWSER_SESSION_HOURS", 12, 1, 24*90)) * time.Hour
	p.ConsentTTL = time.Duration(r.integer("OAUTH_CONSENT_TTL_DAYS", 365, 0, 36500)) * 24 * time.Hour
	p.FrontendURL = c.FrontendURL

	p.MCPResource = p.Issuer + "/mcp"
	p.APIResource = p.Issuer + "/api/v1"
	p.Resources = []string{p.MCPResource, p.APIResource}
	for _, res := range r.list("OAUTH_RESOURCES", nil) {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.Contains(res, "#") {
			r.fail("OAUTH_RESOURCES", "%q is not an absolute URI without a fragment", res)
			continue
		}
		p.Resources = append(p.Resources, strings.TrimRight(res, "/"))
	}
	p.Registration = strings.ToLower(r.str("OAUTH_REGISTRATION", "open"))
	if !slices.Contains([]string{"open", "token", "off"}, p.Registration) {
		r.fail("OAUTH_REGISTRATION", "must be open, token or off, got %q", p.Registration)
	}
	p.RegistrationToken = r.getenv("OAUTH_REGISTRATION_TOKEN")
	if p.Registration == "token" && len(p.RegistrationToken) < 16 {
		r.fail("OAUTH_REGISTRATION_TOKEN", "is required (at least 16 characters) when OAUTH_REGISTRATION=token")
	}
	p.CIMDAllowPrivate = r.boolean("OAUTH_CIMD_ALLOW_PRIVATE", false)
	if p.CIMDAllowPrivate && c.Production() {
		r.fail("OAUTH_CIMD_ALLOW_PRIVATE", "must not be enabled in production")
	}
}

// issuerURL checks an OpenID Connect issuer: an absolute http(s) URL
// without query or fragment (OpenID Connect Discovery §2).
func (r *reader) issuerURL(name, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		r.fail(name, "must be an absolute http(s) URL, got %q", raw)
	case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(raw, "?#"):
		r.fail(name, "must not have a query or fragment, got %q", raw)
	}
}

func (r *reader) absoluteURL(name, raw string) {
	if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, "must be an absolute http(s) URL, got %q", raw)
	}
}

func checkDatabaseURL(r *reader, raw string) {
	switch {
	case strings.HasPrefix(raw, "sqlite://"):
		if strings.TrimPrefix(raw, "sqlite://") == "" {
			r.fail("DATABASE_URL", "sqlite:// needs a path or :memory:")
		}
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			r.fail("DATABASE_URL", "not a valid URL: %v", err)
		}
	default:
		r.fail("DATABASE_URL", "must start with sqlite://, postgres:// or postgresql://")
	}
}

// checkRedisURL applies the rules of the Redis client itself, so a URL that
// passes here cannot fail later. The message never repeats the URL, which
// may carry a password.
func checkRedisURL(r *reader, raw string) {
	if raw == "" {
		return
	}
	if _, err := redis.ParseURL(raw); err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		r.fail("REDIS_URL", "must be a redis://, rediss:// or unix:// URL: %v", err)
	}
}

// loadMetrics reads METRICS_ENABLED and METRICS_TOKEN. A token alone turns
// the endpoint on; an explicit METRICS_ENABLED=false wins over a token (with
// a warning), so an operator can switch metrics off without deleting it.
func loadMetrics(r *reader, c *Config) {
	m := &c.Metrics
	m.Token = strings.TrimSpace(r.getenv("METRICS_TOKEN"))
	explicit := strings.TrimSpace(r.getenv("METRICS_ENABLED")) != ""
	m.Enabled = r.boolean("METRICS_ENABLED", m.Token != "")
	if m.Token != "" {
		if len(m.Token) < MinMetricsTokenLength {
			r.fail("METRICS_TOKEN", "must be at least %d characters long", MinMetricsTokenLength)
		}
		for _, ch := range m.Token {
			if ch <= ' ' || ch > '~' {
				r.fail("METRICS_TOKEN", "must consist of printable ASCII characters without spaces (it is sent in an HTTP header)")
				break
			}
		}
	}
	switch {
	case explicit && !m.Enabled && m.Token != "":
		r.warnings = append(r.warnings, "METRICS_TOKEN is set but METRICS_ENABLED=false: /metrics is off")
	case m.Enabled && m.Token == "":
		r.warnings = append(r.warnings, "METRICS_ENABLED without METRICS_TOKEN: /metrics is open to anyone who can reach this port; "+
			"firewall it or set METRICS_TOKEN")
	}
}

// checkSecrets applies the reference's SECRET_KEY and FIRST_SUPERUSER_*
// rules, made strict in production (reference §10, fix 13).
func (r *reader) checkSecrets(c Config) {
	prod := c.Production()
	key := c.Auth.SecretKey
	switch {
	case key == "" && prod:
		r.fail("SECRET_KEY", "is required in production (at least 32 characters of random data)")
	case key == "":
		// main generates and keeps a development key.
	case len(key) < 32:
		r.fail("SECRET_KEY", "must be at least 32 characters long")
	case strings.HasPrefix(key, placeholderSecretPrefix) && prod:
		r.fail("SECRET_KEY", "must be set to a secure random value in production")
	case strings.HasPrefix(key, placeholderSecretPrefix):
		r.warnings = append(r.warnings, "SECRET_KEY is a placeholder; it must be set to a secure random value in production")
	case key == referenceDefaultSecret && prod:
		r.fail("SECRET_KEY", "must be set to a secure random value in production (the documented default is public)")
	}

	if prod {
		if c.FirstSuperuserEmail == "" {
			r.fail("FIRST_SUPERUSER_EMAIL", "is required in production")
		}
		if c.FirstSuperuserPassword == "" {
			r.fail("FIRST_SUPERUSER_PASSWORD", "is required in production")
		}
		if c.DemoMode {
			r.fail("DEMO_MODE", "must not be enabled in production")
		}
	}
	if (c.FirstSuperuserEmail == "") != (c.FirstSuperuserPassword == "") {
		r.fail("FIRST_SUPERUSER_EMAIL", "FIRST_SUPERUSER_EMAIL and FIRST_SUPERUSER_PASSWORD must be set together")
	}
	if pw := c.FirstSuperuserPassword; pw != "" && !(c.DemoMode && (pw == "Demo123!" || pw == "Admin123!")) {
		switch {
		case len([]rune(pw)) < 12:
			r.fail("FIRST_SUPERUSER_PASSWORD", "must be at least 12 characters")
		case slices.Contains(weakSuperuserPasswords, pw):
			r.fail("FIRST_SUPERUSER_PASSWORD", "is too weak")
		case !hasLowerUpperDigit(pw):
			r.fail("FIRST_SUPERUSER_PASSWORD", "must contain lowercase, uppercase and digit characters")
		}
	}
}

func hasLowerUpperDigit(s string) bool {
	var lo, up, di bool
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			lo = true
		case r >= 'A' && r <= 'Z':
			up = true
		case r >= '0' && r <= '9':
			di = true
		}
	}
	return lo && up && di
}

// reader parses typed values and collects problems.
type reader struct {
	getenv   func(string) string
	errs     []string
	warnings []string
}

func (r *reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, name+": "+fmt.Sprintf(format, args...))
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, ok := ParseBool(v)
	if !ok {
		r.fail(name, "must be a boolean (true/false), got %q", v)
		return def
	}
	return b
}

// ParseBool accepts the spellings the reference accepts:
// true/false/1/0/yes/no/on/off/t/f/y/n, case-insensitively.
func ParseBool(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes", "on", "t", "y":
		return true, true
	case "false", "0", "no", "off", "f", "n":
		return false, true
	}
	return false, false
}

func (r *reader) integer(name string, def, lo, hi int) int {
	return r.integerAlias([]string{name}, def, lo, hi)
}

func (r *reader) integerAlias(names []string, def, lo, hi int) int {
	for _, name := range names {
		v := strings.TrimSpace(r.getenv(name))
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			r.fail(name, "must be an integer between %d and %d, got %q", lo, hi, v)
			return def
		}
		return n
	}
	return def
}

// list reads a JSON array of strings, or a comma-separated list.
func (r *reader) list(name string, def []string) []string {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	if strings.HasPrefix(v, "[") {
		var out []string
		if err := json.Unmarshal([]byte(v), &out); err != nil {
			r.fail(name, "must be a JSON list of strings or a comma-separated list: %v", err)
			return def
		}
		return out
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (r *reader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range r.list(name, nil) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				r.fail(name, "%q is neither a CIDR nor an IP address", s)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out
}

// ParseDotEnv parses the content of a .env file: KEY=VALUE lines, optional
// "export " prefix, # comments, single or double quotes around the value.
func ParseDotEnv(content string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(content, "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf(".env line %d: expected KEY=VALUE", i+1)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if q, ok := unquote(v); ok {
			v = q
		} else if j := strings.Index(v, " #"); j >= 0 {
			v = strings.TrimSpace(v[:j])
		}
		out[k] = v
	}
	return out, nil
}

// unquote returns the inside of a value quoted with ' or ", which may be
// followed by a # comment (KEY="value" # comment).
func unquote(v string) (string, bool) {
	if len(v) < 2 || (v[0] != '"' && v[0] != '\'') {
		return "", false
	}
	for i := 1; i < len(v); i++ {
		if v[i] != v[0] {
			continue
		}
		if rest := strings.TrimSpace(v[i+1:]); rest == "" || strings.HasPrefix(rest, "#") {
			return v[1:i], true
		}
	}
	return "", false
}
