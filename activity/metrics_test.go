package activity_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

// series finds the value of a counter, or a histogram's sample count, with labels.
func series(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			if f.GetType() == dto.MetricType_HISTOGRAM {
				return float64(m.GetHistogram().GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestBusMetrics: answered commands are timed by type, and each way of getting no
// usable reply is counted under its reason.
func TestBusMetrics(t *testing.T) {
	ns := natstest.Server(t)
	nc := natstest.Connect(t, ns.ClientURL())
	reg := prometheus.NewRegistry()
	bus := activity.NewBus(nc, 200*time.Millisecond, activity.WithBusMetrics(reg))
	// A second bus on the same registry (mfad has the HTTP side's and the ingester's)
	// shares the series instead of failing to register.
	other := activity.NewBus(nc, 200*time.Millisecond, activity.WithBusMetrics(reg))
	send := func(b *activity.Bus, typ string) error {
		_, err := b.Send(context.Background(), mfa.Command{ID: mfa.NewID(), Type: typ, UserID: "alice"})
		return err
	}

	// No worker at all.
	if err := send(bus, mfa.CmdStatus); err == nil {
		t.Fatal("a command with no worker succeeded")
	}
	// A worker that answers, one that answers nonsense, one that never answers.
	reply := func(data string) nats.MsgHandler {
		return func(m *nats.Msg) { _ = m.Respond([]byte(data)) }
	}
	for typ, h := range map[string]nats.MsgHandler{
		mfa.CmdTOTPList:    reply(`{"ok":true}`),
		mfa.CmdBackupCount: reply(`not json`),
		mfa.CmdVerify:      func(*nats.Msg) {},
	} {
		sub, err := nc.Subscribe(activity.CommandSubject(typ), h)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := send(bus, mfa.CmdTOTPList); err != nil {
			t.Fatal(err)
		}
	}
	if err := send(other, mfa.CmdTOTPList); err != nil {
		t.Fatal(err)
	}
	if err := send(bus, mfa.CmdBackupCount); err == nil {
		t.Fatal("a bad reply was accepted")
	}
	if err := send(bus, mfa.CmdVerify); err == nil {
		t.Fatal("a command nobody answered succeeded")
	}

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mfad_nats_request_duration_seconds", map[string]string{"type": mfa.CmdTOTPList}, 3},
		{"mfad_nats_request_errors_total", map[string]string{"type": mfa.CmdStatus, "reason": "no_responders"}, 1},
		{"mfad_nats_request_errors_total", map[string]string{"type": mfa.CmdBackupCount, "reason": "bad_reply"}, 1},
		{"mfad_nats_request_errors_total", map[string]string{"type": mfa.CmdVerify, "reason": "timeout"}, 1},
	} {
		if got := series(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}
