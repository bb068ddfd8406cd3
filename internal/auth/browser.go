package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Browser sessions back the cookie of the built-in pages (contract §4.2).
// They are rows of user_sessions with kind 'browser', so users see them in
// GET /sessions/me next to their API sessions and revoke them there; every
// rule that revokes sessions (logout-all, password change and reset,
// deactivation, deletion) ends them too. The cookie holds a random 256-bit
// secret; the row keeps only its SHA-256 (in refresh_token_hash), so a
// database leak yields no usable cookie.

// ErrNoBrowserSession means the cookie names no live browser session:
// unknown, revoked, expired, or its user is gone or inactive.
var ErrNoBrowserSession = errors.New("no browser session")

// BrowserLogin is an opened browser session and the secret for its cookie.
type BrowserLogin struct {
	Secret  string
	Session Session
	User    user.User
}

// LoginBrowser checks email and password with exactly the rules of Login
// (per-account throttle, dummy hashing for unknown emails, inactive users
// refused) and opens a browser session.
func (s *Service) LoginBrowser(ctx context.Context, email, pw string, dev Device) (BrowserLogin, error) {
	u, err := s.checkPassword(ctx, email, pw)
	if err != nil {
		return BrowserLogin{}, err
	}
	return s.OpenBrowserSession(ctx, u, dev)
}

// OpenBrowserSession opens a browser session for a user authenticated
// another way (social login through the built-in pages).
func (s *Service) OpenBrowserSession(ctx context.Context, u user.User, dev Device) (BrowserLogin, error) {
	if !u.IsActive || u.DeletedAt != nil {
		return BrowserLogin{}, ErrAccountInactive
	}
	now := s.Now().UTC()
	secret := token.RandomSecret()
	sess := Session{
		ID: user.NewID(), UserID: u.ID, Kind: KindBrowser, RefreshHash: token.HashSecret(secret),
		DeviceName: nullable(truncate(DeviceName(dev.UserAgent, dev.Fallback), maxDeviceName)),
		DeviceID:   nullable(truncate(dev.DeviceID, maxDeviceID)),
		IPAddress:  nullable(truncate(dev.IP, maxIP)),
		UserAgent:  nullable(truncate(dev.UserAgent, maxUserAgent)),
		IsActive:   true, LastUsedAt: now, ExpiresAt: now.Add(s.browserTTL()), CreatedAt: now, UpdatedAt: now,
	}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return BrowserLogin{}, fmt.Errorf("create browser session: %w", err)
	}
	return BrowserLogin{Secret: secret, Session: sess, User: u}, nil
}

func (s *Service) browserTTL() time.Duration {
	if s.opts.BrowserSessionTTL > 0 {
		return s.opts.BrowserSessionTTL
	}
	return 12 * time.Hour
}

// BrowserUser returns the user and the session of a browser cookie. The
// session must be a browser session, active and unexpired, and its user
// live and active: a session revoked through the API logs the browser out
// on its next request. The session's CreatedAt is the user's auth_time.
func (s *Service) BrowserUser(ctx context.Context, secret string) (user.User, Session, error) {
	if secret == "" || len(secret) > 128 {
		return user.User{}, Session{}, ErrNoBrowserSession
	}
	sess, err := s.store.SessionByRefreshHash(ctx, token.HashSecret(secret))
	if errors.Is(err, ErrSessionNotFound) {
		return user.User{}, Session{}, ErrNoBrowserSession
	}
	if err != nil {
		return user.User{}, Session{}, fmt.Errorf("browser session: %w", err)
	}
	if sess.Kind != KindBrowser || !sess.IsActive || !s.Now().Before(sess.ExpiresAt) {
		return user.User{}, Session{}, ErrNoBrowserSession
	}
	u, err := s.store.UserByID(ctx, sess.UserID)
	if errors.Is(err, user.ErrNotFound) {
		return user.User{}, Session{}, ErrNoBrowserSession
	}
	if err != nil {
		return user.User{}, Session{}, fmt.Errorf("browser session: %w", err)
	}
	if !u.IsActive || u.DeletedAt != nil {
		return user.User{}, Session{}, ErrNoBrowserSession
	}
	// Record the use, as a refresh does for a token session, at most once
	// a minute: /sessions/me lists sessions by their last use.
	if now := s.Now(); now.Sub(sess.LastUsedAt) >= BrowserTouchInterval {
		if err := s.store.TouchSession(ctx, sess.ID, now, now.Add(-BrowserTouchInterval)); err != nil {
			// The session is valid all the same; only its listing is stale.
			s.logger.WarnContext(ctx, "browser session: last use not recorded", "session_id", sess.ID, "err", err)
		} else {
			sess.LastUsedAt = now
		}
	}
	return u, sess, nil
}

// BrowserTouchInterval is how often, at most, a browser session's last use
// is written.
const BrowserTouchInterval = time.Minute

// LogoutBrowser revokes the browser session of a cookie. Unknown cookies
// and sessions of another kind are ignored.
func (s *Service) LogoutBrowser(ctx context.Context, secret string) error {
	if secret == "" || len(secret) > 128 {
		return nil
	}
	sess, err := s.store.SessionByRefreshHash(ctx, token.HashSecret(secret))
	if errors.Is(err, ErrSessionNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("browser logout: %w", err)
	}
	if sess.Kind != KindBrowser {
		return nil
	}
	if err := s.store.RevokeSession(ctx, sess.ID, s.Now()); err != nil {
		return fmt.Errorf("browser logout: %w", err)
	}
	return nil
}
