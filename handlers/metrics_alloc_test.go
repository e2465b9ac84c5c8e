package handlers

import (
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// TestHTTPMetricsAllocations: once a route's status has been seen, counting and timing
// a request allocates nothing (the hot path of thousands of requests a second).
func TestHTTPMetricsAllocations(t *testing.T) {
	m := newHTTPMetrics(prometheus.NewRegistry())
	m.index([]*echo.Route{{Method: http.MethodPost, Path: "/api/v1/mfa/verify"}})
	observe := func() { m.observe(http.MethodPost, "/api/v1/mfa/verify", http.StatusBadRequest, time.Millisecond) }
	observe()
	if n := testing.AllocsPerRun(1000, observe); n != 0 {
		t.Fatalf("%v allocations per request, want 0", n)
	}
}

func BenchmarkHTTPMetricsObserve(b *testing.B) {
	m := newHTTPMetrics(prometheus.NewRegistry())
	m.index([]*echo.Route{{Method: http.MethodPost, Path: "/api/v1/mfa/verify"}})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.observe(http.MethodPost, "/api/v1/mfa/verify", http.StatusOK, time.Millisecond)
		}
	})
}
