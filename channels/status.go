package channels

import (
	"context"
	"time"

	mfa "github.com/mfad/mfad"
)

// status is the status read: sign-in flag, verified methods, backup codes.
func (r *rules) status(ctx context.Context, tx Tx, c *call) (any, error) {
	return r.loadStatus(ctx, tx, c.cmd.UserID, c.now)
}

func (r *rules) loadStatus(ctx context.Context, tx Tx, userID string, now time.Time) (mfa.Status, error) {
	u, err := tx.User(ctx, userID)
	if err != nil {
		return mfa.Status{}, err
	}
	methods, err := r.listMethods(ctx, tx, userID, "")
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
	st.BackupCodesTotal, st.BackupCodesRemaining, err = tx.BackupCodeCounts(ctx, userID)
	if err != nil {
		return mfa.Status{}, err
	}
	return st, nil
}

// listMethods returns the user's verified methods, of one kind or (kind "") all, primary
// first, then newest first, each saying whether the user may remove it.
func (r *rules) listMethods(ctx context.Context, tx Tx, userID string, kind mfa.Kind) ([]mfa.Method, error) {
	methods, err := tx.ListMethods(ctx, userID, kind)
	if err != nil {
		return nil, err
	}
	for i := range methods {
		methods[i].Voluntary = r.voluntary(methods[i].EntryPoint, methods[i].Kind)
	}
	return methods, nil
}
