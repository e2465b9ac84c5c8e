package activity

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfigs are the JetStream streams mfad relies on.
//   - MFA_EVENTS keeps every event (the audit story) until an operator sets limits. Its
//     dedupe window only has to absorb a re-send after a lost acknowledgement, which the
//     relay makes within seconds (a restart reads the stream instead of relying on it);
//     the server keeps every id of the window in memory, and at thousands of events a
//     second a 10-minute window held most of the process's heap.
//   - MFA_ACTIVITIES is a work queue: an activity is gone once the ingest consumer acks it.
//   - MFA_NOTIFY holds one-time codes in clear for the gateway, so it keeps them an hour.
//   - MFA_GATEWAY_DEAD holds what the gateway gave up on, without the codes, for an
//     operator to look into within a week.
func StreamConfigs(replicas int) []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "mfad events: every audit record as an Activity Streams 2.0 activity",
			Subjects:    []string{EventSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    replicas,
			Duplicates:  time.Minute,
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
			MaxAge:      time.Hour,
			Duplicates:  time.Minute,
		},
		{
			Name:        GatewayDeadStream,
			Description: "SMS and e-mail messages the gateway could not deliver (without their codes)",
			Subjects:    []string{GatewayDeadSubjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Replicas:    replicas,
			MaxAge:      7 * 24 * time.Hour,
			Duplicates:  time.Minute,
		},
	}
}

// EnsureStreams creates the streams or updates them to StreamConfigs; running it at
// every start on every node is safe.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, cfg := range StreamConfigs(replicas) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create or update stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
