package sqlstore

import (
	"context"
	"database/sql"
	"errors"

	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// What the demo data seeding (internal/demo) needs beyond the domain
// stores: a slug lookup, and one user written with their memberships.

// OrganizationBySlug returns an organization with its member count, or
// org.ErrNotFound.
func (s *Store) OrganizationBySlug(ctx context.Context, slug string) (org.Organization, error) {
	o, err := scanOrg(s.q.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.slug = $1`, slug))
	if errors.Is(err, sql.ErrNoRows) {
		return org.Organization{}, org.ErrNotFound
	}
	return o, wrap("organization by slug", err)
}

// CreateUserWithMemberships inserts u and its memberships in one
// transaction, with the timestamps and flags they carry: the user exists
// with all of them or not at all. A live account with the same email gives
// user.ErrEmailTaken, an unknown organization org.ErrNotFound.
func (s *Store) CreateUserWithMemberships(ctx context.Context, u user.User, ms []org.Membership) error {
	return s.InTx(ctx, func(tx *Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		for _, m := range ms {
			if err := tx.insertMembership(ctx, m); err != nil {
				return err
			}
		}
		return nil
	})
}
