package handlers

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// The banking dialect (API.md §1): /settings, camelCase, RFC 9457 problem details.
// Answers are structs, not maps, so their members come in the contract's order.

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
	return c.JSON(http.StatusOK, struct {
		Secret     string `json:"secret"`
		OTPAuthURL string `json:"otpauthUrl"`
		QRCodeURL  string `json:"qrCodeUrl"`
		DeviceID   int64  `json:"deviceId"`
		Status     string `json:"status"`
	}{setup.Secret, setup.OTPAuthURL, qr, setup.DeviceID, "pending"})
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
	return c.JSON(http.StatusOK, struct {
		Status           string `json:"status"`
		Message          string `json:"message"`
		Removed          int    `json:"removed"`
		MFASignInEnabled bool   `json:"mfaSignInEnabled"`
	}{"success", reply.Message, r.Removed, r.SignInEnabled})
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
		return c.JSON(http.StatusOK, struct {
			Status string `json:"status"`
		}{"verification_sent"})
	}
	return c.JSON(http.StatusOK, struct {
		Status           string   `json:"status"`
		MFASignInEnabled bool     `json:"mfaSignInEnabled"`
		BackupCodes      []string `json:"backupCodes,omitempty"`
	}{"enabled", true, r.BackupCodes})
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
	return c.JSON(http.StatusOK, struct {
		Status           string `json:"status"`
		Message          string `json:"message"`
		MFASignInEnabled bool   `json:"mfaSignInEnabled"`
	}{"success", reply.Message, false})
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
	return c.JSON(http.StatusOK, struct {
		MFASignInEnabled     bool            `json:"mfaSignInEnabled"`
		Methods              []bankingMethod `json:"methods"`
		BackupCodesRemaining int             `json:"backupCodesRemaining"`
	}{st.SignInEnabled, methods, st.BackupCodesRemaining})
}
