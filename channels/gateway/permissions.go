package gateway

import (
	"fmt"

	"github.com/mfad/mfad/activity"
)

// NATS permissions of a gateway's user: everything it publishes and subscribes to, and
// nothing more (a test runs the gateway as a user with exactly these). Whoever writes
// the NATS accounts takes them from here.
var (
	PublishPermissions = []string{
		// Create or update the durable consumer; the server names the filter subject
		// in the request's subject.
		fmt.Sprintf("$JS.API.CONSUMER.CREATE.%s.%s.>", activity.NotifyStream, activity.GatewayConsumer),
		fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", activity.NotifyStream, activity.GatewayConsumer),
		fmt.Sprintf("$JS.ACK.%s.%s.>", activity.NotifyStream, activity.GatewayConsumer), // ack, nak, term
		activity.GatewayDeadSubjects,
	}
	SubscribePermissions = []string{activity.GatewayInboxPrefix + ".>"}
)
