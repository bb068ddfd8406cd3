package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

const sessionColumns = `id, user_id, refresh_token_hash, device_name, device_id, ip_address, user_agent,
	location_city, location_country, is_active, last_used_at, expires_at, created_at, updated_at, kind`

func sessionColumnsOf(alias string) string { return prefixColumns(sessionColumns, alias) }

// sessionRow holds a user_sessions row while scanning.
type sessionRow struct {
	s                                        auth.Session
	name, deviceID, ip, agent, city, country sql.NullString
}

func (r *sessionRow) dest() []any {
	return []any{&r.s.ID, &r.s.UserID, &r.s.RefreshHash, &r.name, &r.deviceID, &r.ip, &r.agent,
		&r.city, &r.country, &r.s.IsActive, &r.s.LastUsedAt, &r.s.ExpiresAt, &r.s.CreatedAt, &r.s.UpdatedAt, &r.s.Kind}
}

func (r *sessionRow) session() auth.Session {
	s := r.s
	s.DeviceName, s.DeviceID, s.IPAddress, s.UserAgent = strPtr(r.name), strPtr(r.deviceID), strPtr(r.ip), strPtr(r.agent)
	s.LocationCity, s.LocationCountry = strPtr(r.city), strPtr(r.country)
	s.LastUsedAt, s.ExpiresAt = s.LastUsedAt.UTC(), s.ExpiresAt.UTC()
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return s
}

func scanSession(rs rowScanner) (auth.Session, error) {
	var r sessionRow
	if err := rs.Scan(r.dest()...); err != nil {
		return auth.Session{}, err
	}
	return r.session(), nil
}

// CreateSession inserts a device session (kind 'api' unless sess.Kind says
// otherwise).
func (s *Store) CreateSession(ctx context.Context, sess auth.Session) error {
	kind := sess.Kind
	if kind == "" {
		kind = auth.KindAPI
	}
	_, err := s.q.ExecContext(ctx, `INSERT INTO user_sessions (`+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		sess.ID, sess.UserID, sess.RefreshHash, nullStr(sess.DeviceName), nullStr(sess.DeviceID),
		nullStr(sess.IPAddress), nullStr(sess.UserAgent), nullStr(sess.LocationCity), nullStr(sess.LocationCountry),
		sess.IsActive, utc(sess.LastUsedAt), utc(sess.ExpiresAt), utc(sess.CreatedAt), utc(sess.UpdatedAt), kind)
	if isForeignKeyViolation(err) {
		return user.ErrNotFound
	}
	return wrap("create session", err)
}

// TokenSession loads what checking a token needs, on every authenticated
// request: the session's owner, kind, state and refresh hash, and its user
// (deleted users included, so the caller can tell them apart). The other
// session columns stay unread (auth.Session leaves them zero): this is the
// hottest query of the service, and every column scanned costs.
func (s *Store) TokenSession(ctx context.Context, sessionID string) (auth.Session, user.User, error) {
	sess := auth.Session{ID: sessionID}
	var ur userRow
	err := s.q.QueryRowContext(ctx, `SELECT s.user_id, s.kind, s.is_active, s.refresh_token_hash,
			u.id, u.email, u.password_hash, u.first_name, u.last_name, u.phone_number, u.is_active, u.is_superuser,
			u.preferences, u.locale, u.password_changed_at, u.created_at, u.updated_at, u.deleted_at
		FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`, sessionID).
		Scan(append([]any{&sess.UserID, &sess.Kind, &sess.IsActive, &sess.RefreshHash}, ur.dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Session{}, user.User{}, auth.ErrSessionNotFound
	}
	if err != nil {
		return auth.Session{}, user.User{}, wrap("token session", err)
	}
	return sess, ur.user(), nil
}

// SessionWithUser loads a session and its user (deleted users included, so
// the caller can tell them apart) in one query.
func (s *Store) SessionWithUser(ctx context.Context, sessionID string) (auth.Session, user.User, error) {
	var (
		sr sessionRow
		ur userRow
	)
	err := s.q.QueryRowContext(ctx, `SELECT `+sessionColumnsOf("s")+`, `+userColumnsOf("u")+`
		FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`, sessionID).
		Scan(append(sr.dest(), ur.dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Session{}, user.User{}, auth.ErrSessionNotFound
	}
	if err != nil {
		return auth.Session{}, user.User{}, wrap("session with user", err)
	}
	return sr.session(), ur.user(), nil
}

// SessionByID returns a session.
func (s *Store) SessionByID(ctx context.Context, id string) (auth.Session, error) {
	sess, err := scanSession(s.q.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM user_sessions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	return sess, wrap("session by id", err)
}

// SessionByRefreshHash returns the session whose current refresh token has
// this hash.
func (s *Store) SessionByRefreshHash(ctx context.Context, hash string) (auth.Session, error) {
	sess, err := scanSession(s.q.QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM user_sessions WHERE refresh_token_hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return auth.Session{}, auth.ErrSessionNotFound
	}
	return sess, wrap("session by refresh hash", err)
}

// RotateRefresh swaps the refresh hash in one compare-and-set statement.
func (s *Store) RotateRefresh(ctx context.Context, sessionID, oldHash, newHash string, expiresAt, now time.Time) (bool, error) {
	res, err := s.q.ExecContext(ctx, `UPDATE user_sessions
		SET refresh_token_hash = $3, expires_at = $4, last_used_at = $5, updated_at = $5
		WHERE id = $1 AND refresh_token_hash = $2 AND is_active = TRUE AND expires_at > $5`,
		sessionID, oldHash, newHash, utc(expiresAt), utc(now))
	if err != nil {
		return false, wrap("rotate refresh token", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("rotate refresh token", err)
}

// RevokeSession deactivates one session (already revoked ones stay revoked).
func (s *Store) RevokeSession(ctx context.Context, id string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE user_sessions SET is_active = FALSE, updated_at = $2 WHERE id = $1`, id, utc(now))
	return wrap("revoke session", err)
}

// RevokeUserSessions deactivates every active session of a user and
// returns how many there were. The user's authorization-server grants
// (provider refresh tokens, and with them their access tokens) are revoked
// too: every caller (logout-all, password reset, deactivation, deletion)
// means "this user's credentials stop working".
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `UPDATE user_sessions SET is_active = FALSE, updated_at = $2
		WHERE user_id = $1 AND is_active = TRUE`, userID, utc(now))
	if err != nil {
		return 0, wrap("revoke user sessions", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap("revoke user sessions", err)
	}
	if _, err := s.RevokeUserProviderTokens(ctx, userID, now); err != nil {
		return 0, err
	}
	return int(n), nil
}

// TouchSession sets a session's last use to now if it is older than
// staleBefore.
func (s *Store) TouchSession(ctx context.Context, id string, now, staleBefore time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE user_sessions SET last_used_at = $2
		WHERE id = $1 AND last_used_at < $3`, id, utc(now), utc(staleBefore))
	return wrap("touch session", err)
}

// ActiveSessions lists a user's active, unexpired sessions, most recently
// used first.
func (s *Store) ActiveSessions(ctx context.Context, userID string, now time.Time) ([]auth.Session, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+sessionColumns+` FROM user_sessions
		WHERE user_id = $1 AND is_active = TRUE AND expires_at > $2
		ORDER BY last_used_at DESC, id DESC`, userID, utc(now))
	if err != nil {
		return nil, wrap("list sessions", err)
	}
	defer rows.Close()
	out := []auth.Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, wrap("scan session", err)
		}
		out = append(out, sess)
	}
	return out, wrap("list sessions", rows.Err())
}

// DeleteInactiveExpiredSessions hard-deletes a user's sessions that are both
// revoked and expired.
func (s *Store) DeleteInactiveExpiredSessions(ctx context.Context, userID string, now time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM user_sessions
		WHERE user_id = $1 AND is_active = FALSE AND expires_at < $2`, userID, utc(now))
	if err != nil {
		return 0, wrap("delete expired sessions", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("delete expired sessions", err)
}

// PurgeSessions deletes sessions that expired before cutoff, and revoked
// sessions last touched before cutoff, whatever their owner (scheduled job).
func (s *Store) PurgeSessions(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM user_sessions
		WHERE expires_at < $1 OR (is_active = FALSE AND updated_at < $1)`, utc(cutoff))
	if err != nil {
		return 0, wrap("purge sessions", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("purge sessions", err)
}
