package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/social"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

var socialT0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

func socialUser(t *testing.T, st *sqlstore.Store, email string, withPassword bool) user.User {
	t.Helper()
	u := newUser(email, socialT0)
	if !withPassword {
		u.PasswordHash = ""
	}
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

func socialAccount(userID, provider, subject string, at time.Time) social.Account {
	email := subject + "@" + provider + ".example"
	return social.Account{ID: user.NewID(), UserID: userID, Provider: provider, ProviderUserID: subject, ProviderEmail: &email,
		AccessToken: "v1:sealed-access-" + subject, RefreshToken: "v1:sealed-refresh-" + subject, CreatedAt: at, UpdatedAt: at}
}

func socialCount(t *testing.T, st *sqlstore.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// socialRace runs fn n times at once (released together) and returns the
// errors.
func socialRace(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestOAuthStateConsumeIsSingleUse(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := socialUser(t, st, "state@example.com", true)
		uid := u.ID
		st1 := social.State{ID: user.NewID(), Hash: "hash-of-state-1", Provider: "google", Verifier: "v1:sealed-verifier", Nonce: "n-1",
			RedirectURI: "https://app.example.com/cb", UserID: &uid, ExpiresAt: socialT0.Add(10 * time.Minute), CreatedAt: socialT0}
		if err := st.CreateOAuthState(ctx, st1); err != nil {
			t.Fatal(err)
		}

		t.Run("round trip", func(t *testing.T) {
			got, err := st.ConsumeOAuthState(ctx, st1.Hash, socialT0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != st1.ID || got.Provider != "google" || got.Verifier != st1.Verifier || got.Nonce != "n-1" ||
				got.RedirectURI != st1.RedirectURI || got.UserID == nil || *got.UserID != uid || !got.ExpiresAt.Equal(st1.ExpiresAt) {
				t.Fatalf("state %+v, want %+v", got, st1)
			}
			if _, err := st.ConsumeOAuthState(ctx, st1.Hash, socialT0.Add(time.Minute)); !errors.Is(err, social.ErrState) {
				t.Fatalf("second consume: %v, want ErrState", err)
			}
		})

		t.Run("exactly one of N concurrent consumers wins", func(t *testing.T) {
			for round := range 5 {
				s := social.State{ID: user.NewID(), Hash: fmt.Sprintf("race-%d", round), Provider: "github", RedirectURI: "https://app.example.com/cb",
					ExpiresAt: socialT0.Add(10 * time.Minute), CreatedAt: socialT0}
				if err := st.CreateOAuthState(ctx, s); err != nil {
					t.Fatal(err)
				}
				errs := socialRace(12, func(int) error {
					_, err := st.ConsumeOAuthState(ctx, s.Hash, socialT0.Add(time.Minute))
					return err
				})
				wins := 0
				for _, err := range errs {
					switch {
					case err == nil:
						wins++
					case !errors.Is(err, social.ErrState):
						t.Fatalf("consume: unexpected error %v", err)
					}
				}
				if wins != 1 {
					t.Fatalf("round %d: %d consumers won, want exactly 1", round, wins)
				}
			}
			if n := socialCount(t, st, `SELECT COUNT(*) FROM oauth_states`); n != 0 {
				t.Fatalf("%d states left", n)
			}
		})

		t.Run("an expired state is refused and deleted", func(t *testing.T) {
			s := social.State{ID: user.NewID(), Hash: "expired", Provider: "google", RedirectURI: "https://app.example.com/cb",
				ExpiresAt: socialT0.Add(time.Minute), CreatedAt: socialT0}
			if err := st.CreateOAuthState(ctx, s); err != nil {
				t.Fatal(err)
			}
			if _, err := st.ConsumeOAuthState(ctx, s.Hash, socialT0.Add(time.Minute)); !errors.Is(err, social.ErrState) {
				t.Fatalf("consume at expiry: %v, want ErrState", err)
			}
			if n := socialCount(t, st, `SELECT COUNT(*) FROM oauth_states WHERE state_hash = 'expired'`); n != 0 {
				t.Fatal("expired state kept")
			}
		})

		t.Run("purge deletes only expired states", func(t *testing.T) {
			for i, exp := range []time.Time{socialT0.Add(-time.Hour), socialT0.Add(-time.Second), socialT0.Add(time.Hour)} {
				s := social.State{ID: user.NewID(), Hash: fmt.Sprintf("purge-%d", i), Provider: "google", RedirectURI: "https://app.example.com/cb",
					ExpiresAt: exp, CreatedAt: socialT0.Add(-2 * time.Hour)}
				if err := st.CreateOAuthState(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			n, err := st.PurgeOAuthStates(ctx, socialT0)
			if err != nil || n != 2 {
				t.Fatalf("purge: n=%d err=%v, want 2", n, err)
			}
			if left := socialCount(t, st, `SELECT COUNT(*) FROM oauth_states WHERE state_hash = 'purge-2'`); left != 1 {
				t.Fatal("live state purged")
			}
		})
	})
}

func TestOAuthLinkErrorsArePrecise(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a := socialUser(t, st, "a@example.com", true)
		b := socialUser(t, st, "b@example.com", true)
		if err := st.LinkOAuthAccount(ctx, socialAccount(a.ID, "google", "g-1", socialT0)); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			acc  social.Account
			want error
		}{
			{"same user, second identity of the provider", socialAccount(a.ID, "google", "g-2", socialT0), social.ErrAlreadyLinked},
			{"identity linked to another user", socialAccount(b.ID, "google", "g-1", socialT0), social.ErrLinkedElsewhere},
			{"unknown user", socialAccount(user.NewID(), "google", "g-9", socialT0), user.ErrNotFound},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				err := st.LinkOAuthAccount(ctx, tc.acc)
				if !errors.Is(err, tc.want) {
					t.Fatalf("LinkOAuthAccount: %v, want %v", err, tc.want)
				}
				for _, other := range []error{social.ErrAlreadyLinked, social.ErrLinkedElsewhere} {
					if other != tc.want && errors.Is(err, other) {
						t.Fatalf("LinkOAuthAccount: %v is also %v", err, other)
					}
				}
			})
		}
		t.Run("the same subject at another provider is another identity", func(t *testing.T) {
			if err := st.LinkOAuthAccount(ctx, socialAccount(b.ID, "github", "g-1", socialT0)); err != nil {
				t.Fatal(err)
			}
		})
		if n := socialCount(t, st, `SELECT COUNT(*) FROM oauth_accounts`); n != 2 {
			t.Fatalf("%d links, want 2", n)
		}

		t.Run("creating a user with a taken identity creates nothing", func(t *testing.T) {
			c := newUser("c@example.com", socialT0)
			c.PasswordHash = ""
			err := st.CreateUserWithOAuthAccount(ctx, c, socialAccount(c.ID, "google", "g-1", socialT0))
			if !errors.Is(err, social.ErrLinkedElsewhere) {
				t.Fatalf("CreateUserWithOAuthAccount: %v, want ErrLinkedElsewhere", err)
			}
			if _, err := st.UserByEmail(ctx, "c@example.com"); !errors.Is(err, user.ErrNotFound) {
				t.Fatalf("user was created anyway: %v", err)
			}
			err = st.CreateUserWithOAuthAccount(ctx, newUser("a@example.com", socialT0), socialAccount(user.NewID(), "google", "g-new", socialT0))
			if !errors.Is(err, user.ErrEmailTaken) {
				t.Fatalf("taken email: %v, want ErrEmailTaken", err)
			}
			if n := socialCount(t, st, `SELECT COUNT(*) FROM oauth_accounts WHERE provider_user_id = 'g-new'`); n != 0 {
				t.Fatal("link created for a refused user")
			}
		})
	})
}

func TestOAuthLinkRaces(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		for round := range 4 {
			a := socialUser(t, st, fmt.Sprintf("ra%d@example.com", round), true)
			b := socialUser(t, st, fmt.Sprintf("rb%d@example.com", round), true)

			// Two users link the same identity at once.
			subject := fmt.Sprintf("same-%d", round)
			errs := socialRace(2, func(i int) error {
				uid := []string{a.ID, b.ID}[i]
				return st.LinkOAuthAccount(ctx, socialAccount(uid, "google", subject, socialT0))
			})
			if !oneWinner(errs, social.ErrLinkedElsewhere) {
				t.Fatalf("round %d, one identity for two users: %v, want one nil and one ErrLinkedElsewhere", round, errs)
			}

			// One user links two identities of one provider at once.
			errs = socialRace(2, func(i int) error {
				return st.LinkOAuthAccount(ctx, socialAccount(a.ID, "github", fmt.Sprintf("gh-%d-%d", round, i), socialT0))
			})
			if !oneWinner(errs, social.ErrAlreadyLinked) {
				t.Fatalf("round %d, two identities for one user: %v, want one nil and one ErrAlreadyLinked", round, errs)
			}
			if n := socialCount(t, st, `SELECT COUNT(*) FROM oauth_accounts WHERE user_id = $1 AND provider = 'github'`, a.ID); n != 1 {
				t.Fatalf("user has %d github links", n)
			}
		}
	})
}

func oneWinner(errs []error, loser error) bool {
	wins, losses := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.Is(err, loser):
			losses++
		}
	}
	return wins == 1 && losses == len(errs)-1
}

// unlinkRule is the service's rule: the last way in cannot go.
func unlinkRule(hasPassword bool, links int) error {
	if !hasPassword && links <= 1 {
		return social.ErrCannotUnlink
	}
	return nil
}

func TestOAuthUnlink(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()

		t.Run("the check sees the password and the link count", func(t *testing.T) {
			u := socialUser(t, st, "pw@example.com", true)
			if err := st.LinkOAuthAccount(ctx, socialAccount(u.ID, "google", "pw-g", socialT0)); err != nil {
				t.Fatal(err)
			}
			var gotPW bool
			var gotLinks int
			err := st.UnlinkOAuthAccount(ctx, u.ID, "google", func(hasPassword bool, links int) error {
				gotPW, gotLinks = hasPassword, links
				return nil
			})
			if err != nil || !gotPW || gotLinks != 1 {
				t.Fatalf("unlink: err=%v hasPassword=%v links=%d", err, gotPW, gotLinks)
			}
			if err := st.UnlinkOAuthAccount(ctx, u.ID, "google", unlinkRule); !errors.Is(err, social.ErrNoLink) {
				t.Fatalf("unlink again: %v, want ErrNoLink", err)
			}
		})

		t.Run("a refused check deletes nothing", func(t *testing.T) {
			u := socialUser(t, st, "only@example.com", false)
			if err := st.LinkOAuthAccount(ctx, socialAccount(u.ID, "google", "only-g", socialT0)); err != nil {
				t.Fatal(err)
			}
			if err := st.UnlinkOAuthAccount(ctx, u.ID, "google", unlinkRule); !errors.Is(err, social.ErrCannotUnlink) {
				t.Fatalf("unlink the only way in: %v, want ErrCannotUnlink", err)
			}
			if n := socialCount(t, st, `SELECT COUNT(*) FROM oauth_accounts WHERE user_id = $1`, u.ID); n != 1 {
				t.Fatal("link deleted")
			}
		})

		t.Run("two concurrent unlinks of the last two ways in: exactly one succeeds", func(t *testing.T) {
			for round := range 4 {
				u := socialUser(t, st, fmt.Sprintf("two%d@example.com", round), false)
				for _, p := range []string{"google", "github"} {
					if err := st.LinkOAuthAccount(ctx, socialAccount(u.ID, p, fmt.Sprintf("two-%d-%s", round, p), socialT0)); err != nil {
						t.Fatal(err)
					}
				}
				errs := socialRace(2, func(i int) error {
					return st.UnlinkOAuthAccount(ctx, u.ID, []string{"google", "github"}[i], unlinkRule)
				})
				if !oneWinner(errs, social.ErrCannotUnlink) {
					t.Fatalf("round %d: %v, want one nil and one ErrCannotUnlink", round, errs)
				}
				if n := socialCount(t, st, `SELECT COUNT(*) FROM oauth_accounts WHERE user_id = $1`, u.ID); n != 1 {
					t.Fatalf("round %d: %d links left, want 1", round, n)
				}
			}
		})
	})
}

func TestOAuthAccountsAndTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		u := socialUser(t, st, "tok@example.com", true)
		older := socialAccount(u.ID, "github", "tok-gh", socialT0)
		newer := socialAccount(u.ID, "google", "tok-g", socialT0.Add(time.Second))
		newer.ProviderEmail = nil
		exp := socialT0.Add(time.Hour)
		newer.TokenExpiresAt = &exp
		for _, a := range []social.Account{older, newer} {
			if err := st.LinkOAuthAccount(ctx, a); err != nil {
				t.Fatal(err)
			}
		}

		t.Run("listed newest first, read back whole", func(t *testing.T) {
			list, err := st.OAuthAccountsOfUser(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].ID != newer.ID || list[1].ID != older.ID {
				t.Fatalf("order: %+v", list)
			}
			g := list[0]
			if g.ProviderEmail != nil || g.AccessToken != newer.AccessToken || g.RefreshToken != newer.RefreshToken ||
				g.TokenExpiresAt == nil || !g.TokenExpiresAt.Equal(exp) || !g.CreatedAt.Equal(newer.CreatedAt) {
				t.Fatalf("google link read back as %+v", g)
			}
			if list[1].ProviderEmail == nil || *list[1].ProviderEmail != *older.ProviderEmail {
				t.Fatalf("provider email %v", list[1].ProviderEmail)
			}
			if other, err := st.OAuthAccountsOfUser(ctx, user.NewID()); err != nil || other == nil || len(other) != 0 {
				t.Fatalf("unknown user's links: %v %v, want an empty list", other, err)
			}
			if _, err := st.OAuthAccount(ctx, "google", "nobody"); !errors.Is(err, social.ErrNoLink) {
				t.Fatalf("unknown identity: %v, want ErrNoLink", err)
			}
		})

		t.Run("an empty new refresh token keeps the stored one", func(t *testing.T) {
			later := socialT0.Add(2 * time.Hour)
			exp2 := later.Add(time.Hour)
			if err := st.UpdateOAuthTokens(ctx, newer.ID, "v1:access-2", "", &exp2, later); err != nil {
				t.Fatal(err)
			}
			a, err := st.OAuthAccount(ctx, "google", "tok-g")
			if err != nil {
				t.Fatal(err)
			}
			if a.AccessToken != "v1:access-2" || a.RefreshToken != newer.RefreshToken || a.TokenExpiresAt == nil ||
				!a.TokenExpiresAt.Equal(exp2) || !a.UpdatedAt.Equal(later) {
				t.Fatalf("after update without refresh token: %+v", a)
			}
			if err := st.UpdateOAuthTokens(ctx, newer.ID, "v1:access-3", "v1:refresh-3", nil, later); err != nil {
				t.Fatal(err)
			}
			a, _ = st.OAuthAccount(ctx, "google", "tok-g")
			if a.AccessToken != "v1:access-3" || a.RefreshToken != "v1:refresh-3" || a.TokenExpiresAt != nil {
				t.Fatalf("after update with refresh token: %+v", a)
			}
			// The other link is untouched.
			o, _ := st.OAuthAccount(ctx, "github", "tok-gh")
			if o.AccessToken != older.AccessToken || o.RefreshToken != older.RefreshToken {
				t.Fatalf("other link changed: %+v", o)
			}
		})
	})
}
