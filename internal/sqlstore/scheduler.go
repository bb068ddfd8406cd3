package sqlstore

import (
	"context"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/scheduler"
)

// ClaimRun records in app_settings (key "run:<name>", value the last
// claimed period) that the run of name for period has started, and reports
// whether this caller claimed it. One statement, so of several instances
// claiming the same period at once exactly one wins, on both engines: the
// first insert or the first update to the later period; the others find
// the period already stored and change nothing. Periods compare as
// strings (ISO dates do). A row lock held only for this statement, not an
// advisory lock held for the run, because the claim must outlive the run:
// an instance that fires seconds after another one finished must not run
// again.
func (s *Store) ClaimRun(ctx context.Context, name, period string, now time.Time) (bool, error) {
	res, err := s.q.ExecContext(ctx, `INSERT INTO app_settings (key, value, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE app_settings.value < excluded.value`,
		"run:"+name, period, utc(now))
	if err != nil {
		return false, wrap("claim run", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, wrap("claim run", err)
	}
	return n == 1, nil
}

var _ scheduler.Runs = (*Store)(nil)
