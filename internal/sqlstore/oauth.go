package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/oauth"
	"github.com/gatehouse-dev/gatehouse/internal/user"
)

const clientColumns = `id, client_id, client_secret_hash, client_name, client_description, client_type, redirect_uris,
	allowed_scopes, access_token_lifetime, refresh_token_lifetime, is_active, owner_user_id, mcp_server_url,
	registration_type, application_type, token_endpoint_auth_method, metadata_expires_at, created_at, updated_at`

func scanClient(rs rowScanner) (oauth.Client, error) {
	var (
		c                        oauth.Client
		secret, desc, owner, mcp sql.NullString
		redirects, scopes        string
		accessTTL, refreshTTL    int64
		metaExpires              sql.NullTime
	)
	err := rs.Scan(&c.ID, &c.ClientID, &secret, &c.Name, &desc, &c.Type, &redirects, &scopes, &accessTTL, &refreshTTL,
		&c.IsActive, &owner, &mcp, &c.RegistrationType, &c.ApplicationType, &c.TokenEndpointAuthMethod, &metaExpires,
		&c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return oauth.Client{}, err
	}
	c.SecretHash, c.Description, c.OwnerUserID, c.MCPServerURL = secret.String, strPtr(desc), strPtr(owner), strPtr(mcp)
	if err := json.Unmarshal([]byte(redirects), &c.RedirectURIs); err != nil {
		return oauth.Client{}, err
	}
	if err := json.Unmarshal([]byte(scopes), &c.AllowedScopes); err != nil {
		return oauth.Client{}, err
	}
	c.AccessTokenTTL, c.RefreshTokenTTL = time.Duration(accessTTL)*time.Second, time.Duration(refreshTTL)*time.Second
	c.MetadataExpiresAt = timePtr(metaExpires)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ClientByClientID returns a client (active or not).
func (s *Store) ClientByClientID(ctx context.Context, clientID string) (oauth.Client, error) {
	c, err := scanClient(s.q.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE client_id = $1`, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Client{}, oauth.ErrUnknownClient
	}
	return c, wrap("client by id", err)
}

// tokenClientColumns are the columns of a client that its authentication
// at the token, revocation and introspection endpoints and the tokens it is
// issued need, in tokenClientRow.dest order.
const tokenClientColumns = `c.id, c.client_id, c.client_secret_hash, c.client_type, c.access_token_lifetime,
	c.refresh_token_lifetime, c.is_active, c.registration_type, c.token_endpoint_auth_method`

// tokenClientRow holds tokenClientColumns while scanning.
type tokenClientRow struct {
	c                     oauth.Client
	secret                sql.NullString
	accessTTL, refreshTTL int64
}

func (r *tokenClientRow) dest() []any {
	return []any{&r.c.ID, &r.c.ClientID, &r.secret, &r.c.Type, &r.accessTTL, &r.refreshTTL, &r.c.IsActive,
		&r.c.RegistrationType, &r.c.TokenEndpointAuthMethod}
}

func (r *tokenClientRow) client() oauth.Client {
	c := r.c
	c.SecretHash = r.secret.String
	c.AccessTokenTTL, c.RefreshTokenTTL = time.Duration(r.accessTTL)*time.Second, time.Duration(r.refreshTTL)*time.Second
	return c
}

// TokenClient returns a client's tokenClientColumns: everything but name,
// description, redirect URIs, scopes, owner and timestamps. On every such
// request the client is read afresh (a deactivated or deleted client is
// refused at once), and reading the whole row, with its JSON lists and
// timestamps, cost as much as the rest of an introspection.
func (s *Store) TokenClient(ctx context.Context, clientID string) (oauth.Client, error) {
	var r tokenClientRow
	err := s.q.QueryRowContext(ctx, `SELECT `+tokenClientColumns+` FROM oauth_clients c WHERE c.client_id = $1`, clientID).
		Scan(r.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Client{}, oauth.ErrUnknownClient
	}
	if err != nil {
		return oauth.Client{}, wrap("token client", err)
	}
	return r.client(), nil
}

// TokenClientWithGrant is TokenClient and GrantLive in one statement, for
// introspecting an access token: the calling client and the token's grant
// are both read afresh on every request, and one query costs about half of
// two.
func (s *Store) TokenClientWithGrant(ctx context.Context, clientID, refreshID, userID string) (oauth.Client, bool, error) {
	var (
		r            tokenClientRow
		live         int
		grant, owner any // NULL (no grant) unless both are UUIDs: PostgreSQL's uuid refuses anything else
	)
	if validUUID(refreshID) && validUUID(userID) {
		grant, owner = refreshID, userID
	}
	err := s.q.QueryRowContext(ctx, `SELECT `+tokenClientColumns+`,
		(SELECT COUNT(*) FROM oauth_provider_refresh_tokens t JOIN users u ON u.id = t.user_id
			WHERE t.id = $2 AND t.user_id = $3 AND t.revoked_at IS NULL AND u.is_active = TRUE AND u.deleted_at IS NULL)
		FROM oauth_clients c WHERE c.client_id = $1`, clientID, grant, owner).Scan(append(r.dest(), &live)...)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Client{}, false, oauth.ErrUnknownClient
	}
	if err != nil {
		return oauth.Client{}, false, wrap("token client with grant", err)
	}
	return r.client(), live == 1, nil
}

// validUUID reports whether id is a UUID in its canonical form.
func validUUID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

// CreateClient stores a client.
func (s *Store) CreateClient(ctx context.Context, c oauth.Client) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO oauth_clients (`+clientColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
		c.ID, c.ClientID, nullStr(nonEmpty(c.SecretHash)), c.Name, nullStr(c.Description), c.Type, jsonList(c.RedirectURIs),
		jsonList(c.AllowedScopes), int64(c.AccessTokenTTL/time.Second), int64(c.RefreshTokenTTL/time.Second), c.IsActive,
		nullStr(c.OwnerUserID), nullStr(c.MCPServerURL), c.RegistrationType, c.ApplicationType, c.TokenEndpointAuthMethod,
		nullTime(c.MetadataExpiresAt), utc(c.CreatedAt), utc(c.UpdatedAt))
	return wrap("create client", err)
}

// ActiveClients lists active clients, newest first.
func (s *Store) ActiveClients(ctx context.Context) ([]oauth.Client, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE is_active = TRUE
		ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, wrap("list clients", err)
	}
	defer rows.Close()
	out := []oauth.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, wrap("scan client", err)
		}
		out = append(out, c)
	}
	return out, wrap("list clients", rows.Err())
}

// DeleteClient deletes a client; codes, tokens and consents cascade.
func (s *Store) DeleteClient(ctx context.Context, clientID string) error {
	_, err := s.q.ExecContext(ctx, `DELETE FROM oauth_clients WHERE client_id = $1`, clientID)
	return wrap("delete client", err)
}

// ReplaceClientSecretHash swaps a legacy secret hash for the current form.
func (s *Store) ReplaceClientSecretHash(ctx context.Context, clientID, oldHash, newHash string) error {
	_, err := s.q.ExecContext(ctx, `UPDATE oauth_clients SET client_secret_hash = $3 WHERE client_id = $1 AND client_secret_hash = $2`,
		clientID, oldHash, newHash)
	return wrap("replace client secret hash", err)
}

const codeColumns = `id, code_hash, client_id, user_id, redirect_uri, scope, code_challenge, code_challenge_method, nonce,
	resource, auth_time, expires_at, used_at, created_at`

// CreateCode stores an authorization code (its hash).
func (s *Store) CreateCode(ctx context.Context, c oauth.Code) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO oauth_authorization_codes (`+codeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13)`,
		c.ID, c.Hash, c.ClientID, c.UserID, c.RedirectURI, c.Scope, nullStr(nonEmpty(c.CodeChallenge)),
		nullStr(nonEmpty(c.CodeChallengeMethod)), nullStr(nonEmpty(c.Nonce)), nullStr(nonEmpty(c.Resource)),
		utc(c.AuthTime), utc(c.ExpiresAt), utc(c.CreatedAt))
	return wrap("create code", err)
}

// CodeByHash returns an authorization code.
func (s *Store) CodeByHash(ctx context.Context, hash string) (oauth.Code, error) {
	var (
		c                                  oauth.Code
		challenge, method, nonce, resource sql.NullString
		used                               sql.NullTime
	)
	err := s.q.QueryRowContext(ctx, `SELECT `+codeColumns+` FROM oauth_authorization_codes WHERE code_hash = $1`, hash).
		Scan(&c.ID, &c.Hash, &c.ClientID, &c.UserID, &c.RedirectURI, &c.Scope, &challenge, &method, &nonce, &resource,
			&c.AuthTime, &c.ExpiresAt, &used, &c.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Code{}, oauth.ErrUnknownCode
	}
	if err != nil {
		return oauth.Code{}, wrap("code by hash", err)
	}
	c.CodeChallenge, c.CodeChallengeMethod, c.Nonce, c.Resource = challenge.String, method.String, nonce.String, resource.String
	c.UsedAt = timePtr(used)
	c.AuthTime, c.ExpiresAt, c.CreatedAt = c.AuthTime.UTC(), c.ExpiresAt.UTC(), c.CreatedAt.UTC()
	return c, nil
}

// RedeemCode marks a code used, once, and stores the first refresh token of
// its family in the same transaction.
func (s *Store) RedeemCode(ctx context.Context, codeID string, first oauth.RefreshToken, now time.Time) (bool, error) {
	redeemed := false
	err := s.InTx(ctx, func(tx *Store) error {
		res, err := tx.q.ExecContext(ctx, `UPDATE oauth_authorization_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL`,
			codeID, utc(now))
		if err != nil {
			return wrap("redeem code", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		redeemed = true
		return tx.insertRefresh(ctx, first)
	})
	return redeemed && err == nil, err
}

const refreshColumns = `id, token_hash, family_id, code_id, client_id, user_id, scope, resource, auth_time, expires_at,
	rotated_at, revoked_at, device_info, ip_address, created_at`

// refreshRow holds an oauth_provider_refresh_tokens row while scanning.
type refreshRow struct {
	t                       oauth.RefreshToken
	code, resource, dev, ip sql.NullString
	rotated, revoked        sql.NullTime
}

// dest returns the scan destinations, in refreshColumns order.
func (r *refreshRow) dest() []any {
	return []any{&r.t.ID, &r.t.Hash, &r.t.FamilyID, &r.code, &r.t.ClientID, &r.t.UserID, &r.t.Scope, &r.resource,
		&r.t.AuthTime, &r.t.ExpiresAt, &r.rotated, &r.revoked, &r.dev, &r.ip, &r.t.CreatedAt}
}

func (r *refreshRow) token() oauth.RefreshToken {
	t := r.t
	t.CodeID, t.Resource, t.DeviceInfo, t.IPAddress = strPtr(r.code), r.resource.String, strPtr(r.dev), strPtr(r.ip)
	t.RotatedAt, t.RevokedAt = timePtr(r.rotated), timePtr(r.revoked)
	t.AuthTime, t.ExpiresAt, t.CreatedAt = t.AuthTime.UTC(), t.ExpiresAt.UTC(), t.CreatedAt.UTC()
	return t
}

func scanRefresh(rs rowScanner) (oauth.RefreshToken, error) {
	var r refreshRow
	if err := rs.Scan(r.dest()...); err != nil {
		return oauth.RefreshToken{}, err
	}
	return r.token(), nil
}

// RefreshTokenWithUser returns a refresh token by the hash of its secret
// together with its user (deleted users included): the refresh grant needs
// both, in one lookup.
func (s *Store) RefreshTokenWithUser(ctx context.Context, hash string) (oauth.RefreshToken, user.User, error) {
	var (
		rr refreshRow
		ur userRow
	)
	err := s.q.QueryRowContext(ctx, `SELECT t.id, t.token_hash, t.family_id, t.code_id, t.client_id, t.user_id, t.scope,
			t.resource, t.auth_time, t.expires_at, t.rotated_at, t.revoked_at, t.device_info, t.ip_address, t.created_at,
			u.id, u.email, u.password_hash, u.first_name, u.last_name, u.phone_number, u.is_active, u.is_superuser,
			u.preferences, u.locale, u.password_changed_at, u.created_at, u.updated_at, u.deleted_at
		FROM oauth_provider_refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1`, hash).
		Scan(append(rr.dest(), ur.dest()...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.RefreshToken{}, user.User{}, oauth.ErrUnknownRefresh
	}
	if err != nil {
		return oauth.RefreshToken{}, user.User{}, wrap("refresh token with user", err)
	}
	return rr.token(), ur.user(), nil
}

func (s *Store) insertRefresh(ctx context.Context, t oauth.RefreshToken) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO oauth_provider_refresh_tokens (`+refreshColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $12, $13)`,
		t.ID, t.Hash, t.FamilyID, nullStr(t.CodeID), t.ClientID, t.UserID, t.Scope, nullStr(nonEmpty(t.Resource)),
		utc(t.AuthTime), utc(t.ExpiresAt), nullStr(t.DeviceInfo), nullStr(t.IPAddress), utc(t.CreatedAt))
	return wrap("create refresh token", err)
}

// CreateRefreshToken stores the first token of a family.
func (s *Store) CreateRefreshToken(ctx context.Context, t oauth.RefreshToken) error {
	return s.insertRefresh(ctx, t)
}

// RefreshTokenByHash returns a refresh token.
func (s *Store) RefreshTokenByHash(ctx context.Context, hash string) (oauth.RefreshToken, error) {
	t, err := scanRefresh(s.q.QueryRowContext(ctx, `SELECT `+refreshColumns+` FROM oauth_provider_refresh_tokens WHERE token_hash = $1`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.RefreshToken{}, oauth.ErrUnknownRefresh
	}
	return t, wrap("refresh token by hash", err)
}

// RefreshTokenByID returns a refresh token by row id (an access token's jti).
func (s *Store) RefreshTokenByID(ctx context.Context, id string) (oauth.RefreshToken, error) {
	if !validUUID(id) {
		return oauth.RefreshToken{}, oauth.ErrUnknownRefresh
	}
	t, err := scanRefresh(s.q.QueryRowContext(ctx, `SELECT `+refreshColumns+` FROM oauth_provider_refresh_tokens
		WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.RefreshToken{}, oauth.ErrUnknownRefresh
	}
	return t, wrap("refresh token by id", err)
}

// GrantLive reports whether the grant of an access token (the refresh-token
// row named by its jti) is unrevoked and belongs to userID, and that user is
// active and not deleted: one indexed lookup, made on every use of a
// provider access token.
func (s *Store) GrantLive(ctx context.Context, refreshID, userID string) (bool, error) {
	if !validUUID(refreshID) || !validUUID(userID) {
		return false, nil
	}
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_provider_refresh_tokens t JOIN users u ON u.id = t.user_id
		WHERE t.id = $1 AND t.user_id = $2 AND t.revoked_at IS NULL AND u.is_active = TRUE AND u.deleted_at IS NULL`,
		refreshID, userID).Scan(&n)
	return n == 1, wrap("grant live", err)
}

// RotateRefreshToken marks old rotated (once) and stores next in the same
// transaction.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, next oauth.RefreshToken, now time.Time) (bool, error) {
	rotated := false
	err := s.InTx(ctx, func(tx *Store) error {
		res, err := tx.q.ExecContext(ctx, `UPDATE oauth_provider_refresh_tokens SET rotated_at = $2
			WHERE id = $1 AND rotated_at IS NULL AND revoked_at IS NULL`, oldID, utc(now))
		if err != nil {
			return wrap("rotate refresh token", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		rotated = true
		return tx.insertRefresh(ctx, next)
	})
	return rotated && err == nil, err
}

func (s *Store) revokeRefresh(ctx context.Context, op, where string, now time.Time, args ...any) (int, error) {
	res, err := s.q.ExecContext(ctx, `UPDATE oauth_provider_refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND `+where,
		append([]any{utc(now)}, args...)...)
	if err != nil {
		return 0, wrap(op, err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap(op, err)
}

// RevokeRefreshFamily revokes every token of a family.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error) {
	return s.revokeRefresh(ctx, "revoke family", "family_id = $2", now, familyID)
}

// RevokeUserClientRefreshTokens revokes a user's tokens for one client.
func (s *Store) RevokeUserClientRefreshTokens(ctx context.Context, userID, clientID string, now time.Time) (int, error) {
	return s.revokeRefresh(ctx, "revoke client tokens", "user_id = $2 AND client_id = $3", now, userID, clientID)
}

// RevokeUserProviderTokens revokes every provider token of a user.
func (s *Store) RevokeUserProviderTokens(ctx context.Context, userID string, now time.Time) (int, error) {
	return s.revokeRefresh(ctx, "revoke user provider tokens", "user_id = $2", now, userID)
}

// FamilyActive reports whether a refresh-token family is unrevoked.
func (s *Store) FamilyActive(ctx context.Context, familyID string) (bool, error) {
	var n int
	err := s.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_provider_refresh_tokens WHERE family_id = $1 AND revoked_at IS NOT NULL`,
		familyID).Scan(&n)
	return n == 0, wrap("family active", err)
}

// Consent returns a user's consent for a client.
func (s *Store) Consent(ctx context.Context, userID, clientID string) (oauth.Consent, error) {
	var (
		c      oauth.Consent
		scopes string
	)
	err := s.q.QueryRowContext(ctx, `SELECT user_id, client_id, granted_scopes, created_at, updated_at FROM oauth_consents
		WHERE user_id = $1 AND client_id = $2`, userID, clientID).Scan(&c.UserID, &c.ClientID, &scopes, &c.CreatedAt, &c.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return oauth.Consent{}, oauth.ErrNoConsent
	}
	if err != nil {
		return oauth.Consent{}, wrap("consent", err)
	}
	c.Scopes = oauth.ParseScope(scopes)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

// SaveConsent inserts or replaces a consent.
func (s *Store) SaveConsent(ctx context.Context, c oauth.Consent) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO oauth_consents (user_id, client_id, granted_scopes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id) DO UPDATE SET granted_scopes = excluded.granted_scopes, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, oauth.JoinScope(c.Scopes), utc(c.CreatedAt), utc(c.UpdatedAt))
	return wrap("save consent", err)
}

// ConsentsOfUser lists a user's consents with their clients, newest first.
func (s *Store) ConsentsOfUser(ctx context.Context, userID string) ([]oauth.Consent, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT c.user_id, c.client_id, c.granted_scopes, c.created_at, c.updated_at,
		k.client_name, k.client_description
		FROM oauth_consents c JOIN oauth_clients k ON k.client_id = c.client_id
		WHERE c.user_id = $1 ORDER BY c.created_at DESC, c.client_id`, userID)
	if err != nil {
		return nil, wrap("list consents", err)
	}
	defer rows.Close()
	out := []oauth.Consent{}
	for rows.Next() {
		var (
			c      oauth.Consent
			scopes string
			desc   sql.NullString
		)
		if err := rows.Scan(&c.UserID, &c.ClientID, &scopes, &c.CreatedAt, &c.UpdatedAt, &c.ClientName, &desc); err != nil {
			return nil, wrap("scan consent", err)
		}
		c.Scopes, c.ClientDescription = oauth.ParseScope(scopes), strPtr(desc)
		c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
		out = append(out, c)
	}
	return out, wrap("list consents", rows.Err())
}

// DeleteConsent deletes a consent.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
	if err != nil {
		return wrap("delete consent", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return oauth.ErrNoConsent
	}
	return nil
}

// PurgeProviderGrants deletes authorization codes and refresh tokens that
// expired (or were revoked) before cutoff.
func (s *Store) PurgeProviderGrants(ctx context.Context, cutoff time.Time) (int, error) {
	total := 0
	for _, q := range []string{
		`DELETE FROM oauth_authorization_codes WHERE expires_at < $1`,
		`DELETE FROM oauth_provider_refresh_tokens WHERE expires_at < $1 OR revoked_at < $1`,
	} {
		res, err := s.q.ExecContext(ctx, q, utc(cutoff))
		if err != nil {
			return total, wrap("purge provider grants", err)
		}
		n, _ := res.RowsAffected()
		total += int(n)
	}
	return total, nil
}

// PurgeConsents deletes the consents last granted before cutoff, except
// those a live grant still depends on (an unrevoked, unrotated refresh token
// of that user and client, unexpired at now): the user's list of consents
// keeps naming every client that can still act for them, with its DELETE
// that revokes the grant, until the grant ends.
func (s *Store) PurgeConsents(ctx context.Context, cutoff, now time.Time) (int, error) {
	res, err := s.q.ExecContext(ctx, `DELETE FROM oauth_consents WHERE updated_at < $1 AND NOT EXISTS (
		SELECT 1 FROM oauth_provider_refresh_tokens t
		WHERE t.user_id = oauth_consents.user_id AND t.client_id = oauth_consents.client_id
			AND t.revoked_at IS NULL AND t.rotated_at IS NULL AND t.expires_at > $2)`, utc(cutoff), utc(now))
	if err != nil {
		return 0, wrap("purge consents", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("purge consents", err)
}

// SaveMetadataClient inserts the cached client of a metadata document, or
// refreshes it; rows of other kinds are never touched.
func (s *Store) SaveMetadataClient(ctx context.Context, c oauth.Client) error {
	_, err := s.q.ExecContext(ctx, `INSERT INTO oauth_clients (`+clientColumns+`)
		VALUES ($1, $2, NULL, $3, NULL, $4, $5, $6, $7, $8, TRUE, NULL, NULL, $9, $10, $11, $12, $13, $13)
		ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name, redirect_uris = excluded.redirect_uris,
			allowed_scopes = excluded.allowed_scopes, application_type = excluded.application_type,
			metadata_expires_at = excluded.metadata_expires_at, is_active = TRUE, updated_at = excluded.updated_at
		WHERE oauth_clients.registration_type = $9`,
		c.ID, c.ClientID, c.Name, c.Type, jsonList(c.RedirectURIs), jsonList(c.AllowedScopes),
		int64(c.AccessTokenTTL/time.Second), int64(c.RefreshTokenTTL/time.Second), c.RegistrationType, c.ApplicationType,
		c.TokenEndpointAuthMethod, nullTime(c.MetadataExpiresAt), utc(c.CreatedAt))
	return wrap("save metadata client", err)
}
