package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/stats"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// The admin API's storage: combined user updates, bulk actions, the
// session listing across users, and the statistics aggregates.

var _ stats.Store = (*Store)(nil)

// inList appends vals to args and returns their placeholders, for IN (...).
func inList(args *[]any, vals []string) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		*args = append(*args, v)
		ph[i] = fmt.Sprintf("$%d", len(*args))
	}
	return strings.Join(ph, ", ")
}

// UpdateUserAndPassword runs UpdateUser and, when hash is not empty,
// SetPassword (revoking every session but keepSessionID and every pending
// reset token) in one transaction: both happen or neither.
func (s *Store) UpdateUserAndPassword(ctx context.Context, id, hash, keepSessionID string, now time.Time,
	fn func(*user.User) error) (user.User, error) {
	var out user.User
	err := s.InTx(ctx, func(tx *Store) error {
		u, err := tx.UpdateUser(ctx, id, now, fn)
		if err != nil {
			return err
		}
		if hash != "" {
			if err := tx.SetPassword(ctx, id, hash, keepSessionID, now); err != nil {
				return err
			}
			changed := utc(now)
			u.PasswordHash, u.PasswordChangedAt = hash, &changed
		}
		out = u
		return nil
	})
	return out, err
}

// BulkUpdateUsers applies action to the live users among ids (canonical
// UUIDs), except exceptID, in one transaction, and returns the ids it
// applied to. Users already in the target state are matched but not
// rewritten. Deactivate revokes the matched users' sessions; delete is
// SoftDeleteUser for each of them.
func (s *Store) BulkUpdateUsers(ctx context.Context, action user.BulkAction, ids []string, exceptID string, now time.Time) ([]string, error) {
	switch action {
	case user.BulkActivate, user.BulkDeactivate, user.BulkDelete:
	default:
		return nil, fmt.Errorf("bulk update users: unknown action %q", action)
	}
	done := []string{}
	if len(ids) == 0 {
		return done, nil
	}
	err := s.InTx(ctx, func(tx *Store) error {
		var args []any
		query := `SELECT id FROM users WHERE id IN (` + inList(&args, ids) + `) AND deleted_at IS NULL`
		if exceptID != "" {
			args = append(args, exceptID)
			query += fmt.Sprintf(` AND id <> $%d`, len(args))
		}
		rows, err := tx.q.QueryContext(ctx, query+` ORDER BY id`+tx.forUpdate(), args...)
		if err != nil {
			return wrap("bulk select users", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return wrap("bulk scan user", err)
			}
			done = append(done, id)
		}
		if err := rows.Err(); err != nil {
			return wrap("bulk select users", err)
		}
		rows.Close()
		if len(done) == 0 {
			return nil
		}
		if action == user.BulkDelete {
			// Exactly the single soft delete, user by user (at most
			// user.MaxBulkIDs), so both always do the same; the last owner
			// of an organization is skipped. The organizations are locked
			// first, all in one order, so two bulk deletes cannot deadlock.
			if err := tx.lockOwnedOrganizations(ctx, done); err != nil {
				return err
			}
			deleted := done[:0]
			for _, id := range done {
				err := tx.SoftDeleteUser(ctx, id, now)
				switch {
				case err == nil:
					deleted = append(deleted, id)
				case !errors.Is(err, user.ErrLastOwner):
					return err
				}
			}
			done = deleted
			return nil
		}
		// $1..$n are the matched ids, $n+1 is now.
		args = nil
		in := inList(&args, done)
		args = append(args, utc(now))
		ts := fmt.Sprintf("$%d", len(args))
		var stmts []string
		switch action {
		case user.BulkActivate:
			stmts = []string{`UPDATE users SET is_active = TRUE, updated_at = ` + ts + ` WHERE is_active = FALSE AND id IN (` + in + `)`}
		case user.BulkDeactivate:
			stmts = []string{`UPDATE users SET is_active = FALSE, updated_at = ` + ts + ` WHERE is_active = TRUE AND id IN (` + in + `)`}
		}
		for _, st := range stmts {
			if _, err := tx.q.ExecContext(ctx, st, args...); err != nil {
				return wrap("bulk "+string(action), err)
			}
		}
		if action == user.BulkDeactivate {
			// Exactly the revocation of a single deactivation: device
			// sessions and provider tokens.
			for _, id := range done {
				if _, err := tx.RevokeUserSessions(ctx, id, now); err != nil {
					return err
				}
				if err := tx.revokeUserPATs(ctx, id, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// OwnedSessions returns a page of the sessions of live users whose
// is_active flag is q.Active, most recently used first, with their owners'
// email and names, and the total count.
func (s *Store) OwnedSessions(ctx context.Context, q auth.SessionQuery) ([]auth.OwnedSession, int, error) {
	const from = ` FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE u.deleted_at IS NULL AND s.is_active = $1`
	var total int
	if err := s.q.QueryRowContext(ctx, `SELECT COUNT(*)`+from, q.Active).Scan(&total); err != nil {
		return nil, 0, wrap("count sessions", err)
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+sessionColumnsOf("s")+`, u.email, u.first_name, u.last_name`+from+
		` ORDER BY s.last_used_at DESC, s.id DESC LIMIT $2 OFFSET $3`, q.Active, q.Limit, q.Offset)
	if err != nil {
		return nil, 0, wrap("list sessions", err)
	}
	defer rows.Close()
	out := []auth.OwnedSession{}
	for rows.Next() {
		var (
			r    sessionRow
			o    auth.OwnedSession
			last sql.NullString
		)
		if err := rows.Scan(append(r.dest(), &o.UserEmail, &o.UserFirstName, &last)...); err != nil {
			return nil, 0, wrap("scan session", err)
		}
		o.Session, o.UserLastName = r.session(), strPtr(last)
		out = append(out, o)
	}
	return out, total, wrap("list sessions", rows.Err())
}

// UserCountsAt counts live users created before each boundary, and those of
// them active now, plus the active and inactive totals, in one query.
func (s *Store) UserCountsAt(ctx context.Context, boundaries []time.Time) (stats.UserCounts, error) {
	var (
		cols []string
		args []any
	)
	for _, b := range boundaries {
		args = append(args, utc(b))
		p := fmt.Sprintf("$%d", len(args))
		cols = append(cols,
			`COALESCE(SUM(CASE WHEN created_at < `+p+` THEN 1 ELSE 0 END), 0)`,
			`COALESCE(SUM(CASE WHEN created_at < `+p+` AND is_active = TRUE THEN 1 ELSE 0 END), 0)`)
	}
	cols = append(cols, `COALESCE(SUM(CASE WHEN is_active = TRUE THEN 1 ELSE 0 END), 0)`, `COUNT(*)`)
	c := stats.UserCounts{
		CreatedBefore:       make([]int, len(boundaries)),
		ActiveCreatedBefore: make([]int, len(boundaries)),
	}
	var all int
	dest := make([]any, 0, len(cols))
	for i := range boundaries {
		dest = append(dest, &c.CreatedBefore[i], &c.ActiveCreatedBefore[i])
	}
	dest = append(dest, &c.Active, &all)
	err := s.q.QueryRowContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM users WHERE deleted_at IS NULL`, args...).Scan(dest...)
	if err != nil {
		return stats.UserCounts{}, wrap("user counts", err)
	}
	c.Inactive = all - c.Active
	return c, nil
}

// TopOrganizations returns at most limit organizations by their number of
// active memberships of live users, descending, then by name (byte-wise on
// both engines) and id. Organizations without such members are absent.
func (s *Store) TopOrganizations(ctx context.Context, limit int) ([]stats.OrgMembers, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT o.id, o.name, COUNT(*) AS members
		FROM user_organizations m
		JOIN organizations o ON o.id = m.organization_id
		JOIN users u ON u.id = m.user_id
		WHERE m.is_active = TRUE AND u.deleted_at IS NULL
		GROUP BY o.id, o.name
		ORDER BY members DESC, o.name`+s.binaryCollation()+`, o.id
		LIMIT $1`, limit)
	if err != nil {
		return nil, wrap("top organizations", err)
	}
	defer rows.Close()
	out := []stats.OrgMembers{}
	for rows.Next() {
		var o stats.OrgMembers
		if err := rows.Scan(&o.ID, &o.Name, &o.Members); err != nil {
			return nil, wrap("scan organization", err)
		}
		out = append(out, o)
	}
	return out, wrap("top organizations", rows.Err())
}
