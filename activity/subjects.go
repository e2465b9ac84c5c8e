package activity

import (
	"fmt"
	"strings"
)

// NATS names. A wildcard subject has a printf twin ending in T.
const (
	// ServiceName is the micro service the workers register; QueueGroup spreads its
	// requests over every worker process.
	ServiceName = "mfa"
	QueueGroup  = "mfa-workers"

	// Commands: request/reply, one endpoint per command type.
	CommandSubjects = "mfa.cmd.>"
	CommandSubjectT = "mfa.cmd.%s"

	// Events: the audit log as Activity Streams 2.0, stream MFA_EVENTS.
	EventsStream   = "MFA_EVENTS"
	EventSubjects  = "mfa.events.>"
	EventSubjectT  = "mfa.events.%s"
	EventSeqHeader = "Mfa-Seq" // the audit seq of an event message

	// Activity ingest: DruID activities from trusted producers, stream MFA_ACTIVITIES.
	ActivitiesStream = "MFA_ACTIVITIES"
	ActivitySubjects = "mfa.activity.>"
	ActivitySubjectT = "mfa.activity.%s"
	ActivityConsumer = "mfad-ingest"

	// Notifications for the SMS/e-mail gateway, stream MFA_NOTIFY.
	NotifyStream   = "MFA_NOTIFY"
	NotifySubjects = "mfa.notify.>"
	NotifySubjectT = "mfa.notify.%s"
	NotifySMS      = "mfa.notify.sms"
	NotifyEmail    = "mfa.notify.email"
	// GatewayConsumer is the SMS/e-mail gateway's durable pull consumer on MFA_NOTIFY,
	// shared by every instance of mfad gateway.
	// mfad creates it (EnsureStreams), so that it exists as a pull consumer before the
	// gateway may touch it: see GatewayConsumerConfig.
	GatewayConsumer = "mfad-gateway"

	// Dead letters of the gateway: notifications it gave up on, stream MFA_GATEWAY_DEAD.
	GatewayDeadStream   = "MFA_GATEWAY_DEAD"
	GatewayDeadSubjects = "mfa.gateway.dead.>"
	GatewayDeadSubjectT = "mfa.gateway.dead.%s"

	// OutsideDomain is the JetStream domain through which the outside accounts (the
	// gateway, auditors, producers: Grants) reach mfad's streams. Their JetStream API
	// prefix is OutsideAPIPrefix, imported from the MFAD account, so a client there
	// uses jetstream.NewWithDomain(nc, OutsideDomain) or `nats --js-domain mfad`.
	OutsideDomain    = "mfad"
	OutsideAPIPrefix = "$JS." + OutsideDomain + ".API"

	// Headers carried on command requests.
	RequestIDHeader = "Mfa-Request-Id"
	MsgIDHeader     = "Nats-Msg-Id"
	FromHeader      = "From"
)

// CommandSubject is the request subject of a command type.
func CommandSubject(commandType string) string {
	return fmt.Sprintf(CommandSubjectT, commandType)
}

// EndpointName is the micro endpoint name of a command type (names allow no dots).
func EndpointName(commandType string) string {
	return strings.ReplaceAll(commandType, ".", "_")
}

// NotifySubject is the subject of a message for the gateway to a method of kind (sms,
// email).
func NotifySubject(kind string) string {
	return fmt.Sprintf(NotifySubjectT, kind)
}

// EventSubject is the subject an event type is published on.
func EventSubject(eventType string) string {
	return fmt.Sprintf(EventSubjectT, eventType)
}
