package handlers

import (
	"github.com/labstack/echo/v4"

	"github.com/mfad/mfad/activity"
)

// routes is the whole HTTP surface on one screen. Middleware is given per route, not
// per group: an echo group with middleware catches every path under it, which would
// turn a wrong method (405) into 401 or 404. stepUp guards removals and disabling MFA
// (RFC 9470) when MFAD_STEPUP_MAX_AGE is set, and adding factors too: a token alone
// must not be enough to add an authenticator whose codes its holder then controls.
func (s *server) routes(e *echo.Echo, auth echo.MiddlewareFunc) {
	e.GET("/healthz", s.handleHealth)
	e.GET("/readyz", s.handleReady)
	e.GET("/metrics", s.handleMetrics)
	e.GET("/openapi.json", s.handleOpenAPI)

	// Banking dialect (API.md §1).
	banking := e.Group("/settings")
	banking.POST("/MfaSecret", s.handleSecretCreate, auth, s.stepUp)
	banking.DELETE("/MfaSecret", s.handleSecretDelete, auth, s.stepUp)
	banking.POST("/MfaSignIn", s.handleSignInEnable, auth, s.stepUp)
	banking.DELETE("/MfaSignIn", s.handleSignInDisable, auth, s.stepUp)
	banking.GET("/Mfa", s.handleSettings, auth)

	// Device dialect (API.md §2).
	device := e.Group("/api/v1/mfa")
	device.POST("/totp/setup", s.handleTOTPSetup, auth, s.stepUp)
	device.POST("/totp/verify", s.handleTOTPVerify, auth)
	device.GET("/totp/devices", s.handleTOTPDevices, auth)
	device.DELETE("/totp/devices/:device_id", s.handleTOTPRemove, auth, s.stepUp)
	device.GET("/backup-codes", s.handleBackupCount, auth)
	device.POST("/backup-codes/regenerate", s.handleBackupRegenerate, auth, s.stepUp)
	device.POST("/otp/send", s.handleOTPSend, auth)
	device.POST("/verify", s.handleVerify, auth)
	device.GET("/status", s.handleStatus, auth)
	device.POST("/webauthn/register/options", s.handleWebAuthnRegisterOptions, auth, s.stepUp)
	device.POST("/webauthn/register/verify", s.handleWebAuthnRegisterVerify, auth)
	device.POST("/webauthn/authenticate/options", s.handleWebAuthnLoginOptions, auth)
	device.GET("/webauthn/devices", s.handleWebAuthnDevices, auth)
	device.DELETE("/webauthn/devices/:device_id", s.handleWebAuthnRemove, auth, s.stepUp)

	// DruID dialect (API.md §3).
	druid := e.Group("/activityid/v1/mfa")
	druid.POST("/delete", s.handleActivity(activity.VerbDelete), auth, s.stepUp)
	druid.POST("/update", s.handleActivity(activity.VerbUpdate), auth, s.stepUp)
	druid.POST("/validate", s.handleActivity(activity.VerbValidate), auth)

	// Admin and audit (API.md §5).
	e.GET("/api/v1/audit", s.handleAudit, auth)
	admin := e.Group("/api/v1/admin")
	admin.GET("/users/:user_id/mfa", s.handleAdminGet, auth, requireAdmin)
	admin.DELETE("/users/:user_id/mfa", s.handleAdminReset, auth, requireAdmin, s.stepUp)

	// Dashboard (API.md §5): the page is public, its data is admin only.
	e.GET("/dashboard", s.handleDashboardPage)
	e.GET("/dashboard/*", s.handleDashboardPage)
	e.GET("/api/v1/dashboard/stats", s.handleDashboardStats, auth, requireAdmin)
	e.GET("/api/v1/dashboard/events", s.handleDashboardEvents, auth, requireAdmin)

	// Account page: a user's own factors, with the token they paste; same origin, so
	// it is where passkeys are registered for the default relying party.
	e.GET("/account", s.handleAccountPage)
	e.GET("/account/*", s.handleAccountPage)
}
