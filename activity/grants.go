package activity

import (
	"fmt"
	"strings"
)

// NATS users and what each may do. mfad's own processes (api, worker) live in the MFAD
// account with the streams and the command service. Every outside client (the
// SMS/e-mail gateway, audit consumers, activity producers) has an account of its own
// that sees only what MFAD exports to it. Accounts, not only permissions, because
// JetStream lets whoever pulls from a consumer name the reply subject the messages are
// delivered to: in one shared account a gateway could have one-time codes delivered
// onto mfa.cmd.> or mfa.events.>, which no publish permission can stop. Across
// accounts the reply of an imported request is mapped back into the caller's account.
// Each account also has its own _INBOX.> namespace, so no role sees another's replies.
const (
	UserAPI      = "api"      // mfad serve --role api
	UserWorker   = "worker"   // mfad serve --role worker
	UserGateway  = "gateway"  // the SMS/e-mail gateway
	UserAuditor  = "auditor"  // mfad audit tail/sink, nats micro ls, event subscribers
	UserProducer = "producer" // services publishing DruID activities

	// MFADAccount holds the streams, the command service and mfad's own users.
	MFADAccount = "MFAD"
)

// OutsideUsers are the users that mfad's embedded NATS server can create for outside
// clients (mfad nats-url).
var OutsideUsers = []string{UserGateway, UserAuditor, UserProducer}

// Grant is what one NATS user may do. Publish and Subscribe are the user's permission
// allow lists; DenyPublish is refused even if a later change widened an allow list.
// An outside user's imports come from the MFAD account, which exports each only to
// that user's account.
type Grant struct {
	User    string
	Account string // MFADAccount, or the outside user's own account (AccountOf)

	Publish     []string
	DenyPublish []string
	Subscribe   []string
	// Responses lets the user publish one reply to each request it received (the
	// workers answer commands and service discovery), whatever the reply subject.
	Responses bool

	Streams  []string // subjects MFAD publishes that are delivered into this account
	Services []Import // requests this account may send into MFAD
}

// Import is a service the MFAD account exports to one outside account.
type Import struct {
	Subject string // in the MFAD account
	Local   string // the subject the outside account publishes to; "" = Subject
	// Stream: one request may be answered by several messages (a pull request, a
	// discovery ping that every worker answers).
	Stream bool
}

// LocalSubject is the subject the importing account publishes to.
func (i Import) LocalSubject() string {
	if i.Local == "" {
		return i.Subject
	}
	return i.Local
}

// AccountOf is the account of an outside user: GATEWAY, AUDITOR, PRODUCER.
func AccountOf(user string) string { return strings.ToUpper(user) }

// jsAPI is a JetStream API subject in MFAD; an outside account sees it under
// OutsideAPIPrefix. nats-server answers any $JS.API request in an account without
// JetStream itself ("JetStream not enabled for account"), so an import cannot keep the
// name.
func jsAPI(format string, args ...any) Import {
	rest := fmt.Sprintf(format, args...)
	return Import{Subject: "$JS.API." + rest, Local: OutsideAPIPrefix + "." + rest}
}

// consumerOn is what a reader of stream needs to use the consumer named name (a
// wildcard for any): create or update it (new and old client API), read its info,
// pull from it, and acknowledge. Deleting consumers and every stream operation but
// info and get stay with mfad.
func consumerOn(stream, name string) []Import {
	next := jsAPI("CONSUMER.MSG.NEXT.%s.%s", stream, name)
	next.Stream = true
	return []Import{
		jsAPI("STREAM.INFO.%s", stream),
		jsAPI("CONSUMER.CREATE.%s.%s", stream, name),
		jsAPI("CONSUMER.CREATE.%s.%s.>", stream, name),
		jsAPI("CONSUMER.DURABLE.CREATE.%s.%s", stream, name),
		jsAPI("CONSUMER.INFO.%s.%s", stream, name),
		next,
		{Subject: fmt.Sprintf("$JS.ACK.%s.%s.>", stream, name)},
	}
}

// discovery are the micro service discovery requests (nats micro ls/info/stats).
func discovery() []Import {
	var out []Import
	for _, verb := range []string{"PING", "INFO", "STATS"} {
		out = append(out, Import{Subject: "$SRV." + verb, Stream: true}, Import{Subject: "$SRV." + verb + ".>", Stream: true})
	}
	return out
}

// jsManage is what every mfad process needs to create or update the streams at start
// (EnsureStreams) and the gateway's consumer.
func jsManage() []string {
	var out []string
	for _, s := range []string{EventsStream, ActivitiesStream, NotifyStream, GatewayDeadStream} {
		out = append(out, "$JS.API.STREAM.CREATE."+s, "$JS.API.STREAM.UPDATE."+s, "$JS.API.STREAM.INFO."+s)
	}
	return append(out,
		"$JS.API.CONSUMER.INFO."+NotifyStream+"."+GatewayConsumer,
		"$JS.API.CONSUMER.CREATE."+NotifyStream+"."+GatewayConsumer+".>")
}

// Grants are the five users' grants, in a fixed order: the NATS configuration README
// shows for an external server, and what the embedded server gives the outside users.
func Grants() []Grant {
	denyOutside := []string{CommandSubjects, EventSubjects}
	// The gateway also reads its dead letters back (nats stream view MFA_GATEWAY_DEAD
	// --js-domain mfad): they hold what it failed to deliver, nothing it did not see.
	gateway := Grant{User: UserGateway, Streams: []string{NotifySubjects},
		Services: append(append(consumerOn(NotifyStream, GatewayConsumer), Import{Subject: GatewayDeadSubjects},
			jsAPI("STREAM.MSG.GET.%s", GatewayDeadStream)), consumerOn(GatewayDeadStream, "*")...)}
	auditor := Grant{User: UserAuditor, Streams: []string{EventSubjects},
		Services: append([]Import{jsAPI("STREAM.MSG.GET.%s", EventsStream)},
			append(consumerOn(EventsStream, "*"), discovery()...)...)}
	producer := Grant{User: UserProducer, Services: []Import{{Subject: ActivitySubjects}}}
	out := []Grant{
		{
			User: UserAPI, Account: MFADAccount,
			Publish: append([]string{CommandSubjects,
				// the dashboard's live feed: ordered consumers on MFA_EVENTS
				"$JS.API.CONSUMER.CREATE." + EventsStream + ".*.>",
				"$JS.API.CONSUMER.MSG.NEXT." + EventsStream + ".*",
				"$JS.API.CONSUMER.DELETE." + EventsStream + ".*",
			}, jsManage()...),
			DenyPublish: []string{EventSubjects},
			Subscribe:   []string{"_INBOX.>"},
		},
		{
			User: UserWorker, Account: MFADAccount,
			Publish: append([]string{EventSubjects, NotifySubjects,
				CommandSubjects,                          // the activity ingester sends commands like the API
				"$JS.API.STREAM.MSG.GET." + EventsStream, // the relay's reconcile
				"$JS.API.CONSUMER.CREATE." + ActivitiesStream + "." + ActivityConsumer + ".>",
				"$JS.API.CONSUMER.MSG.NEXT." + ActivitiesStream + "." + ActivityConsumer,
				// Responses would cover these acks too, but only within nats-server's
				// response expiry (2 minutes by default).
				"$JS.ACK." + ActivitiesStream + "." + ActivityConsumer + ".>",
			}, jsManage()...),
			Subscribe: []string{CommandSubjects, "$SRV.>", "_INBOX.>"},
			Responses: true,
		},
	}
	for _, g := range []Grant{gateway, auditor, producer} {
		g.Account = AccountOf(g.User)
		for _, i := range g.Services {
			g.Publish = append(g.Publish, i.LocalSubject())
		}
		g.DenyPublish = denyOutside
		g.Subscribe = append(append([]string(nil), g.Streams...), "_INBOX.>")
		out = append(out, g)
	}
	return out
}

// GrantOf is the grant of user.
func GrantOf(user string) (Grant, bool) {
	for _, g := range Grants() {
		if g.User == user {
			return g, true
		}
	}
	return Grant{}, false
}
