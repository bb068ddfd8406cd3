// Package auth is first-party authentication: password login, device
// sessions with rotating refresh tokens, bearer-token authentication,
// logout, and password reset by email.
package auth

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/mail"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Session is one logged-in device (a row of user_sessions).
type Session struct {
	ID     string
	UserID string
	// Kind is KindAPI for token sessions (RefreshHash is the SHA-256 of the
	// refresh token's jti) and KindBrowser for the built-in pages' cookie
	// (RefreshHash is the SHA-256 of the cookie's value).
	Kind            string
	RefreshHash     string
	DeviceName      *string
	DeviceID        *string
	IPAddress       *string
	UserAgent       *string
	LocationCity    *string
	LocationCountry *string
	IsActive        bool
	LastUsedAt      time.Time
	ExpiresAt       time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Session kinds (user_sessions.kind).
const (
	KindAPI     = "api"
	KindBrowser = "browser"
)

// ResetToken is a pending password reset; only its hash is stored.
type ResetToken struct {
	ID        string
	UserID    string
	Hash      string
	ExpiresAt time.Time
	UsedAt    *time.Time
	CreatedAt time.Time
}

// Tokens is the result of a login or a refresh.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    int // seconds
	User         user.User
	SessionID    string
}

// Store is what auth needs from storage.
type Store interface {
	UserByEmail(ctx context.Context, email string) (user.User, error)
	UserByID(ctx context.Context, id string) (user.User, error)
	// UpdatePasswordHash replaces oldHash by newHash (hash upgrade at login);
	// it does nothing when the hash changed meanwhile.
	UpdatePasswordHash(ctx context.Context, userID, oldHash, newHash string, now time.Time) error

	CreateSession(ctx context.Context, s Session) error
	// TokenSession is SessionWithUser for token checks: only the session's
	// ID, UserID, Kind, IsActive and RefreshHash are filled in.
	TokenSession(ctx context.Context, sessionID string) (Session, user.User, error)
	// SessionWithUser returns a session and its user; ErrSessionNotFound if
	// either is missing.
	SessionWithUser(ctx context.Context, sessionID string) (Session, user.User, error)
	SessionByID(ctx context.Context, id string) (Session, error)
	SessionByRefreshHash(ctx context.Context, hash string) (Session, error)
	// RotateRefresh swaps the refresh hash of an active, unexpired session
	// if it still equals oldHash: exactly one of concurrent rotations wins.
	RotateRefresh(ctx context.Context, sessionID, oldHash, newHash string, expiresAt, now time.Time) (bool, error)
	RevokeSession(ctx context.Context, id string, now time.Time) error
	// TouchSession sets a session's last use to now if it is older than
	// staleBefore (so concurrent requests write it once).
	TouchSession(ctx context.Context, id string, now, staleBefore time.Time) error
	RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int, error)
	ActiveSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
	DeleteInactiveExpiredSessions(ctx context.Context, userID string, now time.Time) (int, error)
	// OwnedSessions returns a page of the sessions of live (not deleted)
	// users whose is_active flag is q.Active, most recently used first, with
	// their owners, and the total count.
	OwnedSessions(ctx context.Context, q SessionQuery) ([]OwnedSession, int, error)

	CreateResetToken(ctx context.Context, t ResetToken) error
	ResetTokenByHash(ctx context.Context, hash string) (ResetToken, error)
	// ResetPassword consumes the token (single use), sets the password,
	// revokes every session and drops other pending reset tokens.
	ResetPassword(ctx context.Context, tokenHash, userID, newHash string, now time.Time) error
}

// Mailer queues an email without blocking.
type Mailer interface {
	Enqueue(m mail.Message)
}

// Throttle counts failed logins per account (fix 42). Blocked reports how
// long the account key must wait; Fail records a failure; Reset clears it.
type Throttle interface {
	Blocked(ctx context.Context, key string) (time.Duration, bool)
	Fail(ctx context.Context, key string)
	Reset(ctx context.Context, key string)
}

// Errors with the reference's codes and messages.
var (
	ErrInvalidCredentials = apperr.New(apperr.Unauthenticated, apperr.CodeInvalidCredentials, "Invalid email or password")
	ErrAccountInactive    = apperr.New(apperr.Unauthenticated, apperr.CodeInvalidCredentials, "User account is inactive")
	ErrNotAuthenticated   = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Not authenticated")
	ErrTokenExpired       = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Token expired")
	ErrInvalidToken       = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Could not validate credentials")
	ErrInactiveUser       = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Inactive user")
	ErrRefreshExpired     = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Refresh token has expired. Please log in again.")
	ErrRefreshInvalid     = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Invalid refresh token")
	ErrSessionRevoked     = apperr.New(apperr.Unauthenticated, apperr.CodeAuthRequired, "Session has been revoked. Please log in again.")
	ErrSessionNotFound    = apperr.New(apperr.NotFound, apperr.CodeNotFound, "Session not found")
	ErrNotOwnSession      = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "You can only revoke your own sessions")
	ErrLogoutOtherSession = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "You can only logout your own sessions")
	ErrResetTokenInvalid  = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "Invalid or expired password reset token")
	ErrResetInactive      = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "User account is inactive")
	ErrTooManyAttempts    = apperr.New(apperr.RateLimited, apperr.CodeRateLimited, "Too many failed login attempts for this account. Please try again later.")
)
