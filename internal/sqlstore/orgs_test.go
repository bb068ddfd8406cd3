package sqlstore_test

// Store tests of organizations, memberships and invitations, on every engine.
// Helpers shared with users_test.go: newUser and forEachEngine. Store methods
// take "now" as an argument, so the clock here is fixed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/org"
	"github.com/gatehouse-dev/gatehouse/internal/sqlstore"
	"github.com/gatehouse-dev/gatehouse/internal/token"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

var orgT0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

// orgUser inserts a user created at orgT0.
func orgUser(t *testing.T, st *sqlstore.Store, email string) user.User {
	t.Helper()
	u := newUser(email, orgT0)
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

// orgNew returns an active organization created at at.
func orgNew(slug string, at time.Time) org.Organization {
	return org.Organization{ID: user.NewID(), Name: "Org " + slug, Slug: slug, IsActive: true,
		Settings: json.RawMessage(`{"plan":"free"}`), CreatedAt: at, UpdatedAt: at}
}

// orgCreate inserts an organization with owner (when not nil) as owner.
func orgCreate(t *testing.T, st *sqlstore.Store, o org.Organization, owner *user.User) org.Organization {
	t.Helper()
	var m *org.Membership
	if owner != nil {
		m = &org.Membership{UserID: owner.ID, OrganizationID: o.ID, Role: org.RoleOwner, IsActive: true, CreatedAt: o.CreatedAt, UpdatedAt: o.CreatedAt}
	}
	if err := st.CreateOrganization(context.Background(), o, m); err != nil {
		t.Fatalf("create organization %s: %v", o.Slug, err)
	}
	return o
}

// orgAdd adds userID to orgID with role, joined at at.
func orgAdd(t *testing.T, st *sqlstore.Store, orgID, userID string, role org.Role, at time.Time) {
	t.Helper()
	if err := st.AddMember(context.Background(), org.Membership{UserID: userID, OrganizationID: orgID, Role: role,
		IsActive: true, CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatalf("add member: %v", err)
	}
}

func orgCount(t *testing.T, st *sqlstore.Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := st.DB().QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("count %q: %v", query, err)
	}
	return n
}

func orgMembership(t *testing.T, st *sqlstore.Store, orgID, userID string) org.Membership {
	t.Helper()
	m, err := st.Membership(context.Background(), orgID, userID)
	if err != nil {
		t.Fatalf("membership: %v", err)
	}
	return m
}

// orgRemove marks a membership removed.
func orgRemove(t *testing.T, st *sqlstore.Store, orgID, userID string, at time.Time) {
	t.Helper()
	if _, err := st.ChangeMembership(context.Background(), orgID, userID, at, func(m *org.Membership, _ int) error {
		m.IsActive = false
		return nil
	}); err != nil {
		t.Fatalf("remove member: %v", err)
	}
}

// orgInvite stores a pending invitation and returns it with its secret.
func orgInvite(t *testing.T, st *sqlstore.Store, orgID, email string, role org.Role, created, expires time.Time) (org.Invitation, string) {
	t.Helper()
	secret := token.RandomSecret()
	inv := org.Invitation{ID: user.NewID(), OrganizationID: orgID, Email: email, Role: role, TokenHash: token.HashSecret(secret),
		ExpiresAt: expires, CreatedAt: created}
	if err := st.CreateInvitation(context.Background(), inv); err != nil {
		t.Fatalf("create invitation: %v", err)
	}
	return inv, secret
}

func orgIDs(list []org.Organization) []string {
	out := make([]string, len(list))
	for i, o := range list {
		out[i] = o.ID
	}
	return out
}

func sameJSON(t *testing.T, got, want json.RawMessage) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("stored JSON %q: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(g, w)
}

func TestCreateOrganizationRoundTripAndAtomicity(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		owner := orgUser(t, st, "owner@example.com")
		o := orgNew("acme", orgT0.Add(123456789*time.Nanosecond))
		desc := "Anvils & more"
		o.Description = &desc
		orgCreate(t, st, o, &owner)

		got, err := st.OrganizationByID(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != o.ID || got.Name != "Org acme" || got.Slug != "acme" || got.Description == nil || *got.Description != desc ||
			!got.IsActive || got.MemberCount != 1 || !sameJSON(t, got.Settings, o.Settings) {
			t.Fatalf("round trip: %+v", got)
		}
		if !got.CreatedAt.Equal(o.CreatedAt.Truncate(time.Microsecond)) || got.CreatedAt.Location() != time.UTC {
			t.Fatalf("created_at %v, want %v in UTC", got.CreatedAt, o.CreatedAt.Truncate(time.Microsecond))
		}
		m := orgMembership(t, st, o.ID, owner.ID)
		if m.Role != org.RoleOwner || !m.IsActive {
			t.Fatalf("owner membership %+v", m)
		}

		// NULL description and settings come back as nil.
		bare := orgNew("bare", orgT0)
		bare.Settings = nil
		orgCreate(t, st, bare, nil)
		if got, err := st.OrganizationByID(ctx, bare.ID); err != nil || got.Description != nil || got.Settings != nil || got.MemberCount != 0 {
			t.Fatalf("bare organization: %+v, %v", got, err)
		}

		// A taken slug creates neither the organization nor the membership.
		other := orgUser(t, st, "other@example.com")
		dup := orgNew("acme", orgT0)
		err = st.CreateOrganization(ctx, dup, &org.Membership{UserID: other.ID, OrganizationID: dup.ID, Role: org.RoleOwner,
			IsActive: true, CreatedAt: orgT0, UpdatedAt: orgT0})
		if !errors.Is(err, org.ErrSlugTaken) {
			t.Fatalf("duplicate slug: %v, want ErrSlugTaken", err)
		}
		if n := orgCount(t, st, `SELECT COUNT(*) FROM organizations`); n != 2 {
			t.Fatalf("%d organizations after the duplicate, want 2", n)
		}
		if n := orgCount(t, st, `SELECT COUNT(*) FROM user_organizations WHERE user_id = $1`, other.ID); n != 0 {
			t.Fatalf("the failed creation left %d memberships", n)
		}

		// An owner that does not exist fails the membership insert: the
		// organization row is rolled back too.
		ghost := orgNew("ghost", orgT0)
		err = st.CreateOrganization(ctx, ghost, &org.Membership{UserID: user.NewID(), OrganizationID: ghost.ID, Role: org.RoleOwner,
			IsActive: true, CreatedAt: orgT0, UpdatedAt: orgT0})
		if err == nil {
			t.Fatal("creating with a missing owner succeeded")
		}
		if _, err := st.OrganizationByID(ctx, ghost.ID); !errors.Is(err, org.ErrNotFound) {
			t.Fatalf("organization of the failed creation: %v, want ErrNotFound (rolled back)", err)
		}
		if _, err := st.OrganizationByID(ctx, user.NewID()); !errors.Is(err, org.ErrNotFound) {
			t.Fatalf("unknown organization: %v", err)
		}
	})
}

func TestUpdateOrganization(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a := orgCreate(t, st, orgNew("alpha", orgT0), nil)
		b := orgCreate(t, st, orgNew("beta", orgT0), nil)
		later := orgT0.Add(time.Hour)

		got, err := st.UpdateOrganization(ctx, a.ID, later, func(o *org.Organization) error {
			o.Name, o.Slug, o.IsActive = "Alpha 2", "alpha-2", false
			return nil
		})
		if err != nil || got.Name != "Alpha 2" || got.Slug != "alpha-2" || got.IsActive || !got.UpdatedAt.Equal(later) {
			t.Fatalf("update: %+v, %v", got, err)
		}
		if re, _ := st.OrganizationByID(ctx, a.ID); re.Name != "Alpha 2" || re.IsActive || !re.CreatedAt.Equal(orgT0) {
			t.Fatalf("reread: %+v", re)
		}

		// A duplicate slug is ErrSlugTaken and changes nothing.
		_, err = st.UpdateOrganization(ctx, a.ID, later.Add(time.Hour), func(o *org.Organization) error {
			o.Name, o.Slug = "Stolen", b.Slug
			return nil
		})
		if !errors.Is(err, org.ErrSlugTaken) {
			t.Fatalf("duplicate slug: %v", err)
		}
		// An error from fn changes nothing either.
		boom := errors.New("boom")
		if _, err := st.UpdateOrganization(ctx, a.ID, later, func(o *org.Organization) error { o.Name = "Half"; return boom }); !errors.Is(err, boom) {
			t.Fatalf("fn error: %v", err)
		}
		if re, _ := st.OrganizationByID(ctx, a.ID); re.Name != "Alpha 2" || re.Slug != "alpha-2" || !re.UpdatedAt.Equal(later) {
			t.Fatalf("failed updates changed the row: %+v", re)
		}
		if _, err := st.UpdateOrganization(ctx, user.NewID(), later, func(*org.Organization) error { return nil }); !errors.Is(err, org.ErrNotFound) {
			t.Fatalf("missing organization: %v", err)
		}
	})
}

func TestAddMemberUpsert(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		o := orgCreate(t, st, orgNew("upsert", orgT0), nil)
		u := orgUser(t, st, "member@example.com")
		joined := orgT0.Add(time.Minute)
		orgAdd(t, st, o.ID, u.ID, org.RoleMember, joined)

		// Active already: ErrAlreadyMember, role unchanged.
		err := st.AddMember(ctx, org.Membership{UserID: u.ID, OrganizationID: o.ID, Role: org.RoleAdmin, IsActive: true,
			CreatedAt: joined.Add(time.Hour), UpdatedAt: joined.Add(time.Hour)})
		if !errors.Is(err, org.ErrAlreadyMember) {
			t.Fatalf("second add: %v, want ErrAlreadyMember", err)
		}
		if m := orgMembership(t, st, o.ID, u.ID); m.Role != org.RoleMember || !m.UpdatedAt.Equal(joined) {
			t.Fatalf("active membership changed by a refused add: %+v", m)
		}

		// Removed: re-added with the new role, keeping the join date.
		orgRemove(t, st, o.ID, u.ID, joined.Add(time.Hour))
		readd := joined.Add(2 * time.Hour)
		orgAdd(t, st, o.ID, u.ID, org.RoleGuest, readd)
		m := orgMembership(t, st, o.ID, u.ID)
		if !m.IsActive || m.Role != org.RoleGuest || !m.CreatedAt.Equal(joined) || !m.UpdatedAt.Equal(readd) {
			t.Fatalf("re-added membership %+v, want active guest joined %v updated %v", m, joined, readd)
		}
		if n := orgCount(t, st, `SELECT COUNT(*) FROM user_organizations WHERE organization_id = $1`, o.ID); n != 1 {
			t.Fatalf("%d membership rows, want 1", n)
		}

		// Missing organization or user.
		if err := st.AddMember(ctx, org.Membership{UserID: u.ID, OrganizationID: user.NewID(), Role: org.RoleMember, IsActive: true,
			CreatedAt: orgT0, UpdatedAt: orgT0}); err == nil {
			t.Fatal("adding to a missing organization succeeded")
		}
		if err := st.AddMember(ctx, org.Membership{UserID: user.NewID(), OrganizationID: o.ID, Role: org.RoleMember, IsActive: true,
			CreatedAt: orgT0, UpdatedAt: orgT0}); err == nil {
			t.Fatal("adding a missing user succeeded")
		}
		if n := orgCount(t, st, `SELECT COUNT(*) FROM user_organizations`); n != 1 {
			t.Fatalf("%d membership rows after failed adds, want 1", n)
		}
		if _, err := st.Membership(ctx, o.ID, user.NewID()); !errors.Is(err, org.ErrMembershipGone) {
			t.Fatalf("unknown membership: %v", err)
		}
	})
}

func TestChangeMembership(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a, b, c := orgUser(t, st, "a@example.com"), orgUser(t, st, "b@example.com"), orgUser(t, st, "c@example.com")
		o := orgCreate(t, st, orgNew("change", orgT0), &a)
		orgAdd(t, st, o.ID, b.ID, org.RoleOwner, orgT0)
		orgAdd(t, st, o.ID, c.ID, org.RoleOwner, orgT0)
		orgRemove(t, st, o.ID, c.ID, orgT0) // a removed owner is not an active owner

		later := orgT0.Add(time.Hour)
		var seen int
		m, err := st.ChangeMembership(ctx, o.ID, b.ID, later, func(m *org.Membership, owners int) error {
			seen = owners
			m.Role = org.RoleAdmin
			return nil
		})
		if err != nil || seen != 1 {
			t.Fatalf("change: err %v, other active owners seen %d, want 1 (a)", err, seen)
		}
		if m.Role != org.RoleAdmin || !m.UpdatedAt.Equal(later) || !m.CreatedAt.Equal(orgT0) {
			t.Fatalf("returned membership %+v", m)
		}
		if got := orgMembership(t, st, o.ID, b.ID); got.Role != org.RoleAdmin || !got.IsActive {
			t.Fatalf("stored membership %+v", got)
		}
		if _, err := st.ChangeMembership(ctx, o.ID, a.ID, later, func(_ *org.Membership, owners int) error {
			seen = owners
			return nil
		}); err != nil || seen != 0 {
			t.Fatalf("other owners of a after b's demotion: %d (%v), want 0", seen, err)
		}

		// An error from fn saves nothing.
		if _, err := st.ChangeMembership(ctx, o.ID, a.ID, later.Add(time.Hour), func(m *org.Membership, _ int) error {
			m.Role, m.IsActive = org.RoleGuest, false
			return org.ErrLastOwner
		}); !errors.Is(err, org.ErrLastOwner) {
			t.Fatalf("fn error: %v", err)
		}
		if got := orgMembership(t, st, o.ID, a.ID); got.Role != org.RoleOwner || !got.IsActive || !got.UpdatedAt.Equal(later) {
			t.Fatalf("a refused change was saved: %+v", got)
		}

		called := false
		fn := func(*org.Membership, int) error { called = true; return nil }
		if _, err := st.ChangeMembership(ctx, user.NewID(), a.ID, later, fn); !errors.Is(err, org.ErrNotFound) {
			t.Fatalf("missing organization: %v", err)
		}
		if _, err := st.ChangeMembership(ctx, o.ID, user.NewID(), later, fn); !errors.Is(err, org.ErrMembershipGone) {
			t.Fatalf("missing membership: %v", err)
		}
		if called {
			t.Fatal("fn was called without a membership")
		}
	})
}

// TestChangeMembershipSerialisesOwnerChanges races two demotions (and two
// removals) of the two owners of an organization, with the last-owner rule
// of the service in fn. fn holds the lock a little while so that an
// implementation that did not serialise would let both read two owners.
func TestChangeMembershipSerialisesOwnerChanges(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a, b := orgUser(t, st, "a@example.com"), orgUser(t, st, "b@example.com")
		rule := func(remove bool) func(m *org.Membership, owners int) error {
			return func(m *org.Membership, owners int) error {
				time.Sleep(20 * time.Millisecond)
				if m.Role == org.RoleOwner && owners == 0 {
					return org.ErrLastOwner
				}
				if remove {
					m.IsActive = false
				} else {
					m.Role = org.RoleMember
				}
				return nil
			}
		}
		for i := range 6 {
			remove := i%2 == 1
			o := orgCreate(t, st, orgNew(fmt.Sprintf("race-%d", i), orgT0), &a)
			orgAdd(t, st, o.ID, b.ID, org.RoleOwner, orgT0)
			start := make(chan struct{})
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for j, u := range []user.User{a, b} {
				wg.Go(func() {
					<-start
					_, errs[j] = st.ChangeMembership(ctx, o.ID, u.ID, orgT0.Add(time.Hour), rule(remove))
				})
			}
			close(start)
			wg.Wait()
			ok, last := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, org.ErrLastOwner):
					last++
				default:
					t.Errorf("round %d: unexpected error %v", i, err)
				}
			}
			if ok != 1 || last != 1 {
				t.Fatalf("round %d (remove=%v): %d succeeded, %d refused as last owner; want 1 and 1 (%v)", i, remove, ok, last, errs)
			}
			if n := orgCount(t, st, `SELECT COUNT(*) FROM user_organizations WHERE organization_id = $1 AND role = 'owner' AND is_active = TRUE`, o.ID); n != 1 {
				t.Fatalf("round %d: %d active owners, want 1", i, n)
			}
		}
	})
}

func TestAcceptInvitationConsumesOnce(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		owner := orgUser(t, st, "owner@example.com")
		o := orgCreate(t, st, orgNew("invites", orgT0), &owner)
		invitee := orgUser(t, st, "invitee@example.com")
		inv, secret := orgInvite(t, st, o.ID, invitee.Email, org.RoleAdmin, orgT0, orgT0.Add(7*24*time.Hour))
		hash := token.HashSecret(secret)

		got, err := st.InvitationByTokenHash(ctx, hash)
		if err != nil || got.ID != inv.ID || got.Email != invitee.Email || got.Role != org.RoleAdmin || got.TokenHash != hash ||
			got.AcceptedAt != nil || got.RevokedAt != nil || !got.ExpiresAt.Equal(inv.ExpiresAt) {
			t.Fatalf("by hash: %+v, %v", got, err)
		}
		if _, err := st.InvitationByTokenHash(ctx, token.HashSecret("unknown")); !errors.Is(err, org.ErrInviteInvalid) {
			t.Fatalf("unknown hash: %v", err)
		}

		const n = 8
		now := orgT0.Add(time.Hour)
		start := make(chan struct{})
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				_, errs[i] = st.AcceptInvitation(ctx, hash, invitee.ID, now)
			})
		}
		close(start)
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, org.ErrInviteInvalid):
				t.Errorf("unexpected error: %v", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d of %d concurrent acceptances succeeded, want exactly 1 (%v)", wins, n, errs)
		}
		m := orgMembership(t, st, o.ID, invitee.ID)
		if !m.IsActive || m.Role != org.RoleAdmin || !m.CreatedAt.Equal(now) {
			t.Fatalf("membership %+v", m)
		}
		got, _ = st.InvitationByTokenHash(ctx, hash)
		if got.AcceptedAt == nil || !got.AcceptedAt.Equal(now) || got.AcceptedBy == nil || *got.AcceptedBy != invitee.ID {
			t.Fatalf("accepted invitation %+v", got)
		}
		if _, err := st.AcceptInvitation(ctx, hash, invitee.ID, now); !errors.Is(err, org.ErrInviteInvalid) {
			t.Fatalf("later acceptance: %v", err)
		}
	})
}

func TestAcceptInvitationRefusalsAndMemberships(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		owner := orgUser(t, st, "owner@example.com")
		o := orgCreate(t, st, orgNew("acc", orgT0), &owner)
		u := orgUser(t, st, "u@example.com")
		exp := orgT0.Add(24 * time.Hour)

		// Expired: refused at and after expires_at, nothing changes.
		_, expired := orgInvite(t, st, o.ID, u.Email, org.RoleMember, orgT0, exp)
		for _, now := range []time.Time{exp, exp.Add(time.Second)} {
			if _, err := st.AcceptInvitation(ctx, token.HashSecret(expired), u.ID, now); !errors.Is(err, org.ErrInviteInvalid) {
				t.Fatalf("expired at %v: %v", now, err)
			}
		}
		// Revoked: refused.
		rev, revoked := orgInvite(t, st, o.ID, u.Email, org.RoleMember, orgT0, exp)
		if err := st.RevokeInvitation(ctx, o.ID, rev.ID, orgT0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.AcceptInvitation(ctx, token.HashSecret(revoked), u.ID, orgT0.Add(time.Hour)); !errors.Is(err, org.ErrInviteInvalid) {
			t.Fatalf("revoked: %v", err)
		}
		if _, err := st.Membership(ctx, o.ID, u.ID); !errors.Is(err, org.ErrMembershipGone) {
			t.Fatalf("a refused acceptance created a membership: %v", err)
		}
		if n := orgCount(t, st, `SELECT COUNT(*) FROM organization_invitations WHERE accepted_at IS NOT NULL`); n != 0 {
			t.Fatalf("%d invitations marked accepted", n)
		}

		// An active member keeps their role.
		orgAdd(t, st, o.ID, u.ID, org.RoleMember, orgT0)
		_, up := orgInvite(t, st, o.ID, u.Email, org.RoleAdmin, orgT0, exp)
		if m, err := st.AcceptInvitation(ctx, token.HashSecret(up), u.ID, orgT0.Add(time.Hour)); err != nil || m.Role != org.RoleMember || !m.IsActive {
			t.Fatalf("accept as active member: %+v, %v", m, err)
		}
		// A removed member is re-added with the invited role, join date kept.
		orgRemove(t, st, o.ID, u.ID, orgT0.Add(2*time.Hour))
		_, back := orgInvite(t, st, o.ID, u.Email, org.RoleGuest, orgT0, exp)
		m, err := st.AcceptInvitation(ctx, token.HashSecret(back), u.ID, orgT0.Add(3*time.Hour))
		if err != nil || m.Role != org.RoleGuest || !m.IsActive || !m.CreatedAt.Equal(orgT0) {
			t.Fatalf("accept as removed member: %+v, %v", m, err)
		}
	})
}

func TestInvitationsListAndRevoke(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		owner := orgUser(t, st, "owner@example.com")
		o := orgCreate(t, st, orgNew("one", orgT0), &owner)
		other := orgCreate(t, st, orgNew("two", orgT0), &owner)
		exp := orgT0.Add(24 * time.Hour)
		first, _ := orgInvite(t, st, o.ID, "x@example.com", org.RoleMember, orgT0, exp)
		second, _ := orgInvite(t, st, o.ID, "y@example.com", org.RoleGuest, orgT0.Add(time.Minute), exp)
		foreign, _ := orgInvite(t, st, other.ID, "z@example.com", org.RoleGuest, orgT0, exp)

		list, err := st.Invitations(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, i := range list {
			got = append(got, i.ID)
		}
		if want := []string{second.ID, first.ID}; !slices.Equal(got, want) {
			t.Fatalf("invitations %v, want newest first %v", got, want)
		}
		if list, err := st.Invitations(ctx, user.NewID()); err != nil || list == nil || len(list) != 0 {
			t.Fatalf("invitations of a missing organization: %v, %v (want an empty, non-nil list)", list, err)
		}

		// Revoking through another organization is not found.
		if err := st.RevokeInvitation(ctx, o.ID, foreign.ID, orgT0); !errors.Is(err, org.ErrInviteNotFound) {
			t.Fatalf("revoke via another organization: %v", err)
		}
		revAt := orgT0.Add(time.Hour)
		if err := st.RevokeInvitation(ctx, o.ID, first.ID, revAt); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeInvitation(ctx, o.ID, first.ID, revAt.Add(time.Hour)); !errors.Is(err, org.ErrInviteNotFound) {
			t.Fatalf("second revocation: %v", err)
		}
		list, _ = st.Invitations(ctx, o.ID)
		if list[1].RevokedAt == nil || !list[1].RevokedAt.Equal(revAt) {
			t.Fatalf("revoked_at %v, want %v (kept from the first revocation)", list[1].RevokedAt, revAt)
		}
		if err := st.RevokeInvitation(ctx, o.ID, user.NewID(), orgT0); !errors.Is(err, org.ErrInviteNotFound) {
			t.Fatalf("unknown invitation: %v", err)
		}
		// An accepted invitation can no longer be revoked.
		u := orgUser(t, st, "y@example.com")
		_, secret := orgInvite(t, st, o.ID, u.Email, org.RoleMember, orgT0.Add(2*time.Minute), exp)
		accepted, _ := st.InvitationByTokenHash(ctx, token.HashSecret(secret))
		if _, err := st.AcceptInvitation(ctx, token.HashSecret(secret), u.ID, orgT0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := st.RevokeInvitation(ctx, o.ID, accepted.ID, orgT0.Add(2*time.Hour)); !errors.Is(err, org.ErrInviteNotFound) {
			t.Fatalf("revoking an accepted invitation: %v", err)
		}
		// An invitation to a missing organization is refused.
		bad := org.Invitation{ID: user.NewID(), OrganizationID: user.NewID(), Email: "q@example.com", Role: org.RoleMember,
			TokenHash: token.HashSecret("q"), ExpiresAt: exp, CreatedAt: orgT0}
		if err := st.CreateInvitation(ctx, bad); err == nil {
			t.Fatal("invitation to a missing organization stored")
		}
	})
}

func TestDeleteOrganizationCascades(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a, b := orgUser(t, st, "a@example.com"), orgUser(t, st, "b@example.com")
		doomed := orgCreate(t, st, orgNew("doomed", orgT0), &a)
		kept := orgCreate(t, st, orgNew("kept", orgT0), &a)
		orgAdd(t, st, doomed.ID, b.ID, org.RoleMember, orgT0)
		orgAdd(t, st, kept.ID, b.ID, org.RoleMember, orgT0)
		orgInvite(t, st, doomed.ID, "x@example.com", org.RoleMember, orgT0, orgT0.Add(time.Hour))
		orgInvite(t, st, kept.ID, "x@example.com", org.RoleMember, orgT0, orgT0.Add(time.Hour))

		if err := st.DeleteOrganization(ctx, doomed.ID); err != nil {
			t.Fatal(err)
		}
		for table, col := range map[string]string{"organizations": "id", "user_organizations": "organization_id", "organization_invitations": "organization_id"} {
			if n := orgCount(t, st, `SELECT COUNT(*) FROM `+table+` WHERE `+col+` = $1`, doomed.ID); n != 0 {
				t.Errorf("%s: %d rows of the deleted organization left", table, n)
			}
			if n := orgCount(t, st, `SELECT COUNT(*) FROM `+table+` WHERE `+col+` = $1`, kept.ID); n == 0 {
				t.Errorf("%s: rows of another organization were deleted", table)
			}
		}
		if n := orgCount(t, st, `SELECT COUNT(*) FROM users`); n != 2 {
			t.Errorf("%d users after deleting an organization, want 2", n)
		}
		if err := st.DeleteOrganization(ctx, doomed.ID); !errors.Is(err, org.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func TestPurgeInvitations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		owner := orgUser(t, st, "owner@example.com")
		o := orgCreate(t, st, orgNew("purge", orgT0), &owner)
		cutoff := orgT0.Add(48 * time.Hour)
		old1, _ := orgInvite(t, st, o.ID, "a@example.com", org.RoleMember, orgT0, cutoff.Add(-time.Hour))
		old2, _ := orgInvite(t, st, o.ID, "b@example.com", org.RoleMember, orgT0, cutoff.Add(-time.Microsecond))
		atCutoff, _ := orgInvite(t, st, o.ID, "c@example.com", org.RoleMember, orgT0, cutoff)
		fresh, _ := orgInvite(t, st, o.ID, "d@example.com", org.RoleMember, orgT0, cutoff.Add(time.Hour))

		n, err := st.PurgeInvitations(ctx, cutoff)
		if err != nil || n != 2 {
			t.Fatalf("purged %d (%v), want 2", n, err)
		}
		list, _ := st.Invitations(ctx, o.ID)
		var left []string
		for _, i := range list {
			left = append(left, i.ID)
		}
		slices.Sort(left)
		want := []string{atCutoff.ID, fresh.ID}
		slices.Sort(want)
		if !slices.Equal(left, want) {
			t.Fatalf("left %v, want %v (purged %s %s)", left, want, old1.ID, old2.ID)
		}
		if n, err := st.PurgeInvitations(ctx, cutoff); err != nil || n != 0 {
			t.Fatalf("second purge: %d, %v", n, err)
		}
	})
}

func TestOrganizationsOfUserMembersAndCounts(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		owner := orgUser(t, st, "owner@example.com")
		u := orgUser(t, st, "u@example.com")
		gone := orgUser(t, st, "gone@example.com")
		o1 := orgCreate(t, st, orgNew("o1", orgT0), &owner)
		o2 := orgCreate(t, st, orgNew("o2", orgT0), &owner)
		o3 := orgCreate(t, st, orgNew("o3", orgT0), &owner)
		inactive := orgNew("o4", orgT0)
		inactive.IsActive = false
		o4 := orgCreate(t, st, inactive, &owner)
		orgAdd(t, st, o1.ID, u.ID, org.RoleMember, orgT0.Add(1*time.Minute))
		orgAdd(t, st, o2.ID, u.ID, org.RoleAdmin, orgT0.Add(3*time.Minute))
		orgAdd(t, st, o3.ID, u.ID, org.RoleGuest, orgT0.Add(2*time.Minute))
		orgAdd(t, st, o4.ID, u.ID, org.RoleGuest, orgT0.Add(4*time.Minute))
		orgRemove(t, st, o3.ID, u.ID, orgT0.Add(time.Hour))
		orgAdd(t, st, o1.ID, gone.ID, org.RoleMember, orgT0.Add(5*time.Minute))

		mine, err := st.OrganizationsOfUser(ctx, u.ID, true)
		if err != nil {
			t.Fatal(err)
		}
		// Most recently joined first; inactive organizations are listed too.
		if got, want := orgIDs(mine), []string{o4.ID, o2.ID, o1.ID}; !slices.Equal(got, want) {
			t.Fatalf("active memberships %v, want %v", got, want)
		}
		counts := map[string]int{}
		for _, o := range mine {
			counts[o.Slug] = o.MemberCount
		}
		if want := map[string]int{"o1": 3, "o2": 2, "o4": 2}; !reflect.DeepEqual(counts, want) {
			t.Fatalf("member counts %v, want %v", counts, want)
		}
		removed, err := st.OrganizationsOfUser(ctx, u.ID, false)
		if err != nil || !slices.Equal(orgIDs(removed), []string{o3.ID}) || removed[0].MemberCount != 1 {
			t.Fatalf("removed memberships %v (%v)", removed, err)
		}
		if none, err := st.OrganizationsOfUser(ctx, user.NewID(), true); err != nil || none == nil || len(none) != 0 {
			t.Fatalf("organizations of a stranger: %v, %v (want empty, non-nil)", none, err)
		}

		// The same organizations with the user's membership, in one query.
		affs, err := st.AffiliationsOfUser(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantRoles := []org.Role{org.RoleGuest, org.RoleAdmin, org.RoleMember}
		wantJoined := []time.Time{orgT0.Add(4 * time.Minute), orgT0.Add(3 * time.Minute), orgT0.Add(time.Minute)}
		if len(affs) != len(mine) {
			t.Fatalf("%d affiliations, want %d", len(affs), len(mine))
		}
		for i, a := range affs {
			if !reflect.DeepEqual(a.Organization, mine[i]) {
				t.Errorf("affiliation %d organization %+v, want %+v", i, a.Organization, mine[i])
			}
			m := a.Membership
			if m.UserID != u.ID || m.OrganizationID != mine[i].ID || m.Role != wantRoles[i] || !m.IsActive || !m.CreatedAt.Equal(wantJoined[i]) {
				t.Errorf("affiliation %d membership %+v, want role %s joined %v", i, m, wantRoles[i], wantJoined[i])
			}
		}
		if none, err := st.AffiliationsOfUser(ctx, user.NewID()); err != nil || none == nil || len(none) != 0 {
			t.Fatalf("affiliations of a stranger: %v, %v (want empty, non-nil)", none, err)
		}

		// Members: newest first, paged, with profile; total counts all.
		list, total, err := st.Members(ctx, o1.ID, true, 0, 2)
		if err != nil || total != 3 || len(list) != 2 || list[0].UserID != gone.ID || list[1].UserID != u.ID {
			t.Fatalf("members page 1: %+v total %d (%v)", list, total, err)
		}
		if list[0].Email != "gone@example.com" || list[0].FirstName != "Jane" || list[0].LastName == nil || *list[0].LastName != "Doe" ||
			list[0].Role != org.RoleMember || !list[0].IsActive {
			t.Fatalf("member profile %+v", list[0])
		}
		list, total, _ = st.Members(ctx, o1.ID, true, 2, 2)
		if total != 3 || len(list) != 1 || list[0].UserID != owner.ID || list[0].Role != org.RoleOwner {
			t.Fatalf("members page 2: %+v total %d", list, total)
		}
		// A soft-deleted user is neither listed nor counted anywhere.
		if err := st.SoftDeleteUser(ctx, gone.ID, orgT0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		list, total, _ = st.Members(ctx, o1.ID, true, 0, 10)
		if total != 2 || len(list) != 2 {
			t.Fatalf("members after deleting one: %d %+v", total, list)
		}
		if list, total, _ := st.Members(ctx, o1.ID, false, 0, 10); total != 0 || len(list) != 0 {
			t.Fatalf("removed members list the deleted user: %+v", list)
		}
		if got, _ := st.OrganizationByID(ctx, o1.ID); got.MemberCount != 2 {
			t.Fatalf("member_count %d after deleting a member, want 2", got.MemberCount)
		}
		// Removed members list.
		list, total, _ = st.Members(ctx, o3.ID, false, 0, 10)
		if total != 1 || len(list) != 1 || list[0].UserID != u.ID || list[0].IsActive {
			t.Fatalf("removed members of o3: %+v", list)
		}
		if m, err := st.Member(ctx, o3.ID, u.ID); err != nil || m.IsActive || m.Email != u.Email {
			t.Fatalf("member: %+v, %v", m, err)
		}
		if _, err := st.Member(ctx, o3.ID, gone.ID); !errors.Is(err, org.ErrMembershipGone) {
			t.Fatalf("member of a non-member: %v", err)
		}
	})
}

func TestListOrganizationsSearchFilterAndPaging(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		mk := func(i int, name, slug string, desc *string, active bool) org.Organization {
			o := orgNew(slug, orgT0.Add(time.Duration(i)*time.Minute))
			o.Name, o.Description, o.IsActive = name, desc, active
			return orgCreate(t, st, o, nil)
		}
		ptr := func(s string) *string { return &s }
		pct := mk(1, "100% Pure", "pure", nil, true)
		under := mk(2, "snake_case Ltd", "snake", nil, true)
		quote := mk(3, `O'Brien "Quoted"`, "obrien", nil, true)
		back := mk(4, `Back\slash`, "backslash", nil, false)
		emile := mk(5, "Émile Zola", "emile", nil, true)
		plain := mk(6, "Plain", "plain", ptr("Sells 50%_off deals"), true)
		slugOnly := mk(7, "Other", "findme-slug", nil, true)
		all := []org.Organization{slugOnly, plain, emile, back, quote, under, pct} // newest first

		search := func(q string) []string {
			t.Helper()
			list, total, err := st.ListOrganizations(ctx, org.ListQuery{Limit: 100, Search: q})
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			if total != len(list) {
				t.Fatalf("search %q: total %d, %d listed", q, total, len(list))
			}
			return orgIDs(list)
		}
		cases := []struct {
			q    string
			want []org.Organization
		}{
			{"%", []org.Organization{plain, pct}},
			{"_", []org.Organization{plain, under}},
			{"%_", []org.Organization{plain}},
			{"'", []org.Organization{quote}},
			{`"quoted"`, []org.Organization{quote}},
			{`\`, []org.Organization{back}},
			{`K\S`, []org.Organization{back}},
			{"émile", []org.Organization{emile}},
			{"ÉMILE", []org.Organization{emile}},
			{"ZOLA", []org.Organization{emile}},
			{"findme", []org.Organization{slugOnly}},
			{"DEALS", []org.Organization{plain}},
			{"nothing-matches", nil},
			{"p_re", nil},
			{"1_0", nil},
		}
		for _, c := range cases {
			if got, want := search(c.q), orgIDs(c.want); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("search %q: %v, want %v", c.q, got, want)
			}
		}

		if got := search(""); !slices.Equal(got, orgIDs(all)) {
			t.Fatalf("no search: %v, want newest first %v", got, orgIDs(all))
		}
		f := false
		list, total, err := st.ListOrganizations(ctx, org.ListQuery{Limit: 10, IsActive: &f})
		if err != nil || total != 1 || !slices.Equal(orgIDs(list), []string{back.ID}) {
			t.Fatalf("inactive filter: %v total %d (%v)", orgIDs(list), total, err)
		}
		tr := true
		list, total, _ = st.ListOrganizations(ctx, org.ListQuery{Limit: 2, Offset: 2, IsActive: &tr})
		if total != 6 || !slices.Equal(orgIDs(list), []string{emile.ID, quote.ID}) {
			t.Fatalf("active page 2: %v total %d", orgIDs(list), total)
		}
		list, total, _ = st.ListOrganizations(ctx, org.ListQuery{Limit: 5, Offset: 100})
		if total != 7 || len(list) != 0 || list == nil {
			t.Fatalf("past the end: %v total %d", list, total)
		}
	})
}

// ownerCount is the number of active owner memberships of orgID.
func ownerCount(t *testing.T, st *sqlstore.Store, orgID string) int {
	t.Helper()
	return orgCount(t, st, `SELECT COUNT(*) FROM user_organizations WHERE organization_id = $1 AND role = 'owner' AND is_active = TRUE`, orgID)
}

func TestSoftDeleteKeepsAnOwner(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		later := orgT0.Add(time.Hour)
		a, b := orgUser(t, st, "a@example.com"), orgUser(t, st, "b@example.com")
		solo := orgCreate(t, st, orgNew("solo", orgT0), &a)
		shared := orgCreate(t, st, orgNew("shared", orgT0), &a)
		orgAdd(t, st, shared.ID, b.ID, org.RoleOwner, orgT0)
		orgAdd(t, st, solo.ID, b.ID, org.RoleAdmin, orgT0)

		err := st.SoftDeleteUser(ctx, a.ID, later)
		if !errors.Is(err, user.ErrLastOwner) {
			t.Fatalf("deleting the only owner of %q: %v, want ErrLastOwner", solo.Name, err)
		}
		if !strings.Contains(err.Error(), solo.Name) {
			t.Errorf("message %q does not name the organization %q", err, solo.Name)
		}
		if active, deleted := userState(t, st, a.ID); !active || deleted {
			t.Fatalf("refused delete changed the user: active=%v deleted=%v", active, deleted)
		}
		if ownerCount(t, st, solo.ID) != 1 || ownerCount(t, st, shared.ID) != 2 {
			t.Fatal("refused delete changed the owners")
		}

		// With a second owner everywhere, the delete goes through and ends
		// every membership of the deleted user.
		if _, err := st.ChangeMembership(ctx, solo.ID, b.ID, later, func(m *org.Membership, _ int) error {
			m.Role = org.RoleOwner
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := st.SoftDeleteUser(ctx, a.ID, later); err != nil {
			t.Fatalf("delete with another owner: %v", err)
		}
		for _, o := range []org.Organization{solo, shared} {
			if n := ownerCount(t, st, o.ID); n != 1 {
				t.Errorf("%s: %d active owners after the delete, want 1 (b)", o.Slug, n)
			}
			if orgMembership(t, st, o.ID, a.ID).IsActive {
				t.Errorf("%s: the deleted user is still an active member", o.Slug)
			}
		}
		// b is now the last owner of both.
		if err := st.SoftDeleteUser(ctx, b.ID, later); !errors.Is(err, user.ErrLastOwner) {
			t.Fatalf("deleting the remaining owner: %v, want ErrLastOwner", err)
		}
	})
}

func TestConcurrentOwnerDeletesKeepAnOwner(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		later := orgT0.Add(time.Hour)
		for i := range 4 {
			a := orgUser(t, st, fmt.Sprintf("a%d@example.com", i))
			b := orgUser(t, st, fmt.Sprintf("b%d@example.com", i))
			o := orgCreate(t, st, orgNew(fmt.Sprintf("pair-%d", i), orgT0), &a)
			orgAdd(t, st, o.ID, b.ID, org.RoleOwner, orgT0)
			// Rounds 0 and 1 delete both owners at once; rounds 2 and 3
			// delete one while the other is demoted.
			start := make(chan struct{})
			errs := make([]error, 2)
			var wg sync.WaitGroup
			wg.Go(func() {
				<-start
				errs[0] = st.SoftDeleteUser(ctx, a.ID, later)
			})
			wg.Go(func() {
				<-start
				if i < 2 {
					errs[1] = st.SoftDeleteUser(ctx, b.ID, later)
					return
				}
				_, errs[1] = st.ChangeMembership(ctx, o.ID, b.ID, later, func(m *org.Membership, owners int) error {
					if owners == 0 {
						return org.ErrLastOwner
					}
					m.Role = org.RoleMember
					return nil
				})
			})
			close(start)
			wg.Wait()
			ok, refused := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, user.ErrLastOwner), errors.Is(err, org.ErrLastOwner):
					refused++
				default:
					t.Errorf("round %d: unexpected error %v", i, err)
				}
			}
			if ok != 1 || refused != 1 {
				t.Fatalf("round %d: %d succeeded, %d refused; want 1 and 1 (%v)", i, ok, refused, errs)
			}
			if n := ownerCount(t, st, o.ID); n != 1 {
				t.Fatalf("round %d: %d active owners, want 1", i, n)
			}
		}
	})
}

func TestBulkDeleteSkipsLastOwner(t *testing.T) {
	forEachEngine(t, func(t *testing.T, st *sqlstore.Store) {
		ctx := context.Background()
		a, b := orgUser(t, st, "a@example.com"), orgUser(t, st, "b@example.com")
		c := orgUser(t, st, "c@example.com")
		o := orgCreate(t, st, orgNew("pair", orgT0), &a)
		orgAdd(t, st, o.ID, b.ID, org.RoleOwner, orgT0)
		done, err := st.BulkUpdateUsers(ctx, user.BulkDelete, []string{a.ID, b.ID, c.ID}, "", orgT0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(done) != 2 || !slices.Contains(done, c.ID) {
			t.Fatalf("deleted %v; want c and one of the two owners", done)
		}
		if n := ownerCount(t, st, o.ID); n != 1 {
			t.Fatalf("%d active owners after the bulk delete, want 1", n)
		}
		for _, u := range []user.User{a, b} {
			_, deleted := userState(t, st, u.ID)
			if deleted != slices.Contains(done, u.ID) {
				t.Errorf("%s: deleted=%v but reported done=%v", u.Email, deleted, slices.Contains(done, u.ID))
			}
		}
	})
}
