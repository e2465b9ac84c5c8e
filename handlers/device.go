package handlers

import (
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// The device dialect (API.md §2): snake_case, {"success","data","message"}.

type deviceMethod struct {
	ID          int64      `json:"id"`
	Type        mfa.Kind   `json:"type"`
	Name        string     `json:"name"`
	Destination string     `json:"destination,omitempty"`
	IsPrimary   bool       `json:"is_primary"`
	Voluntary   bool       `json:"voluntary"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
}

func deviceMethods(ms []mfa.Method) []deviceMethod {
	out := make([]deviceMethod, len(ms))
	for i, m := range ms {
		out[i] = deviceMethod{ID: m.ID, Type: m.Kind, Name: m.Label, Destination: m.Destination,
			IsPrimary: m.Primary, Voluntary: m.Voluntary, CreatedAt: m.CreatedAt, LastUsedAt: m.LastUsedAt}
	}
	return out
}

// handleStatus: GET /api/v1/mfa/status.
func (s *server) handleStatus(c echo.Context) error {
	st, reply, err := sendFor[mfa.Status](s, c, request{typ: mfa.CmdStatus})
	if err != nil {
		return err
	}
	return deviceOKData(c, statusData{BackupCodesRemaining: st.BackupCodesRemaining, Enabled: st.SignInEnabled,
		Methods: deviceMethods(st.Methods)}, reply.Message)
}

// handleTOTPSetup: POST /api/v1/mfa/totp/setup {"device_name"}.
func (s *server) handleTOTPSetup(c echo.Context) error {
	p, err := parseBody(c, parseTOTPSetup)
	if err != nil {
		return err
	}
	setup, qr, reply, err := s.startSetup(c, p)
	if err != nil {
		return err
	}
	return deviceOK(c, struct {
		DeviceID       int64  `json:"device_id"`
		Secret         string `json:"secret"`
		ManualEntryKey string `json:"manual_entry_key"`
		OTPAuthURL     string `json:"otpauth_url"`
		QRCode         string `json:"qr_code"`
		DeviceName     string `json:"device_name"`
	}{setup.DeviceID, setup.Secret, groupsOf4(setup.Secret), setup.OTPAuthURL, qr, setup.DeviceName}, reply.Message)
}

// startSetup runs a TOTP setup (both dialects) and draws its QR code.
func (s *server) startSetup(c echo.Context, p mfa.TOTPSetupParams) (mfa.TOTPSetup, string, mfa.Reply, error) {
	setup, reply, err := sendFor[mfa.TOTPSetup](s, c, request{typ: mfa.CmdTOTPSetup, params: p, idempotent: true})
	if err != nil {
		return setup, "", reply, err
	}
	qr, err := qrDataURL(setup.OTPAuthURL)
	return setup, qr, reply, err
}

// groupsOf4 spaces a base32 secret for typing by hand: "JBSW Y3DP …".
func groupsOf4(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// handleTOTPVerify: POST /api/v1/mfa/totp/verify {"code","device_id"?}.
func (s *server) handleTOTPVerify(c echo.Context) error {
	p, err := parseBody(c, parseTOTPVerify)
	if err == nil {
		err = s.checkCodeLength("code", p.Code)
	}
	if err != nil {
		return err
	}
	v, reply, err := sendFor[mfa.TOTPVerified](s, c, request{typ: mfa.CmdTOTPVerify, params: p, idempotent: true})
	if err != nil {
		return err
	}
	return deviceOK(c, struct {
		Success     bool     `json:"success"`
		DeviceID    int64    `json:"device_id"`
		BackupCodes []string `json:"backup_codes,omitempty"`
		Message     string   `json:"message"`
	}{true, v.DeviceID, v.BackupCodes, reply.Message}, reply.Message)
}

// handleTOTPDevices: GET /api/v1/mfa/totp/devices.
func (s *server) handleTOTPDevices(c echo.Context) error {
	list, reply, err := sendFor[mfa.Devices](s, c, request{typ: mfa.CmdTOTPList})
	if err != nil {
		return err
	}
	devices := make([]totpDevice, len(list.Devices))
	for i, d := range list.Devices {
		devices[i] = totpDevice{ID: d.ID, DeviceName: d.Label, Type: d.Kind, CreatedAt: d.CreatedAt,
			LastUsedAt: d.LastUsedAt, IsPrimary: d.Primary, Verified: d.Verified}
	}
	return deviceOKData(c, totpDevices{Devices: devices, TotalCount: len(devices)}, reply.Message)
}

// handleTOTPRemove: DELETE /api/v1/mfa/totp/devices/{device_id}.
func (s *server) handleTOTPRemove(c echo.Context) error {
	return s.removeDevice(c, mfa.CmdTOTPRemove)
}

// removeDevice is the DELETE of one device: TOTP devices and WebAuthn credentials
// answer alike in the device dialect, and the workers tell them apart by typ.
func (s *server) removeDevice(c echo.Context, typ string) error {
	id, err := parseID("device_id", c.Param("device_id"))
	if err != nil {
		return err
	}
	if err := decodeBody(c, &struct{}{}); err != nil { // none is needed, but a broken one is refused
		return err
	}
	reply, err := s.send(c, request{typ: typ, params: mfa.DeviceParams{DeviceID: id}, idempotent: true})
	if err != nil {
		return err
	}
	return deviceOK(c, struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
	}{true, reply.Message}, reply.Message)
}

// handleBackupCount: GET /api/v1/mfa/backup-codes.
func (s *server) handleBackupCount(c echo.Context) error {
	n, reply, err := sendFor[mfa.BackupCodeCount](s, c, request{typ: mfa.CmdBackupCount})
	if err != nil {
		return err
	}
	return deviceOK(c, struct {
		Remaining int `json:"remaining"`
		Total     int `json:"total"`
	}{n.Remaining, n.Total}, reply.Message)
}

// handleBackupRegenerate: POST /api/v1/mfa/backup-codes/regenerate.
func (s *server) handleBackupRegenerate(c echo.Context) error {
	if err := decodeBody(c, &struct{}{}); err != nil {
		return err
	}
	codes, reply, err := sendFor[mfa.BackupCodes](s, c, request{typ: mfa.CmdBackupRegenerate, idempotent: true})
	if err != nil {
		return err
	}
	return deviceOK(c, struct {
		BackupCodes []string `json:"backup_codes"`
	}{codes.Codes}, reply.Message)
}

// handleOTPSend: POST /api/v1/mfa/otp/send {"method":"sms"|"email","user_id"?}.
func (s *server) handleOTPSend(c echo.Context) error {
	p, err := parseBody(c, parseOTPSend)
	if err != nil {
		return err
	}
	user, err := actingFor(principal(c), p.UserID)
	if err != nil {
		return err
	}
	sent, reply, err := sendFor[mfa.OTPSent](s, c, request{typ: mfa.CmdOTPSend, params: p.OTPSendParams, userID: user, idempotent: true})
	if err != nil {
		return err
	}
	return deviceOK(c, struct {
		Sent      bool `json:"sent"`
		ExpiresIn int  `json:"expires_in"`
	}{true, sent.ExpiresIn}, reply.Message)
}

// handleVerify: POST /api/v1/mfa/verify {"code"}, {"backup_code"} or
// {"challenge_id","webauthn"}, "user_id"?.
func (s *server) handleVerify(c echo.Context) error {
	p, err := parseBody(c, parseVerify)
	if err == nil {
		err = s.checkCodeLength("code", p.Code)
	}
	if err != nil {
		return err
	}
	user, err := actingFor(principal(c), p.UserID)
	if err != nil {
		return err
	}
	// Not idempotent, on purpose: a stored success replayed for the same key and body
	// would accept a code a second time, for whoever replays the request. A retry is
	// checked afresh (and a code already used is refused, as it should be).
	v, reply, err := sendFor[mfa.Verified](s, c, request{typ: mfa.CmdVerify, params: p.VerifyParams, userID: user})
	if err != nil {
		return err
	}
	return deviceOK(c, struct {
		Verified     bool   `json:"verified"`
		Method       string `json:"method"`
		UserVerified *bool  `json:"user_verified,omitempty"`
	}{true, v.Method, v.UserVerified}, reply.Message)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
