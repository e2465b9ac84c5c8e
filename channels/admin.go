package channels

import (
	"context"
	"fmt"

	mfa "github.com/mfad/mfad"
)

// adminReset removes every factor of a user after a lost device: verified methods of
// every kind (mandatory or not: an administrator decides), pending setups, backup codes
// and the lock. The admin is the actor of every event.
func (w *Worker) adminReset(ctx context.Context, tx *dbTx, c *call) (any, error) {
	if !c.cmd.Admin {
		return nil, mfa.ErrForbidden
	}
	userID := c.cmd.UserID
	var all []method
	for _, kind := range []mfa.Kind{mfa.KindTOTP, mfa.KindSMS, mfa.KindEmail} {
		ms, err := verifiedMethods(ctx, tx, userID, kind)
		if err != nil {
			return nil, err
		}
		all = append(all, ms...)
	}
	if err := w.discardPendingTOTP(ctx, tx, c, "admin_reset"); err != nil {
		return nil, err
	}
	for _, kind := range []mfa.Kind{mfa.KindSMS, mfa.KindEmail} {
		if _, err := deletePending(ctx, tx, userID, kind); err != nil {
			return nil, err
		}
	}
	if err := w.emit(ctx, tx, c, mfa.EventAdminReset, userObject(userID), map[string]any{"removed": len(all)}); err != nil {
		return nil, err
	}
	if err := w.deleteMethods(ctx, tx, c, all); err != nil {
		return nil, err
	}
	if err := w.cascade(ctx, tx, c); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE users SET failed_attempts = 0, locked_until = 0, updated_at = ? WHERE id = ?",
		c.now.UnixMilli(), userID); err != nil {
		return nil, fmt.Errorf("clear lock: %w", err)
	}
	return w.removal(ctx, tx, c, len(all))
}

// adminGet is the status of any user, lock included.
func (w *Worker) adminGet(ctx context.Context, tx *dbTx, c *call) (any, error) {
	if !c.cmd.Admin {
		return nil, mfa.ErrForbidden
	}
	return w.loadStatus(ctx, tx, c.cmd.UserID, c.now)
}
