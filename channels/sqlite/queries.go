package sqlite

// Every statement the store runs, by name. Times are Unix milliseconds.

const (
	qUser       = `SELECT mfa_signin_enabled, failed_attempts, locked_until FROM users WHERE id = ?`
	qEnsureUser = `INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`
	qSetSignIn  = `UPDATE users SET mfa_signin_enabled = ?, updated_at = ? WHERE id = ? AND mfa_signin_enabled != ?`
	qAddFailure = `INSERT INTO users (id, failed_attempts, created_at, updated_at) VALUES (?, 1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET failed_attempts = failed_attempts + 1, updated_at = excluded.updated_at
		RETURNING failed_attempts, locked_until`
	qLockUntil     = `UPDATE users SET locked_until = max(locked_until, ?), updated_at = ? WHERE id = ?`
	qResetFailures = `UPDATE users SET failed_attempts = 0, updated_at = ? WHERE id = ? AND failed_attempts != 0`
	qClearLockout  = `UPDATE users SET failed_attempts = 0, locked_until = 0, updated_at = ? WHERE id = ?`

	// methodColumns is what scanMethod reads, in its order.
	methodColumns = `id, user_id, kind, label, secret_enc, destination_enc, destination_hint, verified,
		entry_point, last_used_step, algorithm, digits, period, created_at`
	qMethodsOfKind = `SELECT ` + methodColumns + ` FROM methods WHERE user_id = ? AND kind = ? AND verified = 1 ORDER BY id`
	// qMethodsAll: methods_by_user holds kind before id, so an ORDER BY id here would
	// sort in a temporary B-tree; Methods sorts the user's few rows itself.
	qMethodsAll    = `SELECT ` + methodColumns + ` FROM methods WHERE user_id = ? AND verified = 1`
	qPendingLatest = `SELECT ` + methodColumns + ` FROM methods
		WHERE user_id = ? AND kind = ? AND verified = 0 AND expires_at > ? ORDER BY id DESC LIMIT 1`
	qPendingByID = `SELECT ` + methodColumns + ` FROM methods
		WHERE user_id = ? AND kind = ? AND verified = 0 AND expires_at > ? AND id = ?`
	qPendingOfKind = `SELECT ` + methodColumns + ` FROM methods WHERE user_id = ? AND kind = ? AND verified = 0 ORDER BY id`
	qMethodByID    = `SELECT ` + methodColumns + ` FROM methods WHERE id = ?`
	qCountVerified = `SELECT kind, count(*) FROM methods WHERE user_id = ? AND verified = 1 GROUP BY kind`
	qInsertMethod  = `INSERT INTO methods
		(user_id, kind, label, secret_enc, destination_enc, destination_hint, verified, entry_point,
		 algorithm, digits, period, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)`
	// qMarkVerified enforces the limit in the statement that verifies: a second writer
	// cannot slip a device in between a count and an update.
	qMarkVerified = `UPDATE methods SET verified = 1, verified_at = ?, last_used_step = max(last_used_step, ?), expires_at = NULL
		WHERE id = ? AND verified = 0
		  AND (? = 0 OR (SELECT count(*) FROM methods v
		                 WHERE v.user_id = methods.user_id AND v.verified = 1 AND v.kind = methods.kind) < ?)`
	qDeletePending = `DELETE FROM methods WHERE user_id = ? AND kind = ? AND verified = 0`
	qDeleteMethod  = `DELETE FROM methods WHERE id = ?`
	qClaimStep     = `UPDATE methods SET last_used_step = ?, last_used_at = ? WHERE id = ? AND last_used_step < ?`
	qTouchMethod   = `UPDATE methods SET last_used_at = ? WHERE id = ?`
	// qListMethods has no ORDER BY: SQLite's sorter cost more than the rest of the
	// query for a user's few rows (30 µs against 12 µs), so the rules sort.
	qListMethods = `
		SELECT id, kind, label, destination_hint, entry_point, created_at, verified_at, last_used_at
		FROM methods WHERE user_id = ? AND verified = 1 AND (? = '' OR kind = ?)`

	qDeleteBackupCodes = `DELETE FROM backup_codes WHERE user_id = ?`
	qInsertBackupCode  = `INSERT INTO backup_codes (user_id, key_id, code_hash, created_at) VALUES (?, ?, ?, ?)`
	qUnusedBackupCodes = `SELECT id, key_id, code_hash FROM backup_codes WHERE user_id = ? AND used_at IS NULL`
	qSpendBackupCode   = `UPDATE backup_codes SET used_at = ? WHERE id = ? AND used_at IS NULL`
	qBackupCodeCounts  = `SELECT count(*), count(*) FILTER (WHERE used_at IS NULL) FROM backup_codes WHERE user_id = ?`

	qPutCode = `INSERT INTO pending_codes (method_id, purpose, key_id, code_hash, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (method_id) DO UPDATE SET purpose = excluded.purpose, key_id = excluded.key_id,
			code_hash = excluded.code_hash, expires_at = excluded.expires_at, created_at = excluded.created_at`
	qOutstandingCodes = `SELECT p.purpose, p.key_id, p.code_hash, ` + `m.id, m.user_id, m.kind, m.label, m.secret_enc,
		m.destination_enc, m.destination_hint, m.verified, m.entry_point, m.last_used_step, m.algorithm, m.digits,
		m.period, m.created_at
		FROM pending_codes p JOIN methods m ON m.id = p.method_id
		WHERE m.user_id = ? AND p.purpose = ? AND p.expires_at > ? AND (? = '' OR m.kind = ?)`
	qSpendCode = `DELETE FROM pending_codes WHERE method_id = ? AND code_hash = ?`

	// The send limit: one row per code sent, counted over the window. Taking a slot is
	// one statement, so two writers cannot both take the last one.
	qTakeSendSlot = `INSERT INTO code_sends (user_id, sent_at)
		SELECT ?, ? WHERE (SELECT count(*) FROM code_sends WHERE user_id = ? AND sent_at > ?) < ?`
	qOldestSend = `SELECT min(sent_at) FROM code_sends WHERE user_id = ? AND sent_at > ?`

	// qReserveCommand claims a key, taking over one that expired. It changes no row when
	// the key is in use, which is how the caller learns of the earlier command.
	qReserveCommand = `INSERT INTO commands (user_id, key, type, request_hash, reply_sealed, created_at)
		VALUES (?, ?, ?, ?, x'', ?)
		ON CONFLICT (user_id, key) DO UPDATE SET type = excluded.type, request_hash = excluded.request_hash,
			reply_sealed = excluded.reply_sealed, created_at = excluded.created_at
		WHERE commands.created_at <= ?`
	qStoredCommand = `SELECT type, request_hash, reply_sealed FROM commands WHERE user_id = ? AND key = ?`
	qSaveReply     = `UPDATE commands SET reply_sealed = ? WHERE user_id = ? AND key = ?`

	// WebAuthn. The handle is set once: concurrent writers all read back the first.
	qWebAuthnHandle = `INSERT INTO users (id, webauthn_handle, created_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET webauthn_handle = coalesce(users.webauthn_handle, excluded.webauthn_handle)
		RETURNING webauthn_handle`
	qPutChallenge = `INSERT INTO webauthn_challenges (id, user_id, purpose, session_sealed, expires_at, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`
	qTrimChallenges = `DELETE FROM webauthn_challenges WHERE user_id = ? AND purpose = ? AND id NOT IN
		(SELECT id FROM webauthn_challenges WHERE user_id = ? AND purpose = ? ORDER BY created_at DESC, id DESC LIMIT ?)`
	// qTakeChallenge consumes a challenge in the statement that reads it: single use
	// without a lock.
	qTakeChallenge = `DELETE FROM webauthn_challenges WHERE id = ? AND user_id = ? AND purpose = ? AND expires_at > ?
		RETURNING session_sealed`
	qDeleteChallenges = `DELETE FROM webauthn_challenges WHERE user_id = ?`
	qAddCredential    = `INSERT INTO webauthn_credentials (method_id, credential_id, public_key, sign_count, aaguid,
		user_verified, backup_eligible, backup_state, attestation_format, transports, attachment)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (credential_id) DO NOTHING`
	qCredentials = `SELECT m.id, m.label, m.entry_point, m.created_at, m.last_used_at, c.credential_id, c.public_key,
		c.sign_count, c.aaguid, c.user_verified, c.backup_eligible, c.backup_state, c.attestation_format,
		c.transports, c.attachment, c.flagged_at
		FROM methods m JOIN webauthn_credentials c ON c.method_id = m.id
		WHERE m.user_id = ? AND m.verified = 1`
	// qAdvanceSignCount is the counter rule of WebAuthn §7.2 step 21 in one statement:
	// only upward (or zero staying zero), never for a flagged credential.
	qAdvanceSignCount = `UPDATE webauthn_credentials SET sign_count = ?, backup_state = ?
		WHERE method_id = ? AND flagged_at IS NULL AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`
	qFlagCredential = `UPDATE webauthn_credentials SET flagged_at = ? WHERE method_id = ? AND flagged_at IS NULL`

	qQueueNotification = `INSERT INTO notify_outbox (msg_id, subject, body_sealed, created_at) VALUES (?, ?, ?, ?)`
	qNotifications     = `SELECT id, msg_id, subject, body_sealed, created_at FROM notify_outbox WHERE id > ? ORDER BY id LIMIT ?`

	qChainHead   = `SELECT seq, hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)`
	qAppendAudit = `INSERT INTO audit_log
		(seq, event_id, type, user_id, actor, entry_point, source, body, key_id, prev_hash, hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	auditColumns = `seq, event_id, type, user_id, actor, entry_point, source, body, key_id, prev_hash, hash, created_at, published_at IS NOT NULL`
	// qAuditFrom is what the relay publishes: not the chain's columns, which only
	// Verify reads.
	qAuditFrom        = `SELECT ` + outboxColumns + ` FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?`
	outboxColumns     = `seq, event_id, type, user_id, body, created_at`
	qAuditWalk        = `SELECT ` + auditColumns + ` FROM audit_log ORDER BY seq`
	qMarkPublished    = `UPDATE audit_log SET published_at = ? WHERE seq BETWEEN ? AND ? AND published_at IS NULL`
	qFirstUnpublished = `SELECT coalesce(
		(SELECT seq FROM audit_log WHERE published_at IS NULL ORDER BY seq LIMIT 1),
		(SELECT max(seq) + 1 FROM audit_log), 1)`
	qPublishedFrom = `SELECT count(*) FROM audit_log WHERE seq >= ? AND published_at IS NOT NULL`
	qEventID       = `SELECT event_id FROM audit_log WHERE seq = ?`
	qBacklog       = `SELECT count(*),
		(SELECT created_at FROM audit_log WHERE published_at IS NULL ORDER BY seq LIMIT 1)
		FROM audit_log WHERE published_at IS NULL`
	qNotifyBacklog = `SELECT count(*), min(created_at) FROM notify_outbox`

	qEventCounts = `SELECT type, count(*) FROM audit_log WHERE created_at BETWEEN ? AND ? GROUP BY type`
	qAdoption    = `SELECT count(*), count(*) FILTER (WHERE mfa_signin_enabled = 1),
		(SELECT count(DISTINCT user_id) FROM methods WHERE verified = 1)
		FROM users`
	qMethodsByKind = `SELECT kind, count(*) FROM methods WHERE verified = 1 GROUP BY kind`
	qLockoutCount  = `SELECT count(*) FROM users WHERE locked_until > ? OR failed_attempts >= ?`
	qLockouts      = `SELECT id, locked_until, failed_attempts, failed_attempts >= ? FROM users
		WHERE locked_until > ? OR failed_attempts >= ? ORDER BY failed_attempts >= ? DESC, locked_until DESC, id LIMIT ?`

	// The key id of a sealed value is its bytes 2–9 (channels/seal.go).
	qKeyUsage = `
		SELECT ?, lower(hex(substr(secret_enc, 2, 8))), count(*) FROM methods WHERE secret_enc IS NOT NULL GROUP BY 2
		UNION ALL SELECT ?, lower(hex(substr(destination_enc, 2, 8))), count(*) FROM methods WHERE destination_enc IS NOT NULL GROUP BY 2
		UNION ALL SELECT ?, key_id, count(*) FROM backup_codes GROUP BY 2
		UNION ALL SELECT ?, key_id, count(*) FROM pending_codes GROUP BY 2
		UNION ALL SELECT ?, lower(hex(substr(reply_sealed, 2, 8))), count(*) FROM commands GROUP BY 2
		UNION ALL SELECT ?, lower(hex(substr(body_sealed, 2, 8))), count(*) FROM notify_outbox GROUP BY 2
		UNION ALL SELECT ?, lower(hex(substr(value, 2, 8))), count(*) FROM store_meta WHERE name = 'key_canary' GROUP BY 2
		UNION ALL SELECT ?, lower(hex(substr(session_sealed, 2, 8))), count(*) FROM webauthn_challenges GROUP BY 2`
	qStaleMethods = `SELECT ` + methodColumns + ` FROM methods WHERE id > ?
		AND ((secret_enc IS NOT NULL AND lower(hex(substr(secret_enc, 2, 8))) != ?)
		  OR (destination_enc IS NOT NULL AND lower(hex(substr(destination_enc, 2, 8))) != ?))
		ORDER BY id LIMIT ?`
	qResealMethod = `UPDATE methods SET secret_enc = ?, destination_enc = ? WHERE id = ?`

	qMeta    = `SELECT value FROM store_meta WHERE name = ?`
	qSetMeta = `INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`

	qSweepReplies = `DELETE FROM commands WHERE (user_id, key) IN
		(SELECT user_id, key FROM commands WHERE created_at < ? LIMIT ?)`
	qSweepPending = `DELETE FROM methods WHERE id IN
		(SELECT id FROM methods WHERE verified = 0 AND expires_at < ? LIMIT ?)`
	qSweepCodes = `DELETE FROM pending_codes WHERE method_id IN
		(SELECT method_id FROM pending_codes WHERE expires_at < ? LIMIT ?)`
	qSweepSends = `DELETE FROM code_sends WHERE rowid IN
		(SELECT rowid FROM code_sends WHERE sent_at < ? LIMIT ?)`
	qSweepChallenges = `DELETE FROM webauthn_challenges WHERE id IN
		(SELECT id FROM webauthn_challenges WHERE expires_at < ? LIMIT ?)`

	qTables = `SELECT name FROM sqlite_schema WHERE type = 'table'
		AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY name`

	qHasSequences = `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_sequence'`
	qSequences    = `SELECT name, seq FROM sqlite_sequence`

	qWritable = `INSERT INTO store_meta (name, value) VALUES ('readiness', CAST(CAST(unixepoch('subsec') AS TEXT) AS BLOB))
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`
)
