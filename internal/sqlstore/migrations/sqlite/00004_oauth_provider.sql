-- +goose Up
-- The OAuth 2.1 / OpenID Connect authorization server: signing keys, clients,
-- authorization codes, refresh-token families and consents. Every secret is
-- stored as a SHA-256 digest (codes, refresh tokens, client secrets) or
-- sealed (private keys).

CREATE TABLE signing_keys (
    id          VARCHAR(100) PRIMARY KEY,
    algorithm   VARCHAR(10) NOT NULL,
    public_jwk  TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    retired_at  TIMESTAMP
);

CREATE TABLE oauth_clients (
    id                         TEXT PRIMARY KEY,
    client_id                  VARCHAR(2048) NOT NULL,
    client_secret_hash         VARCHAR(255),
    client_name                VARCHAR(255) NOT NULL,
    client_description         VARCHAR(1000),
    client_type                VARCHAR(20) NOT NULL CHECK (client_type IN ('public', 'confidential')),
    redirect_uris              TEXT NOT NULL,
    allowed_scopes             TEXT NOT NULL,
    access_token_lifetime      INTEGER NOT NULL,
    refresh_token_lifetime     INTEGER NOT NULL,
    is_active                  BOOLEAN NOT NULL,
    owner_user_id              TEXT REFERENCES users (id) ON DELETE SET NULL,
    mcp_server_url             VARCHAR(2048),
    registration_type          VARCHAR(20) NOT NULL,
    application_type           VARCHAR(20) NOT NULL,
    token_endpoint_auth_method VARCHAR(50) NOT NULL,
    metadata_expires_at        TIMESTAMP,
    created_at                 TIMESTAMP NOT NULL,
    updated_at                 TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX oauth_clients_client_id_key ON oauth_clients (client_id);
CREATE INDEX ix_oauth_clients_created ON oauth_clients (created_at DESC);

CREATE TABLE oauth_authorization_codes (
    id                    TEXT PRIMARY KEY,
    code_hash             VARCHAR(64) NOT NULL,
    client_id             VARCHAR(2048) NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri          VARCHAR(2048) NOT NULL,
    scope                 VARCHAR(1000) NOT NULL,
    code_challenge        VARCHAR(128),
    code_challenge_method VARCHAR(10),
    nonce                 VARCHAR(512),
    resource              VARCHAR(2048),
    auth_time             TIMESTAMP NOT NULL,
    expires_at            TIMESTAMP NOT NULL,
    used_at               TIMESTAMP,
    created_at            TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX oauth_codes_hash_key ON oauth_authorization_codes (code_hash);
CREATE INDEX ix_oauth_codes_expires ON oauth_authorization_codes (expires_at);

CREATE TABLE oauth_provider_refresh_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  VARCHAR(64) NOT NULL,
    family_id   TEXT NOT NULL,
    code_id     TEXT,
    client_id   VARCHAR(2048) NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope       VARCHAR(1000) NOT NULL,
    resource    VARCHAR(2048),
    auth_time   TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    rotated_at  TIMESTAMP,
    revoked_at  TIMESTAMP,
    device_info VARCHAR(500),
    ip_address  VARCHAR(45),
    created_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX oauth_refresh_hash_key ON oauth_provider_refresh_tokens (token_hash);
CREATE INDEX ix_oauth_refresh_family ON oauth_provider_refresh_tokens (family_id);
CREATE INDEX ix_oauth_refresh_code ON oauth_provider_refresh_tokens (code_id);
CREATE INDEX ix_oauth_refresh_user ON oauth_provider_refresh_tokens (user_id, revoked_at);
CREATE INDEX ix_oauth_refresh_client_user ON oauth_provider_refresh_tokens (client_id, user_id);
CREATE INDEX ix_oauth_refresh_expires ON oauth_provider_refresh_tokens (expires_at);

CREATE TABLE oauth_consents (
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id      VARCHAR(2048) NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    granted_scopes VARCHAR(1000) NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Browser sessions (the built-in login pages' cookie) are sessions too, so
-- users see and revoke them with their other devices.
ALTER TABLE user_sessions ADD COLUMN kind VARCHAR(10) NOT NULL DEFAULT 'api';

-- +goose Down
ALTER TABLE user_sessions DROP COLUMN kind;
DROP TABLE oauth_consents;
DROP TABLE oauth_provider_refresh_tokens;
DROP TABLE oauth_authorization_codes;
DROP TABLE oauth_clients;
DROP TABLE signing_keys;
