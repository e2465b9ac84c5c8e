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
	st, reply, err := sendFor[mfa.Status](s, c, request{typ: mfa.CmdAdminGet, userID: user})
	if err != nil {
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
	r, reply, err := sendFor[mfa.Removal](s, c, request{typ: mfa.CmdAdminReset, userID: user, idempotent: true})
	if err != nil {
		return err
	}
	return deviceOK(c, map[string]any{"user_id": user, "removed": r.Removed, "enabled": r.SignInEnabled}, reply.Message)
}
