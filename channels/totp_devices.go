package channels

import (
	"context"
	"slices"
	"strconv"
	"time"

	mfa "github.com/mfad/mfad"
)

// pendingTTL is how long a started setup or registration waits for its verification.
const pendingTTL = 10 * time.Minute

// totpSetup starts a pending TOTP setup, replacing an earlier pending one of the user.
func (r *rules) totpSetup(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.TOTPSetupParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	userID := c.cmd.UserID
	if err := tx.EnsureUser(ctx, userID, c.now); err != nil {
		return nil, err
	}
	counts, err := tx.CountVerified(ctx, userID)
	if err != nil {
		return nil, err
	}
	n := counts[mfa.KindTOTP]
	switch {
	case p.ReplaceOnly && n > 0:
		return nil, mfa.ErrSecretExists
	case n >= r.cfg.MaxTOTPDevices:
		return nil, mfa.ErrDeviceLimit
	}
	if err := r.discardPending(ctx, tx, c, mfa.KindTOTP, "replaced"); err != nil {
		return nil, err
	}
	secret := newSecret()
	tp := r.cfg.TOTP.params()
	expires := c.now.Add(pendingTTL)
	id, err := tx.InsertMethod(ctx, NewMethod{
		UserID: userID, Kind: mfa.KindTOTP, Label: p.DeviceName,
		SecretEnc: r.sealer.Seal([]byte(secret), secretAAD(userID)), EntryPoint: c.cmd.EntryPoint,
		Algorithm: algorithmName(tp.Algorithm), Digits: tp.Digits.Length(), Period: int(tp.Period),
		CreatedAt: c.now, ExpiresAt: expires,
	})
	if err != nil {
		return nil, err
	}
	obj := mfa.EventObject{Type: mfa.ObjectTOTPDevice, ID: strconv.FormatInt(id, 10), Name: p.DeviceName}
	if err := r.emit(ctx, tx, c, mfa.EventTOTPDeviceSetUp, obj, map[string]any{
		"expires_at": expires.UTC().Format(time.RFC3339)}); err != nil {
		return nil, err
	}
	return mfa.TOTPSetup{DeviceID: id, DeviceName: p.DeviceName, Secret: secret,
		OTPAuthURL: r.cfg.TOTP.uri(secret, userID, tp)}, nil
}

// discardPending drops the user's pending rows of kind; a pending TOTP setup records
// an event each (a replaced SMS/e-mail registration needs none: its code simply dies).
func (r *rules) discardPending(ctx context.Context, tx Tx, c *call, kind mfa.Kind, reason string) error {
	gone, err := tx.DeletePending(ctx, c.cmd.UserID, kind)
	if err != nil || kind != mfa.KindTOTP {
		return err
	}
	for _, m := range gone {
		if err := r.emit(ctx, tx, c, mfa.EventTOTPSecretRemoved, m.object(), map[string]any{"reason": reason}); err != nil {
			return err
		}
	}
	return nil
}

// totpVerify verifies a pending setup with a code from the authenticator.
func (r *rules) totpVerify(ctx context.Context, tx Tx, c *call) (any, error) {
	var p mfa.TOTPVerifyParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	return r.verifyPendingTOTP(ctx, tx, c, p.Code, p.DeviceID)
}

// verifyPendingTOTP is the rule behind both dialects' "verify the new authenticator":
// lockout first, then the code against the pending secret. Success makes the device a
// method, turns sign-in on and, for the user's first strong factor, issues backup
// codes.
func (r *rules) verifyPendingTOTP(ctx context.Context, tx Tx, c *call, code string, deviceID *int64) (mfa.TOTPVerified, error) {
	userID := c.cmd.UserID
	u, err := tx.User(ctx, userID)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	if err := r.guard(ctx, tx, c, u, string(mfa.KindTOTP)); err != nil {
		return mfa.TOTPVerified{}, err
	}
	m, found, err := tx.PendingMethod(ctx, userID, mfa.KindTOTP, deviceID, c.now)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	if !found {
		return mfa.TOTPVerified{}, mfa.ErrNoPendingSetup
	}
	step, ok, err := r.matchTOTP(ctx, tx, m, code, c.now)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	if !ok {
		return mfa.TOTPVerified{}, r.fail(ctx, tx, c, u, false, map[string]any{"method": "totp", "device_id": m.ID, "stage": "setup"})
	}
	counts, err := tx.CountVerified(ctx, userID)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	// No resetFailures: see lockout.go.
	verified, err := tx.MarkVerified(ctx, m.ID, c.now, step, r.cfg.MaxTOTPDevices)
	if err != nil {
		return mfa.TOTPVerified{}, err
	}
	if !verified {
		return mfa.TOTPVerified{}, mfa.ErrDeviceLimit
	}
	if err := r.added(ctx, tx, c, m, nil); err != nil {
		return mfa.TOTPVerified{}, err
	}
	out := mfa.TOTPVerified{DeviceID: m.ID}
	if strongCount(counts) == 0 {
		if out.BackupCodes, err = r.issueBackupCodes(ctx, tx, c); err != nil {
			return mfa.TOTPVerified{}, err
		}
	}
	return out, r.setSignIn(ctx, tx, c, true, "method_verified")
}

// matchTOTP checks code against the TOTP secret of m and returns the matching step.
func (r *rules) matchTOTP(ctx context.Context, tx Tx, m Method, code string, now time.Time) (int64, bool, error) {
	secret, err := r.secret(ctx, tx, m)
	if err != nil {
		return 0, false, err
	}
	tp, err := m.totp()
	if err != nil {
		return 0, false, err
	}
	return tp.match(secret, code, now)
}

// totpList is the device list: verified TOTP devices, primary first.
func (r *rules) totpList(ctx context.Context, tx Tx, c *call) (any, error) {
	devices, err := r.listMethods(ctx, tx, c.cmd.UserID, mfa.KindTOTP)
	if err != nil {
		return nil, err
	}
	return mfa.Devices{Devices: devices}, nil
}

// totpRemove removes one verified TOTP device of the user. Absent, someone else's, not
// TOTP and not verified are one answer, DEVICE_NOT_FOUND: existence is not leaked.
func (r *rules) totpRemove(ctx context.Context, tx Tx, c *call) (any, error) {
	return r.removeOne(ctx, tx, c, mfa.KindTOTP, mfa.ErrDeviceNotFound)
}

// removeOne removes the verified method of kind the command names (DeviceParams).
// Someone else's, an unverified one and one of another kind are not found: notFound,
// the same answer as for an id that does not exist, so existence is not leaked.
func (r *rules) removeOne(ctx context.Context, tx Tx, c *call, kind mfa.Kind, notFound error) (any, error) {
	var p mfa.DeviceParams
	if err := c.params(&p); err != nil {
		return nil, err
	}
	u, all, err := tx.UserAndMethods(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(all, func(m Method) bool { return m.ID == p.DeviceID && m.Kind == kind })
	if i < 0 {
		return nil, notFound
	}
	if !r.voluntary(all[i].EntryPoint, all[i].Kind) {
		return nil, mfa.ErrChannelNotVoluntary
	}
	return r.removeMethods(ctx, tx, c, u, all, all[i:i+1], nil)
}

// secretRemove is the banking DELETE /settings/MfaSecret: every verified TOTP device
// and the pending secret go. Refused as a whole if any device is mandatory.
func (r *rules) secretRemove(ctx context.Context, tx Tx, c *call) (any, error) {
	u, all, err := tx.UserAndMethods(ctx, c.cmd.UserID)
	if err != nil {
		return nil, err
	}
	devices := ofKind(all, mfa.KindTOTP)
	for _, m := range devices {
		if !r.voluntary(m.EntryPoint, m.Kind) {
			return nil, mfa.ErrChannelNotVoluntary
		}
	}
	if err := r.discardPending(ctx, tx, c, mfa.KindTOTP, "removed"); err != nil {
		return nil, err
	}
	return r.removeMethods(ctx, tx, c, u, all, devices, nil)
}

// ofKind are the methods of ms of kind k, in their order.
func ofKind(ms []Method, k mfa.Kind) []Method {
	var out []Method
	for _, m := range ms {
		if m.Kind == k {
			out = append(out, m)
		}
	}
	return out
}
