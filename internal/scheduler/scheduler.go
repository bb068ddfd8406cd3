// Package scheduler runs the periodic maintenance jobs: once a day at a
// fixed UTC hour, and on demand (RunNow) for tests and operators. It is not
// started in tests unless a test asks. When several instances share one
// database, each day's run is claimed in the database first, so only one of
// them does the work (RunPeriod).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Job is one named piece of maintenance.
type Job struct {
	Name string
	Run  func(ctx context.Context, now time.Time) (affected int, err error)
}

// Runs records which daily runs have been claimed, in the database every
// instance shares.
type Runs interface {
	// ClaimRun records that the run of name for period has started and
	// reports whether this caller is the first to claim it. Periods compare
	// as strings: a claim succeeds only for a period later than the last
	// claimed one.
	ClaimRun(ctx context.Context, name, period string, now time.Time) (bool, error)
}

// Scheduler runs jobs daily.
type Scheduler struct {
	jobs   []Job
	runs   Runs // nil: every call runs (a single instance, tests)
	logger *slog.Logger
	hour   int // UTC hour of the daily run
	Now    func() time.Time
}

// runName is the name daily runs are claimed under.
const runName = "daily-maintenance"

// New returns a Scheduler running jobs every day at hour (UTC), claiming
// each day's run in runs first (nil runs: no claim, every instance runs).
func New(logger *slog.Logger, hour int, runs Runs, jobs ...Job) *Scheduler {
	return &Scheduler{jobs: jobs, runs: runs, logger: logger, hour: hour, Now: time.Now}
}

// Run blocks until ctx is done, running the jobs once a day: at the hour
// every instance fires, and the first to claim the day's run does it.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		now := s.Now()
		slot := s.nextRun(now)
		t := time.NewTimer(slot.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			if _, err := s.RunPeriod(ctx, slot); err != nil {
				s.logger.Error("scheduled maintenance failed", "err", err)
			}
		}
	}
}

// nextRun is the first run time strictly after now.
func (s *Scheduler) nextRun(now time.Time) time.Time {
	now = now.UTC()
	next := time.Date(now.Year(), now.Month(), now.Day(), s.hour, 0, 0, 0, time.UTC)
	if !next.After(now) {
		next = next.Add(24 * time.Hour)
	}
	return next
}

// untilNext is the time from now to the next run.
func (s *Scheduler) untilNext(now time.Time) time.Duration {
	return s.nextRun(now).Sub(now)
}

// RunPeriod runs every job for the daily run scheduled at slot, unless that
// day's run was already claimed (by this or another instance), and reports
// whether it ran. The period is the slot's UTC date, not the time the timer
// fired, so an instance that fires a little late, even past midnight, still
// names the same run. Claiming before running makes a run at most once per
// day: if the claiming instance dies halfway, the rest waits for the next
// day, which is fine for clean-up jobs that catch up then.
func (s *Scheduler) RunPeriod(ctx context.Context, slot time.Time) (bool, error) {
	if s.runs != nil {
		period := slot.UTC().Format(time.DateOnly)
		claimed, err := s.runs.ClaimRun(ctx, runName, period, s.Now().UTC())
		if err != nil {
			return false, fmt.Errorf("claim the %s run: %w", period, err)
		}
		if !claimed {
			s.logger.Info("scheduled maintenance already run by another instance", "period", period)
			return false, nil
		}
		s.logger.Info("running scheduled maintenance", "period", period)
	}
	return true, s.RunNow(ctx)
}

// RunNow runs every job once, whatever other instances did, logs what each
// did, and returns the joined errors of the failed ones (the others still
// run).
func (s *Scheduler) RunNow(ctx context.Context) error {
	var errs []error
	for _, j := range s.jobs {
		n, err := j.Run(ctx, s.Now().UTC())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", j.Name, err))
			continue
		}
		s.logger.Info("maintenance job done", "job", j.Name, "affected", n)
	}
	return errors.Join(errs...)
}

// CleanupStore is the storage the cleanup jobs need.
type CleanupStore interface {
	PurgeSessions(ctx context.Context, cutoff time.Time) (int, error)
	PurgeResetTokens(ctx context.Context, cutoff time.Time) (int, error)
	PurgeInvitations(ctx context.Context, cutoff time.Time) (int, error)
	PurgeOAuthStates(ctx context.Context, cutoff time.Time) (int, error)
	PurgeProviderGrants(ctx context.Context, cutoff time.Time) (int, error)
	PurgeConsents(ctx context.Context, cutoff, now time.Time) (int, error)
	PurgePATs(ctx context.Context, cutoff time.Time) (int, error)
}

// SessionRetention is how long expired or revoked sessions are kept (for
// the admin's session list) before they are deleted.
const SessionRetention = 30 * 24 * time.Hour

// CleanupJobs returns the jobs that delete expired rows; consents last
// granted more than consentTTL ago are among them (0: consents never expire).
func CleanupJobs(st CleanupStore, consentTTL time.Duration) []Job {
	return []Job{
		{Name: "purge-sessions", Run: func(ctx context.Context, now time.Time) (int, error) {
			return st.PurgeSessions(ctx, now.Add(-SessionRetention))
		}},
		{Name: "purge-reset-tokens", Run: func(ctx context.Context, now time.Time) (int, error) {
			return st.PurgeResetTokens(ctx, now)
		}},
		{Name: "purge-invitations", Run: func(ctx context.Context, now time.Time) (int, error) {
			return st.PurgeInvitations(ctx, now.Add(-SessionRetention))
		}},
		{Name: "purge-oauth-states", Run: func(ctx context.Context, now time.Time) (int, error) {
			return st.PurgeOAuthStates(ctx, now)
		}},
		{Name: "purge-provider-grants", Run: func(ctx context.Context, now time.Time) (int, error) {
			n, err := st.PurgeProviderGrants(ctx, now.Add(-24*time.Hour))
			if err != nil || consentTTL <= 0 {
				return n, err
			}
			m, err := st.PurgeConsents(ctx, now.Add(-consentTTL), now)
			return n + m, err
		}},
		// Personal access tokens stay listed to superusers for 30 days
		// after they expire or are revoked.
		{Name: "purge-personal-access-tokens", Run: func(ctx context.Context, now time.Time) (int, error) {
			return st.PurgePATs(ctx, now.Add(-SessionRetention))
		}},
	}
}
