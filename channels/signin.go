package channels

import (
	"context"
	"fmt"

	mfa "github.com/mfad/mfad"
)

// signInEnable is the banking POST /settings/MfaSignIn. With the authenticator it
// verifies the pending secret, or, with none pending, checks the code against the
// verified devices and turns sign-in back on. SMS and e-mail register or confirm a
// channel (channels/phone.go).
func (w *Worker) signInEnable(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.SignInParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	switch p.Method {
	case "authenticator":
	case string(mfa.KindSMS), string(mfa.KindEmail):
		kind := mfa.Kind(p.Method)
		if p.Code == "" {
			if err := w.registerChannel(ctx, tx, c, kind, p.Address); err != nil {
				return nil, err
			}
			c.msg = mfa.MsgCodeSent
			return mfa.SignIn{CodeSent: true}, nil
		}
		if err := w.confirmChannel(ctx, tx, c, kind, p.Code); err != nil {
			return nil, err
		}
		c.msg = mfa.MsgSignInEnabled
		return mfa.SignIn{SignInEnabled: true}, nil
	default:
		return nil, mfa.ErrInvalidMethod
	}
	c.msg = mfa.MsgSignInEnabled
	_, pending, err := pendingMethod(ctx, tx, c.cmd.UserID, mfa.KindTOTP, nil, c.now)
	if err != nil {
		return nil, err
	}
	if pending {
		v, err := w.verifyPendingTOTP(ctx, tx, c, p.Code, nil)
		if err != nil {
			return nil, err
		}
		return mfa.SignIn{SignInEnabled: true, BackupCodes: v.BackupCodes}, nil
	}
	devices, err := verifiedMethods(ctx, tx, c.cmd.UserID, mfa.KindTOTP)
	if err != nil {
		return nil, err
	}
	if len(devices) == 0 {
		return nil, mfa.ErrNoPendingSecret
	}
	u, err := findUser(ctx, tx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if err := w.guard(ctx, tx, c, u, string(mfa.KindTOTP)); err != nil {
		return nil, err
	}
	if _, err := w.checkTOTP(ctx, tx, c, u, devices, p.Code); err != nil {
		return nil, err
	}
	if err := resetFailures(ctx, tx, u, c.now); err != nil {
		return nil, err
	}
	return mfa.SignIn{SignInEnabled: true}, w.setSignIn(ctx, tx, c, true, "user_request")
}

// signInDisable turns sign-in MFA off and keeps every method.
func (w *Worker) signInDisable(ctx context.Context, tx *dbTx, c *call) (any, error) {
	if err := w.setSignIn(ctx, tx, c, false, "user_request"); err != nil {
		return nil, err
	}
	return mfa.SignIn{SignInEnabled: false}, nil
}

// verify is the sign-in verification: a code (an outstanding SMS/e-mail code first,
// then every verified TOTP device) or a backup code.
func (w *Worker) verify(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.VerifyParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if (p.Code == "") == (p.BackupCode == "") {
		return nil, mfa.Invalid("code", mfa.ReasonRequired)
	}
	u, err := findUser(ctx, tx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	// One read of every verified method serves the whole check: the sign-in hot path
	// pays for each statement.
	methods, err := queryMethods(ctx, tx, "user_id = ? AND verified = 1 ORDER BY id", c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if !u.SignInEnabled || len(methods) == 0 {
		return nil, mfa.ErrMFANotEnabled
	}
	var devices []method
	channels := false
	for _, m := range methods {
		if m.Kind == mfa.KindTOTP {
			devices = append(devices, m)
		} else {
			channels = true
		}
	}
	kind := "code"
	if p.BackupCode != "" {
		kind = mfa.VerifiedByBackupCode
	}
	if err := w.guard(ctx, tx, c, u, kind); err != nil {
		return nil, err
	}
	if p.BackupCode != "" {
		code, wellFormed := normalizeBackupCode(p.BackupCode)
		ok := false
		if wellFormed {
			if ok, err = w.useBackupCode(ctx, tx, c, code); err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, w.fail(ctx, tx, c, u, false, map[string]any{"method": mfa.VerifiedByBackupCode})
		}
		return w.verified(ctx, tx, c, u, mfa.VerifiedByBackupCode, nil)
	}
	if channels {
		if m, ok, err := w.matchSignInCode(ctx, tx, c, p.Code); err != nil {
			return nil, err
		} else if ok {
			return w.verified(ctx, tx, c, u, string(m.Kind), &m)
		}
	}
	m, err := w.checkTOTP(ctx, tx, c, u, devices, p.Code)
	if err != nil {
		return nil, err
	}
	return w.verified(ctx, tx, c, u, mfa.VerifiedByTOTP, &m)
}

// verified records a successful sign-in verification.
func (w *Worker) verified(ctx context.Context, tx *dbTx, c *call, u user, by string, m *method) (mfa.Verified, error) {
	if err := resetFailures(ctx, tx, u, c.now); err != nil {
		return mfa.Verified{}, err
	}
	detail := map[string]any{"method": by}
	obj := userObject(u.ID)
	if m != nil {
		obj = m.object()
		if _, err := tx.ExecContext(ctx, "UPDATE methods SET last_used_at = ? WHERE id = ?", c.now.UnixMilli(), m.ID); err != nil {
			return mfa.Verified{}, fmt.Errorf("record method use: %w", err)
		}
	}
	c.counted.verify(verifySuccess, by)
	return mfa.Verified{Method: by}, w.emit(ctx, tx, c, mfa.EventVerifySucceeded, obj, detail)
}

// checkTOTP checks code against devices. A code of a step a device already accepted is
// a replay: refused like a wrong code, and recorded as such. Only a step later than the
// device's last one is accepted, and it becomes the last one.
func (w *Worker) checkTOTP(ctx context.Context, tx *dbTx, c *call, u user, devices []method, code string) (method, error) {
	replayed := false
	for _, m := range devices {
		secret, err := w.secret(m)
		if err != nil {
			return method{}, err
		}
		step, ok, err := m.TOTP.match(secret, code, c.now)
		if err != nil {
			return method{}, err
		}
		if !ok {
			continue
		}
		if step <= m.LastUsedStep {
			replayed = true
			continue
		}
		if _, err := tx.ExecContext(ctx, "UPDATE methods SET last_used_step = ? WHERE id = ?", step, m.ID); err != nil {
			return method{}, fmt.Errorf("record TOTP step: %w", err)
		}
		return m, nil
	}
	detail := map[string]any{"method": mfa.VerifiedByTOTP}
	if len(devices) == 1 {
		detail["device_id"] = devices[0].ID
	}
	return method{}, w.fail(ctx, tx, c, u, replayed, detail)
}

// backupCount is the backup code status.
func (w *Worker) backupCount(ctx context.Context, tx *dbTx, c *call) (any, error) {
	st, err := w.loadStatus(ctx, tx, c.cmd.UserID, c.now)
	if err != nil {
		return nil, err
	}
	return mfa.BackupCodeCount{Remaining: st.BackupCodesRemaining, Total: st.BackupCodesTotal}, nil
}

// backupRegenerate replaces the backup codes. They exist only beside a verified TOTP
// device.
func (w *Worker) backupRegenerate(ctx context.Context, tx *dbTx, c *call) (any, error) {
	n, err := countVerified(ctx, tx, c.cmd.UserID, mfa.KindTOTP)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, mfa.ErrNoTOTPDevice
	}
	codes, err := w.issueBackupCodes(ctx, tx, c)
	if err != nil {
		return nil, err
	}
	if err := w.securityNotice(ctx, tx, c, noticeBackupReissued); err != nil {
		return nil, err
	}
	return mfa.BackupCodes{Codes: codes}, nil
}
