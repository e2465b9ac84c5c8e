package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// tx is a transaction of the store on one connection. Appended events wait in pending
// until the batch's end, when they are linked into the chain (Write).
type tx struct {
	*conn
	pending []mfa.Event
}

var _ channels.Tx = (*tx)(nil)

// changed runs a statement and reports whether it changed a row.
func (t *tx) changed(ctx context.Context, query string, args ...any) (bool, error) {
	res, err := t.exec(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func optionalTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// Users.

func (t *tx) User(ctx context.Context, id string) (channels.User, error) {
	u := channels.User{ID: id}
	var locked int64
	err := t.queryRow(ctx, qUser, id).Scan(&u.SignInEnabled, &u.FailedAttempts, &locked)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return channels.User{}, fmt.Errorf("read user: %w", err)
	}
	u.LockedUntil = fromMS(locked)
	return u, nil
}

func (t *tx) EnsureUser(ctx context.Context, id string, now time.Time) error {
	if _, err := t.exec(ctx, qEnsureUser, id, ms(now), ms(now)); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

func (t *tx) SetSignIn(ctx context.Context, id string, on bool, now time.Time) (bool, error) {
	ok, err := t.changed(ctx, qSetSignIn, on, ms(now), id, on)
	if err != nil {
		return false, fmt.Errorf("set MFA sign-in: %w", err)
	}
	return ok, nil
}

func (t *tx) AddFailure(ctx context.Context, id string, now time.Time) (int, time.Time, error) {
	var (
		n      int
		locked int64
	)
	if err := t.queryRow(ctx, qAddFailure, id, ms(now), ms(now)).Scan(&n, &locked); err != nil {
		return 0, time.Time{}, fmt.Errorf("count failed attempt: %w", err)
	}
	return n, fromMS(locked), nil
}

func (t *tx) LockUntil(ctx context.Context, id string, until, now time.Time) error {
	if _, err := t.exec(ctx, qLockUntil, ms(until), ms(now), id); err != nil {
		return fmt.Errorf("lock user: %w", err)
	}
	return nil
}

func (t *tx) ResetFailures(ctx context.Context, id string, now time.Time) error {
	if _, err := t.exec(ctx, qResetFailures, ms(now), id); err != nil {
		return fmt.Errorf("reset failed attempts: %w", err)
	}
	return nil
}

func (t *tx) ClearLockout(ctx context.Context, id string, now time.Time) error {
	if _, err := t.exec(ctx, qClearLockout, ms(now), id); err != nil {
		return fmt.Errorf("clear lock: %w", err)
	}
	return nil
}

// Methods.

type scanner interface{ Scan(...any) error }

func scanMethod(row scanner, head ...any) (channels.Method, error) {
	var (
		m       channels.Method
		created int64
	)
	dest := append(head, &m.ID, &m.UserID, &m.Kind, &m.Label, &m.SecretEnc, &m.DestEnc, &m.Hint, &m.Verified,
		&m.EntryPoint, &m.LastUsedStep, &m.Algorithm, &m.Digits, &m.Period, &created)
	if err := row.Scan(dest...); err != nil {
		return channels.Method{}, err
	}
	m.CreatedAt = fromMS(created)
	return m, nil
}

func (t *tx) methods(ctx context.Context, query string, args ...any) ([]channels.Method, error) {
	rows, err := t.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query methods: %w", err)
	}
	defer rows.Close()
	var out []channels.Method
	for rows.Next() {
		m, err := scanMethod(rows)
		if err != nil {
			return nil, fmt.Errorf("scan method: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query methods: %w", err)
	}
	return out, nil
}

func (t *tx) Methods(ctx context.Context, userID string, kind mfa.Kind) ([]channels.Method, error) {
	if kind == "" {
		all, err := t.methods(ctx, qMethodsAll, userID)
		slices.SortFunc(all, func(a, b channels.Method) int { return cmp.Compare(a.ID, b.ID) })
		return all, err
	}
	return t.methods(ctx, qMethodsOfKind, userID, string(kind))
}

func (t *tx) UserAndMethods(ctx context.Context, userID string) (channels.User, []channels.Method, error) {
	u, err := t.User(ctx, userID)
	if err != nil {
		return channels.User{}, nil, err
	}
	ms, err := t.Methods(ctx, userID, "")
	return u, ms, err
}

func (t *tx) PendingMethod(ctx context.Context, userID string, kind mfa.Kind, id *int64, now time.Time) (channels.Method, bool, error) {
	var (
		found []channels.Method
		err   error
	)
	if id != nil {
		found, err = t.methods(ctx, qPendingByID, userID, string(kind), ms(now), *id)
	} else {
		found, err = t.methods(ctx, qPendingLatest, userID, string(kind), ms(now))
	}
	if err != nil || len(found) == 0 {
		return channels.Method{}, false, err
	}
	return found[0], true, nil
}

func (t *tx) MethodByID(ctx context.Context, id int64) (channels.Method, bool, error) {
	m, err := scanMethod(t.queryRow(ctx, qMethodByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return channels.Method{}, false, nil
	}
	if err != nil {
		return channels.Method{}, false, fmt.Errorf("read method %d: %w", id, err)
	}
	return m, true, nil
}

func (t *tx) CountVerified(ctx context.Context, userID string) (map[mfa.Kind]int, error) {
	rows, err := t.query(ctx, qCountVerified, userID)
	if err != nil {
		return nil, fmt.Errorf("count methods: %w", err)
	}
	defer rows.Close()
	out := map[mfa.Kind]int{}
	for rows.Next() {
		var (
			k mfa.Kind
			n int
		)
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count methods: %w", err)
		}
		out[k] = n
	}
	return out, rows.Err()
}

func (t *tx) InsertMethod(ctx context.Context, m channels.NewMethod) (int64, error) {
	alg := m.Algorithm
	if alg == "" {
		alg = "SHA1" // the column's default: the profile of a method that is not TOTP
	}
	digits, period := m.Digits, m.Period
	if digits == 0 {
		digits = 6
	}
	if period == 0 {
		period = 30
	}
	res, err := t.exec(ctx, qInsertMethod, m.UserID, string(m.Kind), m.Label, m.SecretEnc, m.DestEnc, m.Hint,
		m.EntryPoint, alg, digits, period, ms(m.CreatedAt), ms(m.ExpiresAt))
	if err != nil {
		return 0, fmt.Errorf("store pending %s method: %w", m.Kind, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("pending method id: %w", err)
	}
	return id, nil
}

func (t *tx) MarkVerified(ctx context.Context, id int64, now time.Time, step int64, limit int) (bool, error) {
	ok, err := t.changed(ctx, qMarkVerified, ms(now), step, id, limit, limit)
	if err != nil {
		return false, fmt.Errorf("verify method %d: %w", id, err)
	}
	return ok, nil
}

func (t *tx) DeletePending(ctx context.Context, userID string, kind mfa.Kind) ([]channels.Method, error) {
	gone, err := t.methods(ctx, qPendingOfKind, userID, string(kind))
	if err != nil || len(gone) == 0 {
		return nil, err
	}
	if _, err := t.exec(ctx, qDeletePending, userID, string(kind)); err != nil {
		return nil, fmt.Errorf("discard pending %s: %w", kind, err)
	}
	return gone, nil
}

func (t *tx) DeleteMethod(ctx context.Context, id int64) error {
	if _, err := t.exec(ctx, qDeleteMethod, id); err != nil {
		return fmt.Errorf("delete method %d: %w", id, err)
	}
	return nil
}

func (t *tx) ClaimStep(ctx context.Context, id, step int64, now time.Time) (bool, error) {
	ok, err := t.changed(ctx, qClaimStep, step, ms(now), id, step)
	if err != nil {
		return false, fmt.Errorf("record TOTP step: %w", err)
	}
	return ok, nil
}

func (t *tx) TouchMethod(ctx context.Context, id int64, now time.Time) error {
	if _, err := t.exec(ctx, qTouchMethod, ms(now), id); err != nil {
		return fmt.Errorf("record method use: %w", err)
	}
	return nil
}

func (t *tx) ListMethods(ctx context.Context, userID string, kind mfa.Kind) ([]mfa.Method, error) {
	rows, err := t.query(ctx, qListMethods, userID, string(kind), string(kind))
	if err != nil {
		return nil, fmt.Errorf("list methods: %w", err)
	}
	defer rows.Close()
	out := []mfa.Method{}
	for rows.Next() {
		var (
			m                    mfa.Method
			created              int64
			verifiedAt, lastUsed sql.NullInt64
		)
		if err := rows.Scan(&m.ID, &m.Kind, &m.Label, &m.Destination, &m.EntryPoint, &created, &verifiedAt, &lastUsed); err != nil {
			return nil, fmt.Errorf("scan method: %w", err)
		}
		m.Verified = true
		m.CreatedAt = fromMS(created)
		m.VerifiedAt = optionalTime(verifiedAt)
		m.LastUsedAt = optionalTime(lastUsed)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list methods: %w", err)
	}
	return out, nil
}

// Backup codes.

func (t *tx) ReplaceBackupCodes(ctx context.Context, userID string, codes []channels.CodeHash, now time.Time) (int, error) {
	replaced, err := t.DeleteBackupCodes(ctx, userID)
	if err != nil {
		return 0, err
	}
	for _, c := range codes {
		if _, err := t.exec(ctx, qInsertBackupCode, userID, c.KeyID, c.Sum, ms(now)); err != nil {
			return 0, fmt.Errorf("store backup code: %w", err)
		}
	}
	return replaced, nil
}

func (t *tx) DeleteBackupCodes(ctx context.Context, userID string) (int, error) {
	res, err := t.exec(ctx, qDeleteBackupCodes, userID)
	if err != nil {
		return 0, fmt.Errorf("delete backup codes: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *tx) UnusedBackupCodes(ctx context.Context, userID string) ([]channels.BackupCode, error) {
	rows, err := t.query(ctx, qUnusedBackupCodes, userID)
	if err != nil {
		return nil, fmt.Errorf("read backup codes: %w", err)
	}
	defer rows.Close()
	var out []channels.BackupCode
	for rows.Next() {
		var c channels.BackupCode
		if err := rows.Scan(&c.ID, &c.KeyID, &c.Sum); err != nil {
			return nil, fmt.Errorf("scan backup code: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read backup codes: %w", err)
	}
	return out, nil
}

func (t *tx) SpendBackupCode(ctx context.Context, id int64, now time.Time) (bool, error) {
	ok, err := t.changed(ctx, qSpendBackupCode, ms(now), id)
	if err != nil {
		return false, fmt.Errorf("spend backup code: %w", err)
	}
	return ok, nil
}

func (t *tx) BackupCodeCounts(ctx context.Context, userID string) (int, int, error) {
	var total, remaining int
	if err := t.queryRow(ctx, qBackupCodeCounts, userID).Scan(&total, &remaining); err != nil {
		return 0, 0, fmt.Errorf("count backup codes: %w", err)
	}
	return total, remaining, nil
}

// One-time codes.

func (t *tx) PutCode(ctx context.Context, c channels.PendingCode) error {
	_, err := t.exec(ctx, qPutCode, c.MethodID, c.Purpose, c.Hash.KeyID, c.Hash.Sum, ms(c.ExpiresAt), ms(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("store one-time code: %w", err)
	}
	return nil
}

func (t *tx) OutstandingCodes(ctx context.Context, userID, purpose string, kind mfa.Kind, now time.Time) ([]channels.OutstandingCode, error) {
	rows, err := t.query(ctx, qOutstandingCodes, userID, purpose, ms(now), string(kind), string(kind))
	if err != nil {
		return nil, fmt.Errorf("read one-time codes: %w", err)
	}
	defer rows.Close()
	var out []channels.OutstandingCode
	for rows.Next() {
		var oc channels.OutstandingCode
		m, err := scanMethod(rows, &oc.Purpose, &oc.Hash.KeyID, &oc.Hash.Sum)
		if err != nil {
			return nil, fmt.Errorf("scan one-time code: %w", err)
		}
		oc.Method = m
		out = append(out, oc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read one-time codes: %w", err)
	}
	return out, nil
}

func (t *tx) SpendCode(ctx context.Context, methodID int64, sum []byte) (bool, error) {
	ok, err := t.changed(ctx, qSpendCode, methodID, sum)
	if err != nil {
		return false, fmt.Errorf("spend code: %w", err)
	}
	return ok, nil
}

func (t *tx) TakeSendSlot(ctx context.Context, userID string, now time.Time, window time.Duration, limit int) (bool, time.Time, error) {
	since := ms(now.Add(-window))
	ok, err := t.changed(ctx, qTakeSendSlot, userID, ms(now), userID, since, limit)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("take a code slot: %w", err)
	}
	if ok {
		return true, time.Time{}, nil
	}
	var oldest sql.NullInt64
	if err := t.queryRow(ctx, qOldestSend, userID, since).Scan(&oldest); err != nil {
		return false, time.Time{}, fmt.Errorf("read oldest code sent: %w", err)
	}
	return false, time.UnixMilli(oldest.Int64).Add(window), nil
}

// Idempotency.

func (t *tx) ReserveCommand(ctx context.Context, userID, key, typ string, hash []byte, now time.Time, window time.Duration) (channels.StoredCommand, bool, error) {
	reserved, err := t.changed(ctx, qReserveCommand, userID, key, typ, hash, ms(now), ms(now.Add(-window)))
	if err != nil {
		return channels.StoredCommand{}, false, fmt.Errorf("reserve idempotency key: %w", err)
	}
	if reserved {
		return channels.StoredCommand{}, false, nil
	}
	var c channels.StoredCommand
	if err := t.queryRow(ctx, qStoredCommand, userID, key).Scan(&c.Type, &c.RequestHash, &c.ReplySealed); err != nil {
		return channels.StoredCommand{}, false, fmt.Errorf("read idempotency key: %w", err)
	}
	return c, true, nil
}

func (t *tx) SaveReply(ctx context.Context, userID, key string, sealed []byte) error {
	if _, err := t.exec(ctx, qSaveReply, sealed, userID, key); err != nil {
		return fmt.Errorf("store idempotent reply: %w", err)
	}
	return nil
}

// WebAuthn.

func (t *tx) WebAuthnHandle(ctx context.Context, userID string, candidate []byte, now time.Time) ([]byte, error) {
	var h []byte
	if err := t.queryRow(ctx, qWebAuthnHandle, userID, candidate, ms(now), ms(now)).Scan(&h); err != nil {
		return nil, fmt.Errorf("read WebAuthn user handle: %w", err)
	}
	return h, nil
}

func (t *tx) PutChallenge(ctx context.Context, ch channels.Challenge, keep int) error {
	_, err := t.exec(ctx, qPutChallenge, ch.ID, ch.UserID, ch.Purpose, ch.SessionSealed, ms(ch.ExpiresAt), ms(ch.CreatedAt))
	if err != nil {
		return fmt.Errorf("store WebAuthn challenge: %w", err)
	}
	if _, err := t.exec(ctx, qTrimChallenges, ch.UserID, ch.Purpose, ch.UserID, ch.Purpose, keep); err != nil {
		return fmt.Errorf("trim WebAuthn challenges: %w", err)
	}
	return nil
}

func (t *tx) TakeChallenge(ctx context.Context, userID, id, purpose string, now time.Time) ([]byte, bool, error) {
	var sealed []byte
	err := t.queryRow(ctx, qTakeChallenge, id, userID, purpose, ms(now)).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("take WebAuthn challenge: %w", err)
	}
	return sealed, true, nil
}

func (t *tx) DeleteChallenges(ctx context.Context, userID string) (int, error) {
	res, err := t.exec(ctx, qDeleteChallenges, userID)
	if err != nil {
		return 0, fmt.Errorf("delete WebAuthn challenges: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (t *tx) AddCredential(ctx context.Context, methodID int64, c channels.WebAuthnCredential) (bool, error) {
	ok, err := t.changed(ctx, qAddCredential, methodID, c.CredentialID, c.PublicKey, int64(c.SignCount), c.AAGUID,
		c.UserVerified, c.BackupEligible, c.BackupState, c.AttestationFormat, strings.Join(c.Transports, ","), c.Attachment)
	if err != nil {
		return false, fmt.Errorf("store WebAuthn credential: %w", err)
	}
	return ok, nil
}

func (t *tx) Credentials(ctx context.Context, userID string) ([]channels.WebAuthnCredential, error) {
	rows, err := t.query(ctx, qCredentials, userID)
	if err != nil {
		return nil, fmt.Errorf("read WebAuthn credentials: %w", err)
	}
	defer rows.Close()
	var out []channels.WebAuthnCredential
	for rows.Next() {
		var (
			c                 channels.WebAuthnCredential
			created, count    int64
			lastUsed, flagged sql.NullInt64
			transports        string
		)
		err := rows.Scan(&c.MethodID, &c.Label, &c.EntryPoint, &created, &lastUsed, &c.CredentialID, &c.PublicKey,
			&count, &c.AAGUID, &c.UserVerified, &c.BackupEligible, &c.BackupState, &c.AttestationFormat,
			&transports, &c.Attachment, &flagged)
		if err != nil {
			return nil, fmt.Errorf("scan WebAuthn credential: %w", err)
		}
		c.CreatedAt = fromMS(created)
		c.LastUsedAt = optionalTime(lastUsed)
		c.SignCount = uint32(count)
		if transports != "" {
			c.Transports = strings.Split(transports, ",")
		}
		if flagged.Valid {
			c.FlaggedAt = fromMS(flagged.Int64)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read WebAuthn credentials: %w", err)
	}
	// In id order, as registered; sorted here, not in SQL: with methods_by_user
	// holding kind before id, an ORDER BY would sort in a temporary B-tree.
	slices.SortFunc(out, func(a, b channels.WebAuthnCredential) int { return cmp.Compare(a.MethodID, b.MethodID) })
	return out, nil
}

func (t *tx) AdvanceSignCount(ctx context.Context, methodID int64, count uint32, backupState bool) (bool, error) {
	n := int64(count)
	ok, err := t.changed(ctx, qAdvanceSignCount, n, backupState, methodID, n, n)
	if err != nil {
		return false, fmt.Errorf("record WebAuthn sign count: %w", err)
	}
	return ok, nil
}

func (t *tx) FlagCredential(ctx context.Context, methodID int64, now time.Time) (bool, error) {
	ok, err := t.changed(ctx, qFlagCredential, ms(now), methodID)
	if err != nil {
		return false, fmt.Errorf("flag WebAuthn credential: %w", err)
	}
	return ok, nil
}

func (t *tx) QueueNotification(ctx context.Context, n channels.QueuedNotification) error {
	if _, err := t.exec(ctx, qQueueNotification, n.MsgID, n.Subject, n.BodySealed, ms(n.CreatedAt)); err != nil {
		return fmt.Errorf("queue notification: %w", err)
	}
	return nil
}

// Audit.

func (t *tx) Append(_ context.Context, ev mfa.Event) error {
	t.pending = append(t.pending, ev)
	return nil
}

func (t *tx) QueryAudit(ctx context.Context, q mfa.AuditQuery) (mfa.AuditPage, error) {
	limit := audit.PageLimit(q)
	var (
		where = []string{"seq > ?"}
		args  = []any{max(q.Cursor, 0)}
	)
	// A user filter walks the (user_id, seq) index and a type filter the (type, seq)
	// index, so a page costs its own size plus the rows the other filters skip.
	if q.UserID != "" {
		where = append(where, "user_id = ?")
		args = append(args, q.UserID)
	}
	if q.Type != "" {
		where = append(where, "type = ?")
		args = append(args, q.Type)
	}
	if q.Since > 0 {
		where = append(where, "created_at >= ?")
		args = append(args, q.Since)
	}
	// One row more than the page tells whether another page follows.
	args = append(args, limit+1)
	rows, err := t.query(ctx, `SELECT seq, event_id, type, user_id, actor, entry_point, source,
		body, created_at, published_at IS NOT NULL FROM audit_log WHERE `+strings.Join(where, " AND ")+
		" ORDER BY seq LIMIT ?", args...)
	if err != nil {
		return mfa.AuditPage{}, fmt.Errorf("query audit log: %w", err)
	}
	defer rows.Close()
	page := mfa.AuditPage{Records: make([]mfa.AuditRecord, 0, min(limit, 64))}
	for rows.Next() {
		if len(page.Records) == limit {
			page.NextCursor = page.Records[limit-1].Seq
			break
		}
		var (
			r       mfa.AuditRecord
			body    string
			created int64
		)
		err := rows.Scan(&r.Seq, &r.EventID, &r.Type, &r.UserID, &r.Actor, &r.EntryPoint, &r.Source,
			&body, &created, &r.Published)
		if err != nil {
			return mfa.AuditPage{}, fmt.Errorf("scan audit record: %w", err)
		}
		r.CreatedAt = fromMS(created)
		r.Event = []byte(body)
		page.Records = append(page.Records, r)
	}
	if err := rows.Err(); err != nil {
		return mfa.AuditPage{}, fmt.Errorf("query audit log: %w", err)
	}
	return page, nil
}

// Dashboard reads.

func (t *tx) EventCounts(ctx context.Context, from, to time.Time) (map[string]int, error) {
	rows, err := t.query(ctx, qEventCounts, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			typ string
			n   int
		)
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, fmt.Errorf("scan event count: %w", err)
		}
		out[typ] = n
	}
	return out, rows.Err()
}

func (t *tx) Adoption(ctx context.Context) (mfa.Adoption, error) {
	a := mfa.Adoption{Methods: map[mfa.Kind]int{}}
	if err := t.queryRow(ctx, qAdoption).Scan(&a.UsersSeen, &a.SignInEnabled, &a.UsersWithMethod); err != nil {
		return a, fmt.Errorf("count users: %w", err)
	}
	rows, err := t.query(ctx, qMethodsByKind)
	if err != nil {
		return a, fmt.Errorf("count methods: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind mfa.Kind
			n    int
		)
		if err := rows.Scan(&kind, &n); err != nil {
			return a, fmt.Errorf("scan method count: %w", err)
		}
		a.Methods[kind] = n
	}
	return a, rows.Err()
}

func (t *tx) Lockouts(ctx context.Context, now time.Time, maxFailures, limit int) (mfa.Lockouts, error) {
	l := mfa.Lockouts{Users: []mfa.LockedOutUser{}}
	if err := t.queryRow(ctx, qLockoutCount, ms(now), maxFailures).Scan(&l.Count); err != nil {
		return l, fmt.Errorf("count lockouts: %w", err)
	}
	if l.Count == 0 {
		return l, nil
	}
	rows, err := t.query(ctx, qLockouts, maxFailures, ms(now), maxFailures, maxFailures, limit)
	if err != nil {
		return l, fmt.Errorf("list lockouts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			u     mfa.LockedOutUser
			until int64
		)
		if err := rows.Scan(&u.UserID, &until, &u.FailedAttempts, &u.UntilReset); err != nil {
			return l, fmt.Errorf("scan lockout: %w", err)
		}
		u.LockedUntil = fromMS(until)
		l.Users = append(l.Users, u)
	}
	return l, rows.Err()
}

func (t *tx) OutboxBacklog(ctx context.Context) (mfa.OutboxBacklog, error) {
	var (
		b                  mfa.OutboxBacklog
		auditOld, notifOld sql.NullInt64
	)
	if err := t.queryRow(ctx, qBacklog).Scan(&b.AuditUnpublished, &auditOld); err != nil {
		return b, fmt.Errorf("count unpublished audit records: %w", err)
	}
	if err := t.queryRow(ctx, qNotifyBacklog).Scan(&b.NotificationsQueued, &notifOld); err != nil {
		return b, fmt.Errorf("count queued notifications: %w", err)
	}
	b.AuditOldest = optionalTime(auditOld)
	b.NotificationsOldest = optionalTime(notifOld)
	return b, nil
}

// Key rotation.

func (t *tx) KeyUsage(ctx context.Context) ([]channels.KeyUse, error) {
	rows, err := t.query(ctx, qKeyUsage, channels.RecordSecret, channels.RecordAddress, channels.RecordBackupCode,
		channels.RecordOneTimeCode, channels.RecordReply, channels.RecordNotification, channels.RecordCanary,
		channels.RecordChallenge)
	if err != nil {
		return nil, fmt.Errorf("count sealed records by key: %w", err)
	}
	defer rows.Close()
	var out []channels.KeyUse
	for rows.Next() {
		var u channels.KeyUse
		if err := rows.Scan(&u.Record, &u.KeyID, &u.Count); err != nil {
			return nil, fmt.Errorf("count sealed records by key: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func (t *tx) StaleMethods(ctx context.Context, primary string, after int64, limit int) ([]channels.Method, error) {
	return t.methods(ctx, qStaleMethods, after, primary, primary, limit)
}

func (t *tx) ResealMethod(ctx context.Context, id int64, secretEnc, destEnc []byte) error {
	if _, err := t.exec(ctx, qResealMethod, secretEnc, destEnc, id); err != nil {
		return fmt.Errorf("seal method %d again: %w", id, err)
	}
	return nil
}

// Meta and sweeping.

func (t *tx) Meta(ctx context.Context, name string) ([]byte, bool, error) {
	var v []byte
	err := t.queryRow(ctx, qMeta, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", name, err)
	}
	return v, true, nil
}

func (t *tx) SetMeta(ctx context.Context, name string, value []byte) error {
	if _, err := t.exec(ctx, qSetMeta, name, value); err != nil {
		return fmt.Errorf("record %s: %w", name, err)
	}
	return nil
}

func (t *tx) Sweep(ctx context.Context, now, repliesBefore, sendsBefore time.Time, limit int) error {
	for _, q := range []struct {
		what, query string
		before      time.Time
	}{
		{"idempotent replies", qSweepReplies, repliesBefore},
		{"pending setups", qSweepPending, now},
		{"one-time codes", qSweepCodes, now},
		{"code sends", qSweepSends, sendsBefore},
		{"WebAuthn challenges", qSweepChallenges, now},
	} {
		if _, err := t.exec(ctx, q.query, ms(q.before), limit); err != nil {
			return fmt.Errorf("sweep %s: %w", q.what, err)
		}
	}
	return nil
}
