package user

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/password"
)

// Store is what the user domain needs from storage.
type Store interface {
	CreateUser(ctx context.Context, u User) error
	UserByID(ctx context.Context, id string) (User, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	ListUsers(ctx context.Context, q ListQuery) ([]User, int, error)
	// UpdateUser applies fn to the current row in one transaction. When the
	// update deactivates the user, their sessions are revoked in the same
	// transaction.
	UpdateUser(ctx context.Context, id string, now time.Time, fn func(*User) error) (User, error)
	// SetPassword stores a new hash, revokes every session of the user but
	// keepSessionID ("" revokes all) and invalidates pending reset tokens.
	SetPassword(ctx context.Context, id, hash, keepSessionID string, now time.Time) error
	// SoftDeleteUser marks the user deleted and inactive, revokes their
	// sessions and drops their reset tokens.
	SoftDeleteUser(ctx context.Context, id string, now time.Time) error
	// UpdateUserAndPassword is UpdateUser followed, when hash is not empty,
	// by SetPassword(id, hash, keepSessionID), in one transaction.
	UpdateUserAndPassword(ctx context.Context, id, hash, keepSessionID string, now time.Time, fn func(*User) error) (User, error)
	// BulkUpdateUsers applies action to the live users among ids, except
	// exceptID, in one transaction: deactivation revokes their sessions,
	// deletion is SoftDeleteUser for each. It returns the ids it applied the
	// action to (users already in the target state included).
	BulkUpdateUsers(ctx context.Context, action BulkAction, ids []string, exceptID string, now time.Time) ([]string, error)
}

// Service implements the account use cases.
type Service struct {
	store  Store
	hasher *password.Hasher
	demo   bool
	Now    func() time.Time
}

// NewService returns a Service. demo enables the reference's demo passwords.
func NewService(store Store, hasher *password.Hasher, demo bool) *Service {
	return &Service{store: store, hasher: hasher, demo: demo, Now: time.Now}
}

// NewID returns a new time-ordered UUID.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Registration is the input of public registration. Public registration
// never creates superusers or inactive users (fix 1).
type Registration struct {
	Email       string
	Password    string
	FirstName   string
	LastName    *string
	PhoneNumber *string
}

// CheckPassword applies the password rule and names field in the error.
func (s *Service) CheckPassword(field, pw string) *apperr.Error {
	if msg := password.Check(pw, s.demo); msg != "" {
		return apperr.ValidationField(field, valuePrefix+msg)
	}
	return nil
}

// Register creates an active, non-superuser account. A duplicate email gets
// the same answer as any other failure, after the same password hashing
// work, so neither the message nor the timing reveals existing accounts.
func (s *Service) Register(ctx context.Context, in Registration) (User, error) {
	u, err := s.newUser(in.Email, in.Password, in.FirstName, in.LastName, in.PhoneNumber)
	if err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, in.Password)
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	u.PasswordHash = hash
	u.Preferences = json.RawMessage(`{}`)
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			return User{}, ErrRegistrationFailed
		}
		return User{}, fmt.Errorf("register: %w", err)
	}
	return u, nil
}

// newUser validates the fields of a new account and builds it (no hash yet).
func (s *Service) newUser(email, pw, firstName string, lastName, phone *string) (User, error) {
	var fields []apperr.FieldError
	add := func(e *apperr.Error) {
		if e != nil {
			fields = append(fields, e.Fields...)
		}
	}
	normEmail, e := ParseEmail("email", email)
	add(e)
	add(s.CheckPassword("password", pw))
	add(checkFirstName(firstName))
	if lastName != nil {
		add(CheckName("last_name", *lastName))
	}
	var normPhone *string
	if phone != nil {
		p, e := ParsePhone("phone_number", *phone)
		add(e)
		normPhone = &p
	}
	if len(fields) > 0 {
		return User{}, apperr.Validation(fields...)
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	return User{
		ID: NewID(), Email: normEmail, FirstName: firstName, LastName: lastName, PhoneNumber: normPhone,
		IsActive: true, CreatedAt: now, UpdatedAt: now,
	}, nil
}

func checkFirstName(s string) *apperr.Error {
	if strings.TrimSpace(s) == "" {
		return apperr.ValidationField("first_name", valuePrefix+"First name cannot be empty")
	}
	return CheckName("first_name", s)
}

// Get returns a user. Regular users may read only themselves; that check
// comes before the existence check so ids cannot be probed.
func (s *Service) Get(ctx context.Context, actor Actor, id string) (User, error) {
	if actor.UserID != id && !actor.IsSuperuser {
		return User{}, ErrNotPermittedView
	}
	u, err := s.store.UserByID(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrNotFound.WithMessage("User %s not found", id)
	}
	return u, err
}

// Opt is a field of a partial update: absent (Set false), explicitly null
// (Set and Null) or a value.
type Opt[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// Patch is a partial update of a profile (PATCH /users/me, /users/{id}).
type Patch struct {
	FirstName   Opt[string]
	LastName    Opt[string]
	PhoneNumber Opt[string]
	Preferences Opt[json.RawMessage]
	Locale      Opt[string]
	IsActive    Opt[bool]
	IsSuperuser Opt[bool]
	Password    Opt[string]
}

// Update applies a partial profile update. Passwords change only through
// ChangePassword (fix 4); is_superuser never changes here; is_active only by
// superusers, and never on their own account.
func (s *Service) Update(ctx context.Context, actor Actor, id string, p Patch) (User, error) {
	if actor.UserID != id && !actor.IsSuperuser {
		return User{}, ErrNotPermittedUpdate
	}
	var pwErr *apperr.Error
	if p.Password.Set {
		pwErr = apperr.ValidationField("password", valuePrefix+"Password cannot be changed here; use PATCH /api/v1/users/me/password with the current password")
	}
	apply, err := checkPatch(actor, id, p, pwErr)
	if err != nil {
		return User{}, err
	}
	u, err := s.store.UpdateUser(ctx, id, s.Now(), apply)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrNotFound.WithMessage("User %s not found", id)
	}
	return u, err
}

// checkPatch validates every field of p but Password, which the caller
// checks (its problem, pwErr, is reported first), and returns the function
// that applies p to a stored user. is_superuser is never accepted; is_active
// only from superusers, and never to deactivate the actor's own account.
func checkPatch(actor Actor, id string, p Patch, pwErr *apperr.Error) (func(*User) error, error) {
	var fields []apperr.FieldError
	add := func(e *apperr.Error) {
		if e != nil {
			fields = append(fields, e.Fields...)
		}
	}
	add(pwErr)
	if p.IsSuperuser.Set && !p.IsSuperuser.Null {
		add(apperr.ValidationField("is_superuser", valuePrefix+"Cannot modify superuser status through user update"))
	}
	if p.IsActive.Set && !p.IsActive.Null && !actor.IsSuperuser {
		add(apperr.ValidationField("is_active", valuePrefix+"Only superusers can change the active status of an account"))
	}
	if p.IsActive.Set && p.IsActive.Null {
		add(apperr.ValidationField("is_active", "Input should be a valid boolean"))
	}
	if p.FirstName.Set {
		if p.FirstName.Null {
			add(apperr.ValidationField("first_name", valuePrefix+"First name cannot be null"))
		} else {
			add(checkFirstName(p.FirstName.Value))
		}
	}
	if p.LastName.Set && !p.LastName.Null {
		add(CheckName("last_name", p.LastName.Value))
	}
	var phone, locale string
	if p.PhoneNumber.Set && !p.PhoneNumber.Null {
		var e *apperr.Error
		phone, e = ParsePhone("phone_number", p.PhoneNumber.Value)
		add(e)
	}
	if p.Locale.Set && !p.Locale.Null {
		var e *apperr.Error
		locale, e = ParseLocale("locale", p.Locale.Value)
		add(e)
	}
	var prefs json.RawMessage
	if p.Preferences.Set && !p.Preferences.Null {
		var ok bool
		if prefs, ok = NormalizeObject(p.Preferences.Value); !ok {
			add(apperr.ValidationField("preferences", "Input should be a valid dictionary"))
		}
	}
	if len(fields) > 0 {
		return nil, apperr.Validation(fields...)
	}
	if p.IsActive.Set && !p.IsActive.Value && actor.UserID == id {
		return nil, ErrDeactivateSelf
	}
	return func(u *User) error {
		if p.FirstName.Set {
			u.FirstName = p.FirstName.Value
		}
		if p.LastName.Set {
			u.LastName = optPtr(p.LastName.Null, p.LastName.Value)
		}
		if p.PhoneNumber.Set {
			u.PhoneNumber = optPtr(p.PhoneNumber.Null, phone)
		}
		if p.Locale.Set {
			u.Locale = optPtr(p.Locale.Null, locale)
		}
		if p.Preferences.Set {
			u.Preferences = prefs
		}
		if p.IsActive.Set {
			u.IsActive = p.IsActive.Value
		}
		return nil
	}, nil
}

func optPtr(null bool, v string) *string {
	if null {
		return nil
	}
	return &v
}

// NormalizeObject checks that raw is one JSON object that both engines can
// store and returns it re-encoded: lone UTF-16 surrogates become U+FFFD
// (PostgreSQL's jsonb refuses them), numbers keep their text. Objects with
// NUL characters, which jsonb cannot hold either, are refused.
func NormalizeObject(raw json.RawMessage) (json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data after the object
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, false
	}
	b := bytes.TrimSpace(out.Bytes())
	if bytes.Contains(b, []byte(`\u0000`)) {
		return nil, false
	}
	return b, true
}

// ChangePassword changes the caller's password after checking the current
// one, and revokes every other session of the caller (fix 5).
func (s *Service) ChangePassword(ctx context.Context, actor Actor, current, next string) error {
	if e := s.CheckPassword("new_password", next); e != nil {
		return e
	}
	u, err := s.store.UserByID(ctx, actor.UserID)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if !u.HasPassword() {
		return ErrNoPassword
	}
	if _, err := s.hasher.Verify(ctx, u.PasswordHash, current); err != nil {
		if errors.Is(err, password.ErrMismatch) {
			return ErrWrongPassword
		}
		return fmt.Errorf("change password: %w", err)
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if err := s.store.SetPassword(ctx, u.ID, hash, actor.SessionID, s.Now()); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return nil
}

// Delete soft-deletes a user (superusers only, never themselves): the user is
// deactivated, their sessions revoked, and their email becomes free (fix 3).
func (s *Service) Delete(ctx context.Context, actor Actor, id string) error {
	if !actor.IsSuperuser {
		return ErrNotPermitted
	}
	if actor.UserID == id {
		return ErrDeleteSelf
	}
	err := s.store.SoftDeleteUser(ctx, id, s.Now())
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound.WithMessage("User %s not found", id)
	}
	return err
}

// Sort fields accepted by user listings (fix 18).
var SortFields = []string{"email", "first_name", "last_name", "created_at", "updated_at", "is_active", "is_superuser", "locale"}

// ListQuery selects a page of users.
type ListQuery struct {
	Offset, Limit int
	SortBy        string // one of SortFields, "" for the default order
	Desc          bool
	IsActive      *bool
	IsSuperuser   *bool
	Search        string // case-insensitive substring of email, first or last name
}

// List returns a page of (non-deleted) users and the total count.
// Superusers only.
func (s *Service) List(ctx context.Context, actor Actor, q ListQuery) ([]User, int, error) {
	if !actor.IsSuperuser {
		return nil, 0, ErrNotPermitted
	}
	if q.SortBy != "" && !slices.Contains(SortFields, q.SortBy) {
		return nil, 0, apperr.ValidationField("sort_by",
			fmt.Sprintf("%sInvalid sort field '%s'. Allowed: %s", valuePrefix, q.SortBy, strings.Join(SortFields, ", ")))
	}
	return s.store.ListUsers(ctx, q)
}

// EnsureSuperuser creates a superuser with email and pw unless an account
// with that email exists. It reports whether it created one.
func (s *Service) EnsureSuperuser(ctx context.Context, email, pw string) (User, bool, error) {
	norm, e := ParseEmail("email", email)
	if e != nil {
		return User{}, false, e
	}
	if u, err := s.store.UserByEmail(ctx, norm); err == nil {
		return u, false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return User{}, false, err
	}
	last := "User"
	u, err := s.newUser(norm, pw, "Admin", &last, nil)
	if err != nil {
		return User{}, false, err
	}
	u.IsSuperuser = true
	u.Preferences = json.RawMessage(`{}`)
	if u.PasswordHash, err = s.hasher.Hash(ctx, pw); err != nil {
		return User{}, false, err
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrEmailTaken) { // created concurrently by another instance
			u, err := s.store.UserByEmail(ctx, norm)
			return u, false, err
		}
		return User{}, false, err
	}
	return u, true, nil
}

// GeneratePassword returns a random 20-character password that satisfies
// the password rule.
func GeneratePassword() string {
	const (
		lower = "abcdefghijkmnopqrstuvwxyz"
		upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		digit = "23456789"
		spec  = "!@#%^*-_+="
	)
	pick := func(set string) byte {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		return set[n.Int64()]
	}
	all := lower + upper + digit + spec
	b := []byte{pick(lower), pick(upper), pick(digit), pick(spec)}
	for len(b) < 20 {
		b = append(b, pick(all))
	}
	for i := len(b) - 1; i > 0; i-- {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(i+1)))
		j := n.Int64()
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}
