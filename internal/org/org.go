// Package org is the organization domain: organizations, memberships with
// roles (owner > admin > member > guest), invitations by email, and the
// Service that enforces who may do what with an explicit actor.
package org

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
)

// Role is a member's role in an organization.
type Role string

// The roles, highest first.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleGuest  Role = "guest"
)

// Roles lists every role, highest first.
var Roles = []Role{RoleOwner, RoleAdmin, RoleMember, RoleGuest}

// ParseRole validates a role name.
func ParseRole(field, s string) (Role, *apperr.Error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", apperr.ValidationField(field, "Input should be 'owner', 'admin', 'member' or 'guest'")
}

// manages reports whether the role may manage members (owner, admin).
func (r Role) manages() bool { return r == RoleOwner || r == RoleAdmin }

// Organization is a tenant. MemberCount is the number of active
// memberships, filled by reads.
type Organization struct {
	ID          string
	Name        string
	Slug        string
	Description *string
	IsActive    bool
	Settings    json.RawMessage // nil when NULL
	CreatedAt   time.Time
	UpdatedAt   time.Time
	MemberCount int
}

// Membership links a user to an organization. IsActive false means the
// member was removed (the row is kept, as in the reference).
type Membership struct {
	UserID         string
	OrganizationID string
	Role           Role
	IsActive       bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Affiliation is an organization with one user's membership in it.
type Affiliation struct {
	Organization Organization
	Membership   Membership
}

// Member is a membership with the member's public profile.
type Member struct {
	Membership
	Email     string
	FirstName string
	LastName  *string
}

// Invitation invites an email address to join with a role. Only the hash
// of its token is stored.
type Invitation struct {
	ID             string
	OrganizationID string
	Email          string
	Role           Role
	TokenHash      string
	InvitedBy      *string
	ExpiresAt      time.Time
	AcceptedAt     *time.Time
	AcceptedBy     *string
	RevokedAt      *time.Time
	CreatedAt      time.Time
}

// Status is "pending", "accepted", "revoked" or "expired" at now.
func (i Invitation) Status(now time.Time) string {
	switch {
	case i.AcceptedAt != nil:
		return "accepted"
	case i.RevokedAt != nil:
		return "revoked"
	case !now.Before(i.ExpiresAt):
		return "expired"
	}
	return "pending"
}

// Errors of the organization domain.
var (
	ErrNotFound        = apperr.New(apperr.NotFound, apperr.CodeNotFound, "Organization not found")
	ErrNotMember       = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Not a member of this organization")
	ErrSlugTaken       = apperr.New(apperr.Conflict, apperr.CodeAlreadyExists, "Organization slug already exists")
	ErrAlreadyMember   = &apperr.Error{Kind: apperr.Conflict, Code: apperr.CodeUserExists, Message: "User is already a member of this organization", Field: "user_id"}
	ErrMembershipGone  = apperr.New(apperr.NotFound, apperr.CodeNotFound, "User is not a member of this organization")
	ErrLastOwner       = apperr.New(apperr.Conflict, apperr.CodeLastOwner, "An organization must keep at least one active owner: make another member an owner first")
	ErrOwnerOnly       = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Only owners can grant, change or remove the owner role")
	ErrInactiveOrg     = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "This organization is inactive: its members have read access only")
	ErrUserNotFound    = apperr.New(apperr.NotFound, apperr.CodeNotFound, "User not found")
	ErrInviteNotFound  = apperr.New(apperr.NotFound, apperr.CodeNotFound, "Invitation not found")
	ErrInviteInvalid   = apperr.New(apperr.BadRequest, apperr.CodeInvalidInput, "Invalid or expired invitation")
	ErrInviteWrongUser = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "This invitation was sent to another email address")
	ErrNotPermitted    = apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms, "Not enough permissions")
)

// roleNotAuthorized is the reference's message for a role below the one required.
func roleNotAuthorized(r Role) *apperr.Error {
	return apperr.New(apperr.Forbidden, apperr.CodeInsufficientPerms,
		fmt.Sprintf("Role %s not authorized. Required: owner, admin", r))
}

var slugPattern = regexp.MustCompile(`^[a-z0-9-]+$`)

// CheckSlug applies the slug rules of reference §4.7.
func CheckSlug(field, slug string) *apperr.Error {
	const p = "Value error, "
	switch {
	case slug == "":
		return apperr.ValidationField(field, "String should have at least 1 character")
	case utf8.RuneCountInString(slug) > 255:
		return apperr.ValidationField(field, "String should have at most 255 characters")
	case !slugPattern.MatchString(slug):
		return apperr.ValidationField(field, p+"Slug must contain only lowercase letters, numbers, and hyphens")
	case strings.HasPrefix(slug, "-") || strings.HasSuffix(slug, "-"):
		return apperr.ValidationField(field, p+"Slug cannot start or end with a hyphen")
	case strings.Contains(slug, "--"):
		return apperr.ValidationField(field, p+"Slug cannot contain consecutive hyphens")
	}
	return nil
}

// CheckName validates and trims an organization name (1..255 characters,
// not blank).
func CheckName(field, name string) (string, *apperr.Error) {
	n := strings.TrimSpace(name)
	switch {
	case n == "":
		return "", apperr.ValidationField(field, "Value error, Organization name cannot be empty")
	case utf8.RuneCountInString(n) > 255:
		return "", apperr.ValidationField(field, "String should have at most 255 characters")
	case hasControl(n):
		return "", apperr.ValidationField(field, "must not contain control characters")
	}
	return n, nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}
