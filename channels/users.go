package channels

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// user is a users row.
type user struct {
	ID             string
	SignInEnabled  bool
	FailedAttempts int
	LockedUntil    int64 // Unix ms; 0 = never locked
}

// findUser reads a user; a user the service has never seen is the zero user with the id.
func findUser(ctx context.Context, tx *dbTx, id string) (user, error) {
	u := user{ID: id}
	err := tx.QueryRowContext(ctx,
		"SELECT mfa_signin_enabled, failed_attempts, locked_until FROM users WHERE id = ?", id).
		Scan(&u.SignInEnabled, &u.FailedAttempts, &u.LockedUntil)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return user{}, fmt.Errorf("read user: %w", err)
	}
	return u, nil
}

// ensureUser creates the users row on a user's first write.
func ensureUser(ctx context.Context, tx *dbTx, id string, now time.Time) error {
	_, err := tx.ExecContext(ctx,
		"INSERT INTO users (id, created_at, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING",
		id, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

// lockedUntil is the end of the user's lock, or the zero time when not locked at now.
func (u user) lockedUntil(now time.Time) time.Time {
	if u.LockedUntil <= now.UnixMilli() {
		return time.Time{}
	}
	return time.UnixMilli(u.LockedUntil)
}
