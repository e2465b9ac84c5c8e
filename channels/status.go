package channels

import (
	"cmp"
	"context"
	"slices"
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

// listMethods returns the user's verified methods, of one kind or (kind "") all, each
// saying whether the user may remove it, in the order of API.md §2: the primary first,
// then newest first (ties: the larger id first). The primary is the TOTP device
// verified first (ties: the smaller id); it is derived on every read, so it moves when
// that device is removed.
func (r *rules) listMethods(ctx context.Context, tx Tx, userID string, kind mfa.Kind) ([]mfa.Method, error) {
	methods, err := tx.ListMethods(ctx, userID, kind)
	if err != nil {
		return nil, err
	}
	for i, m := range methods {
		methods[i].Voluntary = r.voluntary(m.EntryPoint, m.Kind)
	}
	orderMethods(methods)
	return methods, nil
}

// orderMethods marks the primary and sorts methods as API.md §2 lists them.
func orderMethods(methods []mfa.Method) {
	primary := -1
	for i, m := range methods {
		if m.Kind == mfa.KindTOTP && (primary < 0 || verifiedBefore(m, methods[primary])) {
			primary = i
		}
	}
	if primary >= 0 {
		methods[primary].Primary = true
	}
	slices.SortFunc(methods, func(a, b mfa.Method) int {
		switch {
		case a.Primary != b.Primary:
			if a.Primary {
				return -1
			}
			return 1
		case !a.CreatedAt.Equal(b.CreatedAt):
			return b.CreatedAt.Compare(a.CreatedAt)
		}
		return cmp.Compare(b.ID, a.ID)
	})
}

// verifiedBefore orders methods by verification: earlier first, then the smaller id.
func verifiedBefore(a, b mfa.Method) bool {
	va, vb := verifiedAt(a), verifiedAt(b)
	if !va.Equal(vb) {
		return va.Before(vb)
	}
	return a.ID < b.ID
}

func verifiedAt(m mfa.Method) time.Time {
	if m.VerifiedAt == nil {
		return time.Time{}
	}
	return *m.VerifiedAt
}
