package user

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

// Errors of the admin use cases (reference §5.6).
var (
	ErrNotAdmin            = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Superuser privileges required")
	ErrAdminDeleteSelf     = apperr.New(apperr.Forbidden, apperr.CodeOperationForbidden, "Cannot delete your own account")
	ErrInvalidBulkAction   = apperr.ValidationField("action", "Input should be 'activate', 'deactivate' or 'delete'")
	ErrBulkIDCount         = apperr.ValidationField("user_ids", fmt.Sprintf("List should have between 1 and %d items", MaxBulkIDs))
	ErrAdminPasswordIsNull = apperr.ValidationField("password", valuePrefix+"Password cannot be null")
)

// NewAccount is the input of an account created by a superuser. Unlike
// public registration, the superuser flag and the active flag are honoured
// (fix 21).
type NewAccount struct {
	Email       string
	Password    string
	FirstName   string
	LastName    *string
	PhoneNumber *string
	IsSuperuser bool
	IsActive    bool
}

// AdminCreate creates an account with the field rules of registration. A
// live account with the same email is a 409 naming the email.
func (s *Service) AdminCreate(ctx context.Context, actor Actor, in NewAccount) (User, error) {
	if !actor.IsSuperuser {
		return User{}, ErrNotAdmin
	}
	u, err := s.newUser(in.Email, in.Password, in.FirstName, in.LastName, in.PhoneNumber)
	if err != nil {
		return User{}, err
	}
	u.IsSuperuser, u.IsActive = in.IsSuperuser, in.IsActive
	u.Preferences = json.RawMessage(`{}`)
	if u.PasswordHash, err = s.hasher.Hash(ctx, in.Password); err != nil {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return User{}, ErrEmailTaken.WithMessage("User with email %s already exists", u.Email)
		}
		return User{}, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// AdminGet returns a live user; soft-deleted and unknown users are 404.
func (s *Service) AdminGet(ctx context.Context, actor Actor, id string) (User, error) {
	if !actor.IsSuperuser {
		return User{}, ErrNotAdmin
	}
	return s.Get(ctx, actor, id)
}

// AdminUpdate applies a partial update like Update, except that the
// password may be set (password rule; every session of the user and every
// pending reset token is revoked, except the caller's own session when
// superusers set their own password). is_superuser is refused; is_active
// false revokes the user's sessions, and the caller cannot deactivate their
// own account. Everything is written in one transaction.
func (s *Service) AdminUpdate(ctx context.Context, actor Actor, id string, p Patch) (User, error) {
	if !actor.IsSuperuser {
		return User{}, ErrNotAdmin
	}
	var pwErr *apperr.Error
	switch {
	case p.Password.Set && p.Password.Null:
		pwErr = ErrAdminPasswordIsNull
	case p.Password.Set:
		pwErr = s.CheckPassword("password", p.Password.Value)
	}
	apply, err := checkPatch(actor, id, p, pwErr)
	if err != nil {
		return User{}, err
	}
	var hash, keep string
	if p.Password.Set {
		if hash, err = s.hasher.Hash(ctx, p.Password.Value); err != nil {
			return User{}, fmt.Errorf("update user: %w", err)
		}
		if id == actor.UserID {
			keep = actor.SessionID
		}
	}
	u, err := s.store.UpdateUserAndPassword(ctx, id, hash, keep, s.Now(), apply)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrNotFound.WithMessage("User %s not found", id)
	}
	return u, err
}

// AdminDelete soft-deletes a user as Delete does (deactivated, sessions
// revoked, email free again) and returns the user as it was. The caller
// cannot delete their own account (AUTH_007).
func (s *Service) AdminDelete(ctx context.Context, actor Actor, id string) (User, error) {
	if !actor.IsSuperuser {
		return User{}, ErrNotAdmin
	}
	if actor.UserID == id {
		return User{}, ErrAdminDeleteSelf
	}
	u, err := s.Get(ctx, actor, id)
	if err != nil {
		return User{}, err
	}
	if err := s.Delete(ctx, actor, id); err != nil {
		return User{}, err
	}
	return u, nil
}

// SetActive activates or deactivates a live user. Deactivation revokes the
// user's sessions; the caller cannot deactivate their own account.
func (s *Service) SetActive(ctx context.Context, actor Actor, id string, active bool) (User, error) {
	if !actor.IsSuperuser {
		return User{}, ErrNotAdmin
	}
	if !active && actor.UserID == id {
		return User{}, ErrDeactivateSelf
	}
	u, err := s.store.UpdateUser(ctx, id, s.Now(), func(u *User) error {
		u.IsActive = active
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrNotFound.WithMessage("User %s not found", id)
	}
	return u, err
}

// BulkAction is what a bulk request does to each user.
type BulkAction string

// The bulk actions.
const (
	BulkActivate   BulkAction = "activate"
	BulkDeactivate BulkAction = "deactivate"
	BulkDelete     BulkAction = "delete"
)

// MaxBulkIDs is the most ids one bulk request may name.
const MaxBulkIDs = 100

// BulkResult reports a bulk action: how many users it applied to, and the
// ids it skipped (unknown, soft-deleted, or the caller), in request order.
type BulkResult struct {
	Affected int
	Skipped  []string
}

// Bulk applies action to the users named by ids (1 to MaxBulkIDs canonical
// UUIDs; duplicates count once) in one transaction. Unknown and soft-deleted
// users are skipped, and so is the caller for deactivate and delete.
// Deactivate and delete revoke the affected users' sessions; delete is the
// soft delete of Delete. Users already in the requested state count as
// affected.
func (s *Service) Bulk(ctx context.Context, actor Actor, action BulkAction, ids []string) (BulkResult, error) {
	if !actor.IsSuperuser {
		return BulkResult{}, ErrNotAdmin
	}
	if action != BulkActivate && action != BulkDeactivate && action != BulkDelete {
		return BulkResult{}, ErrInvalidBulkAction
	}
	if len(ids) == 0 || len(ids) > MaxBulkIDs {
		return BulkResult{}, ErrBulkIDCount
	}
	unique := make([]string, 0, len(ids))
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			unique = append(unique, id)
		}
	}
	except := ""
	if action != BulkActivate {
		except = actor.UserID
	}
	done, err := s.store.BulkUpdateUsers(ctx, action, unique, except, s.Now())
	if err != nil {
		return BulkResult{}, fmt.Errorf("bulk %s: %w", action, err)
	}
	applied := make(map[string]bool, len(done))
	for _, id := range done {
		applied[id] = true
	}
	res := BulkResult{Affected: len(done), Skipped: []string{}}
	for _, id := range unique {
		if !applied[id] {
			res.Skipped = append(res.Skipped, id)
		}
	}
	return res, nil
}
