package handlers

import (
	"net/url"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// Admin routes (API.md §5): scope mfa:admin, device envelope.

// pathUserID is the {user_id} of an admin path. echo hands over path parameters still
// percent-encoded; user ids are opaque and commonly hold @ or : (alice%40example.com).
func pathUserID(c echo.Context) (string, error) {
	user := c.Param("user_id")
	// echo routes on the escaped path only when Go kept one (URL.RawPath: an escaped
	// slash, say); otherwise the parameter comes decoded, and decoding it again would
	// take x%2541 (the user "x%41") for the user "xA".
	if c.Request().URL.RawPath != "" {
		var err error
		if user, err = url.PathUnescape(user); err != nil {
			return "", mfa.Invalid("user_id", mfa.ReasonFormat)
		}
	}
	return user, checkUserID("user_id", user)
}

// handleAdminGet: GET /api/v1/admin/users/{user_id}/mfa.
func (s *server) handleAdminGet(c echo.Context) error {
	user, err := pathUserID(c)
	if err != nil {
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
	user, err := pathUserID(c)
	if err != nil {
		return err
	}
	if err := decodeBody(c, &struct{}{}); err != nil {
		return err
	}
	r, reply, err := sendFor[mfa.Removal](s, c, request{typ: mfa.CmdAdminReset, userID: user, idempotent: true})
	if err != nil {
		return err
	}
	return deviceOK(c, map[string]any{"user_id": user, "removed": r.Removed, "enabled": r.SignInEnabled}, reply.Message)
}
