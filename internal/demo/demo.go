// Package demo loads the demo data of DEMO_MODE (reference §8.2): six
// organizations and 33 users with their roles, inactive flags and creation
// dates spread over the last 30 days, so that a fresh instance has something
// to show, the admin statistics included. The data is embedded from
// data.json.
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

//go:embed data.json
var dataJSON []byte

// MaxDaysAgo is the oldest creation date a demo user may have, in days
// before the seeding: the admin statistics chart the last 30 days (today and
// the 29 before).
const MaxDaysAgo = 29

// Organization is a demo organization.
type Organization struct {
	Name        string `json:"name"`
	Slug        string `json:"slug"`
	Description string `json:"description"`
}

// User is a demo user. Organization is the slug of the organization the
// user belongs to with Role, or empty for a user without organization.
// The user is created DaysAgo days before the seeding.
type User struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	IsActive     *bool  `json:"is_active"`
	DaysAgo      int    `json:"days_ago"`
	Organization string `json:"organization"`
	Role         string `json:"role"`
}

// Data is the content of data.json.
type Data struct {
	Organizations []Organization `json:"organizations"`
	Users         []User         `json:"users"`
}

// Load decodes and checks the embedded data file: unique slugs and emails,
// known organizations and roles, is_active given, days_ago within
// 0..MaxDaysAgo. Field rules (email syntax, password rule, names, slugs) are
// applied by Seed through the domain packages.
func Load() (Data, error) {
	dec := json.NewDecoder(bytes.NewReader(dataJSON))
	dec.DisallowUnknownFields()
	var d Data
	if err := dec.Decode(&d); err != nil {
		return Data{}, fmt.Errorf("demo data: %w", err)
	}
	slugs := map[string]bool{}
	for _, o := range d.Organizations {
		if slugs[o.Slug] {
			return Data{}, fmt.Errorf("demo data: organization %q listed twice", o.Slug)
		}
		slugs[o.Slug] = true
	}
	emails := map[string]bool{}
	for _, u := range d.Users {
		switch {
		case emails[u.Email]:
			return Data{}, fmt.Errorf("demo data: user %s listed twice", u.Email)
		case u.IsActive == nil:
			return Data{}, fmt.Errorf("demo data: user %s has no is_active", u.Email)
		case u.DaysAgo < 0 || u.DaysAgo > MaxDaysAgo:
			return Data{}, fmt.Errorf("demo data: user %s: days_ago %d is not within 0..%d", u.Email, u.DaysAgo, MaxDaysAgo)
		case u.Organization == "" && u.Role != "":
			return Data{}, fmt.Errorf("demo data: user %s has a role but no organization", u.Email)
		case u.Organization != "" && !slugs[u.Organization]:
			return Data{}, fmt.Errorf("demo data: user %s: unknown organization %q", u.Email, u.Organization)
		}
		if u.Organization != "" {
			if _, e := org.ParseRole("role", u.Role); e != nil {
				return Data{}, fmt.Errorf("demo data: user %s: %w", u.Email, e)
			}
		}
		emails[u.Email] = true
	}
	return d, nil
}

// Store is what seeding needs from storage besides the services.
type Store interface {
	UserByEmail(ctx context.Context, email string) (user.User, error)
	OrganizationBySlug(ctx context.Context, slug string) (org.Organization, error)
	// CreateUserWithMemberships inserts a user and its memberships in one
	// transaction; user.ErrEmailTaken when the email is in use.
	CreateUserWithMemberships(ctx context.Context, u user.User, ms []org.Membership) error
}

// Deps are what Seed works through. Users must be the DEMO_MODE user
// service (it accepts the demo password) and Hasher the one it hashes with.
type Deps struct {
	Store  Store
	Users  *user.Service
	Orgs   *org.Service
	Hasher *password.Hasher
	Now    func() time.Time // nil: time.Now
}

// Result counts what Seed created.
type Result struct {
	Organizations int
	Users         int
}

// Errors of Seed.
var (
	ErrProduction  = errors.New("demo data is never loaded in production (ENVIRONMENT=production)")
	ErrNotDemoMode = errors.New("demo data is loaded only with DEMO_MODE=true")
	ErrNotAdmin    = errors.New("demo data must be loaded by a superuser")
)

// Seed creates the demo organizations whose slug is absent and the demo
// users whose email is absent, acting as admin (a superuser), so running it
// again creates nothing. Organizations are created by org.Service (name and
// slug rules); users are checked with the user domain's rules (email,
// password rule of DEMO_MODE, names) and hashed by the service's hasher, then
// written with their creation date, active flag and membership in one
// transaction each. It refuses to run in production or outside DEMO_MODE.
func Seed(ctx context.Context, cfg config.Config, d Deps, admin user.Actor) (Result, error) {
	switch {
	case cfg.Production():
		return Result{}, ErrProduction
	case !cfg.DemoMode:
		return Result{}, ErrNotDemoMode
	case !admin.IsSuperuser:
		return Result{}, ErrNotAdmin
	}
	data, err := Load()
	if err != nil {
		return Result{}, err
	}
	clock := d.Now
	if clock == nil {
		clock = time.Now
	}
	now := clock().UTC().Truncate(time.Microsecond)

	var res Result
	orgIDs := make(map[string]string, len(data.Organizations))
	for _, spec := range data.Organizations {
		id, created, err := ensureOrganization(ctx, d, admin, spec)
		if err != nil {
			return res, fmt.Errorf("demo organization %s: %w", spec.Slug, err)
		}
		orgIDs[spec.Slug] = id
		if created {
			res.Organizations++
		}
	}

	// Every demo user but one has the password Demo123!. A bcrypt hash at the
	// default cost takes about 0.3 s, so hashing it for each user would delay
	// the first start by about ten seconds. Each distinct password is hashed
	// once and the hash (salt included) is shared by the users who have it:
	// the hash still verifies normally, and an identical stored hash reveals
	// only what the public data file already says, that these demo accounts
	// share a password.
	hashes := map[string]string{}
	for _, spec := range data.Users {
		created, err := ensureUser(ctx, d, spec, orgIDs, hashes, now)
		if err != nil {
			return res, fmt.Errorf("demo user %s: %w", spec.Email, err)
		}
		if created {
			res.Users++
		}
	}
	return res, nil
}

// ensureOrganization returns the id of the organization with spec's slug,
// creating it (without members) when it is absent.
func ensureOrganization(ctx context.Context, d Deps, admin user.Actor, spec Organization) (string, bool, error) {
	o, err := d.Store.OrganizationBySlug(ctx, spec.Slug)
	if err == nil {
		return o.ID, false, nil
	}
	if !errors.Is(err, org.ErrNotFound) {
		return "", false, err
	}
	desc := spec.Description
	o, err = d.Orgs.Create(ctx, admin, org.Input{Name: spec.Name, Slug: spec.Slug, Description: &desc}, false)
	if err == nil {
		return o.ID, true, nil
	}
	// Created meanwhile (by another instance starting): use that one.
	if existing, lookupErr := d.Store.OrganizationBySlug(ctx, spec.Slug); lookupErr == nil {
		return existing.ID, false, nil
	}
	return "", false, err
}

// ensureUser creates the user of spec with their membership unless a live
// account has the email. hashes caches the hash of each password.
func ensureUser(ctx context.Context, d Deps, spec User, orgIDs, hashes map[string]string, now time.Time) (bool, error) {
	email, e := user.ParseEmail("email", spec.Email)
	if e != nil {
		return false, e
	}
	if _, err := d.Store.UserByEmail(ctx, email); err == nil {
		return false, nil
	} else if !errors.Is(err, user.ErrNotFound) {
		return false, err
	}
	var blank *apperr.Error
	if strings.TrimSpace(spec.FirstName) == "" {
		blank = apperr.ValidationField("first_name", "Value error, First name cannot be empty")
	}
	for _, check := range []*apperr.Error{
		d.Users.CheckPassword("password", spec.Password),
		blank,
		user.CheckName("first_name", spec.FirstName),
		user.CheckName("last_name", spec.LastName),
	} {
		if check != nil {
			return false, check
		}
	}
	hash, ok := hashes[spec.Password]
	if !ok {
		var err error
		if hash, err = d.Hasher.Hash(ctx, spec.Password); err != nil {
			return false, err
		}
		hashes[spec.Password] = hash
	}

	created := now.AddDate(0, 0, -spec.DaysAgo)
	last := spec.LastName
	u := user.User{
		ID: user.NewID(), Email: email, PasswordHash: hash, FirstName: spec.FirstName, LastName: &last,
		IsActive: *spec.IsActive, Preferences: json.RawMessage(`{}`), CreatedAt: created, UpdatedAt: created,
	}
	var ms []org.Membership
	if spec.Organization != "" {
		role, e := org.ParseRole("role", spec.Role)
		if e != nil {
			return false, e
		}
		// The organizations were created just now, so members joined now.
		ms = append(ms, org.Membership{UserID: u.ID, OrganizationID: orgIDs[spec.Organization], Role: role,
			IsActive: true, CreatedAt: now, UpdatedAt: now})
	}
	err := d.Store.CreateUserWithMemberships(ctx, u, ms)
	if errors.Is(err, user.ErrEmailTaken) { // created meanwhile
		return false, nil
	}
	return err == nil, err
}
