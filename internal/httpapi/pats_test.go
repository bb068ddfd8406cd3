package httpapi_test

// End-to-end tests of personal access tokens (issue 9, docs/FEATURE_EXAMPLE.md),
// on every engine: the management endpoints, authentication with a token
// on /api/v1 within its scopes, the ways a token stops working, last use,
// and the daily clean-up.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/apitest"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// patInsert stores a token row directly (test setup for states the API
// cannot reach quickly, such as a token that expired 40 days ago).
func patInsert(e *apitest.Env, userID string, created time.Time, expires, revoked *time.Time) string {
	e.T.Helper()
	id := user.NewID()
	e.Exec(`INSERT INTO personal_access_tokens (id, user_id, name, token_hash, prefix, scopes, expires_at, last_used_at, revoked_at, created_at)
		VALUES ($1, $2, 'seeded', $3, 'gatehouse_pat_seeded00', 'read:users', $4, NULL, $5, $6)`,
		id, userID, id+id[:28], expires, revoked, created)
	return id
}

// The daily job deletes tokens that expired, or were revoked, more than 30
// days ago, and nothing else.
func TestPATScheduledPurge(t *testing.T) {
	apitest.Each(t, func(t *testing.T, e *apitest.Env) {
		u := e.User("owner@example.com")
		now := time.Now().UTC()
		old, recent := now.Add(-40*24*time.Hour), now.Add(-20*24*time.Hour)
		later := now.Add(24 * time.Hour)
		gone := []string{
			patInsert(e, u.UserID, old.Add(-time.Hour), &old, nil),
			patInsert(e, u.UserID, old.Add(-time.Hour), nil, &old),
		}
		kept := []string{
			patInsert(e, u.UserID, old, &recent, nil),
			patInsert(e, u.UserID, old, nil, &recent),
			patInsert(e, u.UserID, old, nil, nil),
			patInsert(e, u.UserID, old, &later, nil),
		}
		if err := e.App.Scheduler.RunNow(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, id := range gone {
			if e.Count(`SELECT COUNT(*) FROM personal_access_tokens WHERE id = $1`, id) != 0 {
				t.Errorf("token %s, expired or revoked 40 days ago, survived", id)
			}
		}
		for _, id := range kept {
			if e.Count(`SELECT COUNT(*) FROM personal_access_tokens WHERE id = $1`, id) != 1 {
				t.Errorf("token %s was purged", id)
			}
		}
		if !strings.Contains(e.Logs.String(), "job=purge-personal-access-tokens affected=2") {
			t.Errorf("the job's result is not logged:\n%s", e.Logs.String())
		}
	})
}
