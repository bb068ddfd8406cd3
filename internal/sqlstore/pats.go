package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/pat"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Personal access tokens (internal/pat): table personal_access_tokens,
// migration 00006. Scopes are stored space-separated in canonical order.

var _ pat.Store = (*Store)(nil)

const patColumns = `id, user_id, name, token_hash, prefix, scopes, expires_at, last_used_at, revoked_at, created_at`

func patColumnsOf(alias string) string { return prefixColumns(patColumns, alias) }

// patRow holds a personal_access_tokens row while scanning.
type patRow struct {
	t                      pat.Token
	scopes                 string
	expires, used, revoked sql.NullTime
}

// dest returns the scan destinations, in patColumns order.
func (r *patRow) dest() []any {
	return []any{&r.t.ID, &r.t.UserID, &r.t.Name, &r.t.Hash, &r.t.Prefix, &r.scopes, &r.expires, &r.used, &r.revoked, &r.t.CreatedAt}
}

func (r *patRow) token() pat.Token {
	t := r.t
	t.Scopes = strings.Fields(r.scopes)
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = timePtr(r.expires), timePtr(r.used), timePtr(r.revoked)
	t.CreatedAt = t.CreatedAt.UTC()
	return t
}

// livePAT is the condition of a token that works at $now (the owner's
// state aside).
func livePAT(alias, now string) string {
	return `(` + alias + `.revoked_at IS NULL AND (` + alias + `.expires_at IS NULL OR ` + alias + `.expires_at > ` + now + `))`
}

// CreatePAT inserts t unless its owner already holds maxLive live tokens,
// in one transaction that locks the owner's row first: concurrent creations
// for one user are serialized, so the limit holds exactly, and a user being
// deleted or deactivated meanwhile gets no new token.
func (s *Store) CreatePAT(ctx context.Context, t pat.Token, maxLive int, now time.Time) error {
	return s.InTx(ctx, func(tx *Store) error {
		var id string
		err := tx.q.QueryRowContext(ctx, `SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL AND is_active = TRUE`+tx.forUpdate(),
			t.UserID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return user.ErrNotFound
		}
		if err != nil {
			return wrap("lock token owner", err)
		}
		var live int
		if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM personal_access_tokens t
			WHERE t.user_id = $1 AND `+livePAT("t", "$2"), t.UserID, utc(now)).Scan(&live); err != nil {
			return wrap("count live tokens", err)
		}
		if live >= maxLive {
			return pat.ErrTooMany
		}
		_, err = tx.q.ExecContext(ctx, `INSERT INTO personal_access_tokens (`+patColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8)`,
			t.ID, t.UserID, t.Name, t.Hash, t.Prefix, strings.Join(t.Scopes, " "), nullTime(t.ExpiresAt), utc(t.CreatedAt))
		return wrap("create personal access token", err)
	})
}

// PATByHash loads a token by its digest with its owner (deleted users
// included, so the caller can tell them apart) in one query: what every
// request authenticated by a personal access token reads.
func (s *Store) PATByHash(ctx context.Context, hash string) (pat.Token, user.User, error) {
	var (
		r  patRow
		ur userRow
	)
	err := s.q.QueryRowContext(ctx, `SELECT `+patColumnsOf("t")+`, `+userColumnsOf("u")+`
		FROM personal_access_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1`, hash).
		Scan(append(r.dest(), ur.dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return pat.Token{}, user.User{}, pat.ErrNotFound
	}
	if err != nil {
		return pat.Token{}, user.User{}, wrap("personal access token by hash", err)
	}
	return r.token(), ur.user(), nil
}

// UserPATs lists a user's live tokens at now, newest first.
func (s *Store) UserPATs(ctx context.Context, userID string, now time.Time) ([]pat.Token, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+patColumnsOf("t")+` FROM personal_access_tokens t
		WHERE t.user_id = $1 AND `+livePAT("t", "$2")+` ORDER BY t.created_at DESC, t.id DESC`, userID, utc(now))
	if err != nil {
		return nil, wrap("list personal access tokens", err)
	}
	defer rows.Close()
	out := []pat.Token{}
	for rows.Next() {
		var r patRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, wrap("scan personal access token", err)
		}
		out = append(out, r.token())
	}
	return out, wrap("list personal access tokens", rows.Err())
}

// PATs returns a page of the tokens of live (not deleted) users, live or
// not as q.Live says, optionally of one user, newest first, with the total.
func (s *Store) PATs(ctx context.Context, q pat.ListQuery) ([]pat.Owned, int, error) {
	if q.UserID != "" && !validUUID(q.UserID) {
		return []pat.Owned{}, 0, nil
	}
	args := []any{utc(q.Now)}
	cond := livePAT("t", "$1")
	if !q.Live {
		cond = `NOT ` + cond
	}
	if q.UserID != "" {
		args = append(args, q.UserID)
		cond += ` AND t.user_id = $2`
	}
	from := ` FROM personal_access_tokens t JOIN users u ON u.id = t.user_id WHERE u.deleted_at IS NULL AND ` + cond
	var total int
	if err := s.q.QueryRowContext(ctx, `SELECT COUNT(*)`+from, args...).Scan(&total); err != nil {
		return nil, 0, wrap("count personal access tokens", err)
	}
	n := len(args)
	args = append(args, q.Limit, q.Offset)
	rows, err := s.q.QueryContext(ctx, `SELECT `+patColumnsOf("t")+`, u.email`+from+
		` ORDER BY t.created_at DESC, t.id DESC LIMIT $`+strconv.Itoa(n+1)+` OFFSET $`+strconv.Itoa(n+2), args...)
	if err != nil {
		return nil, 0, wrap("list personal access tokens", err)
	}
	defer rows.Close()
	out := []pat.Owned{}
	for rows.Next() {
		var (
			r     patRow
			email string
		)
		if err := rows.Scan(append(r.dest(), &email)...); err != nil {
			return nil, 0, wrap("scan personal access token", err)
		}
		out = append(out, pat.Owned{Token: r.token(), UserEmail: email})
	}
	return out, total, wrap("list personal access tokens", rows.Err())
}

// RevokePAT marks a token of a live user revoked (keeping an earlier
// revocation time) and returns it; with userID, only that user's token.
func (s *Store) RevokePAT(ctx context.Context, id, userID string, now time.Time) (pat.Token, error) {
	if !validUUID(id) || (userID != "" && !validUUID(userID)) {
		return pat.Token{}, pat.ErrNotFound // no such row, and PostgreSQL would refuse the comparison
	}
	args := []any{id, utc(now)}
	owner := ``
	if userID != "" {
		args = append(args, userID)
		owner = ` AND user_id = $3`
	}
	var r patRow
	err := s.q.QueryRowContext(ctx, `UPDATE personal_access_tokens SET revoked_at = COALESCE(revoked_at, $2)
		WHERE id = $1`+owner+` AND user_id IN (SELECT id FROM users WHERE deleted_at IS NULL)
		RETURNING `+patColumns, args...).Scan(r.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return pat.Token{}, pat.ErrNotFound
	}
	if err != nil {
		return pat.Token{}, wrap("revoke personal access token", err)
	}
	return r.token(), nil
}

// TouchPAT records a use at at, unless the stored last use is later (writes
// from several instances may arrive out of order).
func (s *Store) TouchPAT(ctx context.Context, id string, at time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE personal_access_tokens SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, id, utc(at))
	return wrap("record personal access token use", err)
}

// revokeUserPATs revokes every live token of a user (deactivation,
// deletion, and password changes unless configured otherwise).
func (s *Store) revokeUserPATs(ctx context.Context, userID string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE personal_access_tokens SET revoked_at = $2
		WHERE user_id = $1 AND revoked_at IS NULL`, userID, utc(now))
	return wrap("revoke user's personal access tokens", err)
}

// revokePATsOnPasswordChange is revokeUserPATs unless the store was told to
// keep tokens across password changes (PAT_REVOKE_ON_PASSWORD_CHANGE=false).
func (s *Store) revokePATsOnPasswordChange(ctx context.Context, userID string, now time.Time) error {
	if s.keepPATsOnPassword {
		return nil
	}
	return s.revokeUserPATs(ctx, userID, now)
}

// KeepPATsOnPasswordChange makes password changes, resets and passwords set
// by a superuser leave the user's personal access tokens working
// (PAT_REVOKE_ON_PASSWORD_CHANGE=false). By default they are revoked in the
// same transaction as the password. Call it before the store is shared.
func (s *Store) KeepPATsOnPasswordChange(keep bool) { s.keepPATsOnPassword = keep }

// PurgePATs deletes tokens that expired, or were revoked, before cutoff
// (the daily job, with scheduler.SessionRetention: 30 days).
func (s *Store) PurgePATs(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM personal_access_tokens WHERE expires_at < $1 OR revoked_at < $1`, utc(cutoff))
	if err != nil {
		return 0, wrap("purge personal access tokens", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("purge personal access tokens", err)
}
