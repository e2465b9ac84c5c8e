package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// The banking dialect (API.md §1): /settings, camelCase, RFC 9457 problem details.

// handleSecretCreate: POST /settings/MfaSecret {"mfaMethod":"authenticator"}?.
func (s *server) handleSecretCreate(c echo.Context) error {
	p, err := parseBody(c, parseSecretCreate)
	if err != nil {
		return err
	}
	setup, qr, _, err := s.startSetup(c, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"secret":     setup.Secret,
		"otpauthUrl": setup.OTPAuthURL,
		"qrCodeUrl":  qr,
		"deviceId":   setup.DeviceID,
		"status":     "pending",
	})
}

// handleSecretDelete: DELETE /settings/MfaSecret.
func (s *server) handleSecretDelete(c echo.Context) error {
	if err := decodeBody(c, &struct{}{}); err != nil {
		return err
	}
	r, reply, err := sendFor[mfa.Removal](s, c, request{typ: mfa.CmdSecretRemove, idempotent: true})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"status":           "success",
		"message":          reply.Message,
		"removed":          r.Removed,
		"mfaSignInEnabled": r.SignInEnabled,
	})
}

// handleSignInEnable: POST /settings/MfaSignIn.
func (s *server) handleSignInEnable(c echo.Context) error {
	p, err := parseBody(c, parseSignIn)
	if err == nil {
		err = s.checkCodeLength("code", p.Code)
	}
	if err != nil {
		return err
	}
	r, _, err := sendFor[mfa.SignIn](s, c, request{typ: mfa.CmdSignInEnable, params: p, idempotent: true})
	if err != nil {
		return err
	}
	if r.CodeSent {
		return c.JSON(http.StatusOK, map[string]any{"status": "verification_sent"})
	}
	body := map[string]any{"status": "enabled", "mfaSignInEnabled": true}
	if len(r.BackupCodes) > 0 {
		body["backupCodes"] = r.BackupCodes
	}
	return c.JSON(http.StatusOK, body)
}

// handleSignInDisable: DELETE /settings/MfaSignIn.
func (s *server) handleSignInDisable(c echo.Context) error {
	if err := decodeBody(c, &struct{}{}); err != nil {
		return err
	}
	reply, err := s.send(c, request{typ: mfa.CmdSignInDisable, idempotent: true})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"status":           "success",
		"message":          reply.Message,
		"mfaSignInEnabled": false,
	})
}

// handleSettings: GET /settings/Mfa (proposal).
func (s *server) handleSettings(c echo.Context) error {
	st, _, err := sendFor[mfa.Status](s, c, request{typ: mfa.CmdSettings})
	if err != nil {
		return err
	}
	type bankingMethod struct {
		ID         int64      `json:"id"`
		Type       string     `json:"type"`
		Label      string     `json:"label"`
		Verified   bool       `json:"verified"`
		Voluntary  bool       `json:"voluntary"`
		CreatedAt  time.Time  `json:"createdAt"`
		LastUsedAt *time.Time `json:"lastUsedAt"`
	}
	methods := make([]bankingMethod, len(st.Methods))
	for i, m := range st.Methods {
		typ := string(m.Kind)
		if m.Kind == mfa.KindTOTP {
			typ = mfaMethodAuthenticator
		}
		methods[i] = bankingMethod{ID: m.ID, Type: typ, Label: m.Label, Verified: m.Verified,
			Voluntary: m.Voluntary, CreatedAt: m.CreatedAt, LastUsedAt: m.LastUsedAt}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"mfaSignInEnabled":     st.SignInEnabled,
		"methods":              methods,
		"backupCodesRemaining": st.BackupCodesRemaining,
	})
}
