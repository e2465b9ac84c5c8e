package activity_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

// TestEnsureStreamsLocksAnExistingEventsStream: an MFA_EVENTS created before deletes and
// purges were denied, events in it, gets both flags at the next start, and from then
// on neither a purge nor a delete goes through.
func TestEnsureStreamsLocksAnExistingEventsStream(t *testing.T) {
	js, ctx := newJetStream(t)
	old := activity.StreamConfigs(1)[0]
	old.DenyDelete, old.DenyPurge = false, false
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := js.Publish(ctx, "mfa.events.verify.failed", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // and again, as every start does
		if err := activity.EnsureStreams(ctx, js, activity.StreamOptions{Replicas: 1}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, activity.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; !cfg.DenyDelete || !cfg.DenyPurge {
		t.Fatalf("MFA_EVENTS after EnsureStreams: deny_delete=%t deny_purge=%t", cfg.DenyDelete, cfg.DenyPurge)
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("purge went through")
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("mfa.events.verify.failed")); err == nil {
		t.Fatal("purge of a subject went through")
	}
	if err := s.DeleteMsg(ctx, 2); err == nil {
		t.Fatal("delete went through")
	}
	if err := s.SecureDeleteMsg(ctx, 3); err == nil {
		t.Fatal("secure delete went through")
	}
	// An operator who wants the flags off again is refused by the server, not by mfad.
	if _, err := js.UpdateStream(ctx, old); err == nil || !strings.Contains(err.Error(), "can not cancel deny") {
		t.Fatalf("turning deny_delete off: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 3 {
		t.Fatalf("MFA_EVENTS holds %d messages (%v), want 3", info.State.Msgs, err)
	}
	if _, err := js.Stream(ctx, activity.GatewayDeadStream); err != nil {
		t.Fatalf("dead letter stream: %v", err)
	}
}

// TestEnsureStreamsReportsWhatTheServerRefuses: a stream someone made in a shape
// nats-server cannot update to mfad's fails the start, naming the stream.
func TestEnsureStreamsReportsWhatTheServerRefuses(t *testing.T) {
	js, ctx := newJetStream(t)
	mem := activity.StreamConfigs(1)[0]
	mem.Storage = jetstream.MemoryStorage
	if _, err := js.CreateStream(ctx, mem); err != nil {
		t.Fatal(err)
	}
	err := activity.EnsureStreams(ctx, js, activity.StreamOptions{Replicas: 1})
	if err == nil || !strings.Contains(err.Error(), activity.EventsStream) || !strings.Contains(err.Error(), "storage type") {
		t.Fatalf("EnsureStreams on a memory MFA_EVENTS: %v", err)
	}
}

// TestGatewayConsumer: mfad creates the gateway's pull consumer, leaves the gateway's
// tuning alone at the next start, and refuses to start beside a push consumer by that
// name.
func TestGatewayConsumer(t *testing.T) {
	ns := natstest.Server(t)
	js := natstest.JetStream(t, natstest.Connect(t, ns.ClientURL())) // EnsureStreams
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, activity.NotifyStream, activity.GatewayConsumer)
	if err != nil {
		t.Fatalf("the gateway consumer: %v", err)
	}
	if cfg := c.CachedInfo().Config; cfg.DeliverSubject != "" || cfg.AckPolicy != jetstream.AckExplicitPolicy {
		t.Fatalf("gateway consumer %+v", cfg)
	}
	tuned := activity.GatewayConsumerConfig()
	tuned.AckWait, tuned.MaxDeliver = time.Minute, 7
	if _, err := js.UpdateConsumer(ctx, activity.NotifyStream, tuned); err != nil {
		t.Fatal(err)
	}
	if err := activity.EnsureStreams(ctx, js, activity.StreamOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	c, err = js.Consumer(ctx, activity.NotifyStream, activity.GatewayConsumer)
	if err != nil || c.CachedInfo().Config.AckWait != time.Minute || c.CachedInfo().Config.MaxDeliver != 7 {
		t.Fatalf("the gateway's tuning after a restart: %+v (%v)", c.CachedInfo().Config, err)
	}

	if err := js.DeleteConsumer(ctx, activity.NotifyStream, activity.GatewayConsumer); err != nil {
		t.Fatal(err)
	}
	push := activity.GatewayConsumerConfig()
	push.DeliverSubject = "somewhere"
	if _, err := js.CreatePushConsumer(ctx, activity.NotifyStream, push); err != nil {
		t.Fatal(err)
	}
	if err := activity.EnsureStreams(ctx, js, activity.StreamOptions{Replicas: 1}); err == nil || !strings.Contains(err.Error(), "push consumer") {
		t.Fatalf("EnsureStreams beside a push mfad-gateway: %v", err)
	}
}

// TestEnsureStreamsKeepsEventLimits: limits on MFA_EVENTS, an operator's (set with
// `nats stream edit`) or configured, survive every start; a configured one replaces
// the stream's, an unset one leaves it, and 0 lifts it.
func TestEnsureStreamsKeepsEventLimits(t *testing.T) {
	js, ctx := newJetStream(t)
	limits := func() jetstream.StreamConfig {
		t.Helper()
		s, err := js.Stream(ctx, activity.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().Config
	}
	ensure := func(o activity.StreamOptions) {
		t.Helper()
		o.Replicas = 1
		if err := activity.EnsureStreams(ctx, js, o); err != nil {
			t.Fatal(err)
		}
	}
	ensure(activity.StreamOptions{})
	if c := limits(); c.MaxAge != 0 || c.MaxBytes > 0 || c.MaxMsgs > 0 {
		t.Fatalf("a new MFA_EVENTS has limits: age %v, bytes %d, messages %d", c.MaxAge, c.MaxBytes, c.MaxMsgs)
	}
	// The operator's edit.
	edited := limits()
	edited.MaxAge, edited.MaxBytes, edited.MaxMsgs, edited.MaxMsgsPerSubject = 90*24*time.Hour, 1<<30, 5_000_000, 1_000_000
	if _, err := js.UpdateStream(ctx, edited); err != nil {
		t.Fatal(err)
	}
	ensure(activity.StreamOptions{})
	if c := limits(); c.MaxAge != 90*24*time.Hour || c.MaxBytes != 1<<30 || c.MaxMsgs != 5_000_000 ||
		c.MaxMsgsPerSubject != 1_000_000 || !c.DenyDelete || !c.DenyPurge {
		t.Fatalf("after a start: age %v, bytes %d, messages %d (%d a subject), deny %t/%t",
			c.MaxAge, c.MaxBytes, c.MaxMsgs, c.MaxMsgsPerSubject, c.DenyDelete, c.DenyPurge)
	}
	// A configured age replaces the operator's; the size it does not name stays.
	ensure(activity.StreamOptions{EventsMaxAge: ptr(30 * 24 * time.Hour)})
	if c := limits(); c.MaxAge != 30*24*time.Hour || c.MaxBytes != 1<<30 || c.MaxMsgs != 5_000_000 {
		t.Fatalf("with --events-max-age: age %v, bytes %d, messages %d", c.MaxAge, c.MaxBytes, c.MaxMsgs)
	}
	ensure(activity.StreamOptions{EventsMaxBytes: ptr[int64](2 << 20)})
	if c := limits(); c.MaxAge != 30*24*time.Hour || c.MaxBytes != 2<<20 {
		t.Fatalf("with --events-max-bytes: age %v, bytes %d", c.MaxAge, c.MaxBytes)
	}
	// 0 lifts a limit.
	ensure(activity.StreamOptions{EventsMaxAge: ptr(time.Duration(0)), EventsMaxBytes: ptr[int64](0)})
	if c := limits(); c.MaxAge != 0 || c.MaxBytes > 0 || c.MaxMsgs != 5_000_000 {
		t.Fatalf("with both set to 0: age %v, bytes %d, messages %d", c.MaxAge, c.MaxBytes, c.MaxMsgs)
	}

	// On a server that has no MFA_EVENTS yet, the configured limits are its first.
	js, _ = newJetStream(t)
	ensure(activity.StreamOptions{EventsMaxAge: ptr(time.Hour), EventsMaxBytes: ptr[int64](8 << 20)})
	if c := limits(); c.MaxAge != time.Hour || c.MaxBytes != 8<<20 {
		t.Fatalf("a new MFA_EVENTS with limits configured: age %v, bytes %d", c.MaxAge, c.MaxBytes)
	}
}

func ptr[T any](v T) *T { return &v }

// newJetStream is JetStream on a fresh embedded server, and the test's context.
func newJetStream(t *testing.T) (jetstream.JetStream, context.Context) {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natstest.Server(t).ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return js, ctx
}
