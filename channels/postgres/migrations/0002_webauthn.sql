-- Schema version 2: WebAuthn credentials (security keys and passkeys) as a method kind,
-- as SQLite's migration 0003_webauthn.sql adds them.

ALTER TABLE methods DROP CONSTRAINT methods_kind_check;
ALTER TABLE methods ADD CONSTRAINT methods_kind_check CHECK (kind IN ('totp', 'sms', 'email', 'webauthn'));

-- The user handle WebAuthn credentials are bound to: 32 random bytes, made once per user
-- and never derived from the user id.
ALTER TABLE users ADD COLUMN webauthn_handle BYTEA;

-- A WebAuthn credential of a method of kind 'webauthn'. credential_id is unique across
-- users: a credential registered to one user cannot be registered to another.
CREATE TABLE webauthn_credentials (
    method_id          BIGINT  PRIMARY KEY REFERENCES methods (id) ON DELETE CASCADE,
    credential_id      BYTEA   NOT NULL UNIQUE,
    public_key         BYTEA   NOT NULL, -- COSE_Key
    sign_count         BIGINT  NOT NULL DEFAULT 0, -- highest accepted; only ever raised
    aaguid             BYTEA   NOT NULL,
    user_verified      BOOLEAN NOT NULL, -- at registration
    backup_eligible    BOOLEAN NOT NULL,
    backup_state       BOOLEAN NOT NULL, -- as of the last use
    attestation_format TEXT    NOT NULL DEFAULT '',
    transports         TEXT    NOT NULL DEFAULT '', -- comma-separated
    attachment         TEXT    NOT NULL DEFAULT '',
    flagged_at         BIGINT -- a sign counter that did not increase: refused from then on
);

-- Outstanding WebAuthn ceremonies: the library's session, sealed, single use.
CREATE TABLE webauthn_challenges (
    id             TEXT   PRIMARY KEY,
    user_id        TEXT   NOT NULL,
    purpose        TEXT   NOT NULL CHECK (purpose IN ('register', 'login')),
    session_sealed BYTEA  NOT NULL,
    expires_at     BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX webauthn_challenges_by_user ON webauthn_challenges (user_id, purpose, created_at);
CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);
