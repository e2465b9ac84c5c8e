package handlers

import (
	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// Admin routes (API.md §5): scope mfa:admin, device envelope.

// handleAdminGet: GET /api/v1/admin/users/{user_id}/mfa.
func (s *server) handleAdminGet(c echo.Context) error {
	user := c.Param("user_id")
	if err := checkUserID("user_id", user); err != nil {
		return err
	}
	reply, err := s.send(c, request{typ: mfa.CmdAdminGet, userID: user})
	if err != nil {
		return err
	}
	var st mfa.Status
	if err := unpack(reply, &st); err != nil {
		return err
	}
	return deviceOK(c, map[string]any{
		"user_id":                st.UserID,
		"enabled":                st.SignInEnabled,
		"methods":                deviceMethods(st.Methods),
		"backup_codes_remaining": st.BackupCodesRemaining,
		"failed_attempts":        st.FailedAttempts,
		"locked_until":           st.LockedUntil,
	}, reply.Message)
}

// handleAdminReset: DELETE /api/v1/admin/users/{user_id}/mfa.
func (s *server) handleAdminReset(c echo.Context) error {
	user := c.Param("user_id")
	if err := checkUserID("user_id", user); err != nil {
		return err
	}
	reply, err := s.send(c, request{typ: mfa.CmdAdminReset, userID: user, idempotent: true})
	if err != nil {
		return err
	}
	var r mfa.Removal
	if err := unpack(reply, &r); err != nil {
		return err
	}
	return deviceOK(c, map[string]any{"user_id": user, "removed": r.Removed, "enabled": r.SignInEnabled}, reply.Message)
}
