package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/org"
)

// orgColumns selects an organization with its number of active members.
const orgColumns = `o.id, o.name, o.slug, o.description, o.is_active, o.settings, o.created_at, o.updated_at,
	(SELECT COUNT(*) FROM user_organizations c WHERE c.organization_id = o.id AND c.is_active = TRUE) AS member_count`

// orgRow receives orgColumns.
type orgRow struct {
	o             org.Organization
	desc, setting sql.NullString
}

func (r *orgRow) dest() []any {
	return []any{&r.o.ID, &r.o.Name, &r.o.Slug, &r.desc, &r.o.IsActive, &r.setting, &r.o.CreatedAt, &r.o.UpdatedAt, &r.o.MemberCount}
}

func (r *orgRow) organization() org.Organization {
	o := r.o
	o.Description = strPtr(r.desc)
	if r.setting.Valid {
		o.Settings = json.RawMessage(r.setting.String)
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return o
}

func scanOrg(rs rowScanner) (org.Organization, error) {
	var r orgRow
	if err := rs.Scan(r.dest()...); err != nil {
		return org.Organization{}, err
	}
	return r.organization(), nil
}

func scanOrgs(rows *sql.Rows, err error) ([]org.Organization, error) {
	if err != nil {
		return nil, wrap("list organizations", err)
	}
	defer rows.Close()
	out := []org.Organization{}
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, wrap("scan organization", err)
		}
		out = append(out, o)
	}
	return out, wrap("list organizations", rows.Err())
}

// CreateOrganization inserts an organization and, optionally, its owner.
func (s *Store) CreateOrganization(ctx context.Context, o org.Organization, owner *org.Membership) error {
	return s.InTx(ctx, func(tx *Store) error {
		_, err := tx.q.ExecContext(ctx, `INSERT INTO organizations (id, name, slug, description, is_active, settings, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			o.ID, o.Name, o.Slug, nullStr(o.Description), o.IsActive, nullJSON(o.Settings), utc(o.CreatedAt), utc(o.UpdatedAt))
		if isUniqueViolation(err) {
			return org.ErrSlugTaken
		}
		if err != nil {
			return wrap("create organization", err)
		}
		if owner != nil {
			return tx.insertMembership(ctx, *owner)
		}
		return nil
	})
}

func (s *Store) insertMembership(ctx context.Context, m org.Membership) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO user_organizations (user_id, organization_id, role, is_active, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, m.UserID, m.OrganizationID, string(m.Role), m.IsActive, utc(m.CreatedAt), utc(m.UpdatedAt))
	if isForeignKeyViolation(err) {
		return org.ErrNotFound
	}
	return wrap("insert membership", err)
}

// OrganizationByID returns an organization with its member count.
func (s *Store) OrganizationByID(ctx context.Context, id string) (org.Organization, error) {
	o, err := scanOrg(s.q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return org.Organization{}, org.ErrNotFound
	}
	return o, wrap("organization by id", err)
}

// ListOrganizations returns a page of organizations, newest first.
func (s *Store) ListOrganizations(ctx context.Context, q org.ListQuery) ([]org.Organization, int, error) {
	var (
		where = []string{"1 = 1"}
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.IsActive != nil {
		where = append(where, "o.is_active = "+arg(*q.IsActive))
	}
	if q.Search != "" {
		p := arg(likePattern(q.Search))
		where = append(where, `(LOWER(o.name) LIKE `+p+` ESCAPE '\' OR LOWER(o.slug) LIKE `+p+` ESCAPE '\' OR LOWER(COALESCE(o.description, '')) LIKE `+p+` ESCAPE '\')`)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := s.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM organizations o WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, wrap("count organizations", err)
	}
	list, err := scanOrgs(s.q.QueryContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE `+cond+
		` ORDER BY o.created_at DESC, o.id DESC LIMIT `+arg(q.Limit)+` OFFSET `+arg(q.Offset), args...))
	return list, total, err
}

// OrganizationsOfUser lists the organizations a user is (activeMembership)
// or was (!activeMembership) a member of, most recently joined first.
func (s *Store) OrganizationsOfUser(ctx context.Context, userID string, activeMembership bool) ([]org.Organization, error) {
	return scanOrgs(s.q.QueryContext(ctx, `SELECT `+orgColumns+` FROM organizations o
		JOIN user_organizations m ON m.organization_id = o.id
		WHERE m.user_id = $1 AND m.is_active = $2
		ORDER BY m.created_at DESC, o.id DESC`, userID, activeMembership))
}

// AffiliationsOfUser returns the organizations a user is an active member
// of with the membership, most recently joined first.
func (s *Store) AffiliationsOfUser(ctx context.Context, userID string) ([]org.Affiliation, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+orgColumns+`, `+membershipColumns+` FROM organizations o
		JOIN user_organizations m ON m.organization_id = o.id
		WHERE m.user_id = $1 AND m.is_active = TRUE
		ORDER BY m.created_at DESC, o.id DESC`, userID)
	if err != nil {
		return nil, wrap("list affiliations", err)
	}
	defer rows.Close()
	out := []org.Affiliation{}
	for rows.Next() {
		var a org.Affiliation
		var o orgRow
		if err := rows.Scan(append(o.dest(), membershipDest(&a.Membership)...)...); err != nil {
			return nil, wrap("scan affiliation", err)
		}
		a.Organization = o.organization()
		a.Membership.CreatedAt, a.Membership.UpdatedAt = a.Membership.CreatedAt.UTC(), a.Membership.UpdatedAt.UTC()
		out = append(out, a)
	}
	return out, wrap("list affiliations", rows.Err())
}

// UpdateOrganization applies fn to an organization in one transaction.
func (s *Store) UpdateOrganization(ctx context.Context, id string, now time.Time, fn func(*org.Organization) error) (org.Organization, error) {
	var out org.Organization
	err := s.InTx(ctx, func(tx *Store) error {
		o, err := scanOrg(tx.q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.id = $1`+tx.forUpdateOf("o"), id))
		if errors.Is(err, sql.ErrNoRows) {
			return org.ErrNotFound
		}
		if err != nil {
			return wrap("load organization", err)
		}
		if err := fn(&o); err != nil {
			return err
		}
		o.UpdatedAt = utc(now)
		_, err = tx.q.ExecContext(ctx, `UPDATE organizations SET name = $2, slug = $3, description = $4, is_active = $5,
			settings = $6, updated_at = $7 WHERE id = $1`,
			o.ID, o.Name, o.Slug, nullStr(o.Description), o.IsActive, nullJSON(o.Settings), o.UpdatedAt)
		if isUniqueViolation(err) {
			return org.ErrSlugTaken
		}
		if err != nil {
			return wrap("update organization", err)
		}
		out = o
		return nil
	})
	return out, err
}

// forUpdateOf locks the rows of one table of a joined query on PostgreSQL.
func (s *Store) forUpdateOf(alias string) string {
	if s.engine == Postgres {
		return " FOR UPDATE OF " + alias
	}
	return ""
}

// DeleteOrganization deletes an organization; memberships and invitations
// go with it.
func (s *Store) DeleteOrganization(ctx context.Context, id string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM organizations WHERE id = $1`, id)
	if err != nil {
		return wrap("delete organization", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return org.ErrNotFound
	}
	return nil
}

const membershipColumns = `m.user_id, m.organization_id, m.role, m.is_active, m.created_at, m.updated_at`

func membershipDest(m *org.Membership) []any {
	return []any{&m.UserID, &m.OrganizationID, &m.Role, &m.IsActive, &m.CreatedAt, &m.UpdatedAt}
}

func (s *Store) membership(ctx context.Context, orgID, userID string) (org.Membership, error) {
	var m org.Membership
	err := s.q.QueryRowContext(ctx, `SELECT `+membershipColumns+` FROM user_organizations m
		WHERE m.organization_id = $1 AND m.user_id = $2`, orgID, userID).Scan(membershipDest(&m)...)
	if errors.Is(err, sql.ErrNoRows) {
		return org.Membership{}, org.ErrMembershipGone
	}
	if err != nil {
		return org.Membership{}, wrap("membership", err)
	}
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	return m, nil
}

// Membership returns a user's membership row in an organization.
func (s *Store) Membership(ctx context.Context, orgID, userID string) (org.Membership, error) {
	return s.membership(ctx, orgID, userID)
}

const memberFrom = ` FROM user_organizations m JOIN users u ON u.id = m.user_id`

func scanMember(rs rowScanner) (org.Member, error) {
	var (
		m    org.Member
		last sql.NullString
	)
	if err := rs.Scan(append(membershipDest(&m.Membership), &m.Email, &m.FirstName, &last)...); err != nil {
		return org.Member{}, err
	}
	m.LastName = strPtr(last)
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	return m, nil
}

// Members lists an organization's active (or removed) members who still
// have an account, most recently joined first.
func (s *Store) Members(ctx context.Context, orgID string, active bool, offset, limit int) ([]org.Member, int, error) {
	const where = ` WHERE m.organization_id = $1 AND m.is_active = $2 AND u.deleted_at IS NULL`
	var total int
	if err := s.q.QueryRowContext(ctx, `SELECT COUNT(*)`+memberFrom+where, orgID, active).Scan(&total); err != nil {
		return nil, 0, wrap("count members", err)
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+membershipColumns+`, u.email, u.first_name, u.last_name`+memberFrom+where+`
		ORDER BY m.created_at DESC, m.user_id DESC LIMIT $3 OFFSET $4`, orgID, active, limit, offset)
	if err != nil {
		return nil, 0, wrap("list members", err)
	}
	defer rows.Close()
	out := []org.Member{}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, 0, wrap("scan member", err)
		}
		out = append(out, m)
	}
	return out, total, wrap("list members", rows.Err())
}

// Member returns one membership with the member's profile.
func (s *Store) Member(ctx context.Context, orgID, userID string) (org.Member, error) {
	m, err := scanMember(s.q.QueryRowContext(ctx, `SELECT `+membershipColumns+`, u.email, u.first_name, u.last_name`+memberFrom+`
		WHERE m.organization_id = $1 AND m.user_id = $2`, orgID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return org.Member{}, org.ErrMembershipGone
	}
	return m, wrap("member", err)
}

// upsertMembership inserts a membership or reactivates a removed one with
// the new role (its join date kept). It reports false when an active
// membership already exists (left unchanged).
func (s *Store) upsertMembership(ctx context.Context, m org.Membership) (bool, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO user_organizations (user_id, organization_id, role, is_active, created_at, updated_at)
		VALUES ($1, $2, $3, TRUE, $4, $4)
		ON CONFLICT (user_id, organization_id) DO UPDATE SET role = excluded.role, is_active = TRUE, updated_at = excluded.updated_at
		WHERE user_organizations.is_active = FALSE`, m.UserID, m.OrganizationID, string(m.Role), utc(m.CreatedAt))
	if isForeignKeyViolation(err) {
		return false, org.ErrNotFound
	}
	if err != nil {
		return false, wrap("add member", err)
	}
	n, err := res.RowsAffected()
	return n == 1, wrap("add member", err)
}

// AddMember adds or reactivates a membership; org.ErrAlreadyMember when it
// is active already.
func (s *Store) AddMember(ctx context.Context, m org.Membership) error {
	added, err := s.upsertMembership(ctx, m)
	if err == nil && !added {
		return org.ErrAlreadyMember
	}
	return err
}

// ChangeMembership serialises membership changes of one organization by
// locking its row, so the owner count fn sees cannot change under it. The
// count is of the other active owners: active owner memberships of users
// other than userID whose accounts are active and not deleted.
func (s *Store) ChangeMembership(ctx context.Context, orgID, userID string, now time.Time,
	fn func(m *org.Membership, otherOwners int) error) (org.Membership, error) {
	var out org.Membership
	err := s.InTx(ctx, func(tx *Store) error {
		var id string
		err := tx.q.QueryRowContext(ctx, `SELECT id FROM organizations WHERE id = $1`+tx.forUpdate(), orgID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return org.ErrNotFound
		}
		if err != nil {
			return wrap("lock organization", err)
		}
		m, err := tx.membership(ctx, orgID, userID)
		if err != nil {
			return err
		}
		var owners int
		if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM user_organizations m JOIN users u ON u.id = m.user_id
			WHERE m.organization_id = $1 AND m.role = 'owner' AND m.is_active = TRUE AND m.user_id <> $2
			AND u.is_active = TRUE AND u.deleted_at IS NULL`, orgID, userID).Scan(&owners); err != nil {
			return wrap("count owners", err)
		}
		if err := fn(&m, owners); err != nil {
			return err
		}
		m.UpdatedAt = utc(now)
		if _, err := tx.q.ExecContext(ctx, `UPDATE user_organizations SET role = $3, is_active = $4, updated_at = $5
			WHERE organization_id = $1 AND user_id = $2`, orgID, userID, string(m.Role), m.IsActive, m.UpdatedAt); err != nil {
			return wrap("update membership", err)
		}
		out = m
		return nil
	})
	return out, err
}
