package handlers

import (
	"embed"

	"github.com/labstack/echo/v4"
)

// The account page: where a user lists their factors, adds an authenticator app (QR
// code) or a security key or passkey, and removes one, with a token they paste, as on
// the dashboard. It is served by mfad so that it is on the origin the default relying
// party expects (http://localhost:<port>): WebAuthn binds credentials to an origin, and
// this is the page a newcomer tries them on. It calls the device dialect like any
// client; nothing here is a rule.

//go:embed account
var accountFiles embed.FS

// handleAccountPage serves /account/ and its files. The page needs no token.
func (s *server) handleAccountPage(c echo.Context) error {
	return servePage(c, accountFiles, "account")
}
