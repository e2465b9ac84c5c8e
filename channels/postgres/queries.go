package postgres

// Every statement the store runs, by name. Times are Unix milliseconds, as in SQLite.

const (
	// qBeginWrite is the first statement of every write transaction: the settings that
	// bound it (a frozen or vanished worker must not hold the chain head or a user for
	// long), then the per-user locks. Transaction-scoped (set_config local,
	// pg_advisory_xact_lock): nothing outlives the transaction, so a pooler in
	// transaction mode may hand the connection to anyone afterwards. The keys arrive
	// sorted and unnest yields them in array order, so every transaction takes its
	// locks in one global order and two batches never deadlock on them.
	qBeginWrite = `SELECT set_config('lock_timeout', $1, true),
		set_config('idle_in_transaction_session_timeout', $2, true),
		set_config('statement_timeout', $3, true),
		(SELECT count(pg_advisory_xact_lock(k)) FROM unnest($4::bigint[]) AS k)`

	qUser       = `SELECT mfa_signin_enabled, failed_attempts, locked_until FROM users WHERE id = $1`
	qEnsureUser = `INSERT INTO users (id, created_at, updated_at) VALUES ($1, $2, $2) ON CONFLICT (id) DO NOTHING`
	qSetSignIn  = `UPDATE users SET mfa_signin_enabled = $1, updated_at = $2 WHERE id = $3 AND mfa_signin_enabled <> $1`
	qAddFailure = `INSERT INTO users (id, failed_attempts, created_at, updated_at) VALUES ($1, 1, $2, $2)
		ON CONFLICT (id) DO UPDATE SET failed_attempts = users.failed_attempts + 1, updated_at = excluded.updated_at
		RETURNING failed_attempts, locked_until`
	qLockUntil     = `UPDATE users SET locked_until = greatest(locked_until, $1), updated_at = $2 WHERE id = $3`
	qResetFailures = `UPDATE users SET failed_attempts = 0, updated_at = $1 WHERE id = $2 AND failed_attempts <> 0`
	qClearLockout  = `UPDATE users SET failed_attempts = 0, locked_until = 0, updated_at = $1 WHERE id = $2`

	// methodColumns is what scanMethod reads, in its order.
	methodColumns = `id, user_id, kind, label, coalesce(secret_enc, ''::bytea), coalesce(destination_enc, ''::bytea),
		destination_hint, verified, entry_point, last_used_step, algorithm, digits, period, created_at`
	qMethodsOfKind = `SELECT ` + methodColumns + ` FROM methods WHERE user_id = $1 AND verified AND kind = $2 ORDER BY id`
	qMethodsAll    = `SELECT ` + methodColumns + ` FROM methods WHERE user_id = $1 AND verified ORDER BY id`
	// qUserAndMethods: the user's columns on each of its verified methods; no row when
	// it has none (then qUser is asked).
	qUserAndMethods = `SELECT u.mfa_signin_enabled, u.failed_attempts, u.locked_until, m.*
		FROM users u, LATERAL (SELECT ` + methodColumns + ` FROM methods WHERE user_id = u.id AND verified) m
		WHERE u.id = $1 ORDER BY m.id`
	// qPrefetchUsers is qUserAndMethods for many users (Store.attempt); a user with no
	// verified method has no row and is read on its own when asked.
	qPrefetchUsers = `SELECT u.id, u.mfa_signin_enabled, u.failed_attempts, u.locked_until, m.*
		FROM users u, LATERAL (SELECT ` + methodColumns + ` FROM methods WHERE user_id = u.id AND verified) m
		WHERE u.id = ANY($1::text[]) ORDER BY u.id, m.id`
	qPendingLatest = `SELECT ` + methodColumns + ` FROM methods
		WHERE user_id = $1 AND kind = $2 AND NOT verified AND expires_at > $3 ORDER BY id DESC LIMIT 1`
	qPendingByID = `SELECT ` + methodColumns + ` FROM methods
		WHERE user_id = $1 AND kind = $2 AND NOT verified AND expires_at > $3 AND id = $4`
	qPendingOfKind = `SELECT ` + methodColumns + ` FROM methods WHERE user_id = $1 AND kind = $2 AND NOT verified ORDER BY id`
	qMethodByID    = `SELECT ` + methodColumns + ` FROM methods WHERE id = $1`
	qCountVerified = `SELECT kind, count(*) FROM methods WHERE user_id = $1 AND verified GROUP BY kind`
	qInsertMethod  = `INSERT INTO methods
		(user_id, kind, label, secret_enc, destination_enc, destination_hint, verified, entry_point,
		 algorithm, digits, period, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, false, $7, $8, $9, $10, $11, $12) RETURNING id`
	// qMarkVerified enforces the device limit in the statement that verifies. Under
	// READ COMMITTED the count is exact because the transaction holds the user's lock
	// (qBeginWrite) and each statement sees every commit made before it.
	qMarkVerified = `UPDATE methods SET verified = true, verified_at = $1, last_used_step = greatest(last_used_step, $2),
			expires_at = NULL
		WHERE id = $3 AND NOT verified
		  AND ($4 = 0 OR (SELECT count(*) FROM methods v
		                  WHERE v.user_id = methods.user_id AND v.verified AND v.kind = methods.kind) < $4)`
	qDeletePending = `DELETE FROM methods WHERE user_id = $1 AND kind = $2 AND NOT verified`
	qDeleteMethod  = `DELETE FROM methods WHERE id = $1`
	// qClaimStep is safe by itself: a second writer waits for the row and re-checks
	// the condition against the committed step.
	qClaimStep   = `UPDATE methods SET last_used_step = $1, last_used_at = $3 WHERE id = $2 AND last_used_step < $1`
	qTouchMethod = `UPDATE methods SET last_used_at = $1 WHERE id = $2`
	// qListMethods: the rules decide the primary and the order.
	qListMethods = `
		SELECT id, kind, label, destination_hint, entry_point, created_at, verified_at, last_used_at
		FROM methods WHERE user_id = $1 AND verified AND ($2 = '' OR kind = $2)`

	qDeleteBackupCodes = `DELETE FROM backup_codes WHERE user_id = $1`
	qInsertBackupCodes = `INSERT INTO backup_codes (user_id, key_id, code_hash, created_at)
		SELECT $1, k, h, $4 FROM unnest($2::text[], $3::bytea[]) AS c (k, h)`
	qUnusedBackupCodes = `SELECT id, key_id, code_hash FROM backup_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY id`
	qSpendBackupCode   = `UPDATE backup_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL`
	qBackupCodeCounts  = `SELECT count(*), count(*) FILTER (WHERE used_at IS NULL) FROM backup_codes WHERE user_id = $1`

	qPutCode = `INSERT INTO pending_codes (method_id, purpose, key_id, code_hash, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (method_id) DO UPDATE SET purpose = excluded.purpose, key_id = excluded.key_id,
			code_hash = excluded.code_hash, expires_at = excluded.expires_at, created_at = excluded.created_at`
	qOutstandingCodes = `SELECT p.purpose, p.key_id, p.code_hash, m.id, m.user_id, m.kind, m.label,
		coalesce(m.secret_enc, ''::bytea), coalesce(m.destination_enc, ''::bytea), m.destination_hint, m.verified,
		m.entry_point, m.last_used_step, m.algorithm, m.digits, m.period, m.created_at
		FROM pending_codes p JOIN methods m ON m.id = p.method_id
		WHERE m.user_id = $1 AND p.purpose = $2 AND p.expires_at > $3 AND ($4 = '' OR m.kind = $4)
		ORDER BY m.id`
	qSpendCode = `DELETE FROM pending_codes WHERE method_id = $1 AND code_hash = $2`

	// The send limit: one row per code sent, counted over the window, exact under the
	// user's lock.
	qTakeSendSlot = `INSERT INTO code_sends (user_id, sent_at)
		SELECT $1, $2 WHERE (SELECT count(*) FROM code_sends WHERE user_id = $1 AND sent_at > $3) < $4`
	qOldestSend = `SELECT min(sent_at) FROM code_sends WHERE user_id = $1 AND sent_at > $2`

	// qReserveCommand claims a key, taking over one that expired; it changes no row
	// when the key is in use. Safe by itself: the conflicting row is locked and its
	// condition re-checked.
	qReserveCommand = `INSERT INTO commands (user_id, key, type, request_hash, reply_sealed, created_at)
		VALUES ($1, $2, $3, $4, ''::bytea, $5)
		ON CONFLICT (user_id, key) DO UPDATE SET type = excluded.type, request_hash = excluded.request_hash,
			reply_sealed = excluded.reply_sealed, created_at = excluded.created_at
		WHERE commands.created_at <= $6`
	qStoredCommand = `SELECT type, request_hash, reply_sealed FROM commands WHERE user_id = $1 AND key = $2`
	qSaveReply     = `UPDATE commands SET reply_sealed = $1 WHERE user_id = $2 AND key = $3`

	// WebAuthn. The handle is set once: concurrent writers all read back the first (the
	// conflicting row is locked and its committed handle kept).
	qWebAuthnHandle = `INSERT INTO users (id, webauthn_handle, created_at, updated_at) VALUES ($1, $2, $3, $3)
		ON CONFLICT (id) DO UPDATE SET webauthn_handle = coalesce(users.webauthn_handle, excluded.webauthn_handle)
		RETURNING webauthn_handle`
	qPutChallenge = `INSERT INTO webauthn_challenges (id, user_id, purpose, session_sealed, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`
	qTrimChallenges = `DELETE FROM webauthn_challenges WHERE user_id = $1 AND purpose = $2 AND id NOT IN
		(SELECT id FROM webauthn_challenges WHERE user_id = $1 AND purpose = $2 ORDER BY created_at DESC, id DESC LIMIT $3)`
	// qTakeChallenge consumes a challenge in the statement that reads it: of two takes
	// at once, the second finds the row gone once the first commits.
	qTakeChallenge = `DELETE FROM webauthn_challenges WHERE id = $1 AND user_id = $2 AND purpose = $3 AND expires_at > $4
		RETURNING session_sealed`
	qDeleteChallenges = `DELETE FROM webauthn_challenges WHERE user_id = $1`
	qAddCredential    = `INSERT INTO webauthn_credentials (method_id, credential_id, public_key, sign_count, aaguid,
		user_verified, backup_eligible, backup_state, attestation_format, transports, attachment)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (credential_id) DO NOTHING`
	qCredentials = `SELECT m.id, m.label, m.entry_point, m.created_at, m.last_used_at, c.credential_id, c.public_key,
		c.sign_count, c.aaguid, c.user_verified, c.backup_eligible, c.backup_state, c.attestation_format,
		c.transports, c.attachment, c.flagged_at
		FROM methods m JOIN webauthn_credentials c ON c.method_id = m.id
		WHERE m.user_id = $1 AND m.verified ORDER BY m.id`
	// qAdvanceSignCount is the counter rule of WebAuthn §7.2 step 21 in one statement:
	// only upward (or zero staying zero), never for a flagged credential. Safe by
	// itself: a second writer waits for the row and re-checks against the new count.
	qAdvanceSignCount = `UPDATE webauthn_credentials SET sign_count = $1, backup_state = $2
		WHERE method_id = $3 AND flagged_at IS NULL AND (sign_count < $1 OR (sign_count = 0 AND $1 = 0))`
	qFlagCredential = `UPDATE webauthn_credentials SET flagged_at = $1 WHERE method_id = $2 AND flagged_at IS NULL`

	qQueueNotification = `INSERT INTO notify_outbox (msg_id, subject, body_sealed, created_at) VALUES ($1, $2, $3, $4)`
	// qClaimNotifications takes rows no other relay holds: the rows stay locked while
	// this relay publishes them and are deleted in the same transaction, so each goes
	// out once however many workers relay.
	qClaimNotifications = `SELECT id, msg_id, subject, body_sealed, created_at FROM notify_outbox
		WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`
	qDeleteNotifications = `DELETE FROM notify_outbox WHERE id = ANY($1::bigint[])`
	// qBeginRelayTx bounds a notification claim: long enough for a publish window to be
	// acknowledged, short enough that a frozen relay's rows go to another.
	qBeginRelayTx = `SELECT set_config('idle_in_transaction_session_timeout', $1, true)`

	// The chain head, locked at the end of a write transaction.
	qLockHead = `SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`
	// qAppendAudit inserts the batch's records, linked in Go after the head, and moves
	// the head: one statement, one round trip while the head is held.
	qAppendAudit = `WITH records AS (
			INSERT INTO audit_log (seq, event_id, type, user_id, actor, entry_point, source, body, key_id,
				prev_hash, hash, created_at)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
				$7::text[], $8::text[], $9::text[], $10::bytea[], $11::bytea[], $12::bigint[])
		)
		UPDATE audit_head SET seq = $13, hash = $14 WHERE id = 1`
	// qAppendUnchained is qAppendAudit without the head: only for measuring what the
	// head costs (BenchmarkChainHead).
	qAppendUnchained = `INSERT INTO audit_log (seq, event_id, type, user_id, actor, entry_point, source, body, key_id,
			prev_hash, hash, created_at)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
			$7::text[], $8::text[], $9::text[], $10::bytea[], $11::bytea[], $12::bigint[])`

	auditColumns = `seq, event_id, type, user_id, actor, entry_point, source, body, key_id, prev_hash, hash,
		created_at, published_at IS NOT NULL`
	// qAuditFrom is what the relay publishes: not the chain's columns, which only
	// Verify reads.
	qAuditFrom        = `SELECT ` + outboxColumns + ` FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT $2`
	outboxColumns     = `seq, event_id, type, user_id, body, created_at`
	qAuditWalk        = `SELECT ` + auditColumns + ` FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`
	qMarkPublished    = `UPDATE audit_log SET published_at = $1 WHERE seq BETWEEN $2 AND $3 AND published_at IS NULL`
	qFirstUnpublished = `SELECT coalesce(
		(SELECT seq FROM audit_log WHERE published_at IS NULL ORDER BY seq LIMIT 1),
		(SELECT max(seq) + 1 FROM audit_log), 1)`
	qPublishedFrom = `SELECT count(*) FROM audit_log WHERE seq >= $1 AND published_at IS NOT NULL`
	qEventID       = `SELECT event_id FROM audit_log WHERE seq = $1`
	qBacklog       = `SELECT count(*),
		(SELECT created_at FROM audit_log WHERE published_at IS NULL ORDER BY seq LIMIT 1)
		FROM audit_log WHERE published_at IS NULL`
	qNotifyBacklog = `SELECT count(*), min(created_at) FROM notify_outbox`
	auditPage      = `SELECT seq, event_id, type, user_id, actor, entry_point, source, body, created_at,
		published_at IS NOT NULL FROM audit_log WHERE `

	qEventCounts = `SELECT type, count(*) FROM audit_log WHERE created_at BETWEEN $1 AND $2 GROUP BY type`
	qAdoption    = `SELECT count(*), count(*) FILTER (WHERE mfa_signin_enabled),
		(SELECT count(DISTINCT user_id) FROM methods WHERE verified)
		FROM users`
	qMethodsByKind = `SELECT kind, count(*) FROM methods WHERE verified GROUP BY kind`
	qLockoutCount  = `SELECT count(*) FROM users WHERE locked_until > $1 OR failed_attempts >= $2`
	qLockouts      = `SELECT id, locked_until, failed_attempts, failed_attempts >= $1 FROM users
		WHERE locked_until > $2 OR failed_attempts >= $1 ORDER BY failed_attempts >= $1 DESC, locked_until DESC, id LIMIT $3`

	// The key id of a sealed value is its bytes 2–9 (channels/seal.go).
	qKeyUsage = `
		SELECT $1::text, encode(substring(secret_enc FROM 2 FOR 8), 'hex'), count(*) FROM methods WHERE secret_enc IS NOT NULL GROUP BY 2
		UNION ALL SELECT $2, encode(substring(destination_enc FROM 2 FOR 8), 'hex'), count(*) FROM methods WHERE destination_enc IS NOT NULL GROUP BY 2
		UNION ALL SELECT $3, key_id, count(*) FROM backup_codes GROUP BY 2
		UNION ALL SELECT $4, key_id, count(*) FROM pending_codes GROUP BY 2
		UNION ALL SELECT $5, encode(substring(reply_sealed FROM 2 FOR 8), 'hex'), count(*) FROM commands GROUP BY 2
		UNION ALL SELECT $6, encode(substring(body_sealed FROM 2 FOR 8), 'hex'), count(*) FROM notify_outbox GROUP BY 2
		UNION ALL SELECT $7, encode(substring(value FROM 2 FOR 8), 'hex'), count(*) FROM store_meta WHERE name = 'key_canary' GROUP BY 2
		UNION ALL SELECT $8, encode(substring(session_sealed FROM 2 FOR 8), 'hex'), count(*) FROM webauthn_challenges GROUP BY 2`
	qStaleMethods = `SELECT ` + methodColumns + ` FROM methods WHERE id > $1
		AND ((secret_enc IS NOT NULL AND encode(substring(secret_enc FROM 2 FOR 8), 'hex') <> $2)
		  OR (destination_enc IS NOT NULL AND encode(substring(destination_enc FROM 2 FOR 8), 'hex') <> $2))
		ORDER BY id LIMIT $3`
	qResealMethod = `UPDATE methods SET secret_enc = $1, destination_enc = $2 WHERE id = $3`

	qMeta     = `SELECT value FROM store_meta WHERE name = $1`
	qInitMeta = `INSERT INTO store_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`
	qSetMeta  = `INSERT INTO store_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`

	// The sweep takes only rows nobody holds (SKIP LOCKED): with many workers sweeping
	// and writing, it never waits for a user's transaction, so it can never be part of
	// a deadlock, and two sweeps take different rows.
	qSweepReplies = `DELETE FROM commands WHERE (user_id, key) IN
		(SELECT user_id, key FROM commands WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
	qSweepPending = `DELETE FROM methods WHERE id IN
		(SELECT id FROM methods WHERE NOT verified AND expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
	qSweepCodes = `DELETE FROM pending_codes WHERE method_id IN
		(SELECT method_id FROM pending_codes WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
	qSweepChallenges = `DELETE FROM webauthn_challenges WHERE id IN
		(SELECT id FROM webauthn_challenges WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`
	qSweepSends = `DELETE FROM code_sends WHERE ctid IN
		(SELECT ctid FROM code_sends WHERE sent_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`

	qWritable = `INSERT INTO store_meta (name, value) VALUES ('readiness', convert_to(now()::text, 'UTF8'))
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`

	// The relay lease: taken when free or expired, renewed by its holder; epoch counts
	// changes of holder. The database's clock judges expiry.
	qClaimLease = `INSERT INTO relay_lease (name, holder, epoch, expires_at)
		VALUES ($1, $2, 1, now() + make_interval(secs => $3))
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
			epoch = relay_lease.epoch + CASE WHEN relay_lease.holder = excluded.holder THEN 0 ELSE 1 END,
			expires_at = excluded.expires_at
		WHERE relay_lease.holder = excluded.holder OR relay_lease.expires_at < now()
		RETURNING holder, epoch, expires_at`
	qLease        = `SELECT holder, epoch, expires_at, expires_at > now() FROM relay_lease WHERE name = $1`
	qReleaseLease = `UPDATE relay_lease SET expires_at = now() - interval '1 millisecond' WHERE name = $1 AND holder = $2`

	// mfad store copy.
	qTargetUsed = `SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM methods) OR EXISTS (SELECT 1 FROM audit_log)
		OR EXISTS (SELECT 1 FROM commands) OR EXISTS (SELECT 1 FROM notify_outbox) OR EXISTS (SELECT 1 FROM backup_codes)
		OR EXISTS (SELECT 1 FROM store_meta WHERE name NOT IN ('readiness', 'audit_chain_canary'))`
	// qRestartIDs sets the next id of table ($1, one of ours) past both its largest
	// copied id and the largest the source ever gave out ($2).
	qRestartIDs = `SELECT setval(pg_get_serial_sequence($1, 'id'),
		greatest((SELECT coalesce(max(id), 0) FROM methods WHERE $1 = 'methods'),
		         (SELECT coalesce(max(id), 0) FROM backup_codes WHERE $1 = 'backup_codes'),
		         (SELECT coalesce(max(id), 0) FROM notify_outbox WHERE $1 = 'notify_outbox'),
		         $2::bigint) + 1, false)`
	qHeadAfterCopy = `UPDATE audit_head SET seq = l.seq, hash = l.hash
		FROM (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS l WHERE audit_head.id = 1`

	// Migrations. The lock is a session advisory lock on its own connection, held while
	// each migration runs in a transaction of its own; (classid, objid) keys never meet
	// the bigint keys of the user locks.
	qMigrationLock   = `SELECT pg_advisory_lock(1836412004, 1)`
	qMigrationUnlock = `SELECT pg_advisory_unlock(1836412004, 1)`
	qMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL)`
	qAppliedVersion  = `SELECT coalesce(max(version), 0) FROM schema_migrations`
	qRecordMigration = `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`
	qIsTable         = `SELECT to_regclass('schema_migrations') IS NOT NULL`
)
