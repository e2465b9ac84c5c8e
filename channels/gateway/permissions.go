package gateway

import (
	"fmt"

	"github.com/mfad/mfad/activity"
)

// PublishPermissions are the subjects a gateway's NATS user publishes to, and nothing
// more (tests run the gateway as a user with exactly these), when it reaches the
// JetStream API of domain (empty: its own account's, $JS.API; else $JS.<domain>.API).
func PublishPermissions(domain string) []string {
	api := "$JS.API"
	if domain != "" {
		api = "$JS." + domain + ".API"
	}
	return []string{
		// Create or update the durable consumer; the client names the filter subject
		// in the request's subject.
		fmt.Sprintf("%s.CONSUMER.CREATE.%s.%s.>", api, activity.NotifyStream, activity.GatewayConsumer),
		fmt.Sprintf("%s.CONSUMER.MSG.NEXT.%s.%s", api, activity.NotifyStream, activity.GatewayConsumer),
		fmt.Sprintf("$JS.ACK.%s.%s.>", activity.NotifyStream, activity.GatewayConsumer), // ack, nak, term
		activity.GatewayDeadSubjects,
	}
}

// SubscribePermissions are the subjects a gateway's NATS user subscribes to: its
// inbox, where replies and pulled messages arrive. Pulled messages carry codes: give
// the gateway a NATS account of its own, whose _INBOX.> no other client shares.
var SubscribePermissions = []string{"_INBOX.>"}
