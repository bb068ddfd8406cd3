package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/org"
)

const invitationColumns = `id, organization_id, email, role, token_hash, invited_by, expires_at, accepted_at, accepted_by, revoked_at, created_at`

func scanInvitation(rs rowScanner) (org.Invitation, error) {
	var (
		i                 org.Invitation
		by, acceptedBy    sql.NullString
		accepted, revoked sql.NullTime
	)
	if err := rs.Scan(&i.ID, &i.OrganizationID, &i.Email, &i.Role, &i.TokenHash, &by, &i.ExpiresAt, &accepted,
		&acceptedBy, &revoked, &i.CreatedAt); err != nil {
		return org.Invitation{}, err
	}
	i.InvitedBy, i.AcceptedBy = strPtr(by), strPtr(acceptedBy)
	i.AcceptedAt, i.RevokedAt = timePtr(accepted), timePtr(revoked)
	i.ExpiresAt, i.CreatedAt = i.ExpiresAt.UTC(), i.CreatedAt.UTC()
	return i, nil
}

// CreateInvitation stores an invitation (its token's hash only).
func (s *Store) CreateInvitation(ctx context.Context, i org.Invitation) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO organization_invitations (`+invitationColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, NULL, $8)`,
		i.ID, i.OrganizationID, i.Email, string(i.Role), i.TokenHash, nullStr(i.InvitedBy), utc(i.ExpiresAt), utc(i.CreatedAt))
	if isForeignKeyViolation(err) {
		return org.ErrNotFound
	}
	return wrap("create invitation", err)
}

// Invitations lists an organization's invitations, newest first.
func (s *Store) Invitations(ctx context.Context, orgID string) ([]org.Invitation, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+invitationColumns+` FROM organization_invitations
		WHERE organization_id = $1 ORDER BY created_at DESC, id DESC`, orgID)
	if err != nil {
		return nil, wrap("list invitations", err)
	}
	defer rows.Close()
	out := []org.Invitation{}
	for rows.Next() {
		i, err := scanInvitation(rows)
		if err != nil {
			return nil, wrap("scan invitation", err)
		}
		out = append(out, i)
	}
	return out, wrap("list invitations", rows.Err())
}

// InvitationByTokenHash returns an invitation, or org.ErrInviteInvalid.
func (s *Store) InvitationByTokenHash(ctx context.Context, hash string) (org.Invitation, error) {
	i, err := scanInvitation(s.q.QueryRowContext(ctx, `SELECT `+invitationColumns+` FROM organization_invitations
		WHERE token_hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return org.Invitation{}, org.ErrInviteInvalid
	}
	return i, wrap("invitation by token", err)
}

// RevokeInvitation revokes a pending invitation of an organization.
func (s *Store) RevokeInvitation(ctx context.Context, orgID, id string, now time.Time) error {
	res, err := s.q.ExecContext(ctx, `UPDATE organization_invitations SET revoked_at = $3
		WHERE id = $1 AND organization_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL`, id, orgID, utc(now))
	if err != nil {
		return wrap("revoke invitation", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return org.ErrInviteNotFound
	}
	return nil
}

// AcceptInvitation consumes the invitation and adds the membership in one
// transaction; of concurrent acceptances exactly one succeeds.
func (s *Store) AcceptInvitation(ctx context.Context, hash, userID string, now time.Time) (org.Membership, error) {
	var out org.Membership
	err := s.InTx(ctx, func(tx *Store) error {
		var (
			orgID string
			role  org.Role
		)
		err := tx.q.QueryRowContext(ctx, `UPDATE organization_invitations SET accepted_at = $3, accepted_by = $2
			WHERE token_hash = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3
			RETURNING organization_id, role`, hash, userID, utc(now)).Scan(&orgID, &role)
		if errors.Is(err, sql.ErrNoRows) {
			return org.ErrInviteInvalid
		}
		if err != nil {
			return wrap("consume invitation", err)
		}
		if _, err := tx.upsertMembership(ctx, org.Membership{UserID: userID, OrganizationID: orgID, Role: role, CreatedAt: now}); err != nil {
			return err
		}
		out, err = tx.membership(ctx, orgID, userID)
		return err
	})
	return out, err
}

// PurgeInvitations deletes invitations that expired before cutoff.
func (s *Store) PurgeInvitations(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM organization_invitations WHERE expires_at < $1`, utc(cutoff))
	if err != nil {
		return 0, wrap("purge invitations", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("purge invitations", err)
}
