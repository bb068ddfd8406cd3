package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

const userColumns = `id, email, password_hash, first_name, last_name, phone_number, is_active, is_superuser,
	preferences, locale, password_changed_at, created_at, updated_at, deleted_at`

// prefixColumns prefixes every column of a column list with a table alias.
func prefixColumns(columns, alias string) string {
	cols := strings.Split(strings.Join(strings.Fields(columns), " "), ", ")
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}

func userColumnsOf(alias string) string { return prefixColumns(userColumns, alias) }

// userRow holds a users row while scanning.
type userRow struct {
	u                                user.User
	hash, prefs, last, phone, locale sql.NullString
	pwChanged, deleted               sql.NullTime
}

// dest returns the scan destinations, in userColumns order.
func (r *userRow) dest() []any {
	return []any{&r.u.ID, &r.u.Email, &r.hash, &r.u.FirstName, &r.last, &r.phone, &r.u.IsActive, &r.u.IsSuperuser,
		&r.prefs, &r.locale, &r.pwChanged, &r.u.CreatedAt, &r.u.UpdatedAt, &r.deleted}
}

// user converts the scanned row.
func (r *userRow) user() user.User {
	u := r.u
	u.PasswordHash = r.hash.String
	u.LastName, u.PhoneNumber, u.Locale = strPtr(r.last), strPtr(r.phone), strPtr(r.locale)
	if r.prefs.Valid {
		u.Preferences = json.RawMessage(r.prefs.String)
	}
	u.PasswordChangedAt, u.DeletedAt = timePtr(r.pwChanged), timePtr(r.deleted)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u
}

func scanUser(rs rowScanner) (user.User, error) {
	var r userRow
	if err := rs.Scan(r.dest()...); err != nil {
		return user.User{}, err
	}
	return r.user(), nil
}

func strPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

func timePtr(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func nullStr(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func nullTime(p *time.Time) any {
	if p == nil {
		return nil
	}
	return utc(*p)
}

func nullJSON(raw json.RawMessage) any {
	if raw == nil {
		return nil
	}
	return string(raw)
}

// CreateUser inserts a user; a live account with the same email gives
// user.ErrEmailTaken.
func (s *Store) CreateUser(ctx context.Context, u user.User) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO users (`+userColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		u.ID, u.Email, nullStr(nonEmpty(u.PasswordHash)), u.FirstName, nullStr(u.LastName), nullStr(u.PhoneNumber),
		u.IsActive, u.IsSuperuser, nullJSON(u.Preferences), nullStr(u.Locale), nullTime(u.PasswordChangedAt),
		utc(u.CreatedAt), utc(u.UpdatedAt), nullTime(u.DeletedAt))
	if isUniqueViolation(err) {
		return user.ErrEmailTaken
	}
	return wrap("create user", err)
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// UserByID returns a live (not soft-deleted) user.
func (s *Store) UserByID(ctx context.Context, id string) (user.User, error) {
	u, err := scanUser(s.q.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM users WHERE id = $1 AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return user.User{}, user.ErrNotFound
	}
	return u, wrap("user by id", err)
}

// UserByEmail returns the live user with that (lower-cased) email.
func (s *Store) UserByEmail(ctx context.Context, email string) (user.User, error) {
	u, err := scanUser(s.q.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM users WHERE email = $1 AND deleted_at IS NULL`, email))
	if errors.Is(err, sql.ErrNoRows) {
		return user.User{}, user.ErrNotFound
	}
	return u, wrap("user by email", err)
}

// userSortColumns maps the whitelisted sort fields to ORDER BY terms. Text
// is compared lower-cased byte-wise so both engines order alike.
func (s *Store) userSortTerm(field string, desc bool) string {
	dir := " ASC"
	if desc {
		dir = " DESC"
	}
	text := func(col string) string { return "LOWER(" + col + ")" + s.binaryCollation() + dir }
	switch field {
	case "email", "first_name":
		return text(field) + ", id" + dir
	case "last_name", "locale":
		return "(" + field + " IS NULL), " + text(field) + ", id" + dir
	case "created_at", "updated_at", "is_active", "is_superuser":
		return field + dir + ", id" + dir
	}
	return "created_at DESC, id DESC"
}

// binaryCollation makes PostgreSQL compare text byte-wise, as SQLite does.
func (s *Store) binaryCollation() string {
	if s.engine == Postgres {
		return ` COLLATE "C"`
	}
	return ""
}

// ListUsers returns a page of live users matching q and the total count.
func (s *Store) ListUsers(ctx context.Context, q user.ListQuery) ([]user.User, int, error) {
	var (
		where = []string{"deleted_at IS NULL"}
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.IsActive != nil {
		where = append(where, "is_active = "+arg(*q.IsActive))
	}
	if q.IsSuperuser != nil {
		where = append(where, "is_superuser = "+arg(*q.IsSuperuser))
	}
	if q.Search != "" {
		p := arg(likePattern(q.Search))
		where = append(where, `(LOWER(email) LIKE `+p+` ESCAPE '\' OR LOWER(first_name) LIKE `+p+` ESCAPE '\' OR LOWER(COALESCE(last_name, '')) LIKE `+p+` ESCAPE '\')`)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, wrap("count users", err)
	}
	order := "created_at DESC, id DESC"
	if q.SortBy != "" {
		order = s.userSortTerm(q.SortBy, q.Desc)
	}
	query := `SELECT ` + userColumns + ` FROM users WHERE ` + cond + ` ORDER BY ` + order +
		` LIMIT ` + arg(q.Limit) + ` OFFSET ` + arg(q.Offset)
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, 0, wrap("list users", err)
	}
	defer rows.Close()
	var out []user.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, wrap("scan user", err)
		}
		out = append(out, u)
	}
	return out, total, wrap("list users", rows.Err())
}

// UpdateUser applies fn to a live user inside one transaction. A change from
// active to inactive revokes the user's sessions (and personal access tokens)
// in the same transaction, so an inactive account never keeps a working session.
func (s *Store) UpdateUser(ctx context.Context, id string, now time.Time, fn func(*user.User) error) (user.User, error) {
	var out user.User
	err := s.InTx(ctx, func(tx *Store) error {
		u, err := scanUser(tx.q.QueryRowContext(ctx,
			`SELECT `+userColumns+` FROM users WHERE id = $1 AND deleted_at IS NULL`+tx.forUpdate(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return user.ErrNotFound
		}
		if err != nil {
			return wrap("load user", err)
		}
		wasActive := u.IsActive
		if err := fn(&u); err != nil {
			return err
		}
		u.UpdatedAt = utc(now)
		_, err = tx.q.ExecContext(ctx, `UPDATE users SET email = $2, first_name = $3, last_name = $4,
			phone_number = $5, is_active = $6, is_superuser = $7, preferences = $8, locale = $9, updated_at = $10
			WHERE id = $1`,
			u.ID, u.Email, u.FirstName, nullStr(u.LastName), nullStr(u.PhoneNumber), u.IsActive, u.IsSuperuser,
			nullJSON(u.Preferences), nullStr(u.Locale), u.UpdatedAt)
		if isUniqueViolation(err) {
			return user.ErrEmailTaken
		}
		if err != nil {
			return wrap("update user", err)
		}
		if wasActive && !u.IsActive {
			if _, err := tx.RevokeUserSessions(ctx, u.ID, now); err != nil {
				return err
			}
			if err := tx.revokeUserPATs(ctx, u.ID, now); err != nil {
				return err
			}
		}
		out = u
		return nil
	})
	return out, err
}

// SetPassword stores a new password hash, revokes the user's sessions except
// keepSessionID and deletes pending reset tokens, atomically; their personal
// access tokens too, unless KeepPATsOnPasswordChange.
func (s *Store) SetPassword(ctx context.Context, id, hash, keepSessionID string, now time.Time) error {
	return s.InTx(ctx, func(tx *Store) error {
		res, err := tx.q.ExecContext(ctx, `UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3
			WHERE id = $1 AND deleted_at IS NULL`, id, hash, utc(now))
		if err != nil {
			return wrap("set password", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return user.ErrNotFound
		}
		if _, err := tx.q.ExecContext(ctx, `UPDATE user_sessions SET is_active = FALSE, updated_at = $3
			WHERE user_id = $1 AND is_active = TRUE AND CAST(id AS TEXT) <> $2`, id, keepSessionID, utc(now)); err != nil {
			return wrap("revoke other sessions", err)
		}
		if _, err := tx.RevokeUserProviderTokens(ctx, id, now); err != nil {
			return err
		}
		if err := tx.revokePATsOnPasswordChange(ctx, id, now); err != nil {
			return err
		}
		_, err = tx.q.ExecContext(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1 AND used_at IS NULL`, id)
		return wrap("drop reset tokens", err)
	})
}

// UpdatePasswordHash replaces oldHash by newHash if it is still current.
func (s *Store) UpdatePasswordHash(ctx context.Context, userID, oldHash, newHash string, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE users SET password_hash = $3, updated_at = $4
		WHERE id = $1 AND password_hash = $2`, userID, oldHash, newHash, utc(now))
	return wrap("update password hash", err)
}

// SoftDeleteUser marks a live user deleted and inactive, revokes their
// sessions, ends their memberships and drops their reset tokens and social
// links, atomically. It refuses (user.ErrLastOwner) to delete the only
// active owner of an organization.
func (s *Store) SoftDeleteUser(ctx context.Context, id string, now time.Time) error {
	return s.InTx(ctx, func(tx *Store) error {
		// The user's row first, then the organizations: the order bulk
		// deletes take their locks in too.
		var live string
		err := tx.q.QueryRowContext(ctx, `SELECT id FROM users WHERE id = $1 AND deleted_at IS NULL`+tx.forUpdate(), id).Scan(&live)
		if errors.Is(err, sql.ErrNoRows) {
			return user.ErrNotFound
		}
		if err != nil {
			return wrap("lock user", err)
		}
		if err := tx.lockOwnedOrganizations(ctx, []string{id}); err != nil {
			return err
		}
		var orgName string
		err = tx.q.QueryRowContext(ctx, `SELECT o.name FROM organizations o
			JOIN user_organizations m ON m.organization_id = o.id
			WHERE m.user_id = $1 AND m.role = 'owner' AND m.is_active = TRUE
			AND NOT EXISTS (SELECT 1 FROM user_organizations x JOIN users u ON u.id = x.user_id
				WHERE x.organization_id = o.id AND x.role = 'owner' AND x.is_active = TRUE AND x.user_id <> $1
				AND u.is_active = TRUE AND u.deleted_at IS NULL)
			ORDER BY o.name LIMIT 1`, id).Scan(&orgName)
		switch {
		case err == nil:
			return user.ErrLastOwner.WithMessage("User is the last active owner of organization %q: make another member an owner, or delete the organization, first", orgName)
		case !errors.Is(err, sql.ErrNoRows):
			return wrap("find sole ownerships", err)
		}
		if _, err := tx.q.ExecContext(ctx, `UPDATE users SET deleted_at = $2, is_active = FALSE, updated_at = $2
			WHERE id = $1`, id, utc(now)); err != nil {
			return wrap("delete user", err)
		}
		if _, err := tx.RevokeUserSessions(ctx, id, now); err != nil {
			return err
		}
		if err := tx.revokeUserPATs(ctx, id, now); err != nil {
			return err
		}
		if _, err := tx.q.ExecContext(ctx, `UPDATE user_organizations SET is_active = FALSE, updated_at = $2
			WHERE user_id = $1 AND is_active = TRUE`, id, utc(now)); err != nil {
			return wrap("end memberships", err)
		}
		// Linked social accounts (and their provider tokens) go: the identity
		// may log in again, as a new account.
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM oauth_accounts WHERE user_id = $1`, id); err != nil {
			return wrap("unlink social accounts", err)
		}
		_, err = tx.q.ExecContext(ctx, `DELETE FROM password_reset_tokens WHERE user_id = $1`, id)
		return wrap("drop reset tokens", err)
	})
}

// lockOwnedOrganizations locks, in id order, every organization that one
// of userIDs owns, as ChangeMembership does, so that deleting owners cannot
// race with role changes or with each other into leaving an organization
// without an owner. SQLite's write transactions are serial already.
func (s *Store) lockOwnedOrganizations(ctx context.Context, userIDs []string) error {
	if s.engine != Postgres || len(userIDs) == 0 {
		return nil
	}
	var args []any
	rows, err := s.q.QueryContext(ctx, `SELECT o.id FROM organizations o WHERE o.id IN (
		SELECT organization_id FROM user_organizations
		WHERE role = 'owner' AND is_active = TRUE AND user_id IN (`+inList(&args, userIDs)+`))
		ORDER BY o.id FOR UPDATE`, args...)
	if err != nil {
		return wrap("lock owned organizations", err)
	}
	defer rows.Close()
	for rows.Next() {
	}
	return wrap("lock owned organizations", rows.Err())
}
