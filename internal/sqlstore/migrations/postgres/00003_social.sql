-- +goose Up
-- Social login: accounts linked at Google, GitHub or an OpenID Connect
-- provider, and the short-lived state of logins in progress. Provider tokens
-- and PKCE verifiers are stored sealed (AES-GCM, key from SECRET_KEY); states
-- only as SHA-256 digests.
CREATE TABLE oauth_accounts (
    id                UUID PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider          VARCHAR(50) NOT NULL,
    provider_user_id  VARCHAR(255) NOT NULL,
    provider_email    VARCHAR(255),
    access_token      TEXT,
    refresh_token     TEXT,
    token_expires_at  TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX uq_oauth_provider_user ON oauth_accounts (provider, provider_user_id);
CREATE UNIQUE INDEX uq_oauth_user_provider ON oauth_accounts (user_id, provider);

CREATE TABLE oauth_states (
    id            UUID PRIMARY KEY,
    state_hash    VARCHAR(64) NOT NULL,
    provider      VARCHAR(50) NOT NULL,
    code_verifier TEXT,
    nonce         VARCHAR(255),
    redirect_uri  VARCHAR(2048) NOT NULL,
    user_id       UUID REFERENCES users (id) ON DELETE CASCADE,
    expires_at    TIMESTAMPTZ NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX oauth_states_hash_key ON oauth_states (state_hash);
CREATE INDEX ix_oauth_states_expires ON oauth_states (expires_at);

-- +goose Down
DROP TABLE oauth_states;
DROP TABLE oauth_accounts;
