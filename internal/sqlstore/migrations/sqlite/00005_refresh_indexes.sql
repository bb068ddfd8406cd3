-- +goose Up
-- Every provider refresh token is an insert, and every index of its table
-- is written by each one (on SQLite, inside the single writer's commit), so
-- the table keeps only the indexes a query uses:
-- * a family started by an authorization code has the code's id as its
--   family id (a code is redeemed once, so it starts one family), and a
--   replayed code revokes that family through the family index: the code_id
--   index goes;
-- * the clean-up's `expires_at < $1 OR revoked_at < $1` never used the
--   expires_at index: it goes;
-- * revoking a user's tokens, with or without a client, and the cascade when
--   a user is deleted use (user_id, client_id), which replaces (user_id,
--   revoked_at) and (client_id, user_id). Deleting a client (rare, by an
--   administrator) scans the table for its cascade.
UPDATE oauth_provider_refresh_tokens SET family_id = code_id WHERE code_id IS NOT NULL;
DROP INDEX ix_oauth_refresh_code;
DROP INDEX ix_oauth_refresh_expires;
DROP INDEX ix_oauth_refresh_user;
DROP INDEX ix_oauth_refresh_client_user;
CREATE INDEX ix_oauth_refresh_user_client ON oauth_provider_refresh_tokens (user_id, client_id);

-- +goose Down
DROP INDEX ix_oauth_refresh_user_client;
CREATE INDEX ix_oauth_refresh_code ON oauth_provider_refresh_tokens (code_id);
CREATE INDEX ix_oauth_refresh_user ON oauth_provider_refresh_tokens (user_id, revoked_at);
CREATE INDEX ix_oauth_refresh_client_user ON oauth_provider_refresh_tokens (client_id, user_id);
CREATE INDEX ix_oauth_refresh_expires ON oauth_provider_refresh_tokens (expires_at);
