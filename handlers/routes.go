package handlers

import (
	"github.com/labstack/echo/v4"

	"github.com/mfad/mfad/activity"
)

// routes is the whole HTTP surface on one screen. stepUp guards removals and disabling
// MFA (RFC 9470) when MFAD_STEPUP_MAX_AGE is set.
func (s *server) routes(e *echo.Echo, auth echo.MiddlewareFunc) {
	e.GET("/healthz", s.handleHealth)
	e.GET("/readyz", s.handleReady)

	// Banking dialect (API.md §1).
	banking := e.Group("/settings", auth)
	banking.POST("/MfaSecret", s.handleSecretCreate)
	banking.DELETE("/MfaSecret", s.handleSecretDelete, s.stepUp)
	banking.POST("/MfaSignIn", s.handleSignInEnable)
	banking.DELETE("/MfaSignIn", s.handleSignInDisable, s.stepUp)
	banking.GET("/Mfa", s.handleSettings)

	// Device dialect (API.md §2).
	device := e.Group("/api/v1/mfa", auth)
	device.POST("/totp/setup", s.handleTOTPSetup)
	device.POST("/totp/verify", s.handleTOTPVerify)
	device.GET("/totp/devices", s.handleTOTPDevices)
	device.DELETE("/totp/devices/:device_id", s.handleTOTPRemove, s.stepUp)
	device.GET("/backup-codes", s.handleBackupCount)
	device.POST("/backup-codes/regenerate", s.handleBackupRegenerate)
	device.POST("/otp/send", s.handleOTPSend)
	device.POST("/verify", s.handleVerify)
	device.GET("/status", s.handleStatus)

	// DruID dialect (API.md §3).
	druid := e.Group("/activityid/v1/mfa", auth)
	druid.POST("/delete", s.handleActivity(activity.VerbDelete), s.stepUp)
	druid.POST("/update", s.handleActivity(activity.VerbUpdate))
	druid.POST("/validate", s.handleActivity(activity.VerbValidate))

	// Admin (API.md §5).
	e.GET("/api/v1/audit", s.handleAudit, auth) // admin: every user; others: their own
	admin := e.Group("/api/v1/admin", auth, requireAdmin)
	admin.GET("/users/:user_id/mfa", s.handleAdminGet)
	admin.DELETE("/users/:user_id/mfa", s.handleAdminReset)
}
