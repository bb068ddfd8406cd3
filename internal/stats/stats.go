// Package stats computes the admin dashboard figures of reference §9 with
// SQL aggregates: user growth over 30 days, registrations over 14 days, the
// organizations with the most active members, and active/inactive counts.
// Soft-deleted users are never counted (fix 30).
package stats

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// Window sizes and list lengths of reference §9.
const (
	GrowthDays       = 30
	RegistrationDays = 14
	TopOrganizations = 6
)

// UserCounts are aggregates over live (not soft-deleted) users.
type UserCounts struct {
	// CreatedBefore[i] counts the users created before Boundaries[i];
	// ActiveCreatedBefore[i] those among them that are active now.
	CreatedBefore       []int
	ActiveCreatedBefore []int
	Active, Inactive    int
}

// OrgMembers is an organization and its number of active memberships.
type OrgMembers struct {
	ID      string
	Name    string
	Members int
}

// Store is what the statistics need from storage.
type Store interface {
	// UserCountsAt aggregates live users against each boundary in one query.
	UserCountsAt(ctx context.Context, boundaries []time.Time) (UserCounts, error)
	// TopOrganizations returns at most limit organizations with at least one
	// active membership of a live user, by that number descending, then by
	// name and id.
	TopOrganizations(ctx context.Context, limit int) ([]OrgMembers, error)
}

// Growth is the size of the user base at the end of a day.
type Growth struct {
	Date        time.Time // midnight UTC of the day
	TotalUsers  int       // users created before the end of the day
	ActiveUsers int       // those among them active now
}

// Registrations is the number of users created during a day.
type Registrations struct {
	Date  time.Time
	Count int
}

// Stats is the dashboard.
type Stats struct {
	UserGrowth               []Growth        // GrowthDays entries, oldest first, the last one today
	OrganizationDistribution []OrgMembers    // at most TopOrganizations
	RegistrationActivity     []Registrations // RegistrationDays entries, oldest first, the last one today
	Active, Inactive         int
}

// Service computes the statistics.
type Service struct {
	store Store
	Now   func() time.Time
}

// NewService returns a Service reading from store.
func NewService(store Store) *Service {
	return &Service{store: store, Now: time.Now}
}

// Compute returns the dashboard as of now (superusers only). Days are UTC
// calendar days.
func (s *Service) Compute(ctx context.Context, actor user.Actor) (Stats, error) {
	if !actor.IsSuperuser {
		return Stats{}, user.ErrNotAdmin
	}
	now := s.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	first := today.AddDate(0, 0, -(GrowthDays - 1))
	// boundaries[0] is the start of the first day, boundaries[i] the end of
	// day i-1 (= the start of day i).
	boundaries := make([]time.Time, GrowthDays+1)
	for i := range boundaries {
		boundaries[i] = first.AddDate(0, 0, i)
	}
	counts, err := s.store.UserCountsAt(ctx, boundaries)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	if len(counts.CreatedBefore) != len(boundaries) || len(counts.ActiveCreatedBefore) != len(boundaries) {
		return Stats{}, fmt.Errorf("stats: store returned %d counts for %d boundaries", len(counts.CreatedBefore), len(boundaries))
	}
	orgs, err := s.store.TopOrganizations(ctx, TopOrganizations)
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	out := Stats{
		UserGrowth:               make([]Growth, GrowthDays),
		OrganizationDistribution: orgs,
		RegistrationActivity:     make([]Registrations, RegistrationDays),
		Active:                   counts.Active,
		Inactive:                 counts.Inactive,
	}
	for d := range GrowthDays {
		out.UserGrowth[d] = Growth{Date: boundaries[d], TotalUsers: counts.CreatedBefore[d+1], ActiveUsers: counts.ActiveCreatedBefore[d+1]}
	}
	for i := range RegistrationDays {
		d := GrowthDays - RegistrationDays + i
		out.RegistrationActivity[i] = Registrations{Date: boundaries[d], Count: counts.CreatedBefore[d+1] - counts.CreatedBefore[d]}
	}
	if out.OrganizationDistribution == nil {
		out.OrganizationDistribution = []OrgMembers{}
	}
	return out, nil
}
