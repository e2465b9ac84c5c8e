package channels

import (
	"context"
	"slices"

	mfa "github.com/mfad/mfad"
)

// adminReset removes every factor of a user after a lost device: verified methods of
// every kind (mandatory or not: an administrator decides), pending setups, backup codes
// and the lock. The admin is the actor of every event.
func (r *rules) adminReset(ctx context.Context, tx Tx, c *call) (any, error) {
	if !c.cmd.Admin {
		return nil, mfa.ErrForbidden
	}
	userID := c.cmd.UserID
	u, all, err := tx.UserAndMethods(ctx, userID)
	if err != nil {
		return nil, err
	}
	// Kind by kind, in the kinds' order, as the events have always come.
	slices.SortStableFunc(all, func(a, b Method) int { return a.Kind.Order() - b.Kind.Order() })
	for _, k := range mfa.Kinds {
		if err := r.discardPending(ctx, tx, c, k.Kind, "admin_reset"); err != nil {
			return nil, err
		}
	}
	// An outstanding WebAuthn registration must not finish after the reset.
	if _, err := tx.DeleteChallenges(ctx, userID); err != nil {
		return nil, err
	}
	if err := r.emit(ctx, tx, c, mfa.EventAdminReset, userObject(userID), map[string]any{"removed": len(all)}); err != nil {
		return nil, err
	}
	removal, err := r.removeMethods(ctx, tx, c, u, all, all, func() error { return r.channelsDeleted(ctx, tx, c, all) })
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		// No method to remove; backup codes and the sign-in flag go all the same.
		if _, err := r.cascade(ctx, tx, c, nil); err != nil {
			return nil, err
		}
		removal.SignInEnabled = false
	}
	if err := tx.ClearLockout(ctx, userID, c.now); err != nil {
		return nil, err
	}
	return removal, nil
}

// channelsDeleted records the removal of the kinds among gone whose methods have no
// removal event of their own (SMS and e-mail: a channel.deleted, as a DruID delete
// records it), so that every removed method is a fact on MFA_EVENTS.
func (r *rules) channelsDeleted(ctx context.Context, tx Tx, c *call, gone []Method) error {
	for _, k := range mfa.Kinds {
		if k.Removed != "" {
			continue
		}
		n := 0
		for _, m := range gone {
			if m.Kind == k.Kind {
				n++
			}
		}
		if n == 0 {
			continue
		}
		if err := r.channelDeleted(ctx, tx, c, k.Kind, n); err != nil {
			return err
		}
	}
	return nil
}

// channelDeleted records that the n methods of kind the user had are gone.
func (r *rules) channelDeleted(ctx context.Context, tx Tx, c *call, kind mfa.Kind, n int) error {
	obj := mfa.EventObject{Type: mfa.ObjectChannel, ID: string(kind), Name: string(kind)}
	return r.emit(ctx, tx, c, mfa.EventChannelDeleted, obj, map[string]any{"channel": kind, "removed": n})
}

// adminGet is the status of any user, lock included.
func (r *rules) adminGet(ctx context.Context, tx Tx, c *call) (any, error) {
	if !c.cmd.Admin {
		return nil, mfa.ErrForbidden
	}
	return r.loadStatus(ctx, tx, c.cmd.UserID, c.now)
}
