package handlers

import (
	"github.com/labstack/echo/v4"
)

// routes is the whole HTTP surface on one screen.
func (s *server) routes(e *echo.Echo, auth echo.MiddlewareFunc) {
	e.GET("/healthz", s.handleHealth)
	e.GET("/readyz", s.handleReady)

	device := e.Group("/api/v1/mfa", auth)
	device.GET("/status", s.handleStatus)
}
