package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfad/mfad/activity"
)

// metrics are the gateway's series, by channel (sms, email, other). Every series
// exists from the start at zero, so rate() of a failure that has not happened yet is 0
// rather than no data. A nil *metrics records nothing.
type metrics struct {
	sent, retried, dead map[string]prometheus.Counter
	failed              map[string]map[bool]prometheus.Counter // channel, permanent
	duration            map[string]prometheus.Observer
}

var metricChannels = []string{ChannelSMS, ChannelEmail, channelOther}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return activity.RegisterMetric(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
	}
	sent := counter("mfad_gateway_sent_total", "Messages the provider accepted, by channel.", "channel")
	failed := counter("mfad_gateway_failed_total",
		"Delivery attempts that failed, by channel and kind: transient (retried unless it was the last attempt) or permanent.",
		"channel", "kind")
	retried := counter("mfad_gateway_retried_total", "Messages handed back to JetStream for a later attempt, by channel.", "channel")
	dead := counter("mfad_gateway_dead_lettered_total",
		"Messages given up on and published to MFA_GATEWAY_DEAD, by channel.", "channel")
	duration := activity.RegisterMetric(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mfad_gateway_send_duration_seconds",
		Help:    "Time a provider took to accept or refuse a message, by channel.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"channel"}))
	m := &metrics{sent: map[string]prometheus.Counter{}, retried: map[string]prometheus.Counter{},
		dead: map[string]prometheus.Counter{}, failed: map[string]map[bool]prometheus.Counter{},
		duration: map[string]prometheus.Observer{}}
	for _, ch := range metricChannels {
		m.sent[ch] = sent.WithLabelValues(ch)
		m.retried[ch] = retried.WithLabelValues(ch)
		m.dead[ch] = dead.WithLabelValues(ch)
		m.failed[ch] = map[bool]prometheus.Counter{
			false: failed.WithLabelValues(ch, "transient"), true: failed.WithLabelValues(ch, "permanent")}
		m.duration[ch] = duration.WithLabelValues(ch)
	}
	return m
}

// attempt records one call to a provider on channel that took d and ended in err.
func (m *metrics) attempt(channel string, d time.Duration, err error) {
	if m == nil {
		return
	}
	ch := metricChannel(channel)
	m.duration[ch].Observe(d.Seconds())
	if err == nil {
		m.sent[ch].Inc()
		return
	}
	m.failed[ch][isPermanent(err)].Inc()
}

// failure records a message that failed before any provider call (it cannot be
// rendered or sent): always permanent.
func (m *metrics) failure(channel string) {
	if m != nil {
		m.failed[metricChannel(channel)][true].Inc()
	}
}

func (m *metrics) retry(channel string) {
	if m != nil {
		m.retried[metricChannel(channel)].Inc()
	}
}

func (m *metrics) deadLetter(channel string) {
	if m != nil {
		m.dead[metricChannel(channel)].Inc()
	}
}
