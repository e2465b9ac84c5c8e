package channels

import (
	"context"
	"fmt"

	mfa "github.com/mfad/mfad"
)

// removeMethods deletes verified methods of the running command's user and applies the
// cascade of API.md §0: no verified TOTP device left → the backup codes are revoked; no
// verified method left → MFA sign-in is turned off. One event per fact.
func (w *Worker) removeMethods(ctx context.Context, tx *dbTx, c *call, ms []method) error {
	if err := w.deleteMethods(ctx, tx, c, ms); err != nil || len(ms) == 0 {
		return err
	}
	return w.cascade(ctx, tx, c)
}

// deleteMethods tells the user and deletes methods (an event per TOTP device; a channel
// kind's deletion is the caller's event), without the cascade.
func (w *Worker) deleteMethods(ctx context.Context, tx *dbTx, c *call, ms []method) error {
	if len(ms) == 0 {
		return nil
	}
	// The notice goes out first so that a removed channel hears of its own removal.
	if err := w.securityNotice(ctx, tx, c, noticeMethodRemoved); err != nil {
		return err
	}
	for _, m := range ms {
		if err := deleteMethod(ctx, tx, m.ID); err != nil {
			return err
		}
		if m.Kind == mfa.KindTOTP {
			if err := w.emit(ctx, tx, c, mfa.EventTOTPDeviceRemoved, m.object(), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// cascade brings backup codes and the sign-in flag in line with the methods left.
func (w *Worker) cascade(ctx context.Context, tx *dbTx, c *call) error {
	var totp, all int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE kind = 'totp'), count(*)
		FROM methods WHERE user_id = ? AND verified = 1`, c.cmd.UserID).Scan(&totp, &all)
	if err != nil {
		return fmt.Errorf("count methods left: %w", err)
	}
	if totp == 0 {
		if err := w.revokeBackupCodes(ctx, tx, c); err != nil {
			return err
		}
	}
	if all == 0 {
		return w.setSignIn(ctx, tx, c, false, "last_method_removed")
	}
	return nil
}

// setSignIn turns MFA sign-in on or off, recording the change if there is one.
func (w *Worker) setSignIn(ctx context.Context, tx *dbTx, c *call, on bool, reason string) error {
	if err := ensureUser(ctx, tx, c.cmd.UserID, c.now); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx,
		"UPDATE users SET mfa_signin_enabled = ?, updated_at = ? WHERE id = ? AND mfa_signin_enabled != ?",
		on, c.now.UnixMilli(), c.cmd.UserID, on)
	if err != nil {
		return fmt.Errorf("set MFA sign-in: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	typ := mfa.EventSignInEnabled
	if !on {
		typ = mfa.EventSignInDisabled
	}
	if err := w.emit(ctx, tx, c, typ, mfa.EventObject{Type: mfa.ObjectSignIn, ID: c.cmd.UserID},
		map[string]any{"reason": reason}); err != nil {
		return err
	}
	if !on {
		return w.securityNotice(ctx, tx, c, noticeMFADisabled)
	}
	return nil
}
