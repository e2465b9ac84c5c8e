package handlers

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is where the HTTP side registers its metrics and what GET /metrics serves;
// *prometheus.Registry is one. cmd/mfad creates one for the process and hands it to
// every package, so /metrics shows the workers, the relay and the bus too.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// unmatchedRoute labels requests no route matched: the raw path is never a label, or
// anyone could create series at will.
const unmatchedRoute = "unmatched"

// httpMetrics counts and times every request by the route's pattern (echo's, as
// c.Path() reports it: /api/v1/mfa/totp/devices/:device_id), method and status.
type httpMetrics struct {
	requests *prometheus.CounterVec   // route, method, status
	duration *prometheus.HistogramVec // route, method
	inFlight prometheus.Gauge

	// series holds the curried series of every registered route and method. It is
	// filled once, after the routes are registered and before the server takes a
	// request, and only read afterwards, so lookups need no lock.
	series map[routeKey]*routeSeries
	paths  map[string]bool // registered path patterns, for requests answered 405
}

type routeKey struct{ method, path string }

// routeSeries is one route's series. Its status counters are created on first use, so
// /metrics lists only statuses that happened, and kept, so the hot path makes no
// allocation: WithLabelValues allocates its variadic slice on every call.
type routeSeries struct {
	route, method string
	duration      prometheus.Observer
	byStatus      [len(knownStatuses)]atomic.Pointer[prometheus.Counter]
}

// knownStatuses are the statuses the handlers answer (API.md and echo's own); any other
// is counted too, through the slower, allocating path.
var knownStatuses = [...]int{200, 204, 304, 400, 401, 403, 404, 405, 408, 409, 413, 415, 417, 422, 429,
	StatusClientClosedRequest, 500, 502, 503, 504}

// statusSlot maps a status to its index in knownStatuses plus one; 0 is "not known".
var statusSlot = func() (slots [600]uint8) {
	for i, s := range knownStatuses {
		slots[s] = uint8(i + 1)
	}
	return slots
}()

// durationBuckets suit a service that answers in about a millisecond when healthy and
// in seconds when a worker or NATS is in trouble (the bus times out after seconds).
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// newHTTPMetrics registers the HTTP series with reg; nil turns them off.
func newHTTPMetrics(reg Registry) *httpMetrics {
	if reg == nil {
		return nil
	}
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mfad_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mfad_http_request_duration_seconds",
			Help:    "Time from receiving an HTTP request to having written its answer, by route pattern and method.",
			Buckets: durationBuckets,
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mfad_http_requests_in_flight",
			Help: "HTTP requests being answered.",
		}),
		series: map[routeKey]*routeSeries{},
		paths:  map[string]bool{},
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

// index prepares the series of every registered route. It must run before the server
// answers its first request.
func (m *httpMetrics) index(routes []*echo.Route) {
	if m == nil {
		return
	}
	for _, r := range routes {
		method := methodLabel(r.Method)
		k := routeKey{method: r.Method, path: r.Path}
		m.series[k] = &routeSeries{route: r.Path, method: method,
			duration: m.duration.WithLabelValues(r.Path, method)}
		m.paths[r.Path] = true
	}
}

// middleware times the request and counts its answer. It runs outermost, after
// accessLog has rendered any error, so the status it reads is the one sent.
func (m *httpMetrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	if m == nil {
		return next
	}
	return func(c echo.Context) error {
		start := time.Now()
		m.inFlight.Inc()
		err := next(c)
		m.inFlight.Dec()
		m.observe(c.Request().Method, c.Path(), c.Response().Status, time.Since(start))
		return err
	}
}

func (m *httpMetrics) observe(method, path string, status int, d time.Duration) {
	rs, ok := m.series[routeKey{method: method, path: path}]
	if !ok {
		// No route for this method and path: a 404, or a 405 on a known path. Rare
		// enough to take the allocating path; the labels still come from fixed sets.
		route := unmatchedRoute
		if m.paths[path] {
			route = path
		}
		method = methodLabel(method)
		m.duration.WithLabelValues(route, method).Observe(d.Seconds())
		m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		return
	}
	rs.duration.Observe(d.Seconds())
	rs.counter(m.requests, status).Inc()
}

// counter is the route's counter of status, created on first use.
func (rs *routeSeries) counter(vec *prometheus.CounterVec, status int) prometheus.Counter {
	slot := 0
	if status >= 0 && status < len(statusSlot) {
		slot = int(statusSlot[status])
	}
	if slot == 0 {
		return vec.WithLabelValues(rs.route, rs.method, strconv.Itoa(status))
	}
	p := &rs.byStatus[slot-1]
	if c := p.Load(); c != nil {
		return *c
	}
	// Two first requests may race here; both get the same counter from the vector.
	c := vec.WithLabelValues(rs.route, rs.method, strconv.Itoa(status))
	p.Store(&c)
	return c
}

// methodLabel keeps the method label to the standard methods: a client may send any
// token as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// handleMetrics: GET /metrics (no token: scrapers rarely carry one, and nothing in it
// names a user).
func (s *server) handleMetrics(c echo.Context) error { return s.scrape(c) }

// metricsHandler serves the registry in the format the scraper asks for. Without a
// registry it answers an empty exposition: the route exists either way.
func metricsHandler(reg Registry) echo.HandlerFunc {
	if reg == nil {
		return func(c echo.Context) error {
			return c.Blob(http.StatusOK, "text/plain; version=0.0.4; charset=utf-8", nil)
		}
	}
	return echo.WrapHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A collector that fails (the outbox backlog query, say) must not hide
		// every other series.
		ErrorHandling: promhttp.ContinueOnError,
	}))
}
