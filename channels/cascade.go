package channels

import (
	"context"

	mfa "github.com/mfad/mfad"
)

// removeMethods deletes verified methods of the running command's user and applies the
// cascade of API.md §0: no verified strong method left → the backup codes are revoked;
// no verified method left → MFA sign-in is turned off. One event per fact.
func (r *rules) removeMethods(ctx context.Context, tx Tx, c *call, ms []Method) error {
	if err := r.deleteMethods(ctx, tx, c, ms); err != nil || len(ms) == 0 {
		return err
	}
	return r.cascade(ctx, tx, c)
}

// deleteMethods tells the user and deletes methods (an event per method of a kind that
// records removals; a channel kind's deletion is the caller's event), without the
// cascade.
func (r *rules) deleteMethods(ctx context.Context, tx Tx, c *call, ms []Method) error {
	if len(ms) == 0 {
		return nil
	}
	// The notice goes out first so that a removed channel hears of its own removal.
	if err := r.securityNotice(ctx, tx, c, mfa.TemplateMethodRemoved); err != nil {
		return err
	}
	for _, m := range ms {
		if err := tx.DeleteMethod(ctx, m.ID); err != nil {
			return err
		}
		if ev := m.Kind.Rules().Removed; ev != "" {
			if err := r.emit(ctx, tx, c, ev, m.object(), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// cascade brings backup codes and the sign-in flag in line with the methods left.
func (r *rules) cascade(ctx context.Context, tx Tx, c *call) error {
	counts, err := tx.CountVerified(ctx, c.cmd.UserID)
	if err != nil {
		return err
	}
	if strongCount(counts) == 0 {
		if err := r.revokeBackupCodes(ctx, tx, c); err != nil {
			return err
		}
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		// No verified method is left, so no address to send the notice of setSignIn to.
		_, err := r.switchSignIn(ctx, tx, c, false, "last_method_removed")
		return err
	}
	return nil
}

// setSignIn turns MFA sign-in on or off, recording the change if there is one; turning
// it off is a security notice to the user's addresses.
func (r *rules) setSignIn(ctx context.Context, tx Tx, c *call, on bool, reason string) error {
	changed, err := r.switchSignIn(ctx, tx, c, on, reason)
	if err != nil || !changed || on {
		return err
	}
	return r.securityNotice(ctx, tx, c, mfa.TemplateMFADisabled)
}

// switchSignIn is setSignIn without the notice, and says whether the flag changed.
func (r *rules) switchSignIn(ctx context.Context, tx Tx, c *call, on bool, reason string) (bool, error) {
	if err := tx.EnsureUser(ctx, c.cmd.UserID, c.now); err != nil {
		return false, err
	}
	changed, err := tx.SetSignIn(ctx, c.cmd.UserID, on, c.now)
	if err != nil || !changed {
		return false, err
	}
	typ := mfa.EventSignInEnabled
	if !on {
		typ = mfa.EventSignInDisabled
	}
	return true, r.emit(ctx, tx, c, typ, mfa.EventObject{Type: mfa.ObjectSignIn, ID: c.cmd.UserID},
		map[string]any{"reason": reason})
}

// added records a method becoming verified: its event (with detail, the kind's facts
// about it), and a security notice to the user's addresses (NIST SP 800-63B: notify on
// every binding change), the new one included.
func (r *rules) added(ctx context.Context, tx Tx, c *call, m Method, detail map[string]any) error {
	if ev := m.Kind.Rules().Verified; ev != "" {
		if m.Kind.Rules().Address {
			detail = map[string]any{"channel": m.Kind}
		}
		if err := r.emit(ctx, tx, c, ev, m.object(), detail); err != nil {
			return err
		}
	}
	return r.securityNotice(ctx, tx, c, mfa.TemplateMethodAdded)
}
