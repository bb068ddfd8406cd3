// Package scheduler runs the periodic maintenance jobs: once a day at a
// fixed UTC hour, and on demand (RunNow) for tests and operators. It is not
// started in tests unless a test asks.
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

// Scheduler runs jobs daily.
type Scheduler struct {
	jobs   []Job
	logger *slog.Logger
	hour   int // UTC hour of the daily run
	Now    func() time.Time
}

// New returns a Scheduler running jobs every day at hour (UTC).
func New(logger *slog.Logger, hour int, jobs ...Job) *Scheduler {
	return &Scheduler{jobs: jobs, logger: logger, hour: hour, Now: time.Now}
}

// Run blocks until ctx is done, running every job once a day.
func (s *Scheduler) Run(ctx context.Context) {
	for {
		wait := s.untilNext(s.Now())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
			if err := s.RunNow(ctx); err != nil {
				s.logger.Error("scheduled maintenance failed", "err", err)
			}
		}
	}
}

// untilNext is the time from now to the next run.
func (s *Scheduler) untilNext(now time.Time) time.Duration {
	now = now.UTC()
	next := time.Date(now.Year(), now.Month(), now.Day(), s.hour, 0, 0, 0, time.UTC)
	if !next.After(now) {
		next = next.Add(24 * time.Hour)
	}
	return next.Sub(now)
}

// RunNow runs every job once, logs what each did, and returns the joined
// errors of the failed ones (the others still run).
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
}

// SessionRetention is how long expired or revoked sessions are kept (for
// the admin's session list) before they are deleted.
const SessionRetention = 30 * 24 * time.Hour

// CleanupJobs returns the jobs that delete expired rows.
func CleanupJobs(st CleanupStore) []Job {
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
			return st.PurgeProviderGrants(ctx, now.Add(-24*time.Hour))
		}},
	}
}
