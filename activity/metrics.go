package activity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// BusOption adjusts a Bus.
type BusOption func(*Bus)

// WithBusMetrics records every command's round trip and every failed request in reg.
// Buses given the same registry (the HTTP side's and the ingester's) share their series.
func WithBusMetrics(reg prometheus.Registerer) BusOption {
	return func(b *Bus) {
		if reg != nil {
			b.metrics = newBusMetrics(reg)
		}
	}
}

// errBadReply labels a reply that is not a Reply.
var errBadReply = errors.New("bad reply")

// busMetrics are a Bus's series. A nil *busMetrics records nothing.
type busMetrics struct {
	duration *prometheus.HistogramVec // type
	errors   *prometheus.CounterVec   // type, reason

	mu     sync.RWMutex
	byType map[string]prometheus.Observer // kept: WithLabelValues allocates on every call
}

func newBusMetrics(reg prometheus.Registerer) *busMetrics {
	return &busMetrics{
		duration: RegisterMetric(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mfad_nats_request_duration_seconds",
			Help:    "Round trip of a command from the API side (or the activity ingester) to a worker and back, by command type; answered requests only.",
			Buckets: []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"type"})),
		errors: RegisterMetric(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mfad_nats_request_errors_total",
			Help: "Commands that got no usable reply, by command type and reason: " +
				"no_responders (no worker subscribed), timeout, canceled (the caller went away), closed (connection closed), bad_reply, other.",
		}, []string{"type", "reason"})),
		byType: map[string]prometheus.Observer{},
	}
}

// done records an answered command sent at start.
func (m *busMetrics) done(typ string, start time.Time) {
	if m == nil {
		return
	}
	m.mu.RLock()
	o, ok := m.byType[typ]
	m.mu.RUnlock()
	if !ok {
		m.mu.Lock()
		if o, ok = m.byType[typ]; !ok {
			o = m.duration.WithLabelValues(typ)
			m.byType[typ] = o
		}
		m.mu.Unlock()
	}
	o.Observe(time.Since(start).Seconds())
}

// failed records a command that got no usable reply.
func (m *busMetrics) failed(typ string, err error) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(typ, failureReason(err)).Inc()
}

// failureReason sorts a request error into a fixed set of label values.
func failureReason(err error) string {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return "no_responders"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionDraining):
		return "closed"
	case errors.Is(err, errBadReply):
		return "bad_reply"
	}
	return "other"
}

// RegisterMetric registers c with reg, or returns the collector already registered
// under the same description, so that two components given one registry (two workers
// in a test, say) share their series. The worker, relay and bus all register this way.
func RegisterMetric[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(fmt.Sprintf("register metrics: %v", err))
	}
	return c
}
