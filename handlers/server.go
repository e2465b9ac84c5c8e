package handlers

import (
	"context"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	mfa "github.com/mfad/mfad"
)

// Bus sends a command to the workers and returns their reply (activity.Bus), its data
// decoded into data when data is not nil.
type Bus interface {
	SendInto(ctx context.Context, cmd mfa.Command, data any) (mfa.Reply, error)
}

// Check is one readiness condition of /readyz.
type Check struct {
	Name  string
	Check func(context.Context) error
	// Detail, when set, is shown under "details" whether the check passes or not: a
	// fact for operators that is safe to publish (which database, who holds the relay
	// lease), never an error text.
	Detail func(context.Context) string
}

// Config is what the HTTP side needs.
type Config struct {
	Bus          Bus
	Auth         *Authenticator
	Logger       *slog.Logger
	Ready        []Check       // /readyz conditions
	StepUpMaxAge time.Duration // RFC 9470 max age for removals; 0 = off
	// TOTPDigits is the code length of new TOTP devices (6 or 8); 8-digit codes are
	// refused as malformed unless it is 8. Zero means 6.
	TOTPDigits int
	Now        func() time.Time
	Metrics    Registry  // GET /metrics and the HTTP series; nil = no metrics
	Feed       EventFeed // the dashboard's live events; nil answers 503
}

// server holds the dependencies the handlers close over.
type server struct {
	bus     Bus
	log     *slog.Logger
	ready   []Check
	stepUp  echo.MiddlewareFunc
	digits  int // TOTP code length of new devices
	now     func() time.Time
	metrics *httpMetrics
	scrape  echo.HandlerFunc // GET /metrics
	feed    EventFeed
}

// New returns the echo server with every route of API.md.
func New(cfg Config) *echo.Echo {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &server{
		bus:     cfg.Bus,
		log:     cfg.Logger,
		ready:   cfg.Ready,
		stepUp:  requireRecentAuth(cfg.StepUpMaxAge, cfg.Now),
		digits:  cfg.TOTPDigits,
		now:     cfg.Now,
		metrics: newHTTPMetrics(cfg.Metrics),
		scrape:  metricsHandler(cfg.Metrics),
		feed:    cfg.Feed,
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(cfg.Logger)
	e.Use(abortIfGone, s.metrics.middleware, requestContext, accessLog(cfg.Logger))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisableStackAll: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			cfg.Logger.Error("panic in handler", "path", c.Path(), "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(limitBody)
	s.routes(e, authenticate(cfg.Auth))
	s.metrics.index(e.Routes())
	return e
}
