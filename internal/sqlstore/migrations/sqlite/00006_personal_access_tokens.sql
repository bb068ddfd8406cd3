-- +goose Up
-- Personal access tokens (internal/pat). Only the SHA-256 of the secret is
-- stored; prefix is its first characters in clear, for listings. scopes is
-- space-separated; expires_at NULL means the token never expires.
-- Indexes: the digest (every authentication), and (user_id, created_at)
-- for a user's list, the live-token count at creation, and revoking a
-- user's tokens. The superusers' listing and the daily purge scan the table.
CREATE TABLE personal_access_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         VARCHAR(100) NOT NULL,
    token_hash   VARCHAR(64) NOT NULL,
    prefix       VARCHAR(32) NOT NULL,
    scopes       VARCHAR(200) NOT NULL,
    expires_at   TIMESTAMP,
    last_used_at TIMESTAMP,
    revoked_at   TIMESTAMP,
    created_at   TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX personal_access_tokens_hash_key ON personal_access_tokens (token_hash);
CREATE INDEX ix_personal_access_tokens_user ON personal_access_tokens (user_id, created_at DESC);

-- +goose Down
DROP TABLE personal_access_tokens;
