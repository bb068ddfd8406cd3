package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
)

// CreateResetToken stores a password-reset token (its hash only).
func (s *Store) CreateResetToken(ctx context.Context, t auth.ResetToken) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO password_reset_tokens (id, user_id, token_hash, expires_at, used_at, created_at)
		VALUES ($1, $2, $3, $4, NULL, $5)`, t.ID, t.UserID, t.Hash, utc(t.ExpiresAt), utc(t.CreatedAt))
	return wrap("create reset token", err)
}

// ResetTokenByHash returns a reset token, or auth.ErrResetTokenInvalid.
func (s *Store) ResetTokenByHash(ctx context.Context, hash string) (auth.ResetToken, error) {
	var (
		t    auth.ResetToken
		used sql.NullTime
	)
	err := s.q.QueryRowContext(ctx, `SELECT id, user_id, token_hash, expires_at, used_at, created_at
		FROM password_reset_tokens WHERE token_hash = $1`, hash).
		Scan(&t.ID, &t.UserID, &t.Hash, &t.ExpiresAt, &used, &t.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return auth.ResetToken{}, auth.ErrResetTokenInvalid
	}
	if err != nil {
		return auth.ResetToken{}, wrap("reset token by hash", err)
	}
	t.UsedAt = timePtr(used)
	t.ExpiresAt, t.CreatedAt = t.ExpiresAt.UTC(), t.CreatedAt.UTC()
	return t, nil
}

// ResetPassword consumes the token, sets the password of an active live
// user, revokes all their sessions (and personal access tokens, unless
// KeepPATsOnPasswordChange) and drops their other reset tokens, in
// one transaction. A token already consumed (or a user gone meanwhile) gives
// auth.ErrResetTokenInvalid and changes nothing.
func (s *Store) ResetPassword(ctx context.Context, tokenHash, userID, newHash string, now time.Time) error {
	return s.InTx(ctx, func(tx *Store) error {
		res, err := tx.q.ExecContext(ctx, `UPDATE password_reset_tokens SET used_at = $3
			WHERE token_hash = $1 AND user_id = $2 AND used_at IS NULL AND expires_at > $3`, tokenHash, userID, utc(now))
		if err != nil {
			return wrap("consume reset token", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return auth.ErrResetTokenInvalid
		}
		res, err = tx.q.ExecContext(ctx, `UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3
			WHERE id = $1 AND deleted_at IS NULL AND is_active = TRUE`, userID, newHash, utc(now))
		if err != nil {
			return wrap("reset password", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return auth.ErrResetTokenInvalid
		}
		if _, err := tx.RevokeUserSessions(ctx, userID, now); err != nil {
			return err
		}
		if err := tx.revokePATsOnPasswordChange(ctx, userID, now); err != nil {
			return err
		}
		_, err = tx.q.ExecContext(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, userID)
		return wrap("drop reset tokens", err)
	})
}

// PurgeResetTokens deletes reset tokens that expired before cutoff.
func (s *Store) PurgeResetTokens(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM password_reset_tokens WHERE expires_at < $1`, utc(cutoff))
	if err != nil {
		return 0, wrap("purge reset tokens", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("purge reset tokens", err)
}
