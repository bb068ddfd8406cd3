package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// The authorization server's storage contracts (codes, refresh-token
// families, consents, clients, purge) on every engine.

var provNow = time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)

func provUser(t *testing.T, st *sqlstore.Store, email string) user.User {
	t.Helper()
	u := newUser(email, provNow)
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func provClient(t *testing.T, st *sqlstore.Store, name string, created time.Time) oauth.Client {
	t.Helper()
	desc := name + " description"
	c := oauth.Client{ID: user.NewID(), ClientID: "cid-" + name + "-" + token.RandomSecret()[:8], SecretHash: oauth.HashSecret("s3cret-" + name),
		Name: name, Description: &desc, Type: oauth.Confidential, RedirectURIs: []string{"https://" + name + ".example.com/cb", "http://127.0.0.1/cb"},
		AllowedScopes: []string{"email", "openid"}, AccessTokenTTL: time.Hour, RefreshTokenTTL: 7 * 24 * time.Hour, IsActive: true,
		RegistrationType: oauth.RegisteredByAdmin, ApplicationType: "web", TokenEndpointAuthMethod: "client_secret_basic",
		CreatedAt: created, UpdatedAt: created}
	if err := st.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

func provCode(t *testing.T, st *sqlstore.Store, c oauth.Client, u user.User, expires time.Time) oauth.Code {
	t.Helper()
	code := oauth.Code{ID: user.NewID(), Hash: token.HashSecret(token.RandomSecret()), ClientID: c.ClientID, UserID: u.ID,
		RedirectURI: c.RedirectURIs[0], Scope: "email openid", CodeChallenge: strings.Repeat("c", 43), CodeChallengeMethod: "S256",
		Nonce: "n-0", Resource: "https://mcp.example.com/mcp", AuthTime: provNow.Add(-time.Minute), ExpiresAt: expires,
		CreatedAt: provNow}
	if err := st.CreateCode(context.Background(), code); err != nil {
		t.Fatal(err)
	}
	return code
}

func provRefresh(t *testing.T, st *sqlstore.Store, c oauth.Client, u user.User, family string, codeID *string, expires time.Time) oauth.RefreshToken {
	t.Helper()
	ua, ip := "agent/1.0", "203.0.113.9"
	rt := oauth.RefreshToken{ID: user.NewID(), Hash: token.HashSecret(token.RandomSecret()), FamilyID: family, CodeID: codeID,
		ClientID: c.ClientID, UserID: u.ID, Scope: "email openid", AuthTime: provNow.Add(-time.Minute), ExpiresAt: expires,
		DeviceInfo: &ua, IPAddress: &ip, CreatedAt: provNow}
	if err := st.CreateRefreshToken(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	return rt
}

func provRevoked(t *testing.T, st *sqlstore.Store, ids ...string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, id := range ids {
		rt, err := st.RefreshTokenByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = rt.RevokedAt != nil
	}
	return out
}

func TestProviderClientRoundTripListAndDelete(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		older := provClient(t, st, "older", provNow)
		newer := provClient(t, st, "newer", provNow.Add(time.Second))
		got, err := st.ClientByClientID(ctx, newer.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != newer.ID || got.Name != "newer" || *got.Description != "newer description" || got.Type != oauth.Confidential ||
			strings.Join(got.RedirectURIs, " ") != strings.Join(newer.RedirectURIs, " ") || strings.Join(got.AllowedScopes, " ") != "email openid" ||
			got.AccessTokenTTL != time.Hour || got.RefreshTokenTTL != 7*24*time.Hour || !got.IsActive || got.SecretHash != newer.SecretHash ||
			!got.CreatedAt.Equal(newer.CreatedAt) {
			t.Fatalf("round trip: %+v", got)
		}
		if _, err := st.ClientByClientID(ctx, "nope"); !errors.Is(err, oauth.ErrUnknownClient) {
			t.Fatalf("unknown client: %v", err)
		}
		// TokenClient reads the authentication and issuing fields only.
		tc, err := st.TokenClient(ctx, newer.ClientID)
		want := oauth.Client{ID: newer.ID, ClientID: newer.ClientID, SecretHash: newer.SecretHash, Type: oauth.Confidential,
			AccessTokenTTL: time.Hour, RefreshTokenTTL: 7 * 24 * time.Hour, IsActive: true, RegistrationType: oauth.RegisteredByAdmin,
			TokenEndpointAuthMethod: "client_secret_basic"}
		if err != nil || !reflect.DeepEqual(tc, want) {
			t.Fatalf("token client: %v\n got %+v\nwant %+v", err, tc, want)
		}
		if _, err := st.TokenClient(ctx, "nope"); !errors.Is(err, oauth.ErrUnknownClient) {
			t.Fatalf("unknown token client: %v", err)
		}
		inactive := provClient(t, st, "inactive", provNow.Add(2*time.Second))
		if _, err := st.DB().ExecContext(ctx, `UPDATE oauth_clients SET is_active = FALSE WHERE client_id = $1`, inactive.ClientID); err != nil {
			t.Fatal(err)
		}
		if tc, err := st.TokenClient(ctx, inactive.ClientID); err != nil || tc.IsActive {
			t.Fatalf("inactive token client: %v %+v", err, tc)
		}
		list, err := st.ActiveClients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ClientID != newer.ClientID || list[1].ClientID != older.ClientID {
			t.Fatalf("active clients not newest first without the inactive one: %v", list)
		}

		// The secret hash is replaced only when it is still the old one.
		if err := st.ReplaceClientSecretHash(ctx, older.ClientID, "stale", "sha256:new"); err != nil {
			t.Fatal(err)
		}
		if c, _ := st.ClientByClientID(ctx, older.ClientID); c.SecretHash != older.SecretHash {
			t.Fatal("hash replaced although the old hash did not match")
		}
		if err := st.ReplaceClientSecretHash(ctx, older.ClientID, older.SecretHash, "sha256:new"); err != nil {
			t.Fatal(err)
		}
		if c, _ := st.ClientByClientID(ctx, older.ClientID); c.SecretHash != "sha256:new" {
			t.Fatal("hash not replaced")
		}

		// Deleting a client deletes its codes, refresh tokens and consents,
		// and nothing of other clients.
		u := provUser(t, st, "cascade@example.com")
		for _, c := range []oauth.Client{older, newer} {
			code := provCode(t, st, c, u, provNow.Add(time.Hour))
			provRefresh(t, st, c, u, user.NewID(), &code.ID, provNow.Add(time.Hour))
			if err := st.SaveConsent(ctx, oauth.Consent{UserID: u.ID, ClientID: c.ClientID, Scopes: []string{"openid"}, CreatedAt: provNow, UpdatedAt: provNow}); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.DeleteClient(ctx, older.ClientID); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"oauth_authorization_codes", "oauth_provider_refresh_tokens", "oauth_consents"} {
			var gone, kept int
			_ = st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE client_id = $1`, older.ClientID).Scan(&gone)
			_ = st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE client_id = $1`, newer.ClientID).Scan(&kept)
			if gone != 0 || kept != 1 {
				t.Fatalf("%s after delete: %d rows of the deleted client, %d of the other", table, gone, kept)
			}
		}
		if _, err := st.ClientByClientID(ctx, older.ClientID); !errors.Is(err, oauth.ErrUnknownClient) {
			t.Fatalf("deleted client: %v", err)
		}
	})
}

func TestProviderCodeRoundTripAndConsumeOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := provClient(t, st, "codes", provNow)
		u := provUser(t, st, "codes@example.com")
		code := provCode(t, st, c, u, provNow.Add(10*time.Minute))
		got, err := st.CodeByHash(ctx, code.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != code.ID || got.ClientID != c.ClientID || got.UserID != u.ID || got.RedirectURI != code.RedirectURI ||
			got.Scope != "email openid" || got.CodeChallenge != code.CodeChallenge || got.CodeChallengeMethod != "S256" ||
			got.Nonce != "n-0" || got.Resource != code.Resource || !got.AuthTime.Equal(code.AuthTime) ||
			!got.ExpiresAt.Equal(code.ExpiresAt) || got.UsedAt != nil {
			t.Fatalf("round trip: %+v", got)
		}
		if _, err := st.CodeByHash(ctx, token.HashSecret("unknown")); !errors.Is(err, oauth.ErrUnknownCode) {
			t.Fatalf("unknown code: %v", err)
		}
		// Without optional parts, they come back empty.
		bare := oauth.Code{ID: user.NewID(), Hash: token.HashSecret("bare"), ClientID: c.ClientID, UserID: u.ID, RedirectURI: "https://x/cb",
			Scope: "openid", AuthTime: provNow, ExpiresAt: provNow.Add(time.Minute), CreatedAt: provNow}
		if err := st.CreateCode(ctx, bare); err != nil {
			t.Fatal(err)
		}
		if b, err := st.CodeByHash(ctx, bare.Hash); err != nil || b.CodeChallenge != "" || b.Nonce != "" || b.Resource != "" || b.CodeChallengeMethod != "" {
			t.Fatalf("bare code: %+v %v", b, err)
		}

		// N concurrent redemptions: exactly one marks the code used and stores
		// its first refresh token; the others store nothing.
		first := func() oauth.RefreshToken {
			codeID := code.ID
			return oauth.RefreshToken{ID: user.NewID(), Hash: token.HashSecret(token.RandomSecret()), FamilyID: user.NewID(),
				CodeID: &codeID, ClientID: c.ClientID, UserID: u.ID, Scope: "openid", AuthTime: provNow,
				ExpiresAt: provNow.Add(time.Hour), CreatedAt: provNow}
		}
		const n = 16
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			wins   int
			errs   []error
			tokens []oauth.RefreshToken
		)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			rt := first()
			tokens = append(tokens, rt)
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ok, err := st.RedeemCode(ctx, code.ID, rt, provNow.Add(time.Second))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					wins++
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 || wins != 1 {
			t.Fatalf("%d of %d concurrent redemptions won (errors %v), want exactly 1", wins, n, errs)
		}
		stored := 0
		for _, rt := range tokens {
			if _, err := st.RefreshTokenByHash(ctx, rt.Hash); err == nil {
				stored++
			}
		}
		if stored != 1 {
			t.Fatalf("%d first refresh tokens stored, want only the winner's", stored)
		}
		if ok, err := st.RedeemCode(ctx, code.ID, first(), provNow.Add(2*time.Second)); ok || err != nil {
			t.Fatalf("redeemed again: %v %v", ok, err)
		}
		got, _ = st.CodeByHash(ctx, code.Hash)
		if got.UsedAt == nil || !got.UsedAt.Equal(provNow.Add(time.Second)) {
			t.Fatalf("used_at %v", got.UsedAt)
		}
		if ok, err := st.RedeemCode(ctx, user.NewID(), first(), provNow); ok || err != nil {
			t.Fatalf("unknown code redeemed: %v %v", ok, err)
		}
	})
}

func TestProviderRotateRefreshTokenOnceUnderConcurrency(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := provClient(t, st, "rotate", provNow)
		u := provUser(t, st, "rotate@example.com")
		family := user.NewID()
		old := provRefresh(t, st, c, u, family, nil, provNow.Add(time.Hour))
		got, err := st.RefreshTokenByHash(ctx, old.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != old.ID || got.FamilyID != family || got.CodeID != nil || got.Scope != "email openid" || *got.DeviceInfo != "agent/1.0" ||
			*got.IPAddress != "203.0.113.9" || !got.ExpiresAt.Equal(old.ExpiresAt) || got.RotatedAt != nil || got.RevokedAt != nil {
			t.Fatalf("round trip: %+v", got)
		}

		const n = 12
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			wins  []string
			errs  []error
			start = make(chan struct{})
		)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := oauth.RefreshToken{ID: user.NewID(), Hash: token.HashSecret(token.RandomSecret()), FamilyID: family, ClientID: c.ClientID,
					UserID: u.ID, Scope: "openid", AuthTime: old.AuthTime, ExpiresAt: provNow.Add(2 * time.Hour), CreatedAt: provNow.Add(time.Second)}
				<-start
				ok, err := st.RotateRefreshToken(ctx, old.ID, next, provNow.Add(time.Second))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					wins = append(wins, next.ID)
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(errs) > 0 || len(wins) != 1 {
			t.Fatalf("%d of %d concurrent rotations won (errors %v), want exactly 1", len(wins), n, errs)
		}
		var rows int
		_ = st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_provider_refresh_tokens WHERE family_id = $1`, family).Scan(&rows)
		if rows != 2 {
			t.Fatalf("%d rows in the family, want the old and one new", rows)
		}
		o, _ := st.RefreshTokenByID(ctx, old.ID)
		if o.RotatedAt == nil || o.RevokedAt != nil {
			t.Fatalf("old token: rotated %v revoked %v", o.RotatedAt, o.RevokedAt)
		}
		nw, err := st.RefreshTokenByID(ctx, wins[0])
		if err != nil || nw.RotatedAt != nil || nw.Scope != "openid" {
			t.Fatalf("new token: %+v %v", nw, err)
		}
		// A revoked token does not rotate, and nothing is stored.
		if _, err := st.RevokeRefreshFamily(ctx, family, provNow.Add(2*time.Second)); err != nil {
			t.Fatal(err)
		}
		next := oauth.RefreshToken{ID: user.NewID(), Hash: token.HashSecret("after-revoke"), FamilyID: family, ClientID: c.ClientID,
			UserID: u.ID, Scope: "openid", AuthTime: provNow, ExpiresAt: provNow.Add(time.Hour), CreatedAt: provNow}
		if ok, err := st.RotateRefreshToken(ctx, wins[0], next, provNow.Add(3*time.Second)); ok || err != nil {
			t.Fatalf("revoked token rotated: %v %v", ok, err)
		}
		if _, err := st.RefreshTokenByHash(ctx, next.Hash); !errors.Is(err, oauth.ErrUnknownRefresh) {
			t.Fatalf("token stored by a refused rotation: %v", err)
		}
	})
}

func TestProviderRefreshTokenLookupsRefuseBadIDs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := provClient(t, st, "lookups", provNow)
		u := provUser(t, st, "lookups@example.com")
		rt := provRefresh(t, st, c, u, user.NewID(), nil, provNow.Add(time.Hour))
		if got, err := st.RefreshTokenByID(ctx, rt.ID); err != nil || got.Hash != rt.Hash {
			t.Fatalf("by id: %v", err)
		}
		// An access token's jti comes from the outside: anything that is not
		// a UUID is unknown (no 500 from PostgreSQL's uuid type).
		for _, id := range []string{"", "not-a-uuid", "'; DROP TABLE users; --", strings.ToUpper(rt.ID), "{" + rt.ID + "}",
			strings.ReplaceAll(rt.ID, "-", ""), rt.ID + " ", user.NewID(), strings.Repeat("a", 5000), "00000000-0000-0000-0000-00000000000g"} {
			if _, err := st.RefreshTokenByID(ctx, id); !errors.Is(err, oauth.ErrUnknownRefresh) {
				t.Errorf("RefreshTokenByID(%.40q): %v, want ErrUnknownRefresh", id, err)
			}
		}
		if _, err := st.RefreshTokenByHash(ctx, "nope"); !errors.Is(err, oauth.ErrUnknownRefresh) {
			t.Fatalf("by unknown hash: %v", err)
		}
	})
}

func TestProviderRevocations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a := provClient(t, st, "a", provNow)
		b := provClient(t, st, "b", provNow)
		alice := provUser(t, st, "alice@example.com")
		bob := provUser(t, st, "bob@example.com")
		exp := provNow.Add(time.Hour)

		codeX := provCode(t, st, a, alice, exp)
		codeY := provCode(t, st, a, alice, exp)
		famX1, famX2, famY, famB, famBob := user.NewID(), user.NewID(), user.NewID(), user.NewID(), user.NewID()
		x1a := provRefresh(t, st, a, alice, famX1, &codeX.ID, exp)
		x1b := provRefresh(t, st, a, alice, famX1, &codeX.ID, exp)
		x2 := provRefresh(t, st, a, alice, famX2, &codeX.ID, exp)
		y := provRefresh(t, st, a, alice, famY, &codeY.ID, exp)
		ab := provRefresh(t, st, b, alice, famB, nil, exp)
		bobA := provRefresh(t, st, a, bob, famBob, nil, exp)
		all := []string{x1a.ID, x1b.ID, x2.ID, y.ID, ab.ID, bobA.ID}
		expect := func(step string, want map[string]bool) {
			t.Helper()
			got := provRevoked(t, st, all...)
			for id, w := range want {
				if got[id] != w {
					t.Fatalf("%s: token %s revoked=%v, want %v (all: %v)", step, id, got[id], w, got)
				}
			}
		}

		// One family.
		n, err := st.RevokeRefreshFamily(ctx, famX1, provNow)
		if err != nil || n != 2 {
			t.Fatalf("RevokeRefreshFamily: %d %v, want 2", n, err)
		}
		expect("family", map[string]bool{x1a.ID: true, x1b.ID: true, x2.ID: false, y.ID: false, ab.ID: false, bobA.ID: false})
		if active, err := st.FamilyActive(ctx, famX1); err != nil || active {
			t.Fatalf("FamilyActive of a revoked family: %v %v", active, err)
		}
		if active, err := st.FamilyActive(ctx, famX2); err != nil || !active {
			t.Fatalf("FamilyActive of another family: %v %v", active, err)
		}
		if n, _ := st.RevokeRefreshFamily(ctx, famX1, provNow.Add(time.Second)); n != 0 {
			t.Fatalf("revoking again counted %d", n)
		}
		// Revoking again keeps the first revocation time.
		if r, _ := st.RefreshTokenByID(ctx, x1a.ID); !r.RevokedAt.Equal(provNow) {
			t.Fatalf("revoked_at moved to %v", r.RevokedAt)
		}

		// Another family of the same user and client (a family started by
		// a code is named by the code's id; see TestCodeFamilyMigration).
		if n, err := st.RevokeRefreshFamily(ctx, famX2, provNow); err != nil || n != 1 {
			t.Fatalf("RevokeRefreshFamily: %d %v, want 1 (the other family)", n, err)
		}
		expect("second family", map[string]bool{x2.ID: true, y.ID: false, ab.ID: false, bobA.ID: false})
		if n, _ := st.RevokeRefreshFamily(ctx, user.NewID(), provNow); n != 0 {
			t.Fatalf("unknown family revoked %d", n)
		}

		// A user's tokens for one client.
		if n, err := st.RevokeUserClientRefreshTokens(ctx, alice.ID, a.ClientID, provNow); err != nil || n != 1 {
			t.Fatalf("RevokeUserClientRefreshTokens: %d %v, want 1", n, err)
		}
		expect("user+client", map[string]bool{y.ID: true, ab.ID: false, bobA.ID: false})

		// Every token of a user.
		if n, err := st.RevokeUserProviderTokens(ctx, alice.ID, provNow); err != nil || n != 1 {
			t.Fatalf("RevokeUserProviderTokens: %d %v, want 1", n, err)
		}
		expect("user", map[string]bool{ab.ID: true, bobA.ID: false})
	})
}

func TestProviderConsents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a := provClient(t, st, "first", provNow)
		b := provClient(t, st, "second", provNow)
		u := provUser(t, st, "consent@example.com")
		other := provUser(t, st, "other@example.com")
		if _, err := st.Consent(ctx, u.ID, a.ClientID); !errors.Is(err, oauth.ErrNoConsent) {
			t.Fatalf("no consent yet: %v", err)
		}
		save := func(userID, clientID string, scopes []string, at time.Time) {
			t.Helper()
			if err := st.SaveConsent(ctx, oauth.Consent{UserID: userID, ClientID: clientID, Scopes: scopes, CreatedAt: at, UpdatedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
		save(u.ID, a.ClientID, []string{"openid"}, provNow)
		save(u.ID, b.ClientID, []string{"email", "openid"}, provNow.Add(time.Minute))
		save(other.ID, a.ClientID, []string{"email"}, provNow)
		// Upsert: same (user, client) replaces the scopes and keeps created_at.
		save(u.ID, a.ClientID, []string{"email", "openid", "profile"}, provNow.Add(time.Hour))
		c, err := st.Consent(ctx, u.ID, a.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(c.Scopes, " ") != "email openid profile" || !c.CreatedAt.Equal(provNow) || !c.UpdatedAt.Equal(provNow.Add(time.Hour)) {
			t.Fatalf("after upsert: %+v", c)
		}
		var rows int
		_ = st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_consents WHERE user_id = $1`, u.ID).Scan(&rows)
		if rows != 2 {
			t.Fatalf("%d consent rows for the user, want 2", rows)
		}
		list, err := st.ConsentsOfUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || list[0].ClientID != b.ClientID || list[0].ClientName != "second" || *list[0].ClientDescription != "second description" ||
			list[1].ClientID != a.ClientID || strings.Join(list[1].Scopes, " ") != "email openid profile" {
			t.Fatalf("consents of user: %+v", list)
		}
		if list, _ := st.ConsentsOfUser(ctx, user.NewID()); list == nil || len(list) != 0 {
			t.Fatalf("consents of nobody: %#v", list)
		}
		if err := st.DeleteConsent(ctx, u.ID, a.ClientID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteConsent(ctx, u.ID, a.ClientID); !errors.Is(err, oauth.ErrNoConsent) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := st.Consent(ctx, other.ID, a.ClientID); err != nil {
			t.Fatalf("another user's consent went too: %v", err)
		}
	})
}

func TestProviderPurgeGrants(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := provClient(t, st, "purge", provNow)
		u := provUser(t, st, "purge@example.com")
		cutoff := provNow
		oldCode := provCode(t, st, c, u, cutoff.Add(-time.Second))
		liveCode := provCode(t, st, c, u, cutoff.Add(time.Second))
		expired := provRefresh(t, st, c, u, user.NewID(), nil, cutoff.Add(-time.Second))
		live := provRefresh(t, st, c, u, user.NewID(), nil, cutoff.Add(time.Hour))
		revokedLong := provRefresh(t, st, c, u, user.NewID(), nil, cutoff.Add(time.Hour))
		revokedRecent := provRefresh(t, st, c, u, user.NewID(), nil, cutoff.Add(time.Hour))
		if _, err := st.RevokeRefreshFamily(ctx, revokedLong.FamilyID, cutoff.Add(-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.RevokeRefreshFamily(ctx, revokedRecent.FamilyID, cutoff.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		n, err := st.PurgeProviderGrants(ctx, cutoff)
		if err != nil || n != 3 {
			t.Fatalf("purged %d (%v), want 3", n, err)
		}
		if _, err := st.CodeByHash(ctx, oldCode.Hash); !errors.Is(err, oauth.ErrUnknownCode) {
			t.Fatalf("expired code kept: %v", err)
		}
		if _, err := st.CodeByHash(ctx, liveCode.Hash); err != nil {
			t.Fatalf("live code purged: %v", err)
		}
		for id, keep := range map[string]bool{expired.ID: false, live.ID: true, revokedLong.ID: false, revokedRecent.ID: true} {
			_, err := st.RefreshTokenByID(ctx, id)
			if keep != (err == nil) {
				t.Errorf("refresh token %s: keep=%v, lookup err %v", id, keep, err)
			}
		}
		if n, _ := st.PurgeProviderGrants(ctx, cutoff); n != 0 {
			t.Fatalf("second purge removed %d", n)
		}
	})
}

// Consents last granted before the cutoff are deleted, unless a live grant
// of that user and client still depends on them.
func TestProviderPurgeConsents(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		cutoff := provNow.Add(-365 * 24 * time.Hour)
		c := provClient(t, st, "consents", provNow)
		other := provClient(t, st, "other", provNow)
		type grant int
		const (
			none grant = iota
			live
			revoked
			expired
			otherClientLive // a live grant, but of another client
		)
		cases := []struct {
			name             string
			created, updated time.Time
			grant            grant
			keep             bool
		}{
			{"granted after the cutoff", cutoff, cutoff.Add(time.Second), none, true},
			{"granted at the cutoff", cutoff, cutoff, none, true},
			{"granted before the cutoff", cutoff.Add(-time.Hour), cutoff.Add(-time.Second), none, false},
			{"created long ago, granted again since", cutoff.Add(-48 * time.Hour), provNow.Add(-time.Hour), none, true},
			{"old, with a live grant", cutoff.Add(-time.Hour), cutoff.Add(-time.Second), live, true},
			{"old, grant revoked", cutoff.Add(-time.Hour), cutoff.Add(-time.Second), revoked, false},
			{"old, grant expired", cutoff.Add(-time.Hour), cutoff.Add(-time.Second), expired, false},
			{"old, live grant of another client", cutoff.Add(-time.Hour), cutoff.Add(-time.Second), otherClientLive, false},
		}
		users := make([]user.User, len(cases))
		for i, tc := range cases {
			users[i] = provUser(t, st, fmt.Sprintf("consent%d@example.com", i))
			if err := st.SaveConsent(ctx, oauth.Consent{UserID: users[i].ID, ClientID: c.ClientID, Scopes: []string{"openid"},
				CreatedAt: tc.created, UpdatedAt: tc.updated}); err != nil {
				t.Fatal(err)
			}
			switch tc.grant {
			case live:
				provRefresh(t, st, c, users[i], user.NewID(), nil, provNow.Add(time.Hour))
			case revoked:
				rt := provRefresh(t, st, c, users[i], user.NewID(), nil, provNow.Add(time.Hour))
				if _, err := st.RevokeRefreshFamily(ctx, rt.FamilyID, provNow.Add(-time.Minute)); err != nil {
					t.Fatal(err)
				}
			case expired:
				provRefresh(t, st, c, users[i], user.NewID(), nil, provNow.Add(-time.Second))
			case otherClientLive:
				provRefresh(t, st, other, users[i], user.NewID(), nil, provNow.Add(time.Hour))
			}
		}
		want := 0
		for _, tc := range cases {
			if !tc.keep {
				want++
			}
		}
		n, err := st.PurgeConsents(ctx, cutoff, provNow)
		if err != nil || n != want {
			t.Fatalf("purged %d consents (%v), want %d", n, err, want)
		}
		for i, tc := range cases {
			_, err := st.Consent(ctx, users[i].ID, c.ClientID)
			if tc.keep != (err == nil) {
				t.Errorf("%s: keep=%v, lookup err %v", tc.name, tc.keep, err)
			}
			if !tc.keep && !errors.Is(err, oauth.ErrNoConsent) {
				t.Errorf("%s: lookup err %v, want ErrNoConsent", tc.name, err)
			}
		}
		if n, err := st.PurgeConsents(ctx, cutoff, provNow); err != nil || n != 0 {
			t.Fatalf("second purge removed %d (%v)", n, err)
		}
	})
}

// Deleting a user takes their grants along (foreign keys on both engines).
func TestProviderGrantsFollowUserDeletion(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := provClient(t, st, "userdel", provNow)
		u := provUser(t, st, "gone@example.com")
		provCode(t, st, c, u, provNow.Add(time.Hour))
		provRefresh(t, st, c, u, user.NewID(), nil, provNow.Add(time.Hour))
		if err := st.SaveConsent(ctx, oauth.Consent{UserID: u.ID, ClientID: c.ClientID, Scopes: []string{"openid"}, CreatedAt: provNow, UpdatedAt: provNow}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().ExecContext(ctx, `DELETE FROM users WHERE id = $1`, u.ID); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"oauth_authorization_codes", "oauth_provider_refresh_tokens", "oauth_consents"} {
			var n int
			_ = st.DB().QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM %s WHERE user_id = $1`, table), u.ID).Scan(&n)
			if n != 0 {
				t.Fatalf("%s keeps %d rows of a deleted user", table, n)
			}
		}
	})
}

func TestProviderGrantLive(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		c := provClient(t, st, "grant", provNow)
		alice, bob := provUser(t, st, "alice@example.com"), provUser(t, st, "bob@example.com")
		// GrantLive and TokenClientWithGrant (introspection's one read of
		// client and grant) answer alike.
		live := func(id, userID string) bool {
			t.Helper()
			ok, err := st.GrantLive(ctx, id, userID)
			if err != nil {
				t.Fatal(err)
			}
			tc, ok2, err := st.TokenClientWithGrant(ctx, c.ClientID, id, userID)
			if err != nil || tc.ID != c.ID || tc.ClientID != c.ClientID || tc.Type != c.Type || tc.SecretHash != c.SecretHash ||
				tc.AccessTokenTTL != c.AccessTokenTTL || !tc.IsActive {
				t.Fatalf("TokenClientWithGrant: %+v %v, want the client %+v", tc, err, c)
			}
			if ok2 != ok {
				t.Fatalf("grant %.40q of %.40q: GrantLive %v, TokenClientWithGrant %v", id, userID, ok, ok2)
			}
			return ok
		}
		if _, _, err := st.TokenClientWithGrant(ctx, "nope", user.NewID(), alice.ID); !errors.Is(err, oauth.ErrUnknownClient) {
			t.Fatalf("unknown client: %v", err)
		}
		a := provRefresh(t, st, c, alice, user.NewID(), nil, provNow.Add(time.Hour))
		if !live(a.ID, alice.ID) {
			t.Fatal("a fresh grant is not live")
		}
		if live(a.ID, bob.ID) || live(user.NewID(), alice.ID) || live("not-a-uuid", alice.ID) || live(strings.ToUpper(a.ID), alice.ID) ||
			live(a.ID, "not-a-uuid") || live("", "") {
			t.Fatal("a grant is live for another user, an unknown id or a non-canonical id")
		}
		if _, err := st.RevokeRefreshFamily(ctx, a.FamilyID, provNow); err != nil {
			t.Fatal(err)
		}
		if live(a.ID, alice.ID) {
			t.Fatal("a revoked grant is live")
		}
		b := provRefresh(t, st, c, bob, user.NewID(), nil, provNow.Add(time.Hour))
		if err := st.SoftDeleteUser(ctx, bob.ID, provNow); err != nil {
			t.Fatal(err)
		}
		if live(b.ID, bob.ID) {
			t.Fatal("a deleted user's grant is live")
		}
	})
}

// Migration 00005 names every family started by a code after the code (so a
// replayed code revokes it through the family index) and leaves the
// refresh-token table with only the indexes its queries use.
func TestCodeFamilyMigration(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		// Roll back, newest first, until 00005 is undone (later migrations
		// come back with Migrate below).
		for {
			m, err := st.MigrateDown(ctx)
			if err != nil || m.Version < 5 {
				t.Fatalf("rolling back to version 4: %+v %v", m, err)
			}
			if m.Version == 5 {
				break
			}
		}
		c := provClient(t, st, "mig", provNow)
		u := provUser(t, st, "mig@example.com")
		code := provCode(t, st, c, u, provNow.Add(time.Hour))
		exp := provNow.Add(time.Hour)
		fromCode := user.NewID()
		first := provRefresh(t, st, c, u, fromCode, &code.ID, exp)
		rotated := provRefresh(t, st, c, u, fromCode, &code.ID, exp)
		other := provRefresh(t, st, c, u, user.NewID(), nil, exp)
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("up: %v", err)
		}
		for _, want := range []struct {
			tok    oauth.RefreshToken
			family string
		}{{first, code.ID}, {rotated, code.ID}, {other, other.FamilyID}} {
			got, err := st.RefreshTokenByID(ctx, want.tok.ID)
			if err != nil || got.FamilyID != want.family {
				t.Fatalf("token %s: family %q (%v), want %q", want.tok.ID, got.FamilyID, err, want.family)
			}
		}
		if n, err := st.RevokeRefreshFamily(ctx, code.ID, provNow); err != nil || n != 2 {
			t.Fatalf("revoking the code's family: %d %v, want 2", n, err)
		}

		q := `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'oauth_provider_refresh_tokens'
			AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name`
		if st.Engine() == sqlstore.Postgres {
			q = `SELECT indexname FROM pg_indexes WHERE tablename = 'oauth_provider_refresh_tokens'
				AND indexname <> 'oauth_provider_refresh_tokens_pkey' ORDER BY indexname`
		}
		rows, err := st.DB().QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		want := []string{"ix_oauth_refresh_family", "ix_oauth_refresh_user_client", "oauth_refresh_hash_key"}
		if !slices.Equal(names, want) {
			t.Fatalf("indexes %v, want %v", names, want)
		}
	})
}
