package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/mfad/mfad/activity"
)

// routes is the whole HTTP surface on one screen. Middleware is given per route, not
// per group: an echo group with middleware catches every path under it, which would
// turn a wrong method (405) into 401 or 404. stepUp guards removals and disabling MFA
// (RFC 9470) when MFAD_STEPUP_MAX_AGE is set, and adding factors too: a token alone
// must not be enough to add an authenticator whose codes its holder then controls.
func (s *server) routes(e *echo.Echo, auth echo.MiddlewareFunc) {
	get(e, "/healthz", s.handleHealth)
	get(e, "/readyz", s.handleReady)
	get(e, "/metrics", s.handleMetrics)
	get(e, "/openapi.json", s.handleOpenAPI)

	// Banking dialect (API.md §1).
	banking := e.Group("/settings")
	banking.POST("/MfaSecret", s.handleSecretCreate, auth, s.stepUp)
	banking.DELETE("/MfaSecret", s.handleSecretDelete, auth, s.stepUp)
	banking.POST("/MfaSignIn", s.handleSignInEnable, auth, s.stepUp)
	banking.DELETE("/MfaSignIn", s.handleSignInDisable, auth, s.stepUp)
	get(banking, "/Mfa", s.handleSettings, auth)

	// Device dialect (API.md §2).
	device := e.Group("/api/v1/mfa")
	device.POST("/totp/setup", s.handleTOTPSetup, auth, s.stepUp)
	device.POST("/totp/verify", s.handleTOTPVerify, auth)
	get(device, "/totp/devices", s.handleTOTPDevices, auth)
	device.DELETE("/totp/devices/:device_id", s.handleTOTPRemove, auth, s.stepUp)
	get(device, "/backup-codes", s.handleBackupCount, auth)
	device.POST("/backup-codes/regenerate", s.handleBackupRegenerate, auth, s.stepUp)
	device.POST("/otp/send", s.handleOTPSend, auth)
	device.POST("/verify", s.handleVerify, auth)
	get(device, "/status", s.handleStatus, auth)
	device.POST("/webauthn/register/options", s.handleWebAuthnRegisterOptions, auth, s.stepUp)
	device.POST("/webauthn/register/verify", s.handleWebAuthnRegisterVerify, auth)
	device.POST("/webauthn/authenticate/options", s.handleWebAuthnLoginOptions, auth)
	get(device, "/webauthn/devices", s.handleWebAuthnDevices, auth)
	device.DELETE("/webauthn/devices/:device_id", s.handleWebAuthnRemove, auth, s.stepUp)

	// DruID dialect (API.md §3).
	druid := e.Group("/activityid/v1/mfa")
	druid.POST("/delete", s.handleActivity(activity.VerbDelete), auth, s.stepUp)
	druid.POST("/update", s.handleActivity(activity.VerbUpdate), auth, s.stepUp)
	druid.POST("/validate", s.handleActivity(activity.VerbValidate), auth)

	// Admin and audit (API.md §5).
	get(e, "/api/v1/audit", s.handleAudit, auth)
	admin := e.Group("/api/v1/admin")
	get(admin, "/users/:user_id/mfa", s.handleAdminGet, auth, requireAdmin)
	admin.DELETE("/users/:user_id/mfa", s.handleAdminReset, auth, requireAdmin, s.stepUp)

	// Dashboard (API.md §5): the page is public, its data is admin only.
	get(e, "/dashboard", s.handleDashboardPage)
	get(e, "/dashboard/*", s.handleDashboardPage)
	get(e, "/api/v1/dashboard/stats", s.handleDashboardStats, auth, requireAdmin)
	get(e, "/api/v1/dashboard/events", s.handleDashboardEvents, auth, requireAdmin)

	// Account page: a user's own factors, with the token they paste; same origin, so
	// it is where passkeys are registered for the default relying party.
	get(e, "/account", s.handleAccountPage)
	get(e, "/account/*", s.handleAccountPage)
}

// matcher is what registers routes: *echo.Echo and *echo.Group.
type matcher interface {
	Match(methods []string, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) []*echo.Route
}

// get registers a GET route and its HEAD twin (RFC 9110 §9.3.2): the same handler
// answers, and net/http leaves the body out of an answer to HEAD. openapi.json
// documents the GET only; the HEAD is implied.
func get(r matcher, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r.Match([]string{http.MethodGet, http.MethodHead}, path, h, m...)
}
