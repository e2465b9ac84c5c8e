package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
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
	code, body := readiness(c.Request().Context(), s.ready, s.log)
	return c.JSON(code, body)
}

// readiness runs checks and returns the status and body of /readyz.
func readiness(ctx context.Context, ready []Check, log *slog.Logger) (int, map[string]any) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	checks := make(map[string]string, len(ready))
	details := map[string]string{}
	status, code := "ready", http.StatusOK
	for _, ch := range ready {
		if ch.Detail != nil {
			details[ch.Name] = ch.Detail(ctx)
		}
		if err := ch.Check(ctx); err != nil {
			// The answer is public: it names the failing check, the log says why (paths,
			// driver and NATS errors are for operators).
			log.Warn("readiness check failing", "check", ch.Name, "err", err)
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
	return code, body
}

// OpsHandler serves /healthz and /readyz as the API does, for a listener of the
// process's own (--debug-addr): a worker-only process has no API to ask.
func OpsHandler(ready []Check, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, code int, body any) {
		w.Header().Set("Content-Type", echo.MIMEApplicationJSON)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		code, body := readiness(r.Context(), ready, log)
		write(w, code, body)
	})
	return mux
}
