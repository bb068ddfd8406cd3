package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Paths of the Gatehouse API used here.
const (
	pathHealth   = "/health"
	pathRegister = "/api/v1/auth/register"
	pathLogin    = "/api/v1/auth/login"
	pathRefresh  = "/api/v1/auth/refresh"
	pathMe       = "/api/v1/users/me"
	pathSessions = "/api/v1/sessions/me"
)

// seedPassword is every seeded user's password; it passes the password
// rule (8+ characters with upper and lower case, a digit and a symbol).
const seedPassword = "Loadgen!Passw0rd1"

// setupParallelism bounds concurrent requests during setup: registrations
// and logins each cost a password hash, which the server queues anyway.
const setupParallelism = 8

// api calls one Gatehouse through the shared client.
type api struct {
	client *http.Client
	base   string
}

func (a *api) url(path string) string { return a.base + path }

// send is exchange for a request that may have failed to build.
func (a *api) send(req *http.Request, err error) (reply, error) {
	if err != nil {
		return reply{}, err
	}
	return exchange(a.client, req)
}

// account is a user's credentials.
type account struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// tokenReply is the answer of login and refresh.
type tokenReply struct {
	AccessToken  string         `json:"access_token"`
	RefreshToken string         `json:"refresh_token"`
	TokenType    string         `json:"token_type"`
	ExpiresIn    int            `json:"expires_in"`
	User         map[string]any `json:"user"`
}

func (t tokenReply) validate() error {
	if t.AccessToken == "" || t.RefreshToken == "" || t.TokenType == "" || t.ExpiresIn <= 0 || t.User["id"] == nil {
		return fmt.Errorf("token response lacks a field: access %t, refresh %t, token_type %q, expires_in %d, user.id %v",
			t.AccessToken != "", t.RefreshToken != "", t.TokenType, t.ExpiresIn, t.User["id"])
	}
	return nil
}

func loginRequest(ctx context.Context, a *api, acc account) (*http.Request, error) {
	return jsonRequest(ctx, http.MethodPost, a.url(pathLogin), "", acc)
}

func refreshRequest(ctx context.Context, a *api, refresh string) (*http.Request, error) {
	return jsonRequest(ctx, http.MethodPost, a.url(pathRefresh), "", map[string]string{"refresh_token": refresh})
}

func (a *api) login(ctx context.Context, acc account) (tokenReply, error) {
	r, err := a.send(loginRequest(ctx, a, acc))
	if err != nil {
		return tokenReply{}, fmt.Errorf("login %s: %w", acc.Email, err)
	}
	var t tokenReply
	if err := decodeReply(r, http.StatusOK, &t); err != nil {
		return tokenReply{}, fmt.Errorf("login %s: %w", acc.Email, err)
	}
	return t, t.validate()
}

func (a *api) register(ctx context.Context, acc account) error {
	body := map[string]string{"email": acc.Email, "password": acc.Password, "first_name": "Load", "last_name": "Generator"}
	r, err := a.send(jsonRequest(ctx, http.MethodPost, a.url(pathRegister), "", body))
	if err != nil {
		return fmt.Errorf("register %s: %w", acc.Email, err)
	}
	if r.status == http.StatusTooManyRequests {
		return errors.New("registration was rate limited (429 Too Many Requests): " +
			"start Gatehouse with RATE_LIMIT_ENABLED=false for load tests")
	}
	if err := expectStatus(r, http.StatusCreated); err != nil {
		return fmt.Errorf("register %s: %w", acc.Email, err)
	}
	return nil
}

// session is a first-party login kept for the bearer scenarios. Its access
// token is renewed between runs, through its own refresh token, well before
// it expires, so long runs do not turn into 401s.
type session struct {
	access, refresh string
	renewAt         time.Time
}

func newSession(t tokenReply) *session {
	return &session{access: t.AccessToken, refresh: t.RefreshToken,
		renewAt: time.Now().Add(time.Duration(t.ExpiresIn) * time.Second / 2)}
}

func (a *api) renew(ctx context.Context, s *session) error {
	r, err := a.send(refreshRequest(ctx, a, s.refresh))
	if err != nil {
		return fmt.Errorf("renew a session: %w", err)
	}
	var t tokenReply
	if err := decodeReply(r, http.StatusOK, &t); err != nil {
		return fmt.Errorf("renew a session: %w", err)
	}
	*s = *newSession(t)
	return nil
}

// fixture is what setup leaves for the scenarios. The users are split in
// two pools: logins are logged into again and again (each login opens a
// session), while each reader keeps the one session setup opened, so what
// me and sessions/me read stays the same size during the whole run.
type fixture struct {
	runID         string
	logins        []account
	readers       []*session
	refreshChains []string         // first refresh token of each refresh worker
	provider      *providerFixture // nil when the provider scenarios are skipped
	notes         []string         // what was skipped, and why
}

// setup checks that Gatehouse answers, seeds the users the selected
// scenarios need and logs them in.
func setup(ctx context.Context, a *api, o options, progress io.Writer) (*fixture, error) {
	r, err := a.send(getRequest(ctx, a.url(pathHealth), ""))
	if err != nil {
		return nil, fmt.Errorf("cannot reach Gatehouse at %s: %w", a.base, err)
	}
	if err := expectStatus(r, http.StatusOK); err != nil {
		return nil, fmt.Errorf("health check of %s failed: %w", a.base, err)
	}
	fx := &fixture{runID: newRunID()}
	needLogins := o.selected(scLogin, scRefresh, scIsolation)
	needReaders := o.Single || o.selected(scMe, scSessions, scProviderRefresh, scIntrospect, scIsolation)
	if needLogins {
		fx.logins = seedAccounts(fx.runID, "", o.Users)
	}
	var readerAccounts []account
	if needReaders {
		readerAccounts = seedAccounts(fx.runID, "reader-", o.Users)
	}
	all := append(append([]account{}, fx.logins...), readerAccounts...)
	fmt.Fprintf(progress, "seeding %d users (run %s)\n", len(all), fx.runID)
	if err := forEach(len(all), setupParallelism, func(i int) error { return a.register(ctx, all[i]) }); err != nil {
		return nil, err
	}
	fx.readers = make([]*session, len(readerAccounts))
	if err := forEach(len(readerAccounts), setupParallelism, func(i int) error {
		t, err := a.login(ctx, readerAccounts[i])
		fx.readers[i] = newSession(t)
		return err
	}); err != nil {
		return nil, err
	}
	if o.selected(scRefresh) {
		// Each refresh worker starts its own chain with a login of its own:
		// a rotated refresh token must never be presented twice.
		fx.refreshChains = make([]string, o.Concurrency)
		if err := forEach(o.Concurrency, setupParallelism, func(i int) error {
			t, err := a.login(ctx, fx.logins[i%len(fx.logins)])
			fx.refreshChains[i] = t.RefreshToken
			return err
		}); err != nil {
			return nil, err
		}
	}
	if o.selected(scProviderRefresh, scIntrospect) {
		p, skip, err := setupProvider(ctx, a, o, fx.readers, fx.runID)
		if err != nil {
			return nil, err
		}
		if skip != "" {
			fx.notes = append(fx.notes, "provider-refresh and introspect skipped: "+skip)
			fmt.Fprintln(progress, fx.notes[len(fx.notes)-1])
		}
		fx.provider = p
	}
	return fx, nil
}

// renewReaders renews the reader sessions whose access tokens are half-way
// through their lives; called between runs, never during one.
func (fx *fixture) renewReaders(ctx context.Context, a *api) error {
	for _, s := range fx.readers {
		if time.Now().After(s.renewAt) {
			if err := a.renew(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// seedAccounts names n users of this run: loadgen-<run>-<kind><i>@example.com.
func seedAccounts(runID, kind string, n int) []account {
	out := make([]account, n)
	for i := range out {
		out[i] = account{Email: fmt.Sprintf("loadgen-%s-%s%d@example.com", runID, kind, i), Password: seedPassword}
	}
	return out
}

// newRunID tells this run's users from those of earlier runs on the same
// database.
func newRunID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// forEach calls fn(0) … fn(n-1) on at most limit goroutines and returns the
// first error.
func forEach(n, limit int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, limit)
	)
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}
