package pat

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apperr"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Store is what the personal-access-token domain needs from storage.
type Store interface {
	// CreatePAT inserts t unless its owner (who must be active and not
	// deleted: user.ErrNotFound otherwise) already holds maxLive live
	// tokens at now (ErrTooMany); the count and the insert are atomic.
	CreatePAT(ctx context.Context, t Token, maxLive int, now time.Time) error
	// PATByHash returns the token with that digest and its owner;
	// ErrNotFound when there is none.
	PATByHash(ctx context.Context, hash string) (Token, user.User, error)
	// UserPATs lists a user's live tokens at now, newest first.
	UserPATs(ctx context.Context, userID string, now time.Time) ([]Token, error)
	// PATs returns a page of the tokens of users who are not deleted,
	// newest first, and the total count.
	PATs(ctx context.Context, q ListQuery) ([]Owned, int, error)
	// RevokePAT marks a token revoked at now (a revoked token keeps its
	// first revocation time) and returns it. With userID set, only that
	// user's token; tokens of deleted users are never found: ErrNotFound.
	RevokePAT(ctx context.Context, id, userID string, now time.Time) (Token, error)
	// TouchPAT records a use at at, unless a later one is recorded.
	TouchPAT(ctx context.Context, id string, at time.Time) error
}

// Options are the policy of PAT_* settings.
type Options struct {
	DefaultExpiryDays int  // PAT_DEFAULT_EXPIRY_DAYS
	MaxExpiryDays     int  // PAT_MAX_EXPIRY_DAYS
	AllowNoExpiry     bool // PAT_ALLOW_NO_EXPIRY
	// UsageQueue is how many last-use writes may wait for the background
	// writer; more are dropped. 0 means 1024.
	UsageQueue int
}

// Service implements the personal-access-token use cases.
type Service struct {
	store  Store
	opts   Options
	logger *slog.Logger
	Now    func() time.Time

	// Last-use bookkeeping (usage.go).
	mu      sync.Mutex
	used    map[string]time.Time // token id -> last use queued by this process
	touches chan touch
	dropped atomic.Int64
}

// NewService returns a Service. Start Run to write last uses.
func NewService(store Store, opts Options, logger *slog.Logger) *Service {
	if opts.UsageQueue <= 0 {
		opts.UsageQueue = 1024
	}
	return &Service{store: store, opts: opts, logger: logger, Now: time.Now,
		used: map[string]time.Time{}, touches: make(chan touch, opts.UsageQueue)}
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Microsecond) }

// Input is a new token. ExpiresInDays absent means the default lifetime;
// explicitly null is refused (NoExpiry says "never" in so many words).
type Input struct {
	Name          string
	Scopes        []string
	ExpiresInDays user.Opt[int]
	NoExpiry      bool
}

// firstParty refuses actors that did not sign in to Gatehouse itself: a
// personal access token or an application's token never manages tokens.
// The HTTP gate refuses them first (docs/SCOPES.md); this is the rule.
func firstParty(actor user.Actor) error {
	if actor.UserID == "" || actor.SessionID == "" {
		return ErrFirstPartyOnly
	}
	return nil
}

// Create makes a token for the actor and returns it with its secret, which
// is shown once and never stored.
func (s *Service) Create(ctx context.Context, actor user.Actor, in Input) (Token, string, error) {
	if err := firstParty(actor); err != nil {
		return Token{}, "", err
	}
	now := s.now()
	var fields []apperr.FieldError
	add := func(e *apperr.Error) {
		if e != nil {
			fields = append(fields, e.Fields...)
		}
	}
	name, e := CheckName("name", in.Name)
	add(e)
	scopes, e := ParseScopes("scopes", in.Scopes)
	add(e)
	expires, e := s.expiry(in, now)
	add(e)
	if len(fields) > 0 {
		return Token{}, "", apperr.Validation(fields...)
	}
	if slices.Contains(scopes, ScopeAdmin) && !actor.IsSuperuser {
		return Token{}, "", ErrAdminScope
	}
	secret := Prefix + token.RandomSecret()
	t := Token{ID: user.NewID(), UserID: actor.UserID, Name: name, Hash: token.HashSecret(secret),
		Prefix: secret[:displayLength], Scopes: scopes, ExpiresAt: expires, CreatedAt: now}
	if err := s.store.CreatePAT(ctx, t, MaxLive, now); err != nil {
		if errors.Is(err, ErrTooMany) {
			return Token{}, "", err
		}
		return Token{}, "", fmt.Errorf("create personal access token: %w", err)
	}
	return t, secret, nil
}

// expiry applies the expiry rules to in: the default lifetime, 1 day to
// the maximum, or none when allowed and asked for explicitly.
func (s *Service) expiry(in Input, now time.Time) (*time.Time, *apperr.Error) {
	days := s.opts.DefaultExpiryDays
	maxDays := strconv.Itoa(s.opts.MaxExpiryDays)
	switch d := in.ExpiresInDays; {
	case in.NoExpiry && d.Set && !d.Null:
		return nil, apperr.ValidationField("expires_in_days", valuePrefix+"Give either expires_in_days or no_expiry, not both")
	case in.NoExpiry && !s.opts.AllowNoExpiry:
		return nil, apperr.ValidationField("no_expiry", valuePrefix+"Tokens without an expiry are not allowed on this server; "+
			"give expires_in_days (1 to "+maxDays+")")
	case in.NoExpiry:
		return nil, nil
	case d.Set && d.Null:
		return nil, apperr.ValidationField("expires_in_days", valuePrefix+"expires_in_days must be a number of days (1 to "+maxDays+
			"); send \"no_expiry\": true for a token that never expires")
	case d.Set && d.Value < 1:
		return nil, apperr.ValidationField("expires_in_days", valuePrefix+"The expiry must be in the future: at least 1 day")
	case d.Set && d.Value > s.opts.MaxExpiryDays:
		return nil, apperr.ValidationField("expires_in_days", valuePrefix+"The expiry must be at most "+maxDays+" days away")
	case d.Set:
		days = d.Value
	}
	at := now.AddDate(0, 0, days)
	return &at, nil
}

// Mine lists the actor's live tokens, newest first.
func (s *Service) Mine(ctx context.Context, actor user.Actor) ([]Token, error) {
	if err := firstParty(actor); err != nil {
		return nil, err
	}
	list, err := s.store.UserPATs(ctx, actor.UserID, s.now())
	if err != nil {
		return nil, fmt.Errorf("list personal access tokens: %w", err)
	}
	return list, nil
}

// Revoke revokes one of the actor's tokens; it stops working at once.
// Another user's token is not found, exactly like an unknown id, so ids
// cannot be probed. Revoking a revoked or expired token succeeds again.
func (s *Service) Revoke(ctx context.Context, actor user.Actor, id string) (Token, error) {
	if err := firstParty(actor); err != nil {
		return Token{}, err
	}
	return s.revoke(ctx, id, actor.UserID)
}

// List returns a page of every user's tokens (superusers only).
func (s *Service) List(ctx context.Context, actor user.Actor, q ListQuery) ([]Owned, int, error) {
	if err := firstParty(actor); err != nil {
		return nil, 0, err
	}
	if !actor.IsSuperuser {
		return nil, 0, ErrNotPermitted
	}
	q.Now = s.now()
	list, total, err := s.store.PATs(ctx, q)
	if err != nil {
		return nil, 0, fmt.Errorf("list personal access tokens: %w", err)
	}
	return list, total, nil
}

// RevokeAny revokes anyone's token (superusers only).
func (s *Service) RevokeAny(ctx context.Context, actor user.Actor, id string) (Token, error) {
	if err := firstParty(actor); err != nil {
		return Token{}, err
	}
	if !actor.IsSuperuser {
		return Token{}, ErrNotPermitted
	}
	return s.revoke(ctx, id, "")
}

func (s *Service) revoke(ctx context.Context, id, userID string) (Token, error) {
	t, err := s.store.RevokePAT(ctx, id, userID, s.now())
	if errors.Is(err, ErrNotFound) {
		return Token{}, err
	}
	if err != nil {
		return Token{}, fmt.Errorf("revoke personal access token %s: %w", id, err)
	}
	return t, nil
}

// Authenticate checks a bearer secret and returns its token and owner. The
// token must exist (looked up by digest; guessing a prefix finds nothing),
// be neither revoked nor expired, and belong to an active user who is not
// deleted; all of it is read on every call, so a revocation, a deactivation
// or a password change (PAT_REVOKE_ON_PASSWORD_CHANGE) applies to the next
// request. A use is recorded in the background, at most once a minute.
func (s *Service) Authenticate(ctx context.Context, raw string) (Token, user.User, error) {
	if !wellFormed(raw) {
		return Token{}, user.User{}, ErrInvalid
	}
	digest := token.HashSecret(raw)
	t, owner, err := s.store.PATByHash(ctx, digest)
	if errors.Is(err, ErrNotFound) {
		return Token{}, user.User{}, ErrInvalid
	}
	if err != nil {
		return Token{}, user.User{}, fmt.Errorf("authenticate personal access token: %w", err)
	}
	// The row was found by this digest; compare once more in constant time
	// so that nothing but equal digests can ever pass.
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(digest)) != 1 {
		return Token{}, user.User{}, ErrInvalid
	}
	now := s.now()
	switch {
	case owner.DeletedAt != nil:
		return Token{}, user.User{}, ErrInvalid // a deleted user is absent everywhere
	case t.RevokedAt != nil:
		return Token{}, user.User{}, ErrRevoked
	case t.Expired(now):
		return Token{}, user.User{}, ErrExpired
	case !owner.IsActive:
		return Token{}, user.User{}, ErrOwnerInactive
	}
	s.recordUse(t, now)
	return t, owner, nil
}
