package social

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/seal"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// State is a login in progress, stored until the callback (single use).
type State struct {
	ID          string
	Hash        string // SHA-256 of the state sent to the provider
	Provider    string
	Verifier    string // sealed PKCE verifier
	Nonce       string
	RedirectURI string
	UserID      *string // set in link mode
	ExpiresAt   time.Time
	CreatedAt   time.Time
}

// Account is a provider identity linked to a user.
type Account struct {
	ID             string
	UserID         string
	Provider       string
	ProviderUserID string
	ProviderEmail  *string
	AccessToken    string // sealed
	RefreshToken   string // sealed
	TokenExpiresAt *time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Store is what social login needs from storage.
type Store interface {
	UserByID(ctx context.Context, id string) (user.User, error)
	UserByEmail(ctx context.Context, email string) (user.User, error)
	CreateOAuthState(ctx context.Context, s State) error
	// ConsumeOAuthState deletes the state and returns it; ErrState when it
	// does not exist or has expired (expired ones are deleted too).
	ConsumeOAuthState(ctx context.Context, hash string, now time.Time) (State, error)
	OAuthAccount(ctx context.Context, provider, providerUserID string) (Account, error)
	OAuthAccountsOfUser(ctx context.Context, userID string) ([]Account, error)
	// LinkOAuthAccount stores a new link; ErrAlreadyLinked when the user has
	// one for that provider, ErrLinkedElsewhere when the identity is linked.
	LinkOAuthAccount(ctx context.Context, a Account) error
	UpdateOAuthTokens(ctx context.Context, id, access, refresh string, expiry *time.Time, now time.Time) error
	// CreateUserWithOAuthAccount creates a user and its first link
	// atomically; user.ErrEmailTaken when the email is in use.
	CreateUserWithOAuthAccount(ctx context.Context, u user.User, a Account) error
	// UnlinkOAuthAccount deletes the user's link for provider after check
	// (told whether the user has a password and how many links) allows it.
	UnlinkOAuthAccount(ctx context.Context, userID, provider string, check func(hasPassword bool, links int) error) error
}

// Sessions opens a device session for a user (auth.Service).
type Sessions interface {
	OpenSession(ctx context.Context, u user.User, dev auth.Device) (auth.Tokens, error)
}

// Service runs social login.
type Service struct {
	cfg       config.Social
	providers []Provider // in listing order: google, github, then the configured OIDC providers
	store     Store
	sessions  Sessions
	box       *seal.Box
	// callbackBase, when set, is a URL prefix under which redirect URIs of
	// the form callbackBase + "{provider}" are allowed besides the rule of
	// redirectAllowed (the built-in pages' callback on Gatehouse itself).
	callbackBase string
	Now          func() time.Time
}

// AllowCallbacksUnder also allows the redirect URI base + "{provider}" for
// every enabled provider (e.g. "{OAUTH_ISSUER}/oauth/social/callback/", the
// built-in login page's callback). Call it before serving.
func (s *Service) AllowCallbacksUnder(base string) { s.callbackBase = base }

// NewService builds the enabled providers (those with a client id and
// secret) from cfg.
func NewService(cfg config.Social, store Store, sessions Sessions, box *seal.Box) *Service {
	client := &http.Client{Timeout: cfg.HTTPTimeout, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	s := &Service{cfg: cfg, store: store, sessions: sessions, box: box, Now: time.Now}
	// The providers read the service's clock, so a test that sets Now
	// moves the JWKS cache and the ID-token checks too.
	now := func() time.Time { return s.Now() }
	if cfg.Google.ClientID != "" && cfg.Google.ClientSecret != "" {
		s.providers = append(s.providers, NewOIDC(cfg.Google, client, now))
	}
	if cfg.GitHub.ClientID != "" && cfg.GitHub.ClientSecret != "" {
		s.providers = append(s.providers, NewGitHub(cfg.GitHub, client))
	}
	for _, p := range cfg.OIDC {
		s.providers = append(s.providers, NewOIDC(p, client, now))
	}
	return s
}

// Enabled reports whether social login is on and at least one provider is.
func (s *Service) Enabled() bool { return s.cfg.Enabled && len(s.providers) > 0 }

// Providers lists the enabled providers (also when OAUTH_ENABLED is off, as
// the reference does; Enabled then says false).
func (s *Service) Providers() []Provider { return s.providers }

// provider finds an enabled provider by name.
func (s *Service) provider(name string) (Provider, error) {
	if !s.cfg.Enabled {
		return nil, ErrDisabled
	}
	for _, p := range s.providers {
		if p.Name() == name {
			return p, nil
		}
	}
	known := name == "google" || name == "github" || slices.ContainsFunc(s.cfg.OIDC, func(p config.OIDCProvider) bool { return p.Name == name })
	if known {
		return nil, ErrProviderDisabled.WithMessage("OAuth provider %s is not enabled", name)
	}
	return nil, ErrUnknownProvider.WithMessage("Unknown OAuth provider: %s", name)
}

// redirectAllowed implements the redirect-URI rule (fix 27 of the consumer
// side): it must start with FRONTEND_URL, as a path below it, or be listed.
func (s *Service) redirectAllowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Fragment != "" || u.User != nil {
		return false
	}
	// A listed URI is allowed as listed, also with a private-use scheme of
	// a native app (RFC 8252 §7.1); anything else must be http(s) under
	// FRONTEND_URL.
	if slices.Contains(s.cfg.AllowedRedirectURIs, raw) {
		return true
	}
	if s.callbackBase != "" {
		name, ok := strings.CutPrefix(raw, s.callbackBase)
		if ok && slices.ContainsFunc(s.providers, func(p Provider) bool { return p.Name() == name }) {
			return true
		}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	base := strings.TrimRight(s.cfg.FrontendURL, "/")
	return raw == base || strings.HasPrefix(raw, base+"/") || strings.HasPrefix(raw, base+"?")
}

// Authorization is the answer of the authorize and link endpoints.
type Authorization struct {
	URL   string
	State string
}

// Authorize starts a login with provider. With linkTo set (a logged-in
// user) the callback links the provider account to that user instead.
func (s *Service) Authorize(ctx context.Context, providerName, redirectURI string, linkTo *user.Actor) (Authorization, error) {
	p, err := s.provider(providerName)
	if err != nil {
		return Authorization{}, err
	}
	if !s.redirectAllowed(redirectURI) {
		return Authorization{}, ErrRedirectNotAllowed
	}
	if linkTo != nil {
		accounts, err := s.store.OAuthAccountsOfUser(ctx, linkTo.UserID)
		if err != nil {
			return Authorization{}, err
		}
		if slices.ContainsFunc(accounts, func(a Account) bool { return a.Provider == p.Name() }) {
			return Authorization{}, ErrAlreadyLinkedStart.WithMessage("You already have a %s account linked", p.Name())
		}
	}
	req := AuthRequest{State: randomString(32), RedirectURI: redirectURI}
	if p.UsesPKCE() {
		req.Verifier = randomString(64)
	}
	if p.UsesNonce() {
		req.Nonce = randomString(32)
	}
	authURL, err := p.AuthURL(ctx, req)
	if err != nil {
		return Authorization{}, err
	}
	now := s.Now().UTC()
	st := State{ID: user.NewID(), Hash: hashState(req.State), Provider: p.Name(), Verifier: s.box.Seal(req.Verifier),
		Nonce: req.Nonce, RedirectURI: redirectURI, ExpiresAt: now.Add(s.cfg.StateTTL), CreatedAt: now}
	if linkTo != nil {
		st.UserID = &linkTo.UserID
	}
	if err := s.store.CreateOAuthState(ctx, st); err != nil {
		return Authorization{}, err
	}
	return Authorization{URL: authURL, State: req.State}, nil
}

// Login is the result of a callback.
type Login struct {
	Tokens    auth.Tokens
	IsNewUser bool
}

// Callback completes a login: the state is consumed (single use), the code
// exchanged, the identity resolved to a user (existing link, link mode,
// auto-link by verified email, or a new user), and a session opened like a
// password login. Nothing is written unless every check passed.
func (s *Service) Callback(ctx context.Context, providerName, redirectURI, code, state string, dev auth.Device) (Login, error) {
	u, isNew, err := s.Complete(ctx, providerName, redirectURI, code, state)
	if err != nil {
		return Login{}, err
	}
	dev.Fallback = "OAuth (" + providerName + ")"
	tokens, err := s.sessions.OpenSession(ctx, u, dev)
	if err != nil {
		return Login{}, fmt.Errorf("social login session: %w", err)
	}
	return Login{Tokens: tokens, IsNewUser: isNew}, nil
}

// Complete is Callback without the session: it consumes the state,
// exchanges the code and returns the (possibly new) user, for callers that
// open another kind of session (the built-in pages' browser session).
func (s *Service) Complete(ctx context.Context, providerName, redirectURI, code, state string) (user.User, bool, error) {
	if !s.cfg.Enabled {
		return user.User{}, false, ErrDisabled
	}
	now := s.Now().UTC()
	st, err := s.store.ConsumeOAuthState(ctx, hashState(state), now)
	if err != nil {
		return user.User{}, false, err
	}
	if st.Provider != providerName {
		return user.User{}, false, ErrState
	}
	if st.RedirectURI != redirectURI {
		return user.User{}, false, ErrRedirectMismatch
	}
	p, err := s.provider(st.Provider)
	if err != nil {
		return user.User{}, false, err
	}
	verifier, err := s.box.Open(st.Verifier)
	if err != nil {
		return user.User{}, false, ErrState.Wrap(err)
	}
	id, err := p.Exchange(ctx, code, AuthRequest{State: state, RedirectURI: redirectURI, Verifier: verifier, Nonce: st.Nonce})
	if err != nil {
		return user.User{}, false, err
	}
	if id.Subject == "" {
		return user.User{}, false, ErrNoSubject
	}
	if len(id.Subject) > 255 { // OpenID Connect caps sub at 255 ASCII characters
		return user.User{}, false, ErrNoSubject.WithMessage("Provider returned an invalid user ID")
	}
	return s.resolve(ctx, p, st, id, now)
}

// resolve finds or creates the user of a provider identity (reference §6A
// step 8, with auto-linking only on verified emails, fix 9).
func (s *Service) resolve(ctx context.Context, p Provider, st State, id Identity, now time.Time) (user.User, bool, error) {
	acc := s.account(p, id, now)
	// Look the link up by the stored (truncated) id, or a long subject would
	// never find its link again.
	existing, err := s.store.OAuthAccount(ctx, p.Name(), id.Subject)
	switch {
	case err == nil:
		if st.UserID != nil && *st.UserID != existing.UserID {
			return user.User{}, false, ErrLinkedElsewhere.WithMessage("This %s account is already linked to another user", p.DisplayName())
		}
		u, err := s.activeUser(ctx, existing.UserID)
		if err != nil {
			return user.User{}, false, err
		}
		if err := s.store.UpdateOAuthTokens(ctx, existing.ID, acc.AccessToken, acc.RefreshToken, acc.TokenExpiresAt, now); err != nil {
			return user.User{}, false, err
		}
		return u, false, nil
	case !errors.Is(err, ErrNoLink):
		return user.User{}, false, err
	}

	if st.UserID != nil { // link mode
		u, err := s.store.UserByID(ctx, *st.UserID)
		if errors.Is(err, user.ErrNotFound) {
			return user.User{}, false, ErrLinkUserGone
		}
		if err != nil {
			return user.User{}, false, err
		}
		if !u.IsActive {
			return user.User{}, false, ErrInactive
		}
		acc.UserID = u.ID
		if err := s.store.LinkOAuthAccount(ctx, acc); err != nil {
			return user.User{}, false, s.linkError(err, p)
		}
		return u, false, nil
	}

	if id.Email == "" {
		return user.User{}, false, ErrNoEmail.WithMessage("Email is required for registration. Please grant email permission to %s.", p.Name())
	}
	if existing, err := s.store.UserByEmail(ctx, id.Email); err == nil {
		if !s.cfg.AutoLinkByEmail || !id.EmailVerified {
			return user.User{}, false, ErrUnverifiedEmail.WithMessage(
				"An account with the email %s already exists. Log in to it and link %s from your account instead.", id.Email, p.DisplayName())
		}
		if !existing.IsActive {
			return user.User{}, false, ErrInactive
		}
		acc.UserID = existing.ID
		if err := s.store.LinkOAuthAccount(ctx, acc); err != nil && !errors.Is(err, ErrAlreadyLinked) {
			return user.User{}, false, s.linkError(err, p)
		}
		return existing, false, nil
	} else if !errors.Is(err, user.ErrNotFound) {
		return user.User{}, false, err
	}

	if !id.EmailVerified {
		return user.User{}, false, ErrUnverifiedEmail.WithMessage(
			"%s did not confirm that the email address %s is verified. Verify it with %s and try again.", p.DisplayName(), id.Email, p.DisplayName())
	}
	u, err := s.newUser(id, now)
	if err != nil {
		return user.User{}, false, err
	}
	acc.UserID = u.ID
	if err := s.store.CreateUserWithOAuthAccount(ctx, u, acc); err != nil {
		if errors.Is(err, user.ErrEmailTaken) { // registered concurrently: the other request won
			return user.User{}, false, ErrExchange.WithMessage("An account with this email was just created; please try again")
		}
		return user.User{}, false, s.linkError(err, p)
	}
	return u, true, nil
}

func (s *Service) linkError(err error, p Provider) error {
	switch {
	case errors.Is(err, ErrAlreadyLinked):
		return ErrAlreadyLinked.WithMessage("You already have a %s account linked", p.Name())
	case errors.Is(err, ErrLinkedElsewhere):
		return ErrLinkedElsewhere.WithMessage("This %s account is already linked to another user", p.DisplayName())
	}
	return err
}

func (s *Service) activeUser(ctx context.Context, id string) (user.User, error) {
	u, err := s.store.UserByID(ctx, id)
	if errors.Is(err, user.ErrNotFound) {
		return user.User{}, ErrInactive
	}
	if err != nil {
		return user.User{}, err
	}
	if !u.IsActive {
		return user.User{}, ErrInactive
	}
	return u, nil
}

// account builds the link row for an identity, with its tokens sealed.
func (s *Service) account(p Provider, id Identity, now time.Time) Account {
	a := Account{ID: user.NewID(), Provider: p.Name(), ProviderUserID: id.Subject,
		AccessToken: s.box.Seal(id.Tokens.Access), RefreshToken: s.box.Seal(id.Tokens.Refresh),
		TokenExpiresAt: id.Tokens.Expiry, CreatedAt: now, UpdatedAt: now}
	if id.Email != "" {
		e := truncate(id.Email, 255)
		a.ProviderEmail = &e
	}
	return a
}

// newUser builds an account without a password from a verified identity.
func (s *Service) newUser(id Identity, now time.Time) (user.User, error) {
	email, verr := user.ParseEmail("email", id.Email)
	if verr != nil {
		return user.User{}, ErrNoEmail.WithMessage("The provider returned an unusable email address (%s)", id.Email)
	}
	first := cleanName(id.FirstName)
	if first == "" {
		first = "User"
	}
	u := user.User{ID: user.NewID(), Email: email, FirstName: first, IsActive: true,
		CreatedAt: now.Truncate(time.Microsecond), UpdatedAt: now.Truncate(time.Microsecond)}
	if last := cleanName(id.LastName); last != "" {
		u.LastName = &last
	}
	return u, nil
}

// cleanName keeps a provider's name within our field rules.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > user.MaxNameLength {
		s = string(r[:user.MaxNameLength])
	}
	return s
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

// Accounts lists the actor's linked accounts, newest first.
func (s *Service) Accounts(ctx context.Context, actor user.Actor) ([]Account, error) {
	return s.store.OAuthAccountsOfUser(ctx, actor.UserID)
}

// Unlink removes the actor's link to provider, unless it is their only way
// to log in (no password and no other link).
func (s *Service) Unlink(ctx context.Context, actor user.Actor, provider string) error {
	err := s.store.UnlinkOAuthAccount(ctx, actor.UserID, provider, func(hasPassword bool, links int) error {
		if !hasPassword && links <= 1 {
			return ErrCannotUnlink
		}
		return nil
	})
	if errors.Is(err, ErrNoLink) {
		return ErrNoLink.WithMessage("No %s account found to unlink", provider)
	}
	return err
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashState(state string) string { return token.HashSecret(state) }
