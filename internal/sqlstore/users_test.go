package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/auth"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

func newUser(email string, now time.Time) user.User {
	last := "Doe"
	return user.User{ID: user.NewID(), Email: email, PasswordHash: "$2a$04$hash", FirstName: "Jane", LastName: &last,
		IsActive: true, Preferences: []byte(`{"theme":"dark"}`), CreatedAt: now, UpdatedAt: now}
}

func forEachEngine(t *testing.T, fn func(t *testing.T, st *sqlstore.Store)) {
	for _, e := range dbtest.Engines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, dbtest.Open(t, e))
		})
	}
}

func TestUserRoundTripAndUniqueEmail(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
		u := newUser("jane@example.com", now)
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		got, err := st.UserByEmail(ctx, "jane@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || *got.LastName != "Doe" || string(got.Preferences) == "" || !got.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
			t.Fatalf("round trip mismatch: %+v", got)
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Fatalf("created_at not UTC: %v", got.CreatedAt.Location())
		}
		dup := newUser("jane@example.com", now)
		if err := st.CreateUser(ctx, dup); !errors.Is(err, user.ErrEmailTaken) {
			t.Fatalf("duplicate email: got %v, want ErrEmailTaken", err)
		}
		// After a soft delete the email is free again and the old row is gone for lookups.
		if err := st.SoftDeleteUser(ctx, u.ID, now); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UserByID(ctx, u.ID); !errors.Is(err, user.ErrNotFound) {
			t.Fatalf("deleted user lookup: got %v", err)
		}
		if err := st.CreateUser(ctx, dup); err != nil {
			t.Fatalf("re-register after delete: %v", err)
		}
	})
}

func TestRotateRefreshExactlyOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		u := newUser("rot@example.com", now)
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		sess := auth.Session{ID: user.NewID(), UserID: u.ID, RefreshHash: "old", IsActive: true,
			LastUsedAt: now, ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}
		if err := st.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		const n = 8
		var wg sync.WaitGroup
		wins := make(chan int, n)
		for i := range n {
			wg.Go(func() {
				ok, err := st.RotateRefresh(ctx, sess.ID, "old", "new", now.Add(2*time.Hour), now)
				if err != nil {
					t.Errorf("rotate: %v", err)
				}
				if ok {
					wins <- i
				}
			})
		}
		wg.Wait()
		close(wins)
		if got := len(wins); got != 1 {
			t.Fatalf("%d concurrent rotations succeeded, want exactly 1", got)
		}
		got, err := st.SessionByRefreshHash(ctx, "new")
		if err != nil || got.ID != sess.ID {
			t.Fatalf("session by new hash: %v %+v", err, got)
		}
	})
}
