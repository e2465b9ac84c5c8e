package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// tx is a transaction of the store. Appended events wait in pending until the batch's
// end, when they are linked into the chain under the head lock (Write).
//
// failed keeps the first error PostgreSQL (or the connection) gave: after one, the
// transaction is aborted whatever the unit does with the error, and Write must know
// whether it was the unit's own fault or the database's.
type tx struct {
	raw     querier
	pending []mfa.Event
	failed  error

	// prefetched are users and their verified methods read with BEGIN for the units
	// that start with UserAndMethods (Store.attempt). By Unit's contract only a unit of
	// a user writes that user's rows, so an entry holds until a statement runs in a
	// unit of its user, or in a unit of no user (which may touch anyone's).
	prefetched map[string]userAndMethods
	unitUser   string // the user of the unit running

	// speculate lets ClaimStep and DeleteMethod answer from what the unit read and
	// send their statement in front of the transaction's next round trip (a write
	// batch's first attempt). read are the methods the running unit read with
	// UserAndMethods (id → last used TOTP step), until a statement runs that may change
	// them; deferred are the writes answered and not sent yet. Each must change exactly
	// one row when it is sent; when one does not, the prediction was wrong and the batch
	// runs again without speculating (errMispredicted).
	speculate bool
	read      map[int64]int64
	deferred  []deferredWrite
}

type deferredWrite struct {
	query string
	args  []any
}

// errMispredicted: a write answered from the unit's read changed no row when it was
// sent (a writer outside the user's lock got there first). Nothing is wrong with the
// units; Store.Write runs the batch again without speculation.
var errMispredicted = fmt.Errorf("%w: a write predicted from the unit's read changed no row", channels.ErrRerun)

type userAndMethods struct {
	user    channels.User
	methods []channels.Method
}

// begin reads the answers of the batch that began the transaction: BEGIN, the locks
// and, when prefetch, the rows of qPrefetchUsers.
func (t *tx) begin(ctx context.Context, br pgx.BatchResults, prefetch bool) error {
	for range 2 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	if prefetch {
		t.prefetched = map[string]userAndMethods{}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		for rows.Next() {
			var (
				id     string
				u      channels.User
				locked int64
			)
			m, err := scanMethod(rows, &id, &u.SignInEnabled, &u.FailedAttempts, &locked)
			if err != nil {
				rows.Close()
				br.Close()
				return err
			}
			p := t.prefetched[id]
			u.ID, u.LockedUntil = id, fromMS(locked)
			p.user = u
			p.methods = append(p.methods, m)
			t.prefetched[id] = p
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// startUnit is called before each unit runs.
func (t *tx) startUnit(userID string) {
	t.unitUser = userID
	t.read = nil
	if noUser(userID) {
		t.prefetched = nil
	}
}

// noUser says a unit touches no one user's rows (channels.Unit: an empty id, or a lock
// name starting with NUL); it may touch anyone's.
func noUser(id string) bool { return id == "" || id[0] == 0 }

// stale forgets what was prefetched of the running unit's user: a statement is about
// to run that may change it.
func (t *tx) stale() {
	if t.prefetched != nil {
		delete(t.prefetched, t.unitUser)
	}
	t.read = nil
}

// aside is for statements that touch neither users nor methods (idempotency keys,
// queued notifications): what the running unit read, and what was prefetched of its
// user, stays valid across them. Call the function it returns when they are done.
func (t *tx) aside() (restore func()) {
	p, prefetched := t.prefetched[t.unitUser]
	read := t.read
	return func() {
		if prefetched {
			t.prefetched[t.unitUser] = p
		}
		t.read = read
	}
}

// send runs query with the deferred writes in front of it, in one round trip, and
// returns the results positioned at query's. It fails with errMispredicted when a
// deferred write did not change exactly one row.
func (t *tx) send(ctx context.Context, query string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	n := t.queueDeferred(b)
	b.Queue(query, args...)
	br := t.raw.SendBatch(ctx, b)
	if err := checkDeferred(br, n); err != nil {
		br.Close()
		return nil, err
	}
	return br, nil
}

// queueDeferred queues the deferred writes on b, first, and reports how many.
func (t *tx) queueDeferred(b *pgx.Batch) int {
	for _, w := range t.deferred {
		b.Queue(w.query, w.args...)
	}
	n := len(t.deferred)
	t.deferred = t.deferred[:0]
	return n
}

// checkDeferred reads the results of n deferred writes queued first on br: each must
// have changed exactly one row.
func checkDeferred(br pgx.BatchResults, n int) error {
	var err error
	for range n {
		tag, e := br.Exec()
		if e != nil {
			if unavailable(e) {
				return e
			}
			// A write's own failure belongs to the unit that deferred it, not to the
			// one whose statement came next: the rerun without predictions shows it
			// where it belongs.
			return fmt.Errorf("%w: %w", errMispredicted, e)
		}
		if tag.RowsAffected() != 1 {
			err = errMispredicted
		}
	}
	return err
}

// flush sends the deferred writes in a round trip of their own. COMMIT must never
// share theirs: PostgreSQL would commit before their results were checked.
func (t *tx) flush(ctx context.Context) error {
	if len(t.deferred) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	n := t.queueDeferred(b)
	br := t.raw.SendBatch(ctx, b)
	return t.note(closeBatch(br, checkDeferred(br, n)))
}

// closeBatch closes br, keeping err when there is one.
func closeBatch(br pgx.BatchResults, err error) error {
	if cerr := br.Close(); err == nil {
		return cerr
	}
	return err
}

var _ channels.Tx = (*tx)(nil)

// querier is where a tx's statements go: a pgx.Tx for reads, the connection itself for
// write batches, whose BEGIN and COMMIT travel in the same round trips as their first
// and last statements (Store.attempt).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

func (t *tx) note(err error) error {
	if err == nil || errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if t.failed == nil {
		t.failed = err
	}
	// The rules answer a store that is unavailable with 503, not as their own fault.
	return wrapUnavailable(err)
}

func (t *tx) exec(ctx context.Context, query string, args ...any) (pgconn.CommandTag, error) {
	t.stale()
	if len(t.deferred) == 0 {
		tag, err := t.raw.Exec(ctx, query, args...)
		return tag, t.note(err)
	}
	br, err := t.send(ctx, query, args)
	if err != nil {
		return pgconn.CommandTag{}, t.note(err)
	}
	tag, err := br.Exec()
	return tag, t.note(closeBatch(br, err))
}

// row is a pgx.Row that reports its error to the transaction.
type row struct {
	t *tx
	r pgx.Row
}

func (r row) Scan(dest ...any) error { return r.t.note(r.r.Scan(dest...)) }

func (t *tx) queryRow(ctx context.Context, query string, args ...any) row {
	t.stale()
	if len(t.deferred) == 0 {
		return row{t, t.raw.QueryRow(ctx, query, args...)}
	}
	br, err := t.send(ctx, query, args)
	if err != nil {
		return row{t, failedRow{err}}
	}
	return row{t, batchRow{br}}
}

// batchRow is the row of a statement sent after deferred writes: scanning it also
// closes the batch.
type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	return closeBatch(r.br, r.br.QueryRow().Scan(dest...))
}

type failedRow struct{ err error }

func (r failedRow) Scan(...any) error { return r.err }

// collect runs query and calls scan for each row.
func (t *tx) collect(ctx context.Context, query string, args []any, scan func(pgx.Rows) error) error {
	t.stale()
	if len(t.deferred) > 0 {
		br, err := t.send(ctx, query, args)
		if err != nil {
			return t.note(err)
		}
		rows, err := br.Query()
		if err == nil {
			err = scanRows(rows, scan)
		}
		return t.note(closeBatch(br, err))
	}
	rows, err := t.raw.Query(ctx, query, args...)
	if err != nil {
		return t.note(err)
	}
	return t.note(scanRows(rows, scan))
}

func scanRows(rows pgx.Rows, scan func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// changed runs a statement and reports whether it changed a row.
func (t *tx) changed(ctx context.Context, query string, args ...any) (bool, error) {
	tag, err := t.exec(ctx, query, args...)
	return tag.RowsAffected() > 0, err
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func optionalTime(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := time.UnixMilli(*v).UTC()
	return &t
}

// Users.

func (t *tx) User(ctx context.Context, id string) (channels.User, error) {
	u := channels.User{ID: id}
	var locked int64
	err := t.queryRow(ctx, qUser, id).Scan(&u.SignInEnabled, &u.FailedAttempts, &locked)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return channels.User{}, fmt.Errorf("read user: %w", err)
	}
	u.LockedUntil = fromMS(locked)
	return u, nil
}

func (t *tx) EnsureUser(ctx context.Context, id string, now time.Time) error {
	if _, err := t.exec(ctx, qEnsureUser, id, ms(now)); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

func (t *tx) SetSignIn(ctx context.Context, id string, on bool, now time.Time) (bool, error) {
	ok, err := t.changed(ctx, qSetSignIn, on, ms(now), id)
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
	if err := t.queryRow(ctx, qAddFailure, id, ms(now)).Scan(&n, &locked); err != nil {
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

func scanMethod(r scanner, head ...any) (channels.Method, error) {
	var (
		m       channels.Method
		kind    string
		created int64
	)
	dest := append(head, &m.ID, &m.UserID, &kind, &m.Label, &m.SecretEnc, &m.DestEnc, &m.Hint, &m.Verified,
		&m.EntryPoint, &m.LastUsedStep, &m.Algorithm, &m.Digits, &m.Period, &created)
	if err := r.Scan(dest...); err != nil {
		return channels.Method{}, err
	}
	m.Kind = mfa.Kind(kind)
	m.CreatedAt = fromMS(created)
	// Empty, not absent: what the SQLite store returns for a method without a secret
	// or an address is nil too.
	if len(m.SecretEnc) == 0 {
		m.SecretEnc = nil
	}
	if len(m.DestEnc) == 0 {
		m.DestEnc = nil
	}
	return m, nil
}

func (t *tx) methods(ctx context.Context, query string, args ...any) ([]channels.Method, error) {
	var out []channels.Method
	err := t.collect(ctx, query, args, func(r pgx.Rows) error {
		m, err := scanMethod(r)
		out = append(out, m)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("query methods: %w", err)
	}
	return out, nil
}

func (t *tx) Methods(ctx context.Context, userID string, kind mfa.Kind) ([]channels.Method, error) {
	if kind == "" {
		return t.methods(ctx, qMethodsAll, userID)
	}
	return t.methods(ctx, qMethodsOfKind, userID, string(kind))
}

func (t *tx) UserAndMethods(ctx context.Context, userID string) (channels.User, []channels.Method, error) {
	if p, ok := t.prefetched[userID]; ok && userID == t.unitUser {
		delete(t.prefetched, userID)
		t.readMethods(p.methods)
		return p.user, p.methods, nil
	}
	u := channels.User{ID: userID}
	var (
		locked int64
		out    []channels.Method
	)
	err := t.collect(ctx, qUserAndMethods, []any{userID}, func(r pgx.Rows) error {
		m, err := scanMethod(r, &u.SignInEnabled, &u.FailedAttempts, &locked)
		out = append(out, m)
		return err
	})
	if err != nil {
		return channels.User{}, nil, fmt.Errorf("read user and methods: %w", err)
	}
	if len(out) == 0 {
		u, err := t.User(ctx, userID)
		return u, nil, err
	}
	u.LockedUntil = fromMS(locked)
	if userID == t.unitUser {
		t.readMethods(out) // only under this user's lock may they be predicted
	}
	return u, out, nil
}

// readMethods keeps the methods the running unit read, for ClaimStep and
// DeleteMethod to answer from while no statement has run since.
func (t *tx) readMethods(methods []channels.Method) {
	if !t.speculate || noUser(t.unitUser) {
		return
	}
	t.read = make(map[int64]int64, len(methods))
	for _, m := range methods {
		t.read[m.ID] = m.LastUsedStep
	}
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
	if errors.Is(err, pgx.ErrNoRows) {
		return channels.Method{}, false, nil
	}
	if err != nil {
		return channels.Method{}, false, fmt.Errorf("read method %d: %w", id, err)
	}
	return m, true, nil
}

func (t *tx) CountVerified(ctx context.Context, userID string) (map[mfa.Kind]int, error) {
	out := map[mfa.Kind]int{}
	err := t.collect(ctx, qCountVerified, []any{userID}, func(r pgx.Rows) error {
		var (
			k string
			n int
		)
		err := r.Scan(&k, &n)
		out[mfa.Kind(k)] = n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count methods: %w", err)
	}
	return out, nil
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
	var id int64
	err := t.queryRow(ctx, qInsertMethod, m.UserID, string(m.Kind), m.Label, m.SecretEnc, m.DestEnc, m.Hint,
		m.EntryPoint, alg, digits, period, ms(m.CreatedAt), ms(m.ExpiresAt)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store pending %s method: %w", m.Kind, err)
	}
	return id, nil
}

func (t *tx) MarkVerified(ctx context.Context, id int64, now time.Time, step int64, limit int) (bool, error) {
	ok, err := t.changed(ctx, qMarkVerified, ms(now), step, id, limit)
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
	// A method the unit read is there to delete under the user's lock: the DELETE can
	// wait for the next round trip (send checks it removed the row).
	if _, ok := t.read[id]; ok {
		delete(t.read, id)
		t.deferred = append(t.deferred, deferredWrite{qDeleteMethod, []any{id}})
		return nil
	}
	if _, err := t.exec(ctx, qDeleteMethod, id); err != nil {
		return fmt.Errorf("delete method %d: %w", id, err)
	}
	return nil
}

func (t *tx) ClaimStep(ctx context.Context, id, step int64, now time.Time) (bool, error) {
	// Under the user's lock nobody else moves the step, so the unit's read answers,
	// and the UPDATE can wait for the next round trip (a sign-in then costs none of
	// its own); send checks the answer, and a wrong one reruns the batch.
	if last, ok := t.read[id]; ok && last < step {
		t.read[id] = step
		t.deferred = append(t.deferred, deferredWrite{qClaimStep, []any{step, id, ms(now)}})
		return true, nil
	}
	ok, err := t.changed(ctx, qClaimStep, step, id, ms(now))
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
	out := []mfa.Method{}
	err := t.collect(ctx, qListMethods, []any{userID, string(kind)}, func(r pgx.Rows) error {
		var (
			m                    mfa.Method
			k                    string
			created              int64
			verifiedAt, lastUsed *int64
		)
		if err := r.Scan(&m.ID, &k, &m.Label, &m.Destination, &m.EntryPoint, &created, &verifiedAt, &lastUsed); err != nil {
			return err
		}
		m.Kind = mfa.Kind(k)
		m.Verified = true
		m.CreatedAt = fromMS(created)
		m.VerifiedAt = optionalTime(verifiedAt)
		m.LastUsedAt = optionalTime(lastUsed)
		out = append(out, m)
		return nil
	})
	if err != nil {
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
	keys := make([]string, len(codes))
	sums := make([][]byte, len(codes))
	for i, c := range codes {
		keys[i], sums[i] = c.KeyID, c.Sum
	}
	if _, err := t.exec(ctx, qInsertBackupCodes, userID, keys, sums, ms(now)); err != nil {
		return 0, fmt.Errorf("store backup codes: %w", err)
	}
	return replaced, nil
}

func (t *tx) DeleteBackupCodes(ctx context.Context, userID string) (int, error) {
	tag, err := t.exec(ctx, qDeleteBackupCodes, userID)
	if err != nil {
		return 0, fmt.Errorf("delete backup codes: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func (t *tx) UnusedBackupCodes(ctx context.Context, userID string) ([]channels.BackupCode, error) {
	var out []channels.BackupCode
	err := t.collect(ctx, qUnusedBackupCodes, []any{userID}, func(r pgx.Rows) error {
		var c channels.BackupCode
		err := r.Scan(&c.ID, &c.KeyID, &c.Sum)
		out = append(out, c)
		return err
	})
	if err != nil {
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
	var out []channels.OutstandingCode
	err := t.collect(ctx, qOutstandingCodes, []any{userID, purpose, ms(now), string(kind)}, func(r pgx.Rows) error {
		var oc channels.OutstandingCode
		m, err := scanMethod(r, &oc.Purpose, &oc.Hash.KeyID, &oc.Hash.Sum)
		oc.Method = m
		out = append(out, oc)
		return err
	})
	if err != nil {
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
	ok, err := t.changed(ctx, qTakeSendSlot, userID, ms(now), since, limit)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("take a code slot: %w", err)
	}
	if ok {
		return true, time.Time{}, nil
	}
	var oldest *int64
	if err := t.queryRow(ctx, qOldestSend, userID, since).Scan(&oldest); err != nil {
		return false, time.Time{}, fmt.Errorf("read oldest code sent: %w", err)
	}
	var at int64
	if oldest != nil {
		at = *oldest
	}
	return false, time.UnixMilli(at).Add(window), nil
}

// Idempotency.

func (t *tx) ReserveCommand(ctx context.Context, userID, key, typ string, hash []byte, now time.Time, window time.Duration) (channels.StoredCommand, bool, error) {
	defer t.aside()()
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
	if err := t.queryRow(ctx, qWebAuthnHandle, userID, candidate, ms(now)).Scan(&h); err != nil {
		return nil, fmt.Errorf("read WebAuthn user handle: %w", err)
	}
	return h, nil
}

func (t *tx) PutChallenge(ctx context.Context, ch channels.Challenge, keep int) error {
	_, err := t.exec(ctx, qPutChallenge, ch.ID, ch.UserID, ch.Purpose, ch.SessionSealed, ms(ch.ExpiresAt), ms(ch.CreatedAt))
	if err != nil {
		return fmt.Errorf("store WebAuthn challenge: %w", err)
	}
	if _, err := t.exec(ctx, qTrimChallenges, ch.UserID, ch.Purpose, keep); err != nil {
		return fmt.Errorf("trim WebAuthn challenges: %w", err)
	}
	return nil
}

func (t *tx) TakeChallenge(ctx context.Context, userID, id, purpose string, now time.Time) ([]byte, bool, error) {
	var sealed []byte
	err := t.queryRow(ctx, qTakeChallenge, id, userID, purpose, ms(now)).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("take WebAuthn challenge: %w", err)
	}
	return sealed, true, nil
}

func (t *tx) DeleteChallenges(ctx context.Context, userID string) (int, error) {
	tag, err := t.exec(ctx, qDeleteChallenges, userID)
	if err != nil {
		return 0, fmt.Errorf("delete WebAuthn challenges: %w", err)
	}
	return int(tag.RowsAffected()), nil
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
	var out []channels.WebAuthnCredential
	err := t.collect(ctx, qCredentials, []any{userID}, func(r pgx.Rows) error {
		var (
			c                 channels.WebAuthnCredential
			created, count    int64
			lastUsed, flagged *int64
			transports        string
		)
		if err := r.Scan(&c.MethodID, &c.Label, &c.EntryPoint, &created, &lastUsed, &c.CredentialID, &c.PublicKey,
			&count, &c.AAGUID, &c.UserVerified, &c.BackupEligible, &c.BackupState, &c.AttestationFormat,
			&transports, &c.Attachment, &flagged); err != nil {
			return err
		}
		c.CreatedAt = fromMS(created)
		c.LastUsedAt = optionalTime(lastUsed)
		c.SignCount = uint32(count)
		if transports != "" {
			c.Transports = strings.Split(transports, ",")
		}
		if flagged != nil {
			c.FlaggedAt = fromMS(*flagged)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read WebAuthn credentials: %w", err)
	}
	return out, nil
}

func (t *tx) AdvanceSignCount(ctx context.Context, methodID int64, count uint32, backupState bool) (bool, error) {
	ok, err := t.changed(ctx, qAdvanceSignCount, int64(count), backupState, methodID)
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
	defer t.aside()()
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
		where = []string{"seq > $1"}
		args  = []any{max(q.Cursor, 0)}
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	// A user filter walks the (user_id, seq) index and a type filter the (type, seq)
	// index, so a page costs its own size plus the rows the other filters skip.
	if q.UserID != "" {
		add("user_id =", q.UserID)
	}
	if q.Type != "" {
		add("type =", q.Type)
	}
	if q.Since > 0 {
		add("created_at >=", q.Since)
	}
	// One row more than the page tells whether another page follows.
	args = append(args, limit+1)
	query := auditPage + strings.Join(where, " AND ") + " ORDER BY seq LIMIT $" + strconv.Itoa(len(args))
	page := mfa.AuditPage{Records: make([]mfa.AuditRecord, 0, min(limit, 64))}
	err := t.collect(ctx, query, args, func(r pgx.Rows) error {
		if len(page.Records) == limit {
			page.NextCursor = page.Records[limit-1].Seq
			return nil
		}
		var (
			rec     mfa.AuditRecord
			body    string
			created int64
		)
		if err := r.Scan(&rec.Seq, &rec.EventID, &rec.Type, &rec.UserID, &rec.Actor, &rec.EntryPoint, &rec.Source,
			&body, &created, &rec.Published); err != nil {
			return err
		}
		rec.CreatedAt = fromMS(created)
		rec.Event = []byte(body)
		page.Records = append(page.Records, rec)
		return nil
	})
	if err != nil {
		return mfa.AuditPage{}, fmt.Errorf("query audit log: %w", err)
	}
	return page, nil
}

// Dashboard reads.

func (t *tx) EventCounts(ctx context.Context, from, to time.Time) (map[string]int, error) {
	out := map[string]int{}
	err := t.collect(ctx, qEventCounts, []any{ms(from), ms(to)}, func(r pgx.Rows) error {
		var (
			typ string
			n   int
		)
		err := r.Scan(&typ, &n)
		out[typ] = n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	return out, nil
}

func (t *tx) Adoption(ctx context.Context) (mfa.Adoption, error) {
	a := mfa.Adoption{Methods: map[mfa.Kind]int{}}
	if err := t.queryRow(ctx, qAdoption).Scan(&a.UsersSeen, &a.SignInEnabled, &a.UsersWithMethod); err != nil {
		return a, fmt.Errorf("count users: %w", err)
	}
	err := t.collect(ctx, qMethodsByKind, nil, func(r pgx.Rows) error {
		var (
			kind string
			n    int
		)
		err := r.Scan(&kind, &n)
		a.Methods[mfa.Kind(kind)] = n
		return err
	})
	if err != nil {
		return a, fmt.Errorf("count methods: %w", err)
	}
	return a, nil
}

func (t *tx) Lockouts(ctx context.Context, now time.Time, maxFailures, limit int) (mfa.Lockouts, error) {
	l := mfa.Lockouts{Users: []mfa.LockedOutUser{}}
	if err := t.queryRow(ctx, qLockoutCount, ms(now), maxFailures).Scan(&l.Count); err != nil {
		return l, fmt.Errorf("count lockouts: %w", err)
	}
	if l.Count == 0 {
		return l, nil
	}
	err := t.collect(ctx, qLockouts, []any{maxFailures, ms(now), limit}, func(r pgx.Rows) error {
		var (
			u     mfa.LockedOutUser
			until int64
		)
		if err := r.Scan(&u.UserID, &until, &u.FailedAttempts, &u.UntilReset); err != nil {
			return err
		}
		u.LockedUntil = fromMS(until)
		l.Users = append(l.Users, u)
		return nil
	})
	if err != nil {
		return l, fmt.Errorf("list lockouts: %w", err)
	}
	return l, nil
}

func (t *tx) OutboxBacklog(ctx context.Context) (mfa.OutboxBacklog, error) {
	var (
		b                  mfa.OutboxBacklog
		auditOld, notifOld *int64
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
	var out []channels.KeyUse
	err := t.collect(ctx, qKeyUsage, []any{channels.RecordSecret, channels.RecordAddress, channels.RecordBackupCode,
		channels.RecordOneTimeCode, channels.RecordReply, channels.RecordNotification, channels.RecordCanary,
		channels.RecordChallenge},
		func(r pgx.Rows) error {
			var u channels.KeyUse
			err := r.Scan(&u.Record, &u.KeyID, &u.Count)
			out = append(out, u)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("count sealed records by key: %w", err)
	}
	return out, nil
}

func (t *tx) StaleMethods(ctx context.Context, primary string, after int64, limit int) ([]channels.Method, error) {
	return t.methods(ctx, qStaleMethods, after, primary, limit)
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
	if errors.Is(err, pgx.ErrNoRows) {
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
		{"WebAuthn challenges", qSweepChallenges, now},
		{"code sends", qSweepSends, sendsBefore},
	} {
		if _, err := t.exec(ctx, q.query, ms(q.before), limit); err != nil {
			return fmt.Errorf("sweep %s: %w", q.what, err)
		}
	}
	return nil
}
