package channels

import (
	"context"
	"slices"

	mfa "github.com/mfad/mfad"
)

// removeMethods deletes gone, verified methods of the running command's user, and
// applies the cascade of API.md §0: no verified strong method left → the backup codes
// are revoked; no verified method left → MFA sign-in is turned off. One event per fact;
// between, when not nil, adds the caller's own after the deletions. u and all are the
// user and every verified method of theirs as the command read them
// (Tx.UserAndMethods): the notice's addresses, the cascade's counts and the answer come
// from that read, not from statements of their own, which on a store whose statements
// are round trips is most of a removal's cost. Removing nothing changes nothing.
func (r *rules) removeMethods(ctx context.Context, tx Tx, c *call, u User, all, gone []Method, between func() error) (mfa.Removal, error) {
	if len(gone) == 0 {
		return mfa.Removal{SignInEnabled: u.SignInEnabled}, nil
	}
	// The notice goes out first so that a removed channel hears of its own removal.
	if err := r.securityNoticeTo(ctx, tx, c, mfa.TemplateMethodRemoved, all); err != nil {
		return mfa.Removal{}, err
	}
	for _, m := range gone {
		if err := tx.DeleteMethod(ctx, m.ID); err != nil {
			return mfa.Removal{}, err
		}
		if ev := m.Kind.Rules().Removed; ev != "" {
			if err := r.emit(ctx, tx, c, ev, m.object(), nil); err != nil {
				return mfa.Removal{}, err
			}
		}
	}
	if between != nil {
		if err := between(); err != nil {
			return mfa.Removal{}, err
		}
	}
	left := map[mfa.Kind]int{}
	for _, m := range all {
		if !slices.ContainsFunc(gone, func(g Method) bool { return g.ID == m.ID }) {
			left[m.Kind]++
		}
	}
	off, err := r.cascade(ctx, tx, c, left)
	return mfa.Removal{Removed: len(gone), SignInEnabled: u.SignInEnabled && !off}, err
}

// cascade brings backup codes and the sign-in flag in line with the verified methods
// left, counted by kind; off says that sign-in MFA is off now for want of any.
func (r *rules) cascade(ctx context.Context, tx Tx, c *call, left map[mfa.Kind]int) (off bool, err error) {
	if strongCount(left) == 0 {
		if err := r.revokeBackupCodes(ctx, tx, c); err != nil {
			return false, err
		}
	}
	total := 0
	for _, n := range left {
		total += n
	}
	if total > 0 {
		return false, nil
	}
	// No verified method is left, so no address to send the notice of setSignIn to.
	_, err = r.switchSignIn(ctx, tx, c, false, "last_method_removed")
	return true, err
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
	// A user without a row has sign-in off already: turning it off must not make one
	// (an admin reset of a mistyped id created that user).
	if on {
		if err := tx.EnsureUser(ctx, c.cmd.UserID, c.now); err != nil {
			return false, err
		}
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
