package channels

import (
	"context"
	"fmt"
	"time"

	mfa "github.com/mfad/mfad"
)

// Lockout (API.md §0): failed code checks count per user across every method; the
// LockoutThreshold-th consecutive failure still answers INVALID_CODE and starts a lock
// of LockoutDuration. While locked, every code check answers TOO_MANY_ATTEMPTS without
// evaluating the code or extending the lock. A success resets the count. All of it
// runs in the writer's transaction, so parallel guesses are counted exactly.

// guard refuses a code check while u is locked, recording the refusal.
func (w *Worker) guard(ctx context.Context, tx *dbTx, c *call, u user, kind string) error {
	until := u.lockedUntil(c.now)
	if until.IsZero() {
		return nil
	}
	err := w.emit(ctx, tx, c, mfa.EventVerifyLocked, userObject(u.ID), map[string]any{
		"method": kind, "locked_until": until.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	c.counted.verify(verifyLocked, kind)
	return &mfa.Error{Code: mfa.CodeTooManyAttempts, RetryAfter: until.Sub(c.now)}
}

// fail counts one failed code check of u and records it; replayed marks a correct code
// that was already used. It returns the outcome to answer: INVALID_CODE.
func (w *Worker) fail(ctx context.Context, tx *dbTx, c *call, u user, replayed bool, detail map[string]any) error {
	failures := u.FailedAttempts + 1
	var lockedUntil int64
	if failures >= w.cfg.LockoutThreshold {
		lockedUntil = c.now.Add(w.cfg.LockoutDuration).UnixMilli()
		detail["locked_until"] = time.UnixMilli(lockedUntil).UTC().Format(time.RFC3339)
		failures = 0 // the lock is the penalty; after it the user has a full allowance again
	}
	_, err := tx.ExecContext(ctx,
		"UPDATE users SET failed_attempts = ?, locked_until = max(locked_until, ?), updated_at = ? WHERE id = ?",
		failures, lockedUntil, c.now.UnixMilli(), u.ID)
	if err != nil {
		return fmt.Errorf("count failed attempt: %w", err)
	}
	detail["attempt"] = u.FailedAttempts + 1
	typ := mfa.EventVerifyFailed
	if replayed {
		typ = mfa.EventVerifyReplayed
	}
	if err := w.emit(ctx, tx, c, typ, userObject(u.ID), detail); err != nil {
		return err
	}
	c.counted.failed(replayed, methodOf(detail), lockedUntil != 0)
	return mfa.ErrInvalidCode
}

// resetFailures clears the count after a success. Only a code of a factor the user
// already had is such a success (sign-in verification, turning sign-in back on with an
// existing device). Confirming a factor being enrolled proves only possession of that
// new factor, which whoever holds the token controls: if it reset the count, a stolen
// token could enrol a device of its own between bursts of guesses and never be locked.
func resetFailures(ctx context.Context, tx *dbTx, u user, now time.Time) error {
	if u.FailedAttempts == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, "UPDATE users SET failed_attempts = 0, updated_at = ? WHERE id = ?",
		now.UnixMilli(), u.ID)
	if err != nil {
		return fmt.Errorf("reset failed attempts: %w", err)
	}
	return nil
}

func userObject(id string) mfa.EventObject {
	return mfa.EventObject{Type: mfa.ObjectUser, ID: id}
}
