-- Schema version 5: the trim of a user's outstanding WebAuthn challenges (newest first,
-- ties by id) walks its index instead of sorting; the index gains id.
DROP INDEX webauthn_challenges_by_user;
CREATE INDEX webauthn_challenges_by_user ON webauthn_challenges (user_id, purpose, created_at, id);
