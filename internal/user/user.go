// Package user is the account domain: the User type, the field rules of
// reference §4.5–4.7, and the Service that registers, reads, updates,
// deletes users and changes passwords.
package user

import (
	"encoding/json"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

// User is an account. PasswordHash is empty for accounts without a password
// (created by social login).
type User struct {
	ID                string
	Email             string // lower-cased
	PasswordHash      string
	FirstName         string
	LastName          *string
	PhoneNumber       *string
	IsActive          bool
	IsSuperuser       bool
	Preferences       json.RawMessage // nil when NULL
	Locale            *string
	PasswordChangedAt *time.Time
	CreatedAt         time.Time
	UpdatedAt         time.Time
	DeletedAt         *time.Time
}

// HasPassword reports whether the account can log in with a password.
func (u User) HasPassword() bool { return u.PasswordHash != "" }

// Actor is the authenticated caller, passed explicitly to every service
// method that makes a permission decision.
type Actor struct {
	UserID      string
	SessionID   string // the device session of the calling token, "" for other credentials
	IsSuperuser bool
}

// Errors of the user domain, with the reference's codes and messages.
var (
	ErrNotFound           = apperr.New(apperr.NotFound, apperr.CodeNotFound, "User not found")
	ErrEmailTaken         = apperr.New(apperr.Conflict, apperr.CodeUserExists, "User with this email already exists")
	ErrRegistrationFailed = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "Registration failed. Please check your information and try again.")
	ErrNotPermittedView   = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Not enough permissions to view this user")
	ErrNotPermittedUpdate = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Not enough permissions to update this user")
	ErrNotPermitted       = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Not enough permissions")
	ErrDeleteSelf         = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Cannot delete your own account")
	ErrDeactivateSelf     = apperr.New(apperr.Forbidden, apperr.CodeOperationForbidden, "Cannot deactivate your own account")
	ErrWrongPassword      = apperr.New(apperr.Forbidden, apperr.CodeInvalidCredentials, "Current password is incorrect")
	// ErrLastOwner refuses to delete the only active owner of an
	// organization: the organization would be left without one.
	ErrLastOwner  = apperr.New(apperr.Conflict, apperr.CodeLastOwner, "User is the last active owner of an organization: make another member an owner, or delete the organization, first")
	ErrNoPassword = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput,
		"This account has no password set. Use the password reset flow (POST /api/v1/auth/password-reset/request) to set one.")
)
