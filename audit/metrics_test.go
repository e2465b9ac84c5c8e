package audit_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mfad/mfad/audit"
)

// value sums a metric family of reg: counters, gauges, and histograms' sample counts.
func value(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				sum += m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				sum += m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestRelayMetrics: the backlog gauge counts unpublished rows when scraped, each
// acknowledged row is counted and its append-to-ack latency observed, and a pass that
// cannot publish is counted as a failure.
func TestRelayMetrics(t *testing.T) {
	store, b := openStore(t), newBus(t)
	appendN(t, store, 30, "alice")
	reg := prometheus.NewRegistry()
	r := fastRelay(t, store, b, audit.WithMetrics(reg))
	if v := value(t, reg, "mfad_outbox_backlog"); v != 30 {
		t.Fatalf("backlog before publishing = %v, want 30", v)
	}
	drain(t, r)
	for name, want := range map[string]float64{
		"mfad_outbox_backlog":                 0,
		"mfad_outbox_published_total":         30,
		"mfad_outbox_publish_latency_seconds": 30,
		"mfad_outbox_relay_failures_total":    0,
	} {
		if v := value(t, reg, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}

	// NATS down: Run's passes fail and are counted; the backlog shows what waits.
	b.stop()
	appendN(t, store, 2, "alice")
	stop := run(t, r)
	waitFor(t, "a failed relay pass", func() bool { return value(t, reg, "mfad_outbox_relay_failures_total") >= 1 })
	stop()
	if v := value(t, reg, "mfad_outbox_backlog"); v != 2 {
		t.Errorf("backlog during the outage = %v, want 2", v)
	}
	b.start()
	drain(t, r)
	if v := value(t, reg, "mfad_outbox_backlog"); v != 0 {
		t.Errorf("backlog after the outage = %v, want 0", v)
	}
	// The client may have delivered the two during the outage and lost only their
	// acknowledgements; the reconcile then marks them published without an ack of
	// their own, and the counter, which counts acknowledgements, does not move.
	if v := value(t, reg, "mfad_outbox_published_total"); v < 30 || v > 32 {
		t.Errorf("published after the outage = %v, want 30 to 32", v)
	}
}
