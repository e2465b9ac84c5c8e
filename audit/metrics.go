package audit

import (
	"context"
	"math"
	"time"

	"github.com/mfad/mfad/activity"
	"github.com/prometheus/client_golang/prometheus"
)

// WithMetrics records the relay's series in reg: the outbox backlog, events published,
// the latency from append to JetStream's acknowledgement, and failed passes.
func WithMetrics(reg prometheus.Registerer) RelayOption {
	return func(c *relayConfig) { c.metrics = reg }
}

// relayMetrics are a Relay's series. A nil *relayMetrics records nothing.
type relayMetrics struct {
	published prometheus.Counter
	latency   prometheus.Observer
	failures  prometheus.Counter
}

func newRelayMetrics(reg prometheus.Registerer, r *Relay) *relayMetrics {
	if reg == nil {
		return nil
	}
	// The backlog is counted when scraped, from the partial index of unpublished rows:
	// it is what /readyz judges, and it includes rows another relay or a previous run
	// left behind, which a counter kept in memory would not.
	activity.RegisterMetric(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mfad_outbox_backlog",
		Help: "Audit records not yet acknowledged by MFA_EVENTS (NaN when the database could not be read).",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, err := r.Backlog(ctx)
		if err != nil {
			return math.NaN()
		}
		return float64(n)
	}))
	return &relayMetrics{
		published: activity.RegisterMetric(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mfad_outbox_published_total",
			Help: "Audit records acknowledged by MFA_EVENTS (re-sends after a failure included).",
		})),
		latency: activity.RegisterMetric(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mfad_outbox_publish_latency_seconds",
			Help:    "Time from an audit record's append (its created_at) to JetStream's acknowledgement of its event.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		})),
		failures: activity.RegisterMetric(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mfad_outbox_relay_failures_total",
			Help: "Relay passes that failed (NATS or JetStream unavailable, an acknowledgement late, a database error); each is retried after a backoff.",
		})),
	}
}

// acked records rows JetStream acknowledged at now.
func (m *relayMetrics) acked(rows []Record, now time.Time) {
	if m == nil {
		return
	}
	m.published.Add(float64(len(rows)))
	ms := now.UnixMilli()
	for _, row := range rows {
		// created_at comes from the worker's clock, which may run a little ahead of
		// this one: never a negative latency.
		m.latency.Observe(float64(max(ms-row.CreatedAt, 0)) / 1000)
	}
}

func (m *relayMetrics) failed() {
	if m != nil {
		m.failures.Inc()
	}
}
