package channels

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	mfa "github.com/mfad/mfad"
)

// status is the status read: sign-in flag, verified methods, backup codes.
func (w *Worker) status(ctx context.Context, tx *dbTx, c *call) (any, error) {
	return w.loadStatus(ctx, tx, c.cmd.UserID, c.now)
}

func (w *Worker) loadStatus(ctx context.Context, tx *dbTx, userID string, now time.Time) (mfa.Status, error) {
	u, err := findUser(ctx, tx, userID)
	if err != nil {
		return mfa.Status{}, err
	}
	methods, err := w.listMethods(ctx, tx, userID, "")
	if err != nil {
		return mfa.Status{}, err
	}
	st := mfa.Status{
		UserID:         userID,
		SignInEnabled:  u.SignInEnabled,
		Methods:        methods,
		FailedAttempts: u.FailedAttempts,
	}
	if until := u.lockedUntil(now); !until.IsZero() {
		st.LockedUntil = &until
	}
	err = tx.QueryRowContext(ctx,
		"SELECT count(*), count(*) FILTER (WHERE used_at IS NULL) FROM backup_codes WHERE user_id = ?", userID).
		Scan(&st.BackupCodesTotal, &st.BackupCodesRemaining)
	if err != nil {
		return mfa.Status{}, fmt.Errorf("count backup codes: %w", err)
	}
	return st, nil
}

// listMethods returns the user's verified methods, of one kind or (kind "") all, primary
// first, then newest first. The primary is the TOTP device verified first (ties: the
// smaller id); it is derived on every read, so it moves when that device is removed.
// "IS", not "=": a user with no TOTP device has no primary, and NULL is no bool.
func (w *Worker) listMethods(ctx context.Context, tx *dbTx, userID string, kind mfa.Kind) ([]mfa.Method, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT m.id, m.kind, m.label, m.destination_hint, m.entry_point, m.created_at, m.verified_at, m.last_used_at,
		       m.id IS (SELECT p.id FROM methods p
		               WHERE p.user_id = m.user_id AND p.kind = 'totp' AND p.verified = 1
		               ORDER BY p.verified_at, p.id LIMIT 1) AS is_primary
		FROM methods m
		WHERE m.user_id = ? AND m.verified = 1 AND (? = '' OR m.kind = ?)
		ORDER BY is_primary DESC, m.created_at DESC, m.id DESC`, userID, string(kind), string(kind))
	if err != nil {
		return nil, fmt.Errorf("list methods: %w", err)
	}
	defer rows.Close()
	methods := []mfa.Method{}
	for rows.Next() {
		var (
			m                    mfa.Method
			created              int64
			verifiedAt, lastUsed sql.NullInt64
		)
		if err := rows.Scan(&m.ID, &m.Kind, &m.Label, &m.Destination, &m.EntryPoint, &created, &verifiedAt, &lastUsed, &m.Primary); err != nil {
			return nil, fmt.Errorf("scan method: %w", err)
		}
		m.Verified = true
		m.CreatedAt = time.UnixMilli(created).UTC()
		m.VerifiedAt = optionalTime(verifiedAt)
		m.LastUsedAt = optionalTime(lastUsed)
		m.Voluntary = w.voluntary(m.EntryPoint, m.Kind)
		methods = append(methods, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list methods: %w", err)
	}
	return methods, nil
}

// voluntary reports whether the user may remove a method of kind created under
// entryPoint: every method is, unless MFAD_MANDATORY_CHANNELS names the pair.
func (w *Worker) voluntary(entryPoint string, kind mfa.Kind) bool {
	return !w.cfg.Mandatory[entryPoint][kind]
}

func optionalTime(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}
