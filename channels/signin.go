package channels

import (
	"context"
	"errors"

	mfa "github.com/mfad/mfad"
)

// signInEnable is the banking POST /settings/MfaSignIn. With the authenticator it
// verifies the pending secret, or, with none pending, checks the code against the
// verified devices and turns sign-in back on. SMS and e-mail register or confirm a
// channel (codes.go).
func (r *rules) signInEnable(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.SignInParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	if p.Method != "authenticator" {
		kind, ok := mfa.ParseKind(p.Method)
		if !ok || !kind.Rules().Address {
			return nil, mfa.InvalidMethod("method")
		}
		if p.Code == "" {
			if err := r.registerChannel(ctx, tx, c, kind, p.Address); err != nil {
				return nil, err
			}
			c.msg = mfa.MsgCodeSent
			return mfa.SignIn{CodeSent: true}, nil
		}
		if err := r.confirmChannel(ctx, tx, c, kind, p.Code); err != nil {
			if errors.Is(err, mfa.ErrNoPendingSetup) {
				// This dialect's one answer for "nothing to check the code against".
				return nil, mfa.ErrNoPendingSecret
			}
			return nil, err
		}
		c.msg = mfa.MsgSignInEnabled
		return mfa.SignIn{SignInEnabled: true}, nil
	}
	c.msg = mfa.MsgSignInEnabled
	_, pending, err := tx.PendingMethod(ctx, c.cmd.UserID, mfa.KindTOTP, nil, c.now)
	if err != nil {
		return nil, err
	}
	if pending {
		v, err := r.verifyPendingTOTP(ctx, tx, c, p.Code, nil)
		if err != nil {
			return nil, err
		}
		return mfa.SignIn{SignInEnabled: true, BackupCodes: v.BackupCodes}, nil
	}
	devices, err := tx.Methods(ctx, c.cmd.UserID, mfa.KindTOTP)
	if err != nil {
		return nil, err
	}
	if len(devices) == 0 {
		return nil, mfa.ErrNoPendingSecret
	}
	u, err := tx.User(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if err := r.guard(ctx, tx, c, u, string(mfa.KindTOTP)); err != nil {
		return nil, err
	}
	if _, err := r.checkTOTP(ctx, tx, c, u, devices, p.Code); err != nil {
		return nil, err
	}
	if err := resetFailures(ctx, tx, u, c.now); err != nil {
		return nil, err
	}
	return mfa.SignIn{SignInEnabled: true}, r.setSignIn(ctx, tx, c, true, "user_request")
}

// signInDisable turns sign-in MFA off and keeps every method.
func (r *rules) signInDisable(ctx context.Context, tx Tx, c *call) (any, error) {
	if err := r.setSignIn(ctx, tx, c, false, "user_request"); err != nil {
		return nil, err
	}
	return mfa.SignIn{SignInEnabled: false}, nil
}

// verify is the sign-in verification: a code (an outstanding SMS/e-mail code first,
// then every verified TOTP device), a backup code, or a WebAuthn assertion
// (webauthn.go).
func (r *rules) verify(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.VerifyParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	assertion := len(p.WebAuthn) > 0
	switch {
	case assertion && (p.Code != "" || p.BackupCode != ""):
		return nil, mfa.Invalid("webauthn", mfa.ReasonMismatch)
	case assertion && p.ChallengeID == "":
		return nil, mfa.Invalid("challenge_id", mfa.ReasonRequired)
	case !assertion && (p.Code == "") == (p.BackupCode == ""):
		return nil, mfa.Invalid("code", mfa.ReasonRequired)
	}
	// One read of the user and every verified method serves the whole check: the
	// sign-in hot path pays for each statement (and on PostgreSQL each round trip).
	u, methods, err := tx.UserAndMethods(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	if !u.SignInEnabled || len(methods) == 0 {
		return nil, mfa.ErrMFANotEnabled
	}
	if assertion {
		return r.verifyWebAuthn(ctx, tx, c, u, p)
	}
	var devices []Method
	codes := false
	for _, m := range methods {
		switch {
		case m.Kind == mfa.KindTOTP:
			devices = append(devices, m)
		case m.Kind.Rules().Address:
			codes = true
		}
	}
	kind := "code"
	if p.BackupCode != "" {
		kind = mfa.VerifiedByBackupCode
	}
	if err := r.guard(ctx, tx, c, u, kind); err != nil {
		return nil, err
	}
	if p.BackupCode != "" {
		code, wellFormed := normalizeBackupCode(p.BackupCode)
		ok := false
		if wellFormed {
			if ok, err = r.useBackupCode(ctx, tx, c, code); err != nil {
				return nil, err
			}
		}
		if !ok {
			return nil, r.fail(ctx, tx, c, u, false, map[string]any{"method": mfa.VerifiedByBackupCode})
		}
		return r.verified(ctx, tx, c, u, mfa.VerifiedByBackupCode, nil, nil)
	}
	if codes {
		if m, ok, err := r.matchSignInCode(ctx, tx, c, p.Code); err != nil {
			return nil, err
		} else if ok {
			return r.verified(ctx, tx, c, u, string(m.Kind), &m, nil)
		}
	}
	m, err := r.checkTOTP(ctx, tx, c, u, devices, p.Code)
	if err != nil {
		return nil, err
	}
	return r.verified(ctx, tx, c, u, mfa.VerifiedByTOTP, &m, nil)
}

// verified records a successful sign-in verification; detail adds the method's facts
// to its event.
func (r *rules) verified(ctx context.Context, tx Tx, c *call, u User, by string, m *Method, detail map[string]any) (mfa.Verified, error) {
	if err := resetFailures(ctx, tx, u, c.now); err != nil {
		return mfa.Verified{}, err
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["method"] = by
	obj := userObject(u.ID)
	if m != nil {
		obj = m.object()
		// A TOTP device's use was recorded with the step it claimed.
		if m.Kind != mfa.KindTOTP {
			if err := tx.TouchMethod(ctx, m.ID, c.now); err != nil {
				return mfa.Verified{}, err
			}
		}
	}
	c.counted.verify(verifySuccess, by)
	return mfa.Verified{Method: by}, r.emit(ctx, tx, c, mfa.EventVerifySucceeded, obj, detail)
}

// checkTOTP checks code against devices. A code of a step a device already accepted is
// a replay: refused like a wrong code, and recorded as such. Only a step later than the
// device's last one is accepted, and claiming it is what accepts it: of two checks of
// one code at once, one wins.
func (r *rules) checkTOTP(ctx context.Context, tx Tx, c *call, u User, devices []Method, code string) (Method, error) {
	replayed := false
	for _, m := range devices {
		step, ok, err := r.matchTOTP(ctx, tx, m, code, c.now)
		if err != nil {
			return Method{}, err
		}
		if !ok {
			continue
		}
		won, err := tx.ClaimStep(ctx, m.ID, step, c.now)
		if err != nil {
			return Method{}, err
		}
		if !won {
			replayed = true
			continue
		}
		return m, nil
	}
	detail := map[string]any{"method": mfa.VerifiedByTOTP}
	if len(devices) == 1 {
		detail["device_id"] = devices[0].ID
	}
	return Method{}, r.fail(ctx, tx, c, u, replayed, detail)
}
