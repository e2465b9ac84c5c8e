-- mfad worker store: the schema of record, as the migrations of the SQLite store build
-- it (channels/sqlite/migrations; a test keeps the two equal). Times are Unix
-- milliseconds (UTC). Secrets and addresses are sealed with AES-256-GCM
-- (channels/seal.go); the key never lives in this file.

-- One row per user the service has seen. The lockout counters live here because they are
-- per user and shared by every method (API.md §0 Lockout).
CREATE TABLE users (
    id                 TEXT    PRIMARY KEY,
    mfa_signin_enabled INTEGER NOT NULL DEFAULT 0 CHECK (mfa_signin_enabled IN (0, 1)),
    failed_attempts    INTEGER NOT NULL DEFAULT 0,
    locked_until       INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    -- The user handle WebAuthn credentials are bound to: 32 random bytes, made once and
    -- never derived from the user id (authenticators keep it; it must say nothing).
    webauthn_handle    BLOB
) STRICT;

-- Second factors. A row with verified = 0 is a pending setup or registration: it is not a
-- method anywhere (API.md §0) until it is verified, and it expires at expires_at.
-- AUTOINCREMENT: an id is never reused, so a client holding the id of a removed device
-- can never act on a newer one.
CREATE TABLE methods (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         TEXT    NOT NULL REFERENCES users (id),
    kind            TEXT    NOT NULL CHECK (kind IN ('totp', 'sms', 'email', 'webauthn')),
    label           TEXT    NOT NULL DEFAULT '',
    secret_enc      BLOB,                 -- TOTP secret, sealed
    destination_enc BLOB,                 -- phone number or e-mail address, sealed
    destination_hint TEXT   NOT NULL DEFAULT '', -- masked address, safe to show and log
    verified        INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    entry_point     TEXT    NOT NULL DEFAULT '',
    last_used_step  INTEGER NOT NULL DEFAULT -1, -- highest accepted TOTP time step
    algorithm       TEXT    NOT NULL DEFAULT 'SHA1' CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
    digits          INTEGER NOT NULL DEFAULT 6 CHECK (digits IN (6, 8)),
    period          INTEGER NOT NULL DEFAULT 30 CHECK (period > 0),
    created_at      INTEGER NOT NULL,
    verified_at     INTEGER,
    last_used_at    INTEGER,
    expires_at      INTEGER               -- pending rows only
) STRICT;
-- (user_id, verified, kind) then id: every method lookup is by user and state, in id
-- order, without a sort. The other columns are those a status or list read shows, so
-- those reads never fetch a table row (one page per device on a large database).
CREATE INDEX methods_by_user ON methods (user_id, verified, kind, id, label, destination_hint, entry_point,
    created_at, verified_at, last_used_at);
-- The sweeper deletes expired pending setups and registrations (channels/sweep.go).
CREATE INDEX methods_pending ON methods (expires_at) WHERE verified = 0;

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
CREATE INDEX webauthn_challenges_by_user ON webauthn_challenges (user_id, purpose, created_at, id);
CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);

-- Backup codes: keyed hashes only (HMAC-SHA-256 under key_id), each usable once.
CREATE TABLE backup_codes (
    id         INTEGER PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id),
    key_id     TEXT    NOT NULL,
    code_hash  BLOB    NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
-- used_at too: a status read counts a user's codes, total and unused, from the index.
CREATE INDEX backup_codes_by_user ON backup_codes (user_id, used_at);

-- One-time codes sent over SMS or e-mail, keyed hashes only. purpose is 'register' (confirm
-- a new channel) or 'signin' (a sign-in challenge).
CREATE TABLE pending_codes (
    method_id  INTEGER PRIMARY KEY REFERENCES methods (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL CHECK (purpose IN ('register', 'signin')),
    key_id     TEXT    NOT NULL,
    code_hash  BLOB    NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX pending_codes_by_expiry ON pending_codes (expires_at);

-- One row per SMS/e-mail code sent: the per-user send limit (SMS pumping) counts them
-- over its window. Taking a slot is one statement, so concurrent writers stay exact.
CREATE TABLE code_sends (
    user_id TEXT    NOT NULL,
    sent_at INTEGER NOT NULL
) STRICT;
CREATE INDEX code_sends_by_user ON code_sends (user_id, sent_at);
CREATE INDEX code_sends_by_time ON code_sends (sent_at);

-- Idempotency: the sealed reply of every command that carried a key (Idempotency-Key,
-- activity id), per user. A repeated key within the retention window gets this reply.
CREATE TABLE commands (
    user_id      TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    request_hash BLOB    NOT NULL, -- SHA-256 of type and params: a reused key must mean the same request
    reply_sealed BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX commands_by_age ON commands (created_at);

-- Outbox for the SMS/e-mail gateway (stream MFA_NOTIFY). Bodies may hold a one-time code,
-- so they are sealed, and a row is deleted once JetStream has acknowledged it.
CREATE TABLE notify_outbox (
    id          INTEGER PRIMARY KEY,
    msg_id      TEXT    NOT NULL UNIQUE,
    subject     TEXT    NOT NULL,
    body_sealed BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

-- The audit log is also the outbox of stream MFA_EVENTS: one row, one event. hash is an
-- HMAC, under the chain key key_id names (kept outside this file), of every column but
-- published_at and of the previous row's hash (audit/chain.go). Rows written by schema
-- version 1 have key_id '' and a plain SHA-256 link.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT    NOT NULL UNIQUE,
    type         TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    entry_point  TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    key_id       TEXT    NOT NULL DEFAULT '',
    prev_hash    BLOB    NOT NULL,
    hash         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    published_at INTEGER
) STRICT;
CREATE INDEX audit_log_unpublished ON audit_log (seq) WHERE published_at IS NULL;
CREATE INDEX audit_log_by_user ON audit_log (user_id, seq);
CREATE INDEX audit_log_by_type ON audit_log (type, seq);
CREATE INDEX audit_log_by_time ON audit_log (created_at, type); -- dashboard: counts per type over the last hour, from the index alone

-- Append-only: the only change ever allowed is setting published_at once.
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (
        OLD.published_at IS NULL AND NEW.published_at IS NOT NULL
    AND NEW.seq IS OLD.seq AND NEW.event_id IS OLD.event_id AND NEW.type IS OLD.type
    AND NEW.user_id IS OLD.user_id AND NEW.actor IS OLD.actor
    AND NEW.entry_point IS OLD.entry_point AND NEW.source IS OLD.source
    AND NEW.body IS OLD.body AND NEW.key_id IS OLD.key_id
    AND NEW.prev_hash IS OLD.prev_hash AND NEW.hash IS OLD.hash
    AND NEW.created_at IS OLD.created_at)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Facts about the store itself. key_canary is a value sealed with the key the database
-- was created with, so a wrong MFAD_SECRET_KEY is refused at start, not at first use.
CREATE TABLE store_meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
