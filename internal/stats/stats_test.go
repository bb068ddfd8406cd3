package stats_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/stats"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

var super = user.Actor{UserID: user.NewID(), IsSuperuser: true}

// seed holds what a test inserted.
type seed struct {
	t   *testing.T
	st  *sqlstore.Store
	ids map[string]string // user and organization ids by label
}

func (s *seed) exec(q string, args ...any) {
	s.t.Helper()
	if _, err := s.st.DB().ExecContext(context.Background(), q, args...); err != nil {
		s.t.Fatalf("exec %q: %v", q, err)
	}
}

// user inserts a live user created at `created`.
func (s *seed) user(label string, created time.Time, active bool) {
	s.t.Helper()
	u := user.User{ID: user.NewID(), Email: label + "@example.com", FirstName: label, IsActive: active,
		CreatedAt: created, UpdatedAt: created}
	if err := s.st.CreateUser(context.Background(), u); err != nil {
		s.t.Fatal(err)
	}
	s.ids[label] = u.ID
}

// deleted marks a user soft-deleted but leaves its flags and memberships
// alone, so only the deleted_at condition can exclude it.
func (s *seed) deleted(label string) {
	s.t.Helper()
	s.exec(`UPDATE users SET deleted_at = updated_at WHERE id = $1`, s.ids[label])
}

func (s *seed) org(label, name string) {
	s.t.Helper()
	id := user.NewID()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.exec(`INSERT INTO organizations (id, name, slug, description, is_active, settings, created_at, updated_at)
		VALUES ($1, $2, $3, NULL, TRUE, NULL, $4, $4)`, id, name, label, now)
	s.ids[label] = id
}

func (s *seed) member(org, usr string, active bool) {
	s.t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.exec(`INSERT INTO user_organizations (user_id, organization_id, role, is_active, custom_permissions, created_at, updated_at)
		VALUES ($1, $2, 'member', $3, NULL, $4, $4)`, s.ids[usr], s.ids[org], active, now)
}

func forEachEngine(t *testing.T, fn func(t *testing.T, st *sqlstore.Store)) {
	for _, e := range dbtest.Engines(t) {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			fn(t, dbtest.Open(t, e))
		})
	}
}

func day(month time.Month, d, h, m, s, us int) time.Time {
	return time.Date(2026, month, d, h, m, s, us*1000, time.UTC)
}

func TestComputeOnSeededDatabase(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		sd := &seed{t: t, st: st, ids: map[string]string{}}
		// Today is Mar 15 2026; the 30 days run from Feb 14 to Mar 15, the
		// 14 days of registrations from Mar 2 to Mar 15.
		sd.user("u1", day(time.January, 10, 8, 0, 0, 0), true)          // before the window
		sd.user("u2", day(time.February, 14, 0, 0, 0, 0), false)        // first instant of the first day
		sd.user("u3", day(time.February, 20, 23, 59, 59, 999999), true) // last instant of Feb 20
		sd.user("u4", day(time.March, 1, 12, 0, 0, 0), true)            // outside the 14 days
		sd.user("u5", day(time.March, 1, 13, 0, 0, 0), false)           //
		sd.user("u9", day(time.March, 2, 0, 0, 0, 0), true)             // first registration day
		sd.user("u8", day(time.March, 14, 23, 59, 59, 0), true)         // yesterday
		sd.user("u6", day(time.March, 15, 9, 0, 0, 0), true)            // today, before now
		sd.user("d1", day(time.March, 2, 10, 0, 0, 0), false)           // deleted: never counted
		sd.user("d2", day(time.January, 1, 10, 0, 0, 0), true)          // deleted while active: never counted
		sd.user("d3", day(time.March, 15, 8, 0, 0, 0), true)            // deleted today
		for _, l := range []string{"d1", "d2", "d3"} {
			sd.deleted(l)
		}

		sd.org("beta", "Beta")
		sd.org("alpha", "Alpha")
		sd.org("gamma", "Gamma")
		sd.org("delta", "Delta")
		sd.org("twin-1", "Twin")
		sd.org("twin-2", "Twin")
		sd.org("zeta", "Zeta")
		sd.org("empty", "Empty")
		sd.org("gone", "Only removed members")
		for _, u := range []string{"u4", "u5", "u6"} {
			sd.member("beta", u, true)
		}
		for _, u := range []string{"u1", "u2", "u3"} {
			sd.member("alpha", u, true)
		}
		sd.member("gamma", "u1", true)
		sd.member("gamma", "u2", true)
		for _, u := range []string{"u3", "u4", "u5", "u6", "u8"} {
			sd.member("gamma", u, false) // inactive memberships do not count
		}
		for _, u := range []string{"d1", "d2", "d3"} {
			sd.member("delta", u, true) // deleted users do not count
		}
		sd.member("delta", "u9", true)
		sd.member("twin-1", "u1", true)
		sd.member("twin-2", "u2", true)
		sd.member("zeta", "u3", true)
		sd.member("gone", "u1", false)

		svc := stats.NewService(st)
		svc.Now = func() time.Time { return day(time.March, 15, 10, 30, 0, 0).In(time.FixedZone("CET", 3600)) }
		got, err := svc.Compute(context.Background(), super)
		if err != nil {
			t.Fatal(err)
		}

		// Expected growth: {total, active} at the end of each day.
		growthAt := func(d time.Time) [2]int {
			switch {
			case d.Before(day(time.February, 20, 0, 0, 0, 0)):
				return [2]int{2, 1} // u1, u2
			case d.Before(day(time.March, 1, 0, 0, 0, 0)):
				return [2]int{3, 2} // + u3
			case d.Before(day(time.March, 2, 0, 0, 0, 0)):
				return [2]int{5, 3} // + u4, u5
			case d.Before(day(time.March, 14, 0, 0, 0, 0)):
				return [2]int{6, 4} // + u9
			case d.Before(day(time.March, 15, 0, 0, 0, 0)):
				return [2]int{7, 5} // + u8
			}
			return [2]int{8, 6} // + u6
		}
		if len(got.UserGrowth) != 30 {
			t.Fatalf("%d growth entries, want 30", len(got.UserGrowth))
		}
		for i, g := range got.UserGrowth {
			want := day(time.February, 14, 0, 0, 0, 0).AddDate(0, 0, i)
			if !g.Date.Equal(want) {
				t.Errorf("growth[%d] is %s, want %s", i, g.Date, want)
			}
			if w := growthAt(want); g.TotalUsers != w[0] || g.ActiveUsers != w[1] {
				t.Errorf("growth %s: total %d active %d, want %d %d", want.Format("Jan 02"), g.TotalUsers, g.ActiveUsers, w[0], w[1])
			}
		}
		if last := got.UserGrowth[29].Date.Format("Jan 02"); last != "Mar 15" {
			t.Errorf("last growth day %s, want Mar 15 (today in UTC)", last)
		}

		wantReg := map[string]int{"Mar 02": 1, "Mar 14": 1, "Mar 15": 1}
		if len(got.RegistrationActivity) != 14 {
			t.Fatalf("%d registration entries, want 14", len(got.RegistrationActivity))
		}
		for i, r := range got.RegistrationActivity {
			want := day(time.March, 2, 0, 0, 0, 0).AddDate(0, 0, i)
			if !r.Date.Equal(want) {
				t.Errorf("registrations[%d] is %s, want %s", i, r.Date, want)
			}
			if w := wantReg[want.Format("Jan 02")]; r.Count != w {
				t.Errorf("registrations %s: %d, want %d", want.Format("Jan 02"), r.Count, w)
			}
		}

		if got.Active != 6 || got.Inactive != 2 {
			t.Errorf("status active %d inactive %d, want 6 and 2", got.Active, got.Inactive)
		}

		wantOrgs := []struct {
			label, name string
			n           int
		}{{"alpha", "Alpha", 3}, {"beta", "Beta", 3}, {"gamma", "Gamma", 2}, {"delta", "Delta", 1}, {"twin-?", "Twin", 1}, {"twin-?", "Twin", 1}}
		if len(got.OrganizationDistribution) != len(wantOrgs) {
			t.Fatalf("distribution %+v, want %d entries", got.OrganizationDistribution, len(wantOrgs))
		}
		twins := map[string]bool{}
		for i, w := range wantOrgs {
			g := got.OrganizationDistribution[i]
			if g.Name != w.name || g.Members != w.n {
				t.Errorf("distribution[%d] = %s %d, want %s %d", i, g.Name, g.Members, w.name, w.n)
			}
			if w.label == "twin-?" {
				twins[g.ID] = true
			} else if g.ID != sd.ids[w.label] {
				t.Errorf("distribution[%d] id %s, want %s's", i, g.ID, w.label)
			}
		}
		if !twins[sd.ids["twin-1"]] || !twins[sd.ids["twin-2"]] {
			t.Errorf("two organizations with the same name were not counted separately: %+v", got.OrganizationDistribution)
		}
	})
}

func TestComputeOnEmptyDatabase(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		svc := stats.NewService(st)
		svc.Now = func() time.Time { return day(time.January, 1, 0, 0, 0, 0) }
		got, err := svc.Compute(context.Background(), super)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.UserGrowth) != 30 || len(got.RegistrationActivity) != 14 || got.OrganizationDistribution == nil ||
			len(got.OrganizationDistribution) != 0 || got.Active != 0 || got.Inactive != 0 {
			t.Fatalf("empty database: %+v", got)
		}
		// The window crosses the year: Dec 03 2025 to Jan 01 2026.
		if first, last := got.UserGrowth[0].Date.Format("Jan 02 2006"), got.UserGrowth[29].Date.Format("Jan 02 2006"); first != "Dec 03 2025" || last != "Jan 01 2026" {
			t.Fatalf("window %s to %s", first, last)
		}
		for _, g := range got.UserGrowth {
			if g.TotalUsers != 0 || g.ActiveUsers != 0 {
				t.Fatalf("growth %+v", g)
			}
		}
	})
}

func TestComputeNeedsSuperuser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		_, err := stats.NewService(st).Compute(context.Background(), user.Actor{UserID: user.NewID()})
		if !errors.Is(err, user.ErrNotAdmin) {
			t.Fatalf("regular actor: %v", fmt.Sprint(err))
		}
	})
}
