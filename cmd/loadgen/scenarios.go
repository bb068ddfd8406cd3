package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// worker sends the requests of one connection of a scenario, one after the
// other. Only the exchange between request and check is timed.
type worker interface {
	// request returns the next request. It may first repair the worker's
	// state, e.g. start a new token chain after a failure.
	request(ctx context.Context) (*http.Request, error)
	// check judges a response; an error counts the request as failed.
	check(r reply) error
}

// load is a set of workers reported as one row of the report.
type load struct {
	row     string
	workers []worker
	// shedOK counts 503 and 429 apart, as load shed by design (the bounded
	// password-hash queue), instead of as errors.
	shedOK bool
	// ceiling names the in-process ceiling the row is compared with, if any.
	ceiling string
}

// step is what a round runs at once: one load, or, for isolation, two side
// by side.
type step struct {
	name  string
	loads []load
}

// Ceilings a row can be compared with.
const (
	ceilingHash  = "hash"
	ceilingHS256 = "hs256"
)

// buildPlan lays out the steps of every round after the yardstick, in
// running order, from the selected scenarios and what setup prepared.
func buildPlan(a *api, fx *fixture, o options) []step {
	loginWorkers := func(n int) []worker {
		ws := make([]worker, n)
		for i := range ws {
			ws[i] = &loginWorker{a: a, acc: fx.logins[i%len(fx.logins)]}
		}
		return ws
	}
	bearerWorkers := func(n int, path string) []worker {
		ws := make([]worker, n)
		for i := range ws {
			ws[i] = &getWorker{target: a.url(path), sess: fx.readers[i%len(fx.readers)]}
		}
		return ws
	}
	single := func(name string, l load) step { l.row = name; return step{name: name, loads: []load{l}} }

	var plan []step
	for _, name := range o.Scenarios {
		switch name {
		case scLogin:
			plan = append(plan, single(name, load{workers: loginWorkers(o.LoginConcurrency), ceiling: ceilingHash}))
		case scLoginUnknown:
			// One connection: its latency is then one (dummy) hash plus
			// HTTP, never a wait in the hash queue, and compares with the
			// in-process hash time.
			ws := make([]worker, 1)
			for i := range ws {
				ws[i] = &unknownLoginWorker{a: a, prefix: fmt.Sprintf("loadgen-%s-unknown-%d-", fx.runID, i)}
			}
			plan = append(plan, single(name, load{workers: ws}))
		case scRefresh:
			ws := make([]worker, o.Concurrency)
			for i := range ws {
				ws[i] = &refreshWorker{a: a, acc: fx.logins[i%len(fx.logins)], token: fx.refreshChains[i]}
			}
			plan = append(plan, single(name, load{workers: ws}))
		case scMe:
			plan = append(plan, single(name, load{workers: bearerWorkers(o.Concurrency, pathMe), ceiling: ceilingHS256}))
			if o.Single {
				plan = append(plan, single(rowMeSingle, load{workers: bearerWorkers(1, pathMe), ceiling: ceilingHS256}))
			}
		case scSessions:
			plan = append(plan, single(name, load{workers: bearerWorkers(o.Concurrency, pathSessions)}))
		case scProviderRefresh:
			if fx.provider == nil {
				continue
			}
			ws := make([]worker, o.Concurrency)
			for i := range ws {
				ws[i] = &providerRefreshWorker{a: a, client: fx.provider.client, scope: o.ProviderScope, reader: fx.readers[i%len(fx.readers)],
					token: fx.provider.refreshTokens[i]}
			}
			plan = append(plan, single(name, load{workers: ws}))
		case scIntrospect:
			if fx.provider == nil {
				continue
			}
			ws := make([]worker, o.Concurrency)
			for i := range ws {
				ws[i] = &introspectWorker{a: a, client: fx.provider.client, token: fx.provider.accessTokens[i]}
			}
			plan = append(plan, single(name, load{workers: ws}))
		case scIsolation:
			plan = append(plan, step{name: name, loads: []load{
				{row: rowIsolationLogin, workers: loginWorkers(o.IsolationLogins), shedOK: true, ceiling: ceilingHash},
				{row: rowIsolationMe, workers: bearerWorkers(o.Concurrency, pathMe), ceiling: ceilingHS256},
			}})
		}
	}
	if o.Single && !o.selected(scMe) {
		plan = append(plan, single(rowMeSingle, load{workers: bearerWorkers(1, pathMe), ceiling: ceilingHS256}))
	}
	return plan
}

// yardstickStep measures the bare handler with the scenarios' connections.
func yardstickStep(target string, conns int) step {
	ws := make([]worker, conns)
	for i := range ws {
		ws[i] = &getWorker{target: target}
	}
	return step{name: rowYardstick, loads: []load{{row: rowYardstick, workers: ws}}}
}

// getWorker GETs a URL, with the bearer token of a session if it has one,
// and expects 200: the yardstick, me and sessions.
type getWorker struct {
	target string
	sess   *session
}

func (w *getWorker) request(ctx context.Context) (*http.Request, error) {
	bearer := ""
	if w.sess != nil {
		bearer = w.sess.access
	}
	return getRequest(ctx, w.target, bearer)
}

func (w *getWorker) check(r reply) error { return expectStatus(r, http.StatusOK) }

// loginWorker logs in as one account with the right password.
type loginWorker struct {
	a   *api
	acc account
}

func (w *loginWorker) request(ctx context.Context) (*http.Request, error) {
	return loginRequest(ctx, w.a, w.acc)
}

func (w *loginWorker) check(r reply) error {
	var t tokenReply
	if err := decodeReply(r, http.StatusOK, &t); err != nil {
		return err
	}
	return t.validate()
}

// unknownLoginWorker logs in with emails that have no account, a new one
// each time: failures are throttled per email, and an unknown email must
// cost the server a (dummy) hash all the same, which this measures.
type unknownLoginWorker struct {
	a      *api
	prefix string
	n      int
}

func (w *unknownLoginWorker) request(ctx context.Context) (*http.Request, error) {
	w.n++
	acc := account{Email: fmt.Sprintf("%s%d@example.com", w.prefix, w.n), Password: seedPassword}
	return loginRequest(ctx, w.a, acc)
}

func (w *unknownLoginWorker) check(r reply) error { return expectStatus(r, http.StatusUnauthorized) }

// refreshWorker rotates its own first-party refresh token chain: each
// request presents the token of the previous answer. A rotated token must
// never be presented again (reuse revokes the session), so a token counts as
// spent once sent; when an exchange fails the worker cannot know whether
// the server rotated it, and starts a new chain with a login.
type refreshWorker struct {
	a     *api
	acc   account
	token string // "" when the chain is broken
	sent  string
}

func (w *refreshWorker) request(ctx context.Context) (*http.Request, error) {
	if w.token == "" {
		t, err := w.a.login(ctx, w.acc)
		if err != nil {
			return nil, fmt.Errorf("restart the refresh chain: %w", err)
		}
		w.token = t.RefreshToken
	}
	w.sent, w.token = w.token, ""
	return refreshRequest(ctx, w.a, w.sent)
}

func (w *refreshWorker) check(r reply) error {
	var t tokenReply
	if err := decodeReply(r, http.StatusOK, &t); err != nil {
		return err
	}
	if err := t.validate(); err != nil {
		return err
	}
	if t.RefreshToken == w.sent {
		return fmt.Errorf("refresh returned the presented refresh token instead of a new one")
	}
	w.token = t.RefreshToken
	return nil
}

// providerRefreshWorker is refreshWorker at the authorization server's token
// endpoint; a broken chain restarts with a new authorization code flow.
type providerRefreshWorker struct {
	a      *api
	client oauthClient
	scope  string
	reader *session
	token  string
	sent   string
}

func (w *providerRefreshWorker) request(ctx context.Context) (*http.Request, error) {
	if w.token == "" {
		t, err := w.client.grant(ctx, w.a, w.reader.access, w.scope)
		if err != nil {
			return nil, fmt.Errorf("restart the provider refresh chain: %w", err)
		}
		w.token = t.RefreshToken
	}
	w.sent, w.token = w.token, ""
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.sent}}
	return w.client.tokenRequest(ctx, w.a, pathToken, form)
}

func (w *providerRefreshWorker) check(r reply) error {
	var t providerTokens
	if err := decodeReply(r, http.StatusOK, &t); err != nil {
		return err
	}
	if t.AccessToken == "" || t.RefreshToken == "" || t.RefreshToken == w.sent {
		return fmt.Errorf("token endpoint returned no new refresh token: %s", shorten(string(r.body)))
	}
	w.token = t.RefreshToken
	return nil
}

// introspectWorker asks about a live provider access token as the
// confidential client; the answer must say it is active.
type introspectWorker struct {
	a      *api
	client oauthClient
	token  string
}

func (w *introspectWorker) request(ctx context.Context) (*http.Request, error) {
	return w.client.tokenRequest(ctx, w.a, pathIntrospect, url.Values{"token": {w.token}})
}

func (w *introspectWorker) check(r reply) error {
	var answer struct {
		Active bool `json:"active"`
	}
	if err := decodeReply(r, http.StatusOK, &answer); err != nil {
		return err
	}
	if !answer.Active {
		return fmt.Errorf("a live access token introspected as inactive: %s", shorten(string(r.body)))
	}
	return nil
}
