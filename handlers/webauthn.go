package handlers

import (
	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// WebAuthn routes of the device dialect. The browser's JSON goes to the workers as it
// is: the ceremonies are verified there, never here.

// handleWebAuthnRegisterOptions: POST /api/v1/mfa/webauthn/register/options
// {"device_name"}.
func (s *server) handleWebAuthnRegisterOptions(c echo.Context) error {
	p, err := parseBody(c, parseWebAuthnRegister)
	if err != nil {
		return err
	}
	o, reply, err := sendFor[mfa.WebAuthnOptions](s, c, request{typ: mfa.CmdWebAuthnRegisterOptions, params: p, idempotent: true})
	if err != nil {
		return err
	}
	return webauthnOptions(c, o, reply)
}

// webauthnOptions answers a started ceremony. Its challenge must not be cached, which
// requestContext's Cache-Control: no-store sees to.
func webauthnOptions(c echo.Context, o mfa.WebAuthnOptions, reply mfa.Reply) error {
	return deviceOK(c, map[string]any{
		"challenge_id": o.ChallengeID,
		"expires_in":   o.ExpiresIn,
		"public_key":   o.PublicKey,
	}, reply.Message)
}

// handleWebAuthnRegisterVerify: POST /api/v1/mfa/webauthn/register/verify
// {"challenge_id","credential"}.
func (s *server) handleWebAuthnRegisterVerify(c echo.Context) error {
	p, err := parseBody(c, parseWebAuthnFinish)
	if err != nil {
		return err
	}
	v, reply, err := sendFor[mfa.WebAuthnRegistered](s, c, request{typ: mfa.CmdWebAuthnRegisterVerify, params: p, idempotent: true})
	if err != nil {
		return err
	}
	data := credentialData(v.WebAuthnCredential)
	if len(v.BackupCodes) > 0 {
		data["backup_codes"] = v.BackupCodes
	}
	return deviceOK(c, data, reply.Message)
}

// handleWebAuthnLoginOptions: POST /api/v1/mfa/webauthn/authenticate/options
// {"user_id"?}.
func (s *server) handleWebAuthnLoginOptions(c echo.Context) error {
	userID, err := parseBody(c, parseWebAuthnLogin)
	if err != nil {
		return err
	}
	user, err := actingFor(principal(c), userID)
	if err != nil {
		return err
	}
	o, reply, err := sendFor[mfa.WebAuthnOptions](s, c, request{typ: mfa.CmdWebAuthnLoginOptions, userID: user, idempotent: true})
	if err != nil {
		return err
	}
	return webauthnOptions(c, o, reply)
}

// credentialData is a credential in the device dialect.
func credentialData(v mfa.WebAuthnCredential) map[string]any {
	transports := v.Transports
	if transports == nil {
		transports = []string{}
	}
	return map[string]any{
		"id":              v.ID,
		"device_name":     v.Name,
		"type":            mfa.KindWebAuthn,
		"aaguid":          v.AAGUID,
		"user_verified":   v.UserVerified,
		"backup_eligible": v.BackupEligible,
		"backup_state":    v.BackupState,
		"flagged":         v.Flagged,
		"transports":      transports,
		"created_at":      v.CreatedAt,
		"last_used_at":    v.LastUsedAt,
	}
}

// handleWebAuthnDevices: GET /api/v1/mfa/webauthn/devices.
func (s *server) handleWebAuthnDevices(c echo.Context) error {
	list, reply, err := sendFor[mfa.WebAuthnCredentials](s, c, request{typ: mfa.CmdWebAuthnList})
	if err != nil {
		return err
	}
	devices := make([]map[string]any, len(list.Credentials))
	for i, v := range list.Credentials {
		devices[i] = credentialData(v)
	}
	return deviceOK(c, map[string]any{"devices": devices, "total_count": len(devices)}, reply.Message)
}

// handleWebAuthnRemove: DELETE /api/v1/mfa/webauthn/devices/{device_id}.
func (s *server) handleWebAuthnRemove(c echo.Context) error {
	return s.removeDevice(c, mfa.CmdWebAuthnRemove)
}
