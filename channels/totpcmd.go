package channels

import (
	"context"
	"fmt"
	"strconv"
	"time"

	mfa "github.com/mfad/mfad"
)

// pendingTTL is how long a started setup or registration waits for its verification.
const pendingTTL = 10 * time.Minute

// totpSetup starts a pending TOTP setup, replacing an earlier pending one of the user.
func (w *Worker) totpSetup(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.TOTPSetupParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	userID := c.cmd.UserID
	if err := ensureUser(ctx, tx, userID, c.now); err != nil {
		return nil, err
	}
	n, err := countVerified(ctx, tx, userID, mfa.KindTOTP)
	if err != nil {
		return nil, err
	}
	switch {
	case p.ReplaceOnly && n > 0:
		return nil, mfa.ErrSecretExists
	case n >= w.cfg.MaxTOTPDevices:
		return nil, mfa.ErrDeviceLimit
	}
	if err := w.discardPendingTOTP(ctx, tx, c, "replaced"); err != nil {
		return nil, err
	}
	secret := newSecret()
	tp := w.cfg.TOTP.params()
	res, err := tx.ExecContext(ctx, `INSERT INTO methods
		(user_id, kind, label, secret_enc, verified, entry_point, algorithm, digits, period, created_at, expires_at)
		VALUES (?, 'totp', ?, ?, 0, ?, ?, ?, ?, ?, ?)`,
		userID, p.DeviceName, w.sealer.Seal([]byte(secret), secretAAD(userID)), c.cmd.EntryPoint,
		algorithmName(tp.Algorithm), tp.Digits.Length(), tp.Period, c.now.UnixMilli(), c.now.Add(pendingTTL).UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("store pending TOTP setup: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("pending TOTP setup id: %w", err)
	}
	obj := mfa.EventObject{Type: mfa.ObjectTOTPDevice, ID: strconv.FormatInt(id, 10), Name: p.DeviceName}
	if err := w.emit(ctx, tx, c, mfa.EventTOTPDeviceSetUp, obj, map[string]any{
		"expires_at": c.now.Add(pendingTTL).UTC().Format(time.RFC3339)}); err != nil {
		return nil, err
	}
	return mfa.TOTPSetup{DeviceID: id, DeviceName: p.DeviceName, Secret: secret,
		OTPAuthURL: w.cfg.TOTP.uri(secret, userID, tp)}, nil
}

// discardPendingTOTP drops the user's pending TOTP setups, one event each.
func (w *Worker) discardPendingTOTP(ctx context.Context, tx *dbTx, c *call, reason string) error {
	gone, err := deletePending(ctx, tx, c.cmd.UserID, mfa.KindTOTP)
	if err != nil {
		return err
	}
	for _, m := range gone {
		if err := w.emit(ctx, tx, c, mfa.EventTOTPSecretRemoved, m.object(), map[string]any{"reason": reason}); err != nil {
			return err
		}
	}
	return nil
}

// totpVerify verifies a pending setup with a code from the authenticator.
func (w *Worker) totpVerify(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.TOTPVerifyParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	return w.verifyPendingTOTP(ctx, tx, c, p.Code, p.DeviceID)
}

// verifyPendingTOTP is the rule behind both dialects' "verify the new authenticator":
// lockout first, then the code against the pending secret. Success makes the device a
// method, turns sign-in on and, for the user's first TOTP device, issues backup codes.
func (w *Worker) verifyPendingTOTP(ctx context.Context, tx *dbTx, c *call, code string, deviceID *int64) (mfa.TOTPVerified, error) {
	userID := c.cmd.UserID
	u, err := findUser(ctx, tx, userID)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	if err := w.guard(ctx, tx, c, u, string(mfa.KindTOTP)); err != nil {
		return mfa.TOTPVerified{}, err
	}
	m, found, err := pendingMethod(ctx, tx, userID, mfa.KindTOTP, deviceID, c.now)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	if !found {
		return mfa.TOTPVerified{}, mfa.ErrNoPendingSetup
	}
	secret, err := w.secret(m)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	step, ok, err := m.TOTP.match(secret, code, c.now)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	if !ok {
		return mfa.TOTPVerified{}, w.fail(ctx, tx, c, u, false, map[string]any{"method": "totp", "device_id": m.ID, "stage": "setup"})
	}
	n, err := countVerified(ctx, tx, userID, mfa.KindTOTP)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	if n >= w.cfg.MaxTOTPDevices {
		return mfa.TOTPVerified{}, mfa.ErrDeviceLimit
	}
	// No resetFailures: see lockout.go.
	_, err = tx.ExecContext(ctx,
		"UPDATE methods SET verified = 1, verified_at = ?, last_used_step = ?, expires_at = NULL WHERE id = ?",
		c.now.UnixMilli(), step, m.ID)
	if err != nil {
		return mfa.TOTPVerified{}, fmt.Errorf("verify TOTP device %d: %w", m.ID, err)
	}
	if err := w.emit(ctx, tx, c, mfa.EventTOTPDeviceVerified, m.object(), nil); err != nil {
		return mfa.TOTPVerified{}, err
	}
	out := mfa.TOTPVerified{DeviceID: m.ID}
	if n == 0 {
		if out.BackupCodes, err = w.issueBackupCodes(ctx, tx, c); err != nil {
			return mfa.TOTPVerified{}, err
		}
	}
	return out, w.setSignIn(ctx, tx, c, true, "method_verified")
}

// totpList is the device list: verified TOTP devices, primary first.
func (w *Worker) totpList(ctx context.Context, tx *dbTx, c *call) (any, error) {
	devices, err := w.listMethods(ctx, tx, c.cmd.UserID, mfa.KindTOTP)
	if err != nil {
		return nil, err
	}
	return mfa.Devices{Devices: devices}, nil
}

// totpRemove removes one verified TOTP device of the user. Absent, someone else's, not
// TOTP and not verified are one answer, DEVICE_NOT_FOUND: existence is not leaked.
func (w *Worker) totpRemove(ctx context.Context, tx *dbTx, c *call) (any, error) {
	var p mfa.DeviceParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	m, found, err := findMethod(ctx, tx, p.DeviceID)
	if err != nil {
		return nil, err
	}
	if !found || m.UserID != c.cmd.UserID || m.Kind != mfa.KindTOTP || !m.Verified {
		return nil, mfa.ErrDeviceNotFound
	}
	if !w.voluntary(m.EntryPoint, m.Kind) {
		return nil, mfa.ErrChannelNotVoluntary
	}
	if err := w.removeMethods(ctx, tx, c, []method{m}); err != nil {
		return nil, err
	}
	return w.removal(ctx, tx, c, 1)
}

// secretRemove is the banking DELETE /settings/MfaSecret: every verified TOTP device
// and the pending secret go. Refused as a whole if any device is mandatory.
func (w *Worker) secretRemove(ctx context.Context, tx *dbTx, c *call) (any, error) {
	devices, err := verifiedMethods(ctx, tx, c.cmd.UserID, mfa.KindTOTP)
	if err != nil {
		return nil, err
	}
	for _, m := range devices {
		if !w.voluntary(m.EntryPoint, m.Kind) {
			return nil, mfa.ErrChannelNotVoluntary
		}
	}
	if err := w.discardPendingTOTP(ctx, tx, c, "removed"); err != nil {
		return nil, err
	}
	if err := w.removeMethods(ctx, tx, c, devices); err != nil {
		return nil, err
	}
	return w.removal(ctx, tx, c, len(devices))
}

// removal is the data of a removal: how many went and whether sign-in MFA is still on.
func (w *Worker) removal(ctx context.Context, tx *dbTx, c *call, removed int) (mfa.Removal, error) {
	u, err := findUser(ctx, tx, c.cmd.UserID)
	if err != nil {
		return mfa.Removal{}, err
	}
	return mfa.Removal{Removed: removed, SignInEnabled: u.SignInEnabled}, nil
}
