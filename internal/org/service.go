package org

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/mail"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Store is what the organization domain needs from storage.
type Store interface {
	UserByID(ctx context.Context, id string) (user.User, error)
	UserByEmail(ctx context.Context, email string) (user.User, error)

	// CreateOrganization inserts o and, when owner is not nil, its first
	// membership, atomically. A taken slug gives ErrSlugTaken.
	CreateOrganization(ctx context.Context, o Organization, owner *Membership) error
	OrganizationByID(ctx context.Context, id string) (Organization, error)
	ListOrganizations(ctx context.Context, q ListQuery) ([]Organization, int, error)
	OrganizationsOfUser(ctx context.Context, userID string, activeMembership bool) ([]Organization, error)
	// AffiliationsOfUser is OrganizationsOfUser for active memberships,
	// each with the membership, in one query.
	AffiliationsOfUser(ctx context.Context, userID string) ([]Affiliation, error)
	UpdateOrganization(ctx context.Context, id string, now time.Time, fn func(*Organization) error) (Organization, error)
	DeleteOrganization(ctx context.Context, id string) error

	// Membership returns the (active or removed) membership, or
	// ErrMembershipGone when there is none.
	Membership(ctx context.Context, orgID, userID string) (Membership, error)
	Members(ctx context.Context, orgID string, active bool, offset, limit int) ([]Member, int, error)
	// Member returns one membership with the member's profile, or
	// ErrMembershipGone.
	Member(ctx context.Context, orgID, userID string) (Member, error)
	// AddMember inserts m, or reactivates a removed membership with m's role
	// (keeping its join date); ErrAlreadyMember when it is active.
	AddMember(ctx context.Context, m Membership) error
	// ChangeMembership locks the organization, loads the membership and the
	// number of other active owners (owner memberships of other users whose
	// accounts are active), runs fn and saves the result, atomically, so that
	// concurrent changes cannot remove the last owner.
	ChangeMembership(ctx context.Context, orgID, userID string, now time.Time, fn func(m *Membership, otherOwners int) error) (Membership, error)

	CreateInvitation(ctx context.Context, inv Invitation) error
	Invitations(ctx context.Context, orgID string) ([]Invitation, error)
	InvitationByTokenHash(ctx context.Context, hash string) (Invitation, error)
	// RevokeInvitation marks a pending invitation revoked; ErrInviteNotFound
	// when there is no pending invitation with that id in the organization.
	RevokeInvitation(ctx context.Context, orgID, id string, now time.Time) error
	// AcceptInvitation consumes a pending, unexpired invitation and makes
	// userID a member with its role (an active member keeps their role),
	// atomically; ErrInviteInvalid when it was consumed meanwhile.
	AcceptInvitation(ctx context.Context, hash, userID string, now time.Time) (Membership, error)
}

// Mailer queues an email without blocking.
type Mailer interface {
	Enqueue(m mail.Message)
}

// Options configure invitations.
type Options struct {
	ProjectName   string
	FrontendURL   string
	AcceptPath    string // page that receives ?token=
	InvitationTTL time.Duration
}

// Service implements the organization use cases. Every method takes the
// acting user and decides itself whether they may act; superusers may do
// anything (reference §4.11), but the last-owner rule holds for everyone.
type Service struct {
	store  Store
	mailer Mailer
	opts   Options
	Now    func() time.Time
}

// NewService returns a Service.
func NewService(store Store, mailer Mailer, opts Options) *Service {
	return &Service{store: store, mailer: mailer, opts: opts, Now: time.Now}
}

// ListQuery selects a page of organizations (admin listing).
type ListQuery struct {
	Offset, Limit int
	IsActive      *bool
	Search        string // case-insensitive substring of name, slug or description
}

// Input is the content of a new organization.
type Input struct {
	Name        string
	Slug        string
	Description *string
	IsActive    *bool // nil: active
	Settings    json.RawMessage
}

// Patch is a partial update of an organization.
type Patch struct {
	Name        user.Opt[string]
	Slug        user.Opt[string]
	Description user.Opt[string]
	IsActive    user.Opt[bool]
	Settings    user.Opt[json.RawMessage]
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// Create makes a new organization. With asOwner the actor becomes its owner
// (member-facing creation); the admin API creates organizations without
// members, as the reference does.
func (s *Service) Create(ctx context.Context, actor user.Actor, in Input, asOwner bool) (Organization, error) {
	if !asOwner && !actor.IsSuperuser {
		return Organization{}, ErrNotPermitted
	}
	name, verr := CheckName("name", in.Name)
	var fields []apperr.FieldError
	if verr != nil {
		fields = append(fields, verr.Fields...)
	}
	if e := CheckSlug("slug", in.Slug); e != nil {
		fields = append(fields, e.Fields...)
	}
	if in.Description != nil && containsNUL(*in.Description) {
		fields = append(fields, apperr.FieldError{Field: "description", Message: "must not contain NUL characters"})
	}
	settings := json.RawMessage(`{}`)
	if in.Settings != nil {
		var ok bool
		if settings, ok = user.NormalizeObject(in.Settings); !ok {
			fields = append(fields, apperr.FieldError{Field: "settings", Message: "Input should be a valid dictionary"})
		}
	}
	if len(fields) > 0 {
		return Organization{}, apperr.Validation(fields...)
	}
	now := s.now()
	o := Organization{ID: user.NewID(), Name: name, Slug: in.Slug, Description: in.Description, IsActive: true,
		Settings: settings, CreatedAt: now, UpdatedAt: now}
	if in.IsActive != nil {
		o.IsActive = *in.IsActive
	}
	var owner *Membership
	if asOwner {
		owner = &Membership{UserID: actor.UserID, OrganizationID: o.ID, Role: RoleOwner, IsActive: true, CreatedAt: now, UpdatedAt: now}
		o.MemberCount = 1
	}
	if err := s.store.CreateOrganization(ctx, o, owner); err != nil {
		return Organization{}, slugError(err, o.Slug)
	}
	return o, nil
}

func slugError(err error, slug string) error {
	if errors.Is(err, ErrSlugTaken) {
		e := ErrSlugTaken.WithMessage("Organization with slug '%s' already exists", slug)
		e.Field = "slug"
		return e
	}
	return err
}

// access loads an organization the actor may read: superusers read any,
// others only those they are an active member of. A non-member gets the
// same 403 whether or not the organization exists.
func (s *Service) access(ctx context.Context, actor user.Actor, orgID string) (Organization, *Membership, error) {
	o, err := s.store.OrganizationByID(ctx, orgID)
	if errors.Is(err, ErrNotFound) {
		if actor.IsSuperuser {
			return Organization{}, nil, ErrNotFound.WithMessage("Organization %s not found", orgID)
		}
		return Organization{}, nil, ErrNotMember
	}
	if err != nil {
		return Organization{}, nil, err
	}
	m, err := s.store.Membership(ctx, orgID, actor.UserID)
	switch {
	case err == nil && m.IsActive:
		return o, &m, nil
	case err != nil && !errors.Is(err, ErrMembershipGone):
		return Organization{}, nil, err
	case actor.IsSuperuser:
		return o, nil, nil
	}
	return Organization{}, nil, ErrNotMember
}

// manage loads an organization the actor may manage and returns the
// actor's effective role: owners and admins of an active organization, and
// superusers (treated as owners).
func (s *Service) manage(ctx context.Context, actor user.Actor, orgID string) (Organization, Role, error) {
	o, m, err := s.access(ctx, actor, orgID)
	if err != nil {
		return Organization{}, "", err
	}
	if actor.IsSuperuser {
		return o, RoleOwner, nil
	}
	if !m.Role.manages() {
		return Organization{}, "", roleNotAuthorized(m.Role)
	}
	if !o.IsActive {
		return Organization{}, "", ErrInactiveOrg
	}
	return o, m.Role, nil
}

// Get returns an organization the actor can read.
func (s *Service) Get(ctx context.Context, actor user.Actor, orgID string) (Organization, error) {
	o, _, err := s.access(ctx, actor, orgID)
	return o, err
}

// Mine lists the organizations the actor belongs to (activeMembership
// true), or was removed from (false).
func (s *Service) Mine(ctx context.Context, actor user.Actor, activeMembership bool) ([]Organization, error) {
	return s.store.OrganizationsOfUser(ctx, actor.UserID, activeMembership)
}

// MyAffiliations returns the organizations the actor is an active member
// of, each with the actor's membership (role, join date), newest first.
func (s *Service) MyAffiliations(ctx context.Context, actor user.Actor) ([]Affiliation, error) {
	return s.store.AffiliationsOfUser(ctx, actor.UserID)
}

// List lists every organization (superusers only).
func (s *Service) List(ctx context.Context, actor user.Actor, q ListQuery) ([]Organization, int, error) {
	if !actor.IsSuperuser {
		return nil, 0, ErrNotPermitted
	}
	return s.store.ListOrganizations(ctx, q)
}

// Members lists members (active true) or removed members (active false).
// Any member may list the members; only owners, admins and superusers may
// list removed ones.
func (s *Service) Members(ctx context.Context, actor user.Actor, orgID string, active bool, offset, limit int) ([]Member, int, error) {
	_, m, err := s.access(ctx, actor, orgID)
	if err != nil {
		return nil, 0, err
	}
	if !active && !actor.IsSuperuser && !m.Role.manages() {
		return nil, 0, roleNotAuthorized(m.Role)
	}
	return s.store.Members(ctx, orgID, active, offset, limit)
}

// MemberOf returns one member of an organization the actor can read.
func (s *Service) MemberOf(ctx context.Context, actor user.Actor, orgID, userID string) (Member, error) {
	if _, _, err := s.access(ctx, actor, orgID); err != nil {
		return Member{}, err
	}
	return s.store.Member(ctx, orgID, userID)
}

// Update changes an organization (owners, admins, superusers). Only
// superusers can change an inactive organization, which is how one is
// reactivated.
func (s *Service) Update(ctx context.Context, actor user.Actor, orgID string, p Patch) (Organization, error) {
	if _, _, err := s.manage(ctx, actor, orgID); err != nil {
		return Organization{}, err
	}
	var fields []apperr.FieldError
	name := ""
	if p.Name.Set {
		if p.Name.Null {
			fields = append(fields, apperr.FieldError{Field: "name", Message: "Value error, Organization name cannot be empty"})
		} else if n, e := CheckName("name", p.Name.Value); e != nil {
			fields = append(fields, e.Fields...)
		} else {
			name = n
		}
	}
	if p.Slug.Set {
		if p.Slug.Null {
			fields = append(fields, apperr.FieldError{Field: "slug", Message: "Input should be a valid string"})
		} else if e := CheckSlug("slug", p.Slug.Value); e != nil {
			fields = append(fields, e.Fields...)
		}
	}
	if p.IsActive.Set && p.IsActive.Null {
		fields = append(fields, apperr.FieldError{Field: "is_active", Message: "Input should be a valid boolean"})
	}
	if p.Description.Set && !p.Description.Null && containsNUL(p.Description.Value) {
		fields = append(fields, apperr.FieldError{Field: "description", Message: "must not contain NUL characters"})
	}
	var settings json.RawMessage
	if p.Settings.Set && !p.Settings.Null {
		var ok bool
		if settings, ok = user.NormalizeObject(p.Settings.Value); !ok {
			fields = append(fields, apperr.FieldError{Field: "settings", Message: "Input should be a valid dictionary"})
		}
	}
	if len(fields) > 0 {
		return Organization{}, apperr.Validation(fields...)
	}
	o, err := s.store.UpdateOrganization(ctx, orgID, s.now(), func(o *Organization) error {
		if p.Name.Set {
			o.Name = name
		}
		if p.Slug.Set {
			o.Slug = p.Slug.Value
		}
		if p.Description.Set {
			o.Description = nil
			if !p.Description.Null {
				d := p.Description.Value
				o.Description = &d
			}
		}
		if p.IsActive.Set {
			o.IsActive = p.IsActive.Value
		}
		if p.Settings.Set {
			o.Settings = settings
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Organization{}, ErrNotFound.WithMessage("Organization %s not found", orgID)
	}
	if p.Slug.Set {
		err = slugError(err, p.Slug.Value)
	}
	return o, err
}

// Delete removes an organization and its memberships (superusers only).
func (s *Service) Delete(ctx context.Context, actor user.Actor, orgID string) (Organization, error) {
	if !actor.IsSuperuser {
		return Organization{}, ErrNotPermitted
	}
	o, err := s.store.OrganizationByID(ctx, orgID)
	if errors.Is(err, ErrNotFound) {
		return Organization{}, ErrNotFound.WithMessage("Organization %s not found", orgID)
	}
	if err != nil {
		return Organization{}, err
	}
	if err := s.store.DeleteOrganization(ctx, orgID); err != nil {
		return Organization{}, err
	}
	return o, nil
}

// Target names the user to add: by id or by email (exactly one).
type Target struct {
	UserID string
	Email  string
}

// AddMember adds a user (by id or email) with a role. Owners may grant any
// role; admins any role but owner. A removed member is re-added with the
// new role.
func (s *Service) AddMember(ctx context.Context, actor user.Actor, orgID string, t Target, role Role) (Organization, user.User, error) {
	o, actorRole, err := s.manage(ctx, actor, orgID)
	if err != nil {
		return Organization{}, user.User{}, err
	}
	if role == RoleOwner && actorRole != RoleOwner {
		return Organization{}, user.User{}, ErrOwnerOnly
	}
	u, err := s.resolve(ctx, t)
	if err != nil {
		return Organization{}, user.User{}, err
	}
	now := s.now()
	err = s.store.AddMember(ctx, Membership{UserID: u.ID, OrganizationID: orgID, Role: role, IsActive: true, CreatedAt: now, UpdatedAt: now})
	return o, u, err
}

func (s *Service) resolve(ctx context.Context, t Target) (user.User, error) {
	var (
		u   user.User
		err error
	)
	if t.UserID != "" {
		u, err = s.store.UserByID(ctx, t.UserID)
		if errors.Is(err, user.ErrNotFound) {
			return user.User{}, ErrUserNotFound.WithMessage("User %s not found", t.UserID)
		}
		return u, err
	}
	email, verr := user.ParseEmail("email", t.Email)
	if verr != nil {
		return user.User{}, verr
	}
	u, err = s.store.UserByEmail(ctx, email)
	if errors.Is(err, user.ErrNotFound) {
		e := ErrUserNotFound.WithMessage("No user with email %s: send an invitation instead", email)
		e.Field = "email"
		return user.User{}, e
	}
	return u, err
}

// ChangeRole changes a member's role. Admins cannot grant the owner role
// nor change an owner's role; the last active owner cannot be demoted.
func (s *Service) ChangeRole(ctx context.Context, actor user.Actor, orgID, userID string, role Role) (Membership, error) {
	_, actorRole, err := s.manage(ctx, actor, orgID)
	if err != nil {
		return Membership{}, err
	}
	if role == RoleOwner && actorRole != RoleOwner {
		return Membership{}, ErrOwnerOnly
	}
	return s.store.ChangeMembership(ctx, orgID, userID, s.now(), func(m *Membership, otherOwners int) error {
		if !m.IsActive {
			return ErrMembershipGone
		}
		if m.Role == RoleOwner && actorRole != RoleOwner {
			return ErrOwnerOnly
		}
		if m.Role == RoleOwner && role != RoleOwner && otherOwners == 0 {
			return ErrLastOwner
		}
		m.Role = role
		return nil
	})
}

// RemoveMember removes a member. Members may remove themselves (leave);
// owners and admins may remove others, admins not owners; the last active
// owner can neither leave nor be removed. It returns the organization and
// the removed user.
func (s *Service) RemoveMember(ctx context.Context, actor user.Actor, orgID, userID string) (Organization, user.User, error) {
	var (
		o         Organization
		actorRole Role
		err       error
	)
	if userID == actor.UserID && !actor.IsSuperuser {
		var m *Membership
		if o, m, err = s.access(ctx, actor, orgID); err != nil {
			return Organization{}, user.User{}, err
		}
		actorRole = m.Role
	} else if o, actorRole, err = s.manage(ctx, actor, orgID); err != nil {
		return Organization{}, user.User{}, err
	}
	u, err := s.resolve(ctx, Target{UserID: userID})
	if err != nil {
		return Organization{}, user.User{}, err
	}
	_, err = s.store.ChangeMembership(ctx, orgID, userID, s.now(), func(m *Membership, otherOwners int) error {
		if !m.IsActive {
			return ErrMembershipGone
		}
		if m.Role == RoleOwner && actorRole != RoleOwner && userID != actor.UserID {
			return ErrOwnerOnly
		}
		if m.Role == RoleOwner && otherOwners == 0 {
			return ErrLastOwner
		}
		m.IsActive = false
		return nil
	})
	return o, u, err
}

// Invite mails an invitation to an address and returns it. The address may
// or may not have an account (the answer does not tell which); its owner
// accepts after registering or logging in. Admins cannot invite owners.
func (s *Service) Invite(ctx context.Context, actor user.Actor, orgID, email string, role Role) (Invitation, error) {
	o, actorRole, err := s.manage(ctx, actor, orgID)
	if err != nil {
		return Invitation{}, err
	}
	if role == RoleOwner && actorRole != RoleOwner {
		return Invitation{}, ErrOwnerOnly
	}
	norm, verr := user.ParseEmail("email", email)
	if verr != nil {
		return Invitation{}, verr
	}
	inviter, err := s.store.UserByID(ctx, actor.UserID)
	if err != nil {
		return Invitation{}, err
	}
	secret := token.RandomSecret()
	now := s.now()
	inv := Invitation{ID: user.NewID(), OrganizationID: orgID, Email: norm, Role: role, TokenHash: token.HashSecret(secret),
		InvitedBy: &inviter.ID, ExpiresAt: now.Add(s.opts.InvitationTTL), CreatedAt: now}
	if err := s.store.CreateInvitation(ctx, inv); err != nil {
		return Invitation{}, err
	}
	link := s.opts.FrontendURL + s.opts.AcceptPath + "?token=" + url.QueryEscape(secret)
	s.mailer.Enqueue(mail.Invitation(norm, inviter.FirstName, o.Name, string(role), s.opts.ProjectName, link, s.opts.InvitationTTL))
	return inv, nil
}

// Invitations lists an organization's invitations, newest first, to its
// owners and admins (a read: also when the organization is inactive).
func (s *Service) Invitations(ctx context.Context, actor user.Actor, orgID string) ([]Invitation, error) {
	_, m, err := s.access(ctx, actor, orgID)
	if err != nil {
		return nil, err
	}
	if !actor.IsSuperuser && !m.Role.manages() {
		return nil, roleNotAuthorized(m.Role)
	}
	return s.store.Invitations(ctx, orgID)
}

// RevokeInvitation revokes a pending invitation.
func (s *Service) RevokeInvitation(ctx context.Context, actor user.Actor, orgID, invitationID string) error {
	if _, _, err := s.manage(ctx, actor, orgID); err != nil {
		return err
	}
	return s.store.RevokeInvitation(ctx, orgID, invitationID, s.now())
}

// AcceptInvitation makes the actor a member with the invitation's role. The
// invitation must be pending and unexpired, sent to the actor's email, for an
// active organization; it can be used once.
func (s *Service) AcceptInvitation(ctx context.Context, actor user.Actor, secret string) (Organization, Membership, error) {
	hash := token.HashSecret(secret)
	inv, err := s.store.InvitationByTokenHash(ctx, hash)
	if err != nil {
		return Organization{}, Membership{}, err
	}
	now := s.now()
	if inv.Status(now) != "pending" {
		return Organization{}, Membership{}, ErrInviteInvalid
	}
	u, err := s.store.UserByID(ctx, actor.UserID)
	if err != nil {
		return Organization{}, Membership{}, fmt.Errorf("accept invitation: %w", err)
	}
	if u.Email != inv.Email {
		return Organization{}, Membership{}, ErrInviteWrongUser
	}
	o, err := s.store.OrganizationByID(ctx, inv.OrganizationID)
	if err != nil {
		return Organization{}, Membership{}, err
	}
	if !o.IsActive {
		return Organization{}, Membership{}, ErrInactiveOrg
	}
	m, err := s.store.AcceptInvitation(ctx, hash, u.ID, now)
	return o, m, err
}

// isObject reports a JSON object that both engines can store.
func isObject(raw json.RawMessage) bool {
	_, ok := user.NormalizeObject(raw)
	return ok
}

// containsNUL reports a NUL character, raw or JSON-escaped, which
// PostgreSQL cannot store.
func containsNUL(s string) bool {
	return strings.ContainsRune(s, 0) || strings.Contains(s, `\u0000`)
}
