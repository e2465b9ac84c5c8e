package handlers

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// MaxBody is the largest request body accepted (API.md §0), as for ingested activities.
const MaxBody = mfa.MaxRequestBody

const (
	startKey = "mfad.start"
	langKey  = "mfad.lang"
)

// requestContext stamps every request: X-Request-Id (the caller's if it is sane, else a
// new one), the start time (DruID's elapsed) and the answer language. Every answer,
// errors included, is Cache-Control: no-store unless its handler says otherwise (the
// dashboard's static files): answers are per user, and those of the mutating routes
// may carry TOTP secrets, otpauth URIs or backup codes, which no cache may keep.
func requestContext(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(startKey, time.Now())
		c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !activity.PrintableToken(id, 128) {
			id = mfa.NewID()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		c.Set(langKey, mfa.Lang(c.Request().Header.Get("Accept-Language")))
		return next(c)
	}
}

func language(c echo.Context) string {
	if l, ok := c.Get(langKey).(string); ok {
		return l
	}
	return mfa.Lang(c.Request().Header.Get("Accept-Language"))
}

// limitBody refuses bodies over MaxBody with 413: by Content-Length at once, and while
// reading for bodies without one.
func limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength > MaxBody {
			return &mfa.Error{Code: mfa.CodePayloadTooLarge}
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, MaxBody)
		return next(c)
	}
}

// quietRoutes are logged at debug level: probes, scrapers and the dashboard poll them
// every few seconds and the page's static files come with every visit, and a line each
// at info level would bury the requests people make.
var quietRoutes = map[string]bool{
	"/healthz": true, "/readyz": true, "/metrics": true,
	"/dashboard": true, "/dashboard/*": true, "/api/v1/dashboard/stats": true,
}

// accessLog writes one line per request. It never logs bodies, tokens or query strings:
// they may hold codes and secrets. A request whose client went away is logged at debug
// level: it is no news for an operator.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			start, _ := c.Get(startKey).(time.Time)
			attrs := []any{
				"method", c.Request().Method,
				"route", c.Path(),
				"status", c.Response().Status,
				"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			}
			if p := principal(c); p.Subject != "" {
				attrs = append(attrs, "sub", p.Subject)
			}
			var refused *authFailure
			if errors.As(err, &refused) {
				attrs = append(attrs, "auth_error", authReason(refused.cause))
			}
			level := slog.LevelInfo
			if quietRoutes[c.Path()] || c.Response().Status == StatusClientClosedRequest {
				level = slog.LevelDebug
			}
			log.Log(c.Request().Context(), level, "request", attrs...)
			return nil
		}
	}
}

// isTooLarge reports a body read that hit MaxBody.
func isTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}
