-- Schema version 3: WebAuthn credentials (security keys and passkeys) as a method kind.

-- methods.kind gains 'webauthn'. SQLite cannot alter a CHECK constraint, so the table is
-- rebuilt. Foreign keys are on in this transaction (PRAGMA foreign_keys cannot change
-- inside one), so dropping the old table deletes its rows first and cascades to
-- pending_codes: those rows are kept aside and put back. AUTOINCREMENT's high-water
-- mark is kept too, so an id is still never reused.
CREATE TEMP TABLE saved_pending_codes AS SELECT * FROM pending_codes;
CREATE TEMP TABLE saved_methods_seq AS SELECT seq FROM sqlite_sequence WHERE name = 'methods';

CREATE TABLE methods_v3 (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT    NOT NULL REFERENCES users (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('totp', 'sms', 'email', 'webauthn')),
    label           TEXT    NOT NULL DEFAULT '',
    secret_enc      BLOB,
    destination_enc BLOB,
    destination_hint TEXT   NOT NULL DEFAULT '',
    verified        INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    entry_point     TEXT    NOT NULL DEFAULT '',
    last_used_step  INTEGER NOT NULL DEFAULT -1,
    algorithm       TEXT    NOT NULL DEFAULT 'SHA1' CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
    digits          INTEGER NOT NULL DEFAULT 6 CHECK (digits IN (6, 8)),
    period          INTEGER NOT NULL DEFAULT 30 CHECK (period > 0),
    created_at      INTEGER NOT NULL,
    verified_at     INTEGER,
    last_used_at    INTEGER,
    expires_at      INTEGER
) STRICT;
INSERT INTO methods_v3 (id, user_id, kind, label, secret_enc, destination_enc, destination_hint, verified,
    entry_point, last_used_step, algorithm, digits, period, created_at, verified_at, last_used_at, expires_at)
    SELECT id, user_id, kind, label, secret_enc, destination_enc, destination_hint, verified,
        entry_point, last_used_step, algorithm, digits, period, created_at, verified_at, last_used_at, expires_at
    FROM methods;
DROP TABLE methods;
ALTER TABLE methods_v3 RENAME TO methods;
CREATE INDEX methods_by_user ON methods (user_id, verified, kind);
CREATE INDEX methods_pending ON methods (expires_at) WHERE verified = 0;
DELETE FROM sqlite_sequence WHERE name IN ('methods', 'methods_v3');
INSERT INTO sqlite_sequence (name, seq) SELECT 'methods', max(
    coalesce((SELECT seq FROM saved_methods_seq), 0), coalesce((SELECT max(id) FROM methods), 0));
INSERT INTO pending_codes SELECT * FROM saved_pending_codes;
DROP TABLE saved_pending_codes;
DROP TABLE saved_methods_seq;

-- The user handle WebAuthn credentials are bound to: 32 random bytes, made once per user
-- and never derived from the user id (authenticators keep it; it must say nothing).
ALTER TABLE users ADD COLUMN webauthn_handle BLOB;

-- A WebAuthn credential of a method of kind 'webauthn'. Nothing here is secret (the
-- private key never leaves the authenticator). credential_id is unique across users: a
-- credential registered to one user cannot be registered to another (WebAuthn §7.1).
CREATE TABLE webauthn_credentials (
    method_id          INTEGER PRIMARY KEY REFERENCES methods (id) ON DELETE CASCADE,
    credential_id      BLOB    NOT NULL UNIQUE,
    public_key         BLOB    NOT NULL, -- COSE_Key
    sign_count         INTEGER NOT NULL DEFAULT 0, -- highest accepted; only ever raised
    aaguid             BLOB    NOT NULL,
    user_verified      INTEGER NOT NULL CHECK (user_verified IN (0, 1)), -- at registration
    backup_eligible    INTEGER NOT NULL CHECK (backup_eligible IN (0, 1)),
    backup_state       INTEGER NOT NULL CHECK (backup_state IN (0, 1)), -- as of the last use
    attestation_format TEXT    NOT NULL DEFAULT '',
    transports         TEXT    NOT NULL DEFAULT '', -- comma-separated
    attachment         TEXT    NOT NULL DEFAULT '',
    flagged_at         INTEGER -- a sign counter that did not increase: refused from then on
) STRICT;

-- Outstanding WebAuthn ceremonies: the library's session (challenge, allowed
-- credentials, user verification), sealed like secrets, single use, five minutes.
CREATE TABLE webauthn_challenges (
    id             TEXT    PRIMARY KEY,
    user_id        TEXT    NOT NULL,
    purpose        TEXT    NOT NULL CHECK (purpose IN ('register', 'login')),
    session_sealed BLOB    NOT NULL,
    expires_at     INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX webauthn_challenges_by_user ON webauthn_challenges (user_id, purpose, created_at);
CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);
