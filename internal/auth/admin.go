package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// OwnedSession is a session with the account it belongs to, as the admin
// API lists it.
type OwnedSession struct {
	Session
	UserEmail     string
	UserFirstName string
	UserLastName  *string
}

// UserFullName is the owner's first and last name joined by a space, or nil
// when both are empty.
func (s OwnedSession) UserFullName() *string {
	var parts []string
	for _, p := range []*string{&s.UserFirstName, s.UserLastName} {
		if p != nil && strings.TrimSpace(*p) != "" {
			parts = append(parts, *p)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	name := strings.Join(parts, " ")
	return &name
}

// SessionQuery selects a page of sessions for the admin listing.
type SessionQuery struct {
	Offset, Limit int
	Active        bool // true: active sessions only; false: revoked ones only
}

// AdminSessions lists every user's sessions (superusers only): active ones,
// or with q.Active false the revoked ones (fix 19). Sessions of deleted
// users are not listed.
func (s *Service) AdminSessions(ctx context.Context, actor user.Actor, q SessionQuery) ([]OwnedSession, int, error) {
	if !actor.IsSuperuser {
		return nil, 0, user.ErrNotAdmin
	}
	list, total, err := s.store.OwnedSessions(ctx, q)
	if err != nil {
		return nil, 0, fmt.Errorf("list sessions: %w", err)
	}
	return list, total, nil
}

// AdminRevokeSession revokes anyone's session (superusers only). Its access
// and refresh tokens stop working at once, since every request checks the
// session. Revoking an already revoked session succeeds again; a session of
// a deleted user is treated as absent (404).
func (s *Service) AdminRevokeSession(ctx context.Context, actor user.Actor, id string) (Session, error) {
	if !actor.IsSuperuser {
		return Session{}, user.ErrNotAdmin
	}
	sess, u, err := s.store.SessionWithUser(ctx, id)
	if errors.Is(err, ErrSessionNotFound) || err == nil && u.DeletedAt != nil {
		return Session{}, ErrSessionNotFound.WithMessage("Session %s not found", id)
	}
	if err != nil {
		return Session{}, fmt.Errorf("revoke session: %w", err)
	}
	if err := s.store.RevokeSession(ctx, sess.ID, s.Now()); err != nil {
		return Session{}, fmt.Errorf("revoke session: %w", err)
	}
	return sess, nil
}
