package activity

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfigs are the JetStream streams mfad relies on.
//   - MFA_EVENTS keeps every event (the audit story) unless limits are set
//     (StreamOptions; an operator's own, set with `nats stream edit`, are kept). A
//     MaxBytes counts against JetStream's storage at once (times the replicas). Its
//     dedupe window is not what keeps an event from being stored twice: after any
//     failure the relay reads the stream back before it sends again, and every publish
//     expects the stream's last sequence, so a copy is refused
//     (TestRelayRefusesACopyPastTheDedupeWindow). On a replicated stream the window
//     turns copies arriving together (a deposed relay's) into duplicate acknowledgements
//     instead. The server keeps every id of the window in memory: at ten thousand
//     events a second a one-minute window was 74 MB of a 105 MB heap, and under a
//     memory limit the garbage collector then took 45 % of the CPU. Ten seconds still
//     left 18 MB of ids beside nats-server's 64 MB of block buffers, and GC half of
//     the CPU in druid-delete after other writes; two seconds made that scenario
//     1.17–1.32× faster (BENCHMARKS.md). Messages can be neither deleted nor purged
//     (DenyDelete, DenyPurge): whoever holds a NATS user with the JetStream API, mfad's
//     own included, cannot quietly drop events. nats-server refuses to turn either
//     flag off again, so this is for good.
//   - MFA_ACTIVITIES is a work queue: an activity is gone once the ingest consumer acks it.
//   - MFA_NOTIFY holds one-time codes in clear for the gateway, so a message with a code
//     lives CodeMessageTTL (a per-message TTL, AllowMsgTTL); a security notice has no
//     code and lives the stream's week, so that a gateway down for hours still sends
//     it. Its dedupe window is an hour: a relay that published and crashed before
//     forgetting the row sends it again on restart, and the stream drops the copy.
//   - MFA_GATEWAY_DEAD holds what the gateway gave up sending, without the codes, a
//     week, for an operator.
func StreamConfigs(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "mfad events: every audit record as an Activity Streams 2.0 activity",
			Subjects:    []string{EventSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    replicas,
			Duplicates:  2 * time.Second,
			DenyDelete:  true,
			DenyPurge:   true,
		},
		{
			Name:        ActivitiesStream,
			Description: "DruID activities for mfad to apply",
			Subjects:    []string{ActivitySubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.WorkQueuePolicy,
			Replicas:    replicas,
			Duplicates:  10 * time.Minute,
		},
		{
			Name:        NotifyStream,
			Description: "SMS and e-mail messages for the gateway",
			Subjects:    []string{NotifySubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    replicas,
			MaxAge:      7 * 24 * time.Hour,
			Duplicates:  time.Hour,
			AllowMsgTTL: true,
		},
		{
			Name:        GatewayDeadStream,
			Description: "notifications the SMS/e-mail gateway could not deliver",
			Subjects:    []string{GatewayDeadSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    replicas,
			MaxAge:      7 * 24 * time.Hour,
		},
	}
}

// GatewayConsumerConfig is the gateway's durable consumer as mfad creates it: a pull
// consumer. It must exist before the gateway connects, because the gateway's NATS user
// may create and update it: had the gateway created it with a deliver subject (a push
// consumer), it could have had the one-time codes delivered onto any subject in mfad's
// account, mfa.cmd.> included. nats-server refuses to turn a pull consumer into a push
// one, so the gateway can only tune it (ack wait, redeliveries, back-off). mfad only
// creates it and never updates it, so the gateway's tuning survives restarts.
func GatewayConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       GatewayConsumer,
		Description:   "SMS/e-mail gateway",
		FilterSubject: NotifySubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
	}
}

// EnsureStreams creates the streams or updates them to StreamConfigs, and creates the
// gateway's consumer when it is missing; running it at every start on every node is
// safe. nats-server refuses some changes to an existing stream (its storage type, a
// work-queue retention, turning DenyDelete or DenyPurge off): a stream someone created
// that way must be changed or recreated by an operator, and the error says which.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	for _, cfg := range StreamConfigs(o.Replicas) {
		if cfg.Name == EventsStream {
			if err := o.eventsLimits(ctx, js, &cfg); err != nil {
				return err
			}
		}
		s, err := js.CreateOrUpdateStream(ctx, cfg)
		if err != nil {
			return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
		}
		// A server that does not know a field ignores it: an old nats-server would
		// leave MFA_EVENTS purgeable while mfad believed otherwise.
		got := s.CachedInfo().Config
		if got.DenyDelete != cfg.DenyDelete || got.DenyPurge != cfg.DenyPurge {
			return fmt.Errorf("stream %s: the server kept deny_delete=%t deny_purge=%t, want %t and %t (nats-server too old?)",
				cfg.Name, got.DenyDelete, got.DenyPurge, cfg.DenyDelete, cfg.DenyPurge)
		}
		// Without per-message TTLs, codes would stay in MFA_NOTIFY for its whole week.
		if cfg.AllowMsgTTL && !got.AllowMsgTTL {
			return fmt.Errorf("stream %s: the server did not allow per-message TTLs (nats-server 2.11 or later needed)", cfg.Name)
		}
	}
	return ensureGatewayConsumer(ctx, js)
}

// CodeMessageTTL is how long a message carrying a one-time code stays in MFA_NOTIFY:
// longer than a code lives, so that the gateway can still say in a dead letter that it
// expired unsent, and no longer, since the code is in clear.
const CodeMessageTTL = time.Hour

// StreamOptions are what an installation decides about the streams.
type StreamOptions struct {
	Replicas int
	// EventsMaxAge and EventsMaxBytes set MFA_EVENTS' limits; 0 lifts one. Nil, the
	// stream keeps the limit it has: none when mfad creates it, or an operator's (or
	// one set here before: every node should be given the same).
	EventsMaxAge   *time.Duration
	EventsMaxBytes *int64
}

// eventsLimits puts MFA_EVENTS' limits into cfg: those configured, else those the
// stream has. Updating the stream with mfad's config alone would lift an operator's
// limits at every start, silently.
func (o StreamOptions) eventsLimits(ctx context.Context, js jetstream.JetStream, cfg *jetstream.StreamConfig) error {
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case err == nil:
		have := s.CachedInfo().Config
		cfg.MaxAge, cfg.MaxBytes, cfg.MaxMsgs, cfg.MaxMsgsPerSubject = have.MaxAge, have.MaxBytes, have.MaxMsgs, have.MaxMsgsPerSubject
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	if o.EventsMaxAge != nil {
		cfg.MaxAge = *o.EventsMaxAge
	}
	if o.EventsMaxBytes != nil {
		cfg.MaxBytes = *o.EventsMaxBytes
		if cfg.MaxBytes == 0 {
			cfg.MaxBytes = -1 // JetStream's "no limit"
		}
	}
	return nil
}

// ensureGatewayConsumer creates the gateway's pull consumer unless it exists, and
// refuses a push consumer by that name (see GatewayConsumerConfig).
func ensureGatewayConsumer(ctx context.Context, js jetstream.JetStream) error {
	_, err := js.Consumer(ctx, NotifyStream, GatewayConsumer)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrNotPullConsumer):
		return fmt.Errorf("consumer %s on %s is a push consumer: its user could send one-time codes to any subject; delete it and restart mfad to have it recreated as a pull consumer",
			GatewayConsumer, NotifyStream)
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("look up consumer %s on %s: %w", GatewayConsumer, NotifyStream, err)
	}
	_, err = js.CreateConsumer(ctx, NotifyStream, GatewayConsumerConfig())
	if err != nil && !errors.Is(err, jetstream.ErrConsumerExists) { // another node may have won
		return fmt.Errorf("create consumer %s on %s: %w", GatewayConsumer, NotifyStream, err)
	}
	return nil
}
