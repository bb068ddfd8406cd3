package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/social"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

// CreateOAuthState stores a social login in progress.
func (s *Store) CreateOAuthState(ctx context.Context, st social.State) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO oauth_states (id, state_hash, provider, code_verifier, nonce, redirect_uri, user_id, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		st.ID, st.Hash, st.Provider, nullStr(nonEmpty(st.Verifier)), nullStr(nonEmpty(st.Nonce)), st.RedirectURI,
		nullStr(st.UserID), utc(st.ExpiresAt), utc(st.CreatedAt))
	if isForeignKeyViolation(err) {
		return user.ErrNotFound
	}
	return wrap("create oauth state", err)
}

// ConsumeOAuthState deletes a state and returns it if it had not expired:
// of two callbacks with one state, one gets it.
func (s *Store) ConsumeOAuthState(ctx context.Context, hash string, now time.Time) (social.State, error) {
	var (
		st                      social.State
		verifier, nonce, userID sql.NullString
	)
	err := s.q.QueryRowContext(ctx, `DELETE FROM oauth_states WHERE state_hash = $1
		RETURNING id, state_hash, provider, code_verifier, nonce, redirect_uri, user_id, expires_at, created_at`, hash).
		Scan(&st.ID, &st.Hash, &st.Provider, &verifier, &nonce, &st.RedirectURI, &userID, &st.ExpiresAt, &st.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return social.State{}, social.ErrState
	}
	if err != nil {
		return social.State{}, wrap("consume oauth state", err)
	}
	st.Verifier, st.Nonce, st.UserID = verifier.String, nonce.String, strPtr(userID)
	st.ExpiresAt, st.CreatedAt = st.ExpiresAt.UTC(), st.CreatedAt.UTC()
	if !now.Before(st.ExpiresAt) {
		return social.State{}, social.ErrState
	}
	return st, nil
}

// PurgeOAuthStates deletes states that expired before cutoff.
func (s *Store) PurgeOAuthStates(ctx context.Context, cutoff time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM oauth_states WHERE expires_at < $1`, utc(cutoff))
	if err != nil {
		return 0, wrap("purge oauth states", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("purge oauth states", err)
}

const accountColumns = `id, user_id, provider, provider_user_id, provider_email, access_token, refresh_token, token_expires_at, created_at, updated_at`

func scanAccount(rs rowScanner) (social.Account, error) {
	var (
		a                      social.Account
		email, access, refresh sql.NullString
		expires                sql.NullTime
	)
	if err := rs.Scan(&a.ID, &a.UserID, &a.Provider, &a.ProviderUserID, &email, &access, &refresh, &expires, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return social.Account{}, err
	}
	a.ProviderEmail, a.AccessToken, a.RefreshToken = strPtr(email), access.String, refresh.String
	a.TokenExpiresAt = timePtr(expires)
	a.CreatedAt, a.UpdatedAt = a.CreatedAt.UTC(), a.UpdatedAt.UTC()
	return a, nil
}

// OAuthAccount returns the link of a provider identity, or social.ErrNoLink.
func (s *Store) OAuthAccount(ctx context.Context, provider, providerUserID string) (social.Account, error) {
	a, err := scanAccount(s.q.QueryRowContext(ctx, `SELECT `+accountColumns+` FROM oauth_accounts
		WHERE provider = $1 AND provider_user_id = $2`, provider, providerUserID))
	if errors.Is(err, sql.ErrNoRows) {
		return social.Account{}, social.ErrNoLink
	}
	return a, wrap("oauth account", err)
}

// OAuthAccountsOfUser lists a user's links, newest first.
func (s *Store) OAuthAccountsOfUser(ctx context.Context, userID string) ([]social.Account, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+accountColumns+` FROM oauth_accounts WHERE user_id = $1
		ORDER BY created_at DESC, id DESC`, userID)
	if err != nil {
		return nil, wrap("list oauth accounts", err)
	}
	defer rows.Close()
	out := []social.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, wrap("scan oauth account", err)
		}
		out = append(out, a)
	}
	return out, wrap("list oauth accounts", rows.Err())
}

// LinkOAuthAccount stores a link. Which uniqueness rule it would break is
// checked inside the transaction, so the caller gets a precise error.
func (s *Store) LinkOAuthAccount(ctx context.Context, a social.Account) error {
	return s.InTx(ctx, func(tx *Store) error { return tx.insertAccount(ctx, a) })
}

func (s *Store) insertAccount(ctx context.Context, a social.Account) error {
	// ON CONFLICT DO NOTHING rather than catching the unique violation: on
	// PostgreSQL a failed statement aborts the transaction, so the query
	// telling the two rules apart could not run after it.
	res, err := s.q.ExecContext(ctx, `INSERT INTO oauth_accounts (`+accountColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING`,
		a.ID, a.UserID, a.Provider, a.ProviderUserID, nullStr(a.ProviderEmail), nullStr(nonEmpty(a.AccessToken)),
		nullStr(nonEmpty(a.RefreshToken)), nullTime(a.TokenExpiresAt), utc(a.CreatedAt), utc(a.UpdatedAt))
	if isForeignKeyViolation(err) {
		return user.ErrNotFound
	}
	if err != nil {
		return wrap("link oauth account", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return wrap("link oauth account", err)
	}
	// One of the two rules holds (a concurrent link that won is visible to
	// this new statement): the identity is linked, or the user has a link
	// of this provider.
	var n int
	if err := s.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_accounts WHERE provider = $1 AND provider_user_id = $2`,
		a.Provider, a.ProviderUserID).Scan(&n); err != nil {
		return wrap("check oauth link", err)
	}
	if n > 0 {
		return social.ErrLinkedElsewhere
	}
	return social.ErrAlreadyLinked
}

// UpdateOAuthTokens stores fresh provider tokens of a link; an empty refresh
// token keeps the stored one (providers send one only sometimes).
func (s *Store) UpdateOAuthTokens(ctx context.Context, id, access, refresh string, expiry *time.Time, now time.Time) error {
	_, err := s.q.ExecContext(ctx, `UPDATE oauth_accounts SET access_token = $2,
		refresh_token = COALESCE($3, refresh_token), token_expires_at = $4, updated_at = $5 WHERE id = $1`,
		id, nullStr(nonEmpty(access)), nullStr(nonEmpty(refresh)), nullTime(expiry), utc(now))
	return wrap("update oauth tokens", err)
}

// CreateUserWithOAuthAccount creates a user and its first link together.
func (s *Store) CreateUserWithOAuthAccount(ctx context.Context, u user.User, a social.Account) error {
	return s.InTx(ctx, func(tx *Store) error {
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		return tx.insertAccount(ctx, a)
	})
}

// UnlinkOAuthAccount deletes a user's link after check allows it, in one
// transaction (so two concurrent unlinks cannot remove the last way in).
func (s *Store) UnlinkOAuthAccount(ctx context.Context, userID, provider string, check func(hasPassword bool, links int) error) error {
	return s.InTx(ctx, func(tx *Store) error {
		var hasPassword bool
		err := tx.q.QueryRowContext(ctx, `SELECT password_hash IS NOT NULL FROM users WHERE id = $1`+tx.forUpdate(), userID).Scan(&hasPassword)
		if errors.Is(err, sql.ErrNoRows) {
			return user.ErrNotFound
		}
		if err != nil {
			return wrap("load user", err)
		}
		var links, mine int
		if err := tx.q.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN provider = $2 THEN 1 ELSE 0 END), 0)
			FROM oauth_accounts WHERE user_id = $1`, userID, provider).Scan(&links, &mine); err != nil {
			return wrap("count oauth links", err)
		}
		if err := check(hasPassword, links); err != nil {
			return err
		}
		if mine == 0 {
			return social.ErrNoLink
		}
		_, err = tx.q.ExecContext(ctx, `DELETE FROM oauth_accounts WHERE user_id = $1 AND provider = $2`, userID, provider)
		return wrap("unlink oauth account", err)
	})
}
