// Package gateway delivers what the workers queue on MFA_NOTIFY: one-time codes and
// security notices, by SMS through an HTTP provider and by e-mail over SMTP, rendered
// from the templates embedded here in English and Spanish. It is `mfad gateway`.
//
// All gateway instances share one durable pull consumer (activity.GatewayConsumer), so
// they split the work and a restart continues where the last one stopped. A message is
// acknowledged only after the provider accepted it. A transient failure (a 5xx or 429
// answer, a 4xx SMTP reply, a network error or a timeout) is retried with backoff, by
// asking JetStream to deliver the message again later; a permanent one (another 4xx
// answer, a 5xx SMTP reply, an unknown template, an expired code), or the last of
// MaxAttempts, sends the message without its code to the dead-letter stream
// (mfa.gateway.dead.<channel>) and terminates it. A crash after the provider accepted a
// message but before the ack reached JetStream sends it again: delivery is at least
// once, and the window is one round trip.
//
// The gateway needs only the NATS permissions in PublishPermissions and
// SubscribePermissions, and never creates or changes a stream (in its own account):
//
//	publish   $JS.API.CONSUMER.CREATE.MFA_NOTIFY.mfad-gateway.>  (create or update the consumer)
//	          $JS.API.CONSUMER.MSG.NEXT.MFA_NOTIFY.mfad-gateway   (pull)
//	          $JS.ACK.MFA_NOTIFY.mfad-gateway.>                   (ack, nak, term)
//	          mfa.gateway.dead.>                                  (dead letters)
//	subscribe _INBOX.>                                            (replies and pulled messages)
//
// Pulled messages carry codes and arrive on the inbox: the gateway's user belongs in a
// NATS account of its own, whose _INBOX.> no other client shares. There, mfad's streams
// are imported, and the JetStream API with them under a domain's prefix
// ($JS.<domain>.API.…): the caller passes a JetStream context made for that domain.
//
// It imports neither channels nor the store: the message format on mfa.notify.sms|email
// (API.md §4) is the whole contract with the workers.
package gateway
