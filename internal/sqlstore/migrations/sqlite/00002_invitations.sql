-- +goose Up
-- Invitations to an organization for email addresses without an account.
-- Only the SHA-256 of the emailed token is stored.
CREATE TABLE organization_invitations (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email           VARCHAR(255) NOT NULL,
    role            VARCHAR(20) NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'guest')),
    token_hash      VARCHAR(64) NOT NULL,
    invited_by      TEXT REFERENCES users (id) ON DELETE SET NULL,
    expires_at      TIMESTAMP NOT NULL,
    accepted_at     TIMESTAMP,
    accepted_by     TEXT REFERENCES users (id) ON DELETE SET NULL,
    revoked_at      TIMESTAMP,
    created_at      TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX organization_invitations_token_key ON organization_invitations (token_hash);
CREATE INDEX ix_org_invitations_org ON organization_invitations (organization_id, created_at DESC);
CREATE INDEX ix_org_invitations_expires ON organization_invitations (expires_at);

-- +goose Down
DROP TABLE organization_invitations;
