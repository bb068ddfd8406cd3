package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/mail"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Options configure the Service.
type Options struct {
	ProjectName       string
	FrontendURL       string // base of the reset link
	PasswordResetPath string
	ResetTokenTTL     time.Duration
	// BrowserSessionTTL is the lifetime of a browser session (the built-in
	// pages' cookie, OAUTH_BROWSER_SESSION_HOURS).
	BrowserSessionTTL time.Duration
}

// Service implements first-party authentication.
type Service struct {
	store    Store
	signer   *token.Signer
	hasher   *password.Hasher
	users    *user.Service
	mailer   Mailer
	throttle Throttle
	opts     Options
	logger   *slog.Logger
	Now      func() time.Time
}

// NewService wires the authentication service.
func NewService(store Store, signer *token.Signer, hasher *password.Hasher, users *user.Service,
	mailer Mailer, throttle Throttle, logger *slog.Logger, opts Options) *Service {
	return &Service{store: store, signer: signer, hasher: hasher, users: users, mailer: mailer,
		throttle: throttle, logger: logger, opts: opts, Now: time.Now}
}

// Login checks email and password and opens a device session. Unknown
// emails, deleted users and accounts without a password all answer like a
// wrong password, after the same hashing work (fixes 3, 12, 34).
func (s *Service) Login(ctx context.Context, email, pw string, dev Device) (Tokens, error) {
	u, err := s.checkPassword(ctx, email, pw)
	if err != nil {
		return Tokens{}, err
	}
	return s.openSession(ctx, u, dev)
}

// checkPassword applies the rules of every password login (API and
// browser): the per-account throttle, the same hashing work for unknown
// accounts, inactive accounts refused after the password matched, and the
// upgrade of outdated hashes.
func (s *Service) checkPassword(ctx context.Context, email, pw string) (user.User, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if strings.ContainsRune(key, 0) || !utf8.ValidString(key) || len(key) > user.MaxEmailLength {
		// Cannot name an account (the form login does not validate emails):
		// answer like an unknown email, after the same work.
		if err := s.hasher.VerifyDummy(ctx, pw); err != nil {
			return user.User{}, err
		}
		return user.User{}, ErrInvalidCredentials
	}
	if wait, blocked := s.throttle.Blocked(ctx, key); blocked {
		e := ErrTooManyAttempts.WithMessage("%s", ErrTooManyAttempts.Message)
		e.RetryAfter = int(wait.Seconds() + 0.999)
		return user.User{}, e
	}
	u, err := s.store.UserByEmail(ctx, key)
	if errors.Is(err, user.ErrNotFound) {
		if err := s.hasher.VerifyDummy(ctx, pw); err != nil {
			return user.User{}, err
		}
		s.throttle.Fail(ctx, key)
		return user.User{}, ErrInvalidCredentials
	}
	if err != nil {
		return user.User{}, fmt.Errorf("login: %w", err)
	}
	rehash, err := s.hasher.Verify(ctx, u.PasswordHash, pw)
	if errors.Is(err, password.ErrMismatch) {
		s.throttle.Fail(ctx, key)
		return user.User{}, ErrInvalidCredentials
	}
	if err != nil {
		return user.User{}, fmt.Errorf("login: %w", err)
	}
	s.throttle.Reset(ctx, key)
	if !u.IsActive {
		return user.User{}, ErrAccountInactive
	}
	if rehash {
		s.upgradeHash(ctx, u, pw)
	}
	return u, nil
}

// upgradeHash replaces a hash made with old settings. Failure only delays
// the upgrade to the next login, so it is logged, not returned.
func (s *Service) upgradeHash(ctx context.Context, u user.User, pw string) {
	h, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		err = s.store.UpdatePasswordHash(ctx, u.ID, u.PasswordHash, h, s.Now())
	}
	if err != nil {
		s.logger.WarnContext(ctx, "password hash upgrade failed", "user_id", u.ID, "err", err)
	}
}

// OpenSession opens a device session for a user authenticated another way
// (social login), exactly like a password login does.
func (s *Service) OpenSession(ctx context.Context, u user.User, dev Device) (Tokens, error) {
	return s.openSession(ctx, u, dev)
}

func (s *Service) openSession(ctx context.Context, u user.User, dev Device) (Tokens, error) {
	now := s.Now().UTC()
	sid := user.NewID()
	refresh, jti, exp, err := s.signer.IssueRefresh(u.ID, sid)
	if err != nil {
		return Tokens{}, fmt.Errorf("issue refresh token: %w", err)
	}
	sess := Session{
		ID: sid, UserID: u.ID, Kind: KindAPI, RefreshHash: token.HashSecret(jti),
		DeviceName: nullable(truncate(DeviceName(dev.UserAgent, dev.Fallback), maxDeviceName)),
		DeviceID:   nullable(truncate(dev.DeviceID, maxDeviceID)),
		IPAddress:  nullable(truncate(dev.IP, maxIP)),
		UserAgent:  nullable(truncate(dev.UserAgent, maxUserAgent)),
		IsActive:   true, LastUsedAt: now, ExpiresAt: exp, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		// Never hand out tokens without a session behind them (fix 23).
		return Tokens{}, fmt.Errorf("create session: %w", err)
	}
	return s.issue(u, sid, refresh)
}

func (s *Service) issue(u user.User, sid, refresh string) (Tokens, error) {
	access, _, err := s.signer.IssueAccess(token.AccessInput{
		UserID: u.ID, SessionID: sid, Email: u.Email, FirstName: u.FirstName, IsSuperuser: u.IsSuperuser,
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("issue access token: %w", err)
	}
	return Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: int(s.signer.AccessTTL().Seconds()), User: u, SessionID: sid}, nil
}

// Refresh rotates a refresh token: the session's stored hash is swapped in
// one statement, so of two concurrent refreshes with the same token exactly
// one succeeds, and the old token stops working.
func (s *Service) Refresh(ctx context.Context, raw string) (Tokens, error) {
	c, err := s.signer.Parse(raw, token.TypeRefresh)
	if errors.Is(err, token.ErrExpired) {
		return Tokens{}, ErrRefreshExpired
	}
	if err != nil {
		return Tokens{}, ErrRefreshInvalid
	}
	sess, u, err := s.store.TokenSession(ctx, c.SessionID)
	if errors.Is(err, ErrSessionNotFound) {
		return Tokens{}, ErrSessionRevoked
	}
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if sess.UserID != c.Subject || sess.Kind == KindBrowser || u.DeletedAt != nil || !u.IsActive {
		return Tokens{}, ErrRefreshInvalid
	}
	oldHash := token.HashSecret(c.ID)
	if !sess.IsActive || !secureEqual(sess.RefreshHash, oldHash) {
		return Tokens{}, ErrSessionRevoked
	}
	refresh, jti, exp, err := s.signer.IssueRefresh(u.ID, sess.ID)
	if err != nil {
		return Tokens{}, fmt.Errorf("issue refresh token: %w", err)
	}
	ok, err := s.store.RotateRefresh(ctx, sess.ID, oldHash, token.HashSecret(jti), exp, s.Now())
	if err != nil {
		return Tokens{}, fmt.Errorf("refresh: %w", err)
	}
	if !ok {
		return Tokens{}, ErrSessionRevoked
	}
	return s.issue(u, sess.ID, refresh)
}

// Authenticate verifies a first-party access token and returns its user and
// the actor for service calls. The session named by sid must still be
// active, so revocation takes effect on the next request (fix 2, 22).
func (s *Service) Authenticate(ctx context.Context, raw string) (user.User, user.Actor, error) {
	c, err := s.signer.Parse(raw, token.TypeAccess)
	if errors.Is(err, token.ErrExpired) {
		return user.User{}, user.Actor{}, ErrTokenExpired
	}
	if err != nil {
		return user.User{}, user.Actor{}, ErrInvalidToken
	}
	sess, u, err := s.store.TokenSession(ctx, c.SessionID)
	if errors.Is(err, ErrSessionNotFound) {
		return user.User{}, user.Actor{}, ErrInvalidToken
	}
	if err != nil {
		return user.User{}, user.Actor{}, fmt.Errorf("authenticate: %w", err)
	}
	switch {
	case sess.UserID != c.Subject, sess.Kind == KindBrowser, u.DeletedAt != nil:
		// A browser session (the pages' cookie) never backs a bearer token.
		return user.User{}, user.Actor{}, ErrInvalidToken
	case !u.IsActive:
		return user.User{}, user.Actor{}, ErrInactiveUser
	case !sess.IsActive:
		return user.User{}, user.Actor{}, ErrSessionRevoked
	}
	return u, user.Actor{UserID: u.ID, SessionID: sess.ID, IsSuperuser: u.IsSuperuser}, nil
}

// Logout revokes the session of a refresh token. Invalid, expired or unknown
// tokens are ignored (200, as the reference); another user's session is
// refused.
func (s *Service) Logout(ctx context.Context, actor user.Actor, raw string) error {
	c, err := s.signer.Parse(raw, token.TypeRefresh)
	if err != nil && !errors.Is(err, token.ErrExpired) {
		return nil
	}
	sess, err := s.store.SessionByRefreshHash(ctx, token.HashSecret(c.ID))
	if errors.Is(err, ErrSessionNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	if sess.UserID != actor.UserID {
		return ErrLogoutOtherSession
	}
	if err := s.store.RevokeSession(ctx, sess.ID, s.Now()); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}

// LogoutAll revokes every active session of the actor and returns how many.
func (s *Service) LogoutAll(ctx context.Context, actor user.Actor) (int, error) {
	n, err := s.store.RevokeUserSessions(ctx, actor.UserID, s.Now())
	if err != nil {
		return 0, fmt.Errorf("logout all: %w", err)
	}
	return n, nil
}

// Sessions lists the actor's active sessions, the calling session first,
// then by last use.
func (s *Service) Sessions(ctx context.Context, actor user.Actor) ([]Session, error) {
	list, err := s.store.ActiveSessions(ctx, actor.UserID, s.Now())
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	for i, sess := range list {
		if sess.ID == actor.SessionID && i > 0 {
			copy(list[1:i+1], list[:i])
			list[0] = sess
			break
		}
	}
	return list, nil
}

// LoginTime is when the actor logged in: the creation of the session its
// token belongs to (refreshes keep the session). OpenID Connect's auth_time.
func (s *Service) LoginTime(ctx context.Context, actor user.Actor) (time.Time, error) {
	sess, err := s.store.SessionByID(ctx, actor.SessionID)
	if err != nil {
		return time.Time{}, fmt.Errorf("login time: %w", err)
	}
	return sess.CreatedAt, nil
}

// RevokeSession revokes one of the actor's own sessions (superusers too may
// only revoke their own here; the admin API revokes anyone's).
func (s *Service) RevokeSession(ctx context.Context, actor user.Actor, id string) (Session, error) {
	sess, err := s.store.SessionByID(ctx, id)
	if errors.Is(err, ErrSessionNotFound) {
		return Session{}, ErrSessionNotFound.WithMessage("Session %s not found", id)
	}
	if err != nil {
		return Session{}, fmt.Errorf("revoke session: %w", err)
	}
	if sess.UserID != actor.UserID {
		return Session{}, ErrNotOwnSession
	}
	if err := s.store.RevokeSession(ctx, sess.ID, s.Now()); err != nil {
		return Session{}, fmt.Errorf("revoke session: %w", err)
	}
	return sess, nil
}

// CleanupExpiredSessions deletes the actor's sessions that are both revoked
// and expired, and returns how many.
func (s *Service) CleanupExpiredSessions(ctx context.Context, actor user.Actor) (int, error) {
	n, err := s.store.DeleteInactiveExpiredSessions(ctx, actor.UserID, s.Now())
	if err != nil {
		return 0, fmt.Errorf("cleanup sessions: %w", err)
	}
	return n, nil
}

// RequestPasswordReset mails a single-use reset link when email belongs to an
// active account. It never reports whether it did (account enumeration).
func (s *Service) RequestPasswordReset(ctx context.Context, email string) error {
	u, err := s.store.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if errors.Is(err, user.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("password reset request: %w", err)
	}
	if !u.IsActive {
		return nil
	}
	secret := token.RandomSecret()
	now := s.Now().UTC()
	t := ResetToken{ID: user.NewID(), UserID: u.ID, Hash: token.HashSecret(secret), ExpiresAt: now.Add(s.opts.ResetTokenTTL), CreatedAt: now}
	if err := s.store.CreateResetToken(ctx, t); err != nil {
		return fmt.Errorf("password reset request: %w", err)
	}
	link := s.opts.FrontendURL + s.opts.PasswordResetPath + "?token=" + url.QueryEscape(secret)
	s.mailer.Enqueue(mail.PasswordReset(u.Email, u.FirstName, s.opts.ProjectName, link, int(s.opts.ResetTokenTTL.Minutes())))
	return nil
}

// ConfirmPasswordReset sets a new password with a reset token. The token is
// consumed atomically with the password change, every session of the user is
// revoked, and any other pending reset token is invalidated (fixes 5, 6).
func (s *Service) ConfirmPasswordReset(ctx context.Context, secret, newPassword string) error {
	if e := s.users.CheckPassword("new_password", newPassword); e != nil {
		return e
	}
	hash := token.HashSecret(secret)
	t, err := s.store.ResetTokenByHash(ctx, hash)
	if errors.Is(err, ErrResetTokenInvalid) {
		return ErrResetTokenInvalid
	}
	if err != nil {
		return fmt.Errorf("password reset: %w", err)
	}
	now := s.Now()
	if t.UsedAt != nil || !now.Before(t.ExpiresAt) {
		return ErrResetTokenInvalid
	}
	u, err := s.store.UserByID(ctx, t.UserID)
	if errors.Is(err, user.ErrNotFound) {
		return ErrResetTokenInvalid
	}
	if err != nil {
		return fmt.Errorf("password reset: %w", err)
	}
	if !u.IsActive {
		return ErrResetInactive
	}
	newHash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return fmt.Errorf("password reset: %w", err)
	}
	if err := s.store.ResetPassword(ctx, hash, u.ID, newHash, now); err != nil {
		return err
	}
	return nil
}

// BearerToken extracts the token of an Authorization header ("Bearer x",
// scheme case-insensitive); ok is false when there is none.
func BearerToken(header string) (string, bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(header), " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
