package demo_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/dbtest"
	"github.com/gatehouse-dev/gatehouse/internal/demo"
	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/password"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// The organizations of reference §8.2, by slug.
var wantOrgs = map[string]string{
	"acme-corp": "Acme Corp", "globex": "Globex Corporation", "soylent": "Soylent Corp",
	"initech": "Initech", "umbrella": "Umbrella Corporation", "massive-dynamic": "Massive Dynamic",
}

// The inactive demo users of reference §8.2.
var wantInactive = []string{"charlie@acme.com", "george@umbrella.com", "ivan@example.com", "jack@initech.com", "una@example.com"}

// The data file says what reference §8.2 asks for.
func TestDataFile(t *testing.T) {
	d, err := demo.Load()
	if err != nil {
		t.Fatal(err)
	}
	gotOrgs := map[string]string{}
	for _, o := range d.Organizations {
		gotOrgs[o.Slug] = o.Name
	}
	if !reflect.DeepEqual(gotOrgs, wantOrgs) {
		t.Errorf("organizations %v, want %v", gotOrgs, wantOrgs)
	}
	if len(d.Users) != 33 {
		t.Fatalf("%d demo users, want 33", len(d.Users))
	}
	var inactive []string
	withoutOrg, passwords := 0, map[string]int{}
	owners := map[string]int{}
	roles := map[string]string{}
	for _, u := range d.Users {
		passwords[u.Password]++
		if !*u.IsActive {
			inactive = append(inactive, u.Email)
		}
		if u.Organization == "" {
			withoutOrg++
			continue
		}
		roles[u.Email] = u.Organization + ":" + u.Role
		if u.Role == "owner" {
			owners[u.Organization]++
		}
	}
	slices.Sort(inactive)
	if !reflect.DeepEqual(inactive, wantInactive) {
		t.Errorf("inactive users %v, want %v", inactive, wantInactive)
	}
	if withoutOrg != 9 {
		t.Errorf("%d users without organization, want 9", withoutOrg)
	}
	if want := map[string]int{"DemoPass1234!": 1, "Demo123!": 32}; !reflect.DeepEqual(passwords, want) {
		t.Errorf("passwords %v, want %v", passwords, want)
	}
	for email, want := range map[string]string{"demo@example.com": "acme-corp:member", "alice@acme.com": "acme-corp:admin",
		"carol@globex.com": "globex:owner", "leo@massive.com": "massive-dynamic:owner"} {
		if roles[email] != want {
			t.Errorf("%s is %q, want %q", email, roles[email], want)
		}
	}
	for slug := range wantOrgs {
		if owners[slug] < 1 {
			t.Errorf("organization %s has no owner", slug)
		}
	}
	for _, u := range d.Users {
		if (u.Email == "demo@example.com") != (u.Password == "DemoPass1234!") {
			t.Errorf("%s has password %q; only demo@example.com has DemoPass1234!", u.Email, u.Password)
		}
	}
}

// seedEnv creates the superuser who seeds and returns their tokens and
// actor.
func seedEnv(t *testing.T, e *apitest.Env) (apitest.Tokens, user.Actor) {
	t.Helper()
	tok := e.Superuser("admin@example.com")
	return tok, user.Actor{UserID: tok.UserID, IsSuperuser: true}
}

func deps(e *apitest.Env, now time.Time) demo.Deps {
	return demo.Deps{Store: e.App.Store, Users: e.App.Users, Orgs: e.App.Orgs, Hasher: e.App.Hasher,
		Now: func() time.Time { return now }}
}

// Seeding creates exactly the data file's organizations, users, roles,
// active flags and creation dates; demo users log in over HTTP; a second run
// creates nothing.
func TestSeed(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		ctx := context.Background()
		adminTok, admin := seedEnv(t, e)
		data, err := demo.Load()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)

		hashesBefore, _ := e.App.Hasher.Stats()
		res, err := demo.Seed(ctx, e.Config, deps(e, now), admin)
		if err != nil {
			t.Fatal(err)
		}
		if want := (demo.Result{Organizations: 6, Users: 33}); res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
		// One hash per distinct password, not one per user.
		if hashes, _ := e.App.Hasher.Stats(); hashes-hashesBefore != 2 {
			t.Errorf("seeding computed %d password hashes, want 2 (one per distinct password)", hashes-hashesBefore)
		}

		// Organizations: exactly the six, active.
		orgs, total, err := e.App.Store.ListOrganizations(ctx, org.ListQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		gotOrgs := map[string]string{}
		orgIDs := map[string]string{}
		for _, o := range orgs {
			gotOrgs[o.Slug] = o.Name
			orgIDs[o.Slug] = o.ID
			if !o.IsActive {
				t.Errorf("organization %s is inactive", o.Slug)
			}
		}
		if !reflect.DeepEqual(wantOrgs, gotOrgs) || total != 6 {
			t.Errorf("organizations (total %d): %v, want %v", total, gotOrgs, wantOrgs)
		}

		// Users: every data user with their flag, creation date (days_ago
		// days before the seeding), and exactly their membership.
		type row struct {
			Active     bool
			Superuser  bool
			Created    string
			Membership string
		}
		for _, spec := range data.Users {
			want := row{Active: *spec.IsActive, Created: now.AddDate(0, 0, -spec.DaysAgo).Format(time.RFC3339Nano)}
			if spec.Organization != "" {
				want.Membership = spec.Organization + ":" + spec.Role
			}
			u, err := e.App.Store.UserByEmail(ctx, spec.Email)
			if err != nil {
				t.Fatalf("%s: %v", spec.Email, err)
			}
			got := row{Active: u.IsActive, Superuser: u.IsSuperuser, Created: u.CreatedAt.UTC().Format(time.RFC3339Nano)}
			mine, err := e.App.Store.OrganizationsOfUser(ctx, u.ID, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range mine {
				m, err := e.App.Store.Membership(ctx, o.ID, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				got.Membership += o.Slug + ":" + string(m.Role)
			}
			if got != want {
				t.Errorf("%s: got %+v, want %+v", spec.Email, got, want)
			}
			if age := now.Sub(u.CreatedAt); age < 0 || age >= 30*24*time.Hour {
				t.Errorf("%s created %v ago, want within the last 30 days", spec.Email, age)
			}
			if _, err := e.App.Hasher.Verify(ctx, u.PasswordHash, spec.Password); err != nil {
				t.Errorf("%s: the stored hash does not verify the data file's password: %v", spec.Email, err)
			}
		}
		if n := e.Count(`SELECT COUNT(*) FROM users`); n != 34 {
			t.Errorf("%d users, want 33 demo users and the superuser", n)
		}
		if n := e.Count(`SELECT COUNT(*) FROM user_organizations`); n != 24 {
			t.Errorf("%d memberships, want 24", n)
		}
		if n := e.Count(`SELECT COUNT(*) FROM users u WHERE NOT EXISTS
			(SELECT 1 FROM user_organizations m WHERE m.user_id = u.id) AND u.is_superuser = FALSE`); n != 9 {
			t.Errorf("%d demo users without organization, want 9", n)
		}
		if n := e.Count(`SELECT COUNT(*) FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM user_organizations m
			WHERE m.organization_id = o.id AND m.role = 'owner' AND m.is_active = TRUE)`); n != 0 {
			t.Errorf("%d organizations without an active owner", n)
		}

		// Logging in over HTTP: DEMO_MODE accepts Demo123!.
		tok := e.Login("demo@example.com", "DemoPass1234!")
		r := e.Get("/api/v1/organizations/me", tok.Access).Expect(t, http.StatusOK, "")
		var mine []struct{ Name, Slug string }
		r.Decode(t, &mine)
		if want := []struct{ Name, Slug string }{{"Acme Corp", "acme-corp"}}; !reflect.DeepEqual(mine, want) {
			t.Errorf("demo@example.com's organizations %v, want %v", mine, want)
		}
		alice := e.Login("alice@acme.com", "Demo123!")
		r = e.Get("/api/v1/organizations/"+orgIDs["acme-corp"]+"/members?limit=100", alice.Access).Expect(t, http.StatusOK, "")
		if n := r.JSON(t)["pagination"].(map[string]any)["total"]; n != float64(6) {
			t.Errorf("acme-corp has %v members, want 6", n)
		}
		e.Post("/api/v1/auth/login", "", map[string]any{"email": "charlie@acme.com", "password": "Demo123!"}).
			Expect(t, http.StatusUnauthorized, "")

		// The admin statistics see the demo data.
		type nameValue struct {
			Name  string
			Value int
		}
		var stats struct {
			OrganizationDistribution []nameValue `json:"organization_distribution"`
			UserStatus               []nameValue `json:"user_status"`
		}
		e.Get("/api/v1/admin/stats", adminTok.Access).Expect(t, http.StatusOK, "").Decode(t, &stats)
		wantDistribution := []nameValue{{"Acme Corp", 6}, {"Globex Corporation", 5}, {"Initech", 4},
			{"Umbrella Corporation", 4}, {"Massive Dynamic", 3}, {"Soylent Corp", 2}}
		if !reflect.DeepEqual(stats.OrganizationDistribution, wantDistribution) {
			t.Errorf("organization_distribution %v, want %v", stats.OrganizationDistribution, wantDistribution)
		}
		// 28 active demo users and the superuser; the five inactive ones.
		if want := []nameValue{{"Active", 29}, {"Inactive", 5}}; !reflect.DeepEqual(stats.UserStatus, want) {
			t.Errorf("user_status %v, want %v", stats.UserStatus, want)
		}

		// A second run creates nothing and hashes nothing.
		before := e.Snapshot()
		hashesBefore, _ = e.App.Hasher.Stats()
		res, err = demo.Seed(ctx, e.Config, deps(e, now.Add(time.Hour)), admin)
		if err != nil {
			t.Fatal(err)
		}
		if res != (demo.Result{}) {
			t.Errorf("second run created %+v", res)
		}
		if after := e.Snapshot(); after != before {
			t.Errorf("second run changed the database: %s, was %s", after, before)
		}
		if hashes, _ := e.App.Hasher.Stats(); hashes != hashesBefore {
			t.Errorf("second run computed %d password hashes", hashes-hashesBefore)
		}
	}, apitest.WithEnv("DEMO_MODE", "true"))
}

// Seeding fills in what is missing: an organization and a user deleted
// after a first run come back, the rest is kept as it is.
func TestSeedCreatesOnlyWhatIsMissing(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		ctx := context.Background()
		_, admin := seedEnv(t, e)
		if _, err := demo.Seed(ctx, e.Config, deps(e, time.Now()), admin); err != nil {
			t.Fatal(err)
		}
		e.Exec(`DELETE FROM organizations WHERE slug = 'soylent'`)
		e.Exec(`DELETE FROM users WHERE email = 'sam@soylent.com'`)
		res, err := demo.Seed(ctx, e.Config, deps(e, time.Now()), admin)
		if err != nil {
			t.Fatal(err)
		}
		if want := (demo.Result{Organizations: 1, Users: 1}); res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
		// tina@soylent.com kept her account and lost her membership with the
		// organization; sam@soylent.com is back as its owner.
		if n := e.Count(`SELECT COUNT(*) FROM user_organizations m JOIN organizations o ON o.id = m.organization_id
			WHERE o.slug = 'soylent'`); n != 1 {
			t.Errorf("soylent has %d memberships, want 1 (sam, recreated)", n)
		}
	}, apitest.WithEnv("DEMO_MODE", "true"))
}

// Seed refuses production, a service without DEMO_MODE and a non-superuser,
// and then writes nothing.
func TestSeedRefuses(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := dbtest.Open(t, engine)
			hasher, err := password.NewHasher(config.Password{Algorithm: "bcrypt", BcryptCost: 4})
			if err != nil {
				t.Fatal(err)
			}
			d := demo.Deps{Store: st, Users: user.NewService(st, hasher, true), Orgs: org.NewService(st, nil, org.Options{}), Hasher: hasher}
			su := user.Actor{UserID: user.NewID(), IsSuperuser: true}
			cases := []struct {
				name  string
				cfg   config.Config
				actor user.Actor
				want  error
			}{
				{"production", config.Config{Environment: "production", DemoMode: true}, su, demo.ErrProduction},
				{"without DEMO_MODE", config.Config{Environment: "development"}, su, demo.ErrNotDemoMode},
				{"not a superuser", config.Config{Environment: "development", DemoMode: true}, user.Actor{UserID: su.UserID}, demo.ErrNotAdmin},
			}
			for _, tc := range cases {
				if _, err := demo.Seed(ctx, tc.cfg, d, tc.actor); !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
				}
			}
			var users, orgs int
			if err := st.DB().QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM organizations)`).Scan(&users, &orgs); err != nil {
				t.Fatal(err)
			}
			if users != 0 || orgs != 0 {
				t.Errorf("refused seeding wrote %d users and %d organizations", users, orgs)
			}
		})
	}
	// And the configuration never lets DEMO_MODE run in production.
	env := map[string]string{"ENVIRONMENT": "production", "DEMO_MODE": "true", "SECRET_KEY": apitest.Secret,
		"FIRST_SUPERUSER_EMAIL": "root@example.com", "FIRST_SUPERUSER_PASSWORD": "Sup3r!SecretPass"}
	if _, _, err := config.Load(func(k string) string { return env[k] }); err == nil {
		t.Error("config.Load accepted DEMO_MODE in production")
	}
}

// A demo user is written with their membership or not at all.
func TestCreateUserWithMembershipsIsAtomic(t *testing.T) {
	for _, engine := range dbtest.Engines(t) {
		t.Run(string(engine), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := dbtest.Open(t, engine)
			now := time.Now().UTC().Truncate(time.Microsecond)
			u := user.User{ID: user.NewID(), Email: "atomic@example.com", FirstName: "A", IsActive: true, CreatedAt: now, UpdatedAt: now}
			m := org.Membership{UserID: u.ID, OrganizationID: user.NewID(), Role: org.RoleMember, IsActive: true, CreatedAt: now, UpdatedAt: now}
			if err := st.CreateUserWithMemberships(ctx, u, []org.Membership{m}); !errors.Is(err, org.ErrNotFound) {
				t.Fatalf("membership of an unknown organization: err = %v, want org.ErrNotFound", err)
			}
			if _, err := st.UserByEmail(ctx, u.Email); !errors.Is(err, user.ErrNotFound) {
				t.Fatalf("the user of the failed write exists: %v", err)
			}
			if err := st.CreateUserWithMemberships(ctx, u, nil); err != nil {
				t.Fatal(err)
			}
			u.ID = user.NewID()
			if err := st.CreateUserWithMemberships(ctx, u, nil); !errors.Is(err, user.ErrEmailTaken) {
				t.Fatalf("same email again: err = %v, want user.ErrEmailTaken", err)
			}
		})
	}
}
