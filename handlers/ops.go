package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// handleHealth answers while the process runs.
func (s *server) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady runs every readiness check: 200 when all pass, 503 naming the failures.
func (s *server) handleReady(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	checks := make(map[string]string, len(s.ready))
	details := map[string]string{}
	status, code := "ready", http.StatusOK
	for _, ch := range s.ready {
		if ch.Detail != nil {
			details[ch.Name] = ch.Detail(ctx)
		}
		if err := ch.Check(ctx); err != nil {
			// The answer is public: it names the failing check, the log says why (paths,
			// driver and NATS errors are for operators).
			s.log.Warn("readiness check failing", "check", ch.Name, "err", err)
			checks[ch.Name] = "failing"
			status, code = "not_ready", http.StatusServiceUnavailable
			continue
		}
		checks[ch.Name] = "ok"
	}
	body := map[string]any{"status": status, "checks": checks}
	if len(details) > 0 {
		body["details"] = details
	}
	return c.JSON(code, body)
}
