-- Schema version 2: contracts that hold under concurrent writers, and a keyed audit chain.

-- The per-user limit on SMS/e-mail codes counts these rows; the audit log no longer
-- decides it (an audit record is written only when its transaction commits).
CREATE TABLE code_sends (
    user_id TEXT    NOT NULL,
    sent_at INTEGER NOT NULL
) STRICT;
CREATE INDEX code_sends_by_user ON code_sends (user_id, sent_at);
CREATE INDEX code_sends_by_time ON code_sends (sent_at);
INSERT INTO code_sends (user_id, sent_at)
    SELECT user_id, created_at FROM audit_log
    WHERE type = 'channel.code_sent' AND created_at > (unixepoch() - 86400) * 1000;
DROP INDEX audit_log_codes_sent;

-- Written and never read.
ALTER TABLE pending_codes DROP COLUMN attempts;

-- The chain key that linked a record ('' for the plain SHA-256 links of version 1).
ALTER TABLE audit_log ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
DROP TRIGGER audit_log_no_update;
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
