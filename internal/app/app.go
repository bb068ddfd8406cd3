// Package app wires Gatehouse's components together. The command and the
// end-to-end tests build the service through New, so tests exercise the
// real wiring, not a copy of it.
package app

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/httpapi"
	"github.com/gatehouse-dev/gatehouse/internal/keys"
	"github.com/gatehouse-dev/gatehouse/internal/mail"
	"github.com/gatehouse-dev/gatehouse/internal/metrics"
	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/pat"
	"github.com/gatehouse-dev/gatehouse/internal/ratelimit"
	"github.com/gatehouse-dev/gatehouse/internal/scheduler"
	"github.com/gatehouse-dev/gatehouse/internal/seal"
	"github.com/gatehouse-dev/gatehouse/internal/social"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/stats"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// App is the wired service.
type App struct {
	Config    config.Config
	Store     *sqlstore.Store
	Hasher    *password.Hasher
	Signer    *token.Signer
	Users     *user.Service
	Auth      *auth.Service
	Orgs      *org.Service
	Social    *social.Service
	OAuth     *oauth.Service
	Keys      *keys.Manager
	Mail      *mail.Queue
	Handler   http.Handler
	Scheduler *scheduler.Scheduler
	// PATs is the personal-access-token service; run PATs.Run in the
	// background to record the tokens' last use.
	PATs *pat.Service
	// Metrics is nil unless METRICS_ENABLED (or METRICS_TOKEN) is set.
	Metrics *metrics.Metrics

	redis *ratelimit.Redis // nil without REDIS_URL
}

// New wires every component on an open, migrated store.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, st *sqlstore.Store) (_ *App, err error) {
	secret, err := secretKey(ctx, cfg, logger, st)
	if err != nil {
		return nil, err
	}
	hasher, err := password.NewHasher(cfg.Password)
	if err != nil {
		return nil, err
	}
	signer := token.NewSigner(secret, cfg.Auth.AccessTokenTTL, cfg.Auth.RefreshTokenTTL)
	var sender mail.Sender = mail.NewLog(logger, cfg.Production())
	if cfg.Mail.Host != "" {
		sender = mail.NewSMTP(cfg.Mail)
	}
	queue := mail.NewQueue(sender, logger, 1000)
	var m *metrics.Metrics
	if cfg.Metrics.Enabled {
		m = metrics.New(metrics.Options{Version: cfg.Version, Environment: cfg.Environment,
			DBStats: st.DB().Stats, Engine: string(st.Engine()), HashSlots: hasher.Slots})
		hasher.OnWait = m.HashWait
	}
	counter, rdb, err := rateCounter(cfg, logger)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && rdb != nil {
			_ = rdb.Close() // a later step failed: nobody will call Close
		}
	}()
	limiter := ratelimit.NewLimiter(counter)
	throttle := ratelimit.NewThrottle(counter, cfg.Auth.LoginMaxFailures, cfg.Auth.LoginFailureWindow)

	users := user.NewService(st, hasher, cfg.DemoMode)
	authSvc := auth.NewService(st, signer, hasher, users, queue, throttle, logger, auth.Options{
		ProjectName: cfg.ProjectName, FrontendURL: cfg.FrontendURL, PasswordResetPath: cfg.PasswordResetPath,
		ResetTokenTTL: cfg.Auth.ResetTokenTTL, BrowserSessionTTL: cfg.Provider.BrowserSessionTTL,
	})
	orgs := org.NewService(st, queue, org.Options{ProjectName: cfg.ProjectName, FrontendURL: cfg.FrontendURL,
		AcceptPath: cfg.InvitationAcceptPath, InvitationTTL: cfg.InvitationTTL})
	tokenBox, err := seal.New(secret, "provider-tokens")
	if err != nil {
		return nil, err
	}
	socialSvc := social.NewService(cfg.Social, st, authSvc, tokenBox)
	if cfg.Provider.Enabled {
		// The built-in login page starts social logins that come back to
		// Gatehouse itself (contract §4.2).
		socialSvc.AllowCallbacksUnder(cfg.Provider.Issuer + httpapi.SocialCallbackPath)
	}
	pagesKey, err := hkdf.Key(sha256.New, []byte(secret), nil, "gatehouse builtin pages v1", 32)
	if err != nil {
		return nil, err
	}
	keyBox, err := seal.New(secret, "signing-keys")
	if err != nil {
		return nil, err
	}
	km := keys.NewManager(st, keyBox, cfg.Provider.KeyRetention)
	if cfg.Provider.Enabled {
		if err := km.Ensure(ctx); err != nil {
			return nil, err
		}
	}
	oauthSvc := oauth.NewService(st, oauth.NewTokenSigner(km, cfg.Provider.Issuer, cfg.Provider.AccessTokenAlg), oauth.Options{
		Issuer: cfg.Provider.Issuer, CodeTTL: cfg.Provider.CodeTTL, Resources: cfg.Provider.Resources,
		DefaultAccessTTL: cfg.Provider.AccessTokenTTL, DefaultRefreshTTL: cfg.Provider.RefreshTokenTTL,
		ConsentTTL: cfg.Provider.ConsentTTL,
	}, logger)
	oauthSvc.UseMetadataDocuments(oauth.NewMetadataFetcher(cfg.Provider.CIMDAllowPrivate))
	pats := pat.NewService(st, pat.Options{DefaultExpiryDays: cfg.PAT.DefaultExpiryDays,
		MaxExpiryDays: cfg.PAT.MaxExpiryDays, AllowNoExpiry: cfg.PAT.AllowNoExpiry}, logger)
	st.KeepPATsOnPasswordChange(!cfg.PAT.RevokeOnPasswordChange)
	deps := httpapi.Deps{Logger: logger, Config: cfg, Users: users, Auth: authSvc, Orgs: orgs, PATs: pats,
		Social: socialSvc, OAuth: oauthSvc, Keys: km, Stats: stats.NewService(st), Limiter: limiter, Ping: st.Ping,
		PagesKey: pagesKey, Metrics: m}
	if rdb != nil {
		deps.RedisPing = rdb.Ping
	}
	handler := httpapi.New(deps)
	sched := scheduler.New(logger, 2, st, scheduler.CleanupJobs(st, cfg.Provider.ConsentTTL)...)
	return &App{Config: cfg, Store: st, Hasher: hasher, Signer: signer, Users: users, Auth: authSvc, Orgs: orgs,
		Social: socialSvc, OAuth: oauthSvc, Keys: km, Mail: queue, Handler: handler, Scheduler: sched, Metrics: m,
		PATs: pats, redis: rdb}, nil
}

// rateCounter returns the counter behind the per-IP limits and the
// per-account login throttle: in memory, or with REDIS_URL in Redis, shared
// by every instance, falling back to memory while Redis does not answer (the
// Redis is returned too, for Close).
func rateCounter(cfg config.Config, logger *slog.Logger) (ratelimit.Counter, *ratelimit.Redis, error) {
	if cfg.Redis.URL == "" {
		return ratelimit.NewMemory(), nil, nil
	}
	rdb, err := ratelimit.NewRedis(cfg.Redis.URL, cfg.Redis.KeyPrefix)
	if err != nil {
		return nil, nil, err
	}
	return ratelimit.NewFailover(rdb, ratelimit.NewMemory(), logger), rdb, nil
}

// Close releases what New opened besides the store (which the caller
// opened and closes): the connections to Redis.
func (a *App) Close() error {
	if a.redis != nil {
		return a.redis.Close()
	}
	return nil
}

// secretKey returns SECRET_KEY, or outside production a random key
// generated once and kept in the database so tokens survive restarts.
func secretKey(ctx context.Context, cfg config.Config, logger *slog.Logger, st *sqlstore.Store) (string, error) {
	if cfg.Auth.SecretKey != "" {
		return cfg.Auth.SecretKey, nil
	}
	if cfg.Production() {
		return "", fmt.Errorf("SECRET_KEY is required in production")
	}
	key, err := st.SettingOrCreate(ctx, "generated_secret_key", token.RandomSecret()+token.RandomSecret(), time.Now())
	if err != nil {
		return "", fmt.Errorf("generated secret key: %w", err)
	}
	logger.Warn("SECRET_KEY is not set: using a generated development key kept in the database; set SECRET_KEY in production")
	return key, nil
}

// EnsureFirstSuperuser creates the configured first superuser, or outside
// production admin@example.com with a random password logged once. With
// DEMO_MODE, a superuser created just now is followed by the demo data
// (reference §8.2): only on the first start, never on later ones.
func (a *App) EnsureFirstSuperuser(ctx context.Context, logger *slog.Logger) error {
	email, pw, generated := a.Config.FirstSuperuserEmail, a.Config.FirstSuperuserPassword, false
	if email == "" {
		if a.Config.Production() {
			return fmt.Errorf("FIRST_SUPERUSER_EMAIL and FIRST_SUPERUSER_PASSWORD are required in production")
		}
		email, pw, generated = "admin@example.com", user.GeneratePassword(), true
	}
	u, created, err := a.Users.EnsureSuperuser(ctx, email, pw)
	if err != nil {
		return fmt.Errorf("first superuser %s: %w", email, err)
	}
	switch {
	case created && generated:
		logger.Warn("created the first superuser with a generated password; it is shown only this once, change it after logging in",
			"email", u.Email, "password", pw)
	case created:
		logger.Info("created the first superuser", "email", u.Email)
	}
	if created && a.Config.DemoMode {
		return a.seedDemo(ctx, logger, u)
	}
	return nil
}

// seedDemo loads the demo organizations and users, acting as admin.
func (a *App) seedDemo(ctx context.Context, logger *slog.Logger, admin user.User) error {
	res, err := demo.Seed(ctx, a.Config, demo.Deps{Store: a.Store, Users: a.Users, Orgs: a.Orgs, Hasher: a.Hasher},
		user.Actor{UserID: admin.ID, IsSuperuser: true})
	if err != nil {
		return fmt.Errorf("DEMO_MODE: loading the demo data: %w", err)
	}
	logger.Info("DEMO_MODE: loaded the demo data", "organizations", res.Organizations, "users", res.Users)
	return nil
}
