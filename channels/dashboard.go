package channels

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	mfa "github.com/mfad/mfad"
)

// DashboardWindow is how far back the dashboard counts events.
const DashboardWindow = time.Hour

// dashboardLockouts caps the locked-out users listed; the count is always exact. A
// page of a few dozen is what a person reads; a credential-stuffing wave that locks
// thousands shows in the count and in verify.locked.
const dashboardLockouts = 50

// dashboardStats is the admin dashboard's read. It runs in one read transaction, so
// the counters, the adoption figures and the backlog describe the same instant. Every
// query is bounded by an index: the window by audit_log_by_time, the backlog by
// audit_log_unpublished. Users and methods are scanned (methods through its
// user_id/kind/verified index): tens of milliseconds at a million users, paid once per
// refresh of an open dashboard, which is acceptable for an admin page and not for a
// public one.
func (w *Worker) dashboardStats(ctx context.Context, tx *dbTx, c *call) (any, error) {
	if !c.cmd.Admin {
		return nil, mfa.ErrForbidden
	}
	st := mfa.DashboardStats{From: c.now.Add(-DashboardWindow).UTC(), To: c.now.UTC()}
	var err error
	if st.Events, err = eventCounts(ctx, tx, st.From, st.To); err != nil {
		return nil, err
	}
	if st.Adoption, err = adoption(ctx, tx); err != nil {
		return nil, err
	}
	if st.Lockouts, err = lockouts(ctx, tx, c.now); err != nil {
		return nil, err
	}
	if st.Outbox, err = outboxBacklog(ctx, tx); err != nil {
		return nil, err
	}
	return st, nil
}

// eventCounts counts the audit records of each catalogue type created in [from, to].
// Every type is listed, zero or not, so a chart keeps its shape from one refresh to
// the next and a quiet hour reads as zeros rather than as missing data.
func eventCounts(ctx context.Context, tx *dbTx, from, to time.Time) ([]mfa.EventCount, error) {
	rows, err := tx.QueryContext(ctx,
		"SELECT type, count(*) FROM audit_log WHERE created_at BETWEEN ? AND ? GROUP BY type",
		from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer rows.Close()
	counts := make(map[string]int, len(mfa.EventCatalogue))
	for rows.Next() {
		var (
			typ string
			n   int
		)
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, fmt.Errorf("scan event count: %w", err)
		}
		counts[typ] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	out := make([]mfa.EventCount, 0, len(mfa.EventCatalogue))
	for typ := range mfa.EventCatalogue {
		out = append(out, mfa.EventCount{Type: typ, Count: counts[typ]})
	}
	slices.SortFunc(out, func(a, b mfa.EventCount) int { return strings.Compare(a.Type, b.Type) })
	return out, nil
}

// adoption counts users, users with MFA sign-in on, users with at least one verified
// method, and verified methods by kind. Pending setups are not methods (API.md §0).
func adoption(ctx context.Context, tx *dbTx) (mfa.Adoption, error) {
	a := mfa.Adoption{Methods: map[mfa.Kind]int{mfa.KindTOTP: 0, mfa.KindSMS: 0, mfa.KindEmail: 0}}
	err := tx.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE mfa_signin_enabled = 1),
		(SELECT count(DISTINCT user_id) FROM methods WHERE verified = 1)
		FROM users`).Scan(&a.UsersSeen, &a.SignInEnabled, &a.UsersWithMethod)
	if err != nil {
		return a, fmt.Errorf("count users: %w", err)
	}
	rows, err := tx.QueryContext(ctx, "SELECT kind, count(*) FROM methods WHERE verified = 1 GROUP BY kind")
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
	if err := rows.Err(); err != nil {
		return a, fmt.Errorf("count methods: %w", err)
	}
	return a, nil
}

// lockouts lists the users whose lock has not ended at now, the latest to end first.
func lockouts(ctx context.Context, tx *dbTx, now time.Time) (mfa.Lockouts, error) {
	l := mfa.Lockouts{Users: []mfa.LockedOutUser{}}
	at := now.UnixMilli()
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE locked_until > ?", at).Scan(&l.Count); err != nil {
		return l, fmt.Errorf("count lockouts: %w", err)
	}
	if l.Count == 0 {
		return l, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, locked_until, failed_attempts FROM users
		WHERE locked_until > ? ORDER BY locked_until DESC, id LIMIT ?`, at, dashboardLockouts)
	if err != nil {
		return l, fmt.Errorf("list lockouts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			u     mfa.LockedOutUser
			until int64
		)
		if err := rows.Scan(&u.UserID, &until, &u.FailedAttempts); err != nil {
			return l, fmt.Errorf("scan lockout: %w", err)
		}
		u.LockedUntil = time.UnixMilli(until).UTC()
		l.Users = append(l.Users, u)
	}
	if err := rows.Err(); err != nil {
		return l, fmt.Errorf("list lockouts: %w", err)
	}
	return l, nil
}

// outboxBacklog counts what the two outboxes still hold: audit records without
// published_at (the relay has not had JetStream's ack yet) and notification rows (the
// worker deletes each once MFA_NOTIFY has acknowledged it), with the age of the oldest.
func outboxBacklog(ctx context.Context, tx *dbTx) (mfa.OutboxBacklog, error) {
	var (
		b                  mfa.OutboxBacklog
		auditOld, notifOld sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, `SELECT count(*),
		(SELECT created_at FROM audit_log WHERE published_at IS NULL ORDER BY seq LIMIT 1)
		FROM audit_log WHERE published_at IS NULL`).Scan(&b.AuditUnpublished, &auditOld)
	if err != nil {
		return b, fmt.Errorf("count unpublished audit records: %w", err)
	}
	err = tx.QueryRowContext(ctx, "SELECT count(*), min(created_at) FROM notify_outbox").
		Scan(&b.NotificationsQueued, &notifOld)
	if err != nil {
		return b, fmt.Errorf("count queued notifications: %w", err)
	}
	b.AuditOldest = optionalTime(auditOld)
	b.NotificationsOldest = optionalTime(notifOld)
	return b, nil
}
