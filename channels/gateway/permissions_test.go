package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

// TestLeastPrivilege runs the gateway as a NATS user allowed exactly
// PublishPermissions("") and SubscribePermissions, in mfad's account: it delivers, retries and dead-letters
// with nothing more, and the server does hold it to them.
func TestLeastPrivilege(t *testing.T) {
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "admin", Password: "admin"},
			{Username: "gateway", Password: "gateway", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: PublishPermissions("")},
				Subscribe: &server.SubjectPermission{Allow: SubscribePermissions},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	admin := &bus{url: ns.ClientURL(), js: natstest.JetStream(t, natstest.Connect(t, ns.ClientURL(), nats.UserInfo("admin", "admin")))}

	denied := make(chan string, 16)
	nc := natstest.Connect(t, ns.ClientURL(), nats.UserInfo("gateway", "gateway"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err.Error() }))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The server enforces the list: this user cannot so much as look at a stream.
	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	if _, err := js.Stream(short, activity.NotifyStream); err == nil {
		t.Fatal("the gateway user read stream info: the permissions are not in force")
	}
	<-denied // the violation the server reported for that request

	p := newSMSProvider(t, http.StatusServiceUnavailable, http.StatusCreated, http.StatusBadRequest)
	g, err := New(js, Config{SMS: p.sender(t), RetryDelay: func(uint64) time.Duration { return 10 * time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop(context.Background()) })

	admin.publish(t, ChannelSMS, codeNote("+34600111222", "mfa_signin_code", "en", "223606")) // 503, then sent
	admin.settled(t)
	admin.publish(t, ChannelSMS, codeNote("+34600333444", "mfa_signin_code", "en", "264575")) // 400: dead letter
	if dl := admin.waitDead(t, 1); dl[0].Notification["to"] == nil || len(p.received()) != 3 {
		t.Fatalf("dead letter %s after %d requests", dl[0].raw, len(p.received()))
	}
	admin.settled(t)
	select {
	case err := <-denied:
		t.Fatalf("the gateway needed a permission it does not have: %s", err)
	default:
	}
}

// outsideAccountConf is a nats-server configuration in which the gateway has an
// account of its own, as mfad's embedded server and README's external configuration
// give it: MFAD holds JetStream and exports to GATEWAY the notifications, the consumer
// API of mfad-gateway (which GATEWAY sees under the domain prefix $JS.mfad.API), its
// acks and the dead-letter subjects.
const outsideAccountConf = `
listen: "127.0.0.1:-1"
jetstream { store_dir: %q }
accounts {
  MFAD {
    jetstream: enabled
    users: [{user: admin, password: admin}]
    exports: [
      {stream: "mfa.notify.>", accounts: [GATEWAY]}
      {service: "$JS.API.CONSUMER.CREATE.MFA_NOTIFY.mfad-gateway.>", accounts: [GATEWAY]}
      {service: "$JS.API.CONSUMER.MSG.NEXT.MFA_NOTIFY.mfad-gateway", response_type: stream, accounts: [GATEWAY]}
      {service: "$JS.ACK.MFA_NOTIFY.mfad-gateway.>", accounts: [GATEWAY]}
      {service: "mfa.gateway.dead.>", accounts: [GATEWAY]}
    ]
  }
  GATEWAY {
    users: [{user: gateway, password: gateway, permissions: {
      publish: {allow: %s}
      subscribe: {allow: %s}
    }}]
    imports: [
      {stream: {account: MFAD, subject: "mfa.notify.>"}}
      {service: {account: MFAD, subject: "$JS.API.CONSUMER.CREATE.MFA_NOTIFY.mfad-gateway.>"}, to: "$JS.mfad.API.CONSUMER.CREATE.MFA_NOTIFY.mfad-gateway.>"}
      {service: {account: MFAD, subject: "$JS.API.CONSUMER.MSG.NEXT.MFA_NOTIFY.mfad-gateway"}, to: "$JS.mfad.API.CONSUMER.MSG.NEXT.MFA_NOTIFY.mfad-gateway"}
      {service: {account: MFAD, subject: "$JS.ACK.MFA_NOTIFY.mfad-gateway.>"}}
      {service: {account: MFAD, subject: "mfa.gateway.dead.>"}}
    ]
  }
}
`

// TestOutsideAccount: in an account of its own, with mfad's JetStream API imported
// under a domain, and only PublishPermissions("mfad") and SubscribePermissions, the
// gateway delivers, retries and dead-letters.
func TestOutsideAccount(t *testing.T) {
	quote := func(list []string) string {
		q := make([]string, len(list))
		for i, s := range list {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	conf := filepath.Join(t.TempDir(), "nats.conf")
	err := os.WriteFile(conf, []byte(fmt.Sprintf(outsideAccountConf, t.TempDir(),
		quote(PublishPermissions("mfad")), quote(SubscribePermissions))), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	opts.NoLog, opts.NoSigs = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	admin := &bus{url: ns.ClientURL(), js: natstest.JetStream(t, natstest.Connect(t, ns.ClientURL(), nats.UserInfo("admin", "admin")))}

	denied := make(chan string, 16)
	nc := natstest.Connect(t, ns.ClientURL(), nats.UserInfo("gateway", "gateway"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err.Error() }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.NewWithDomain(nc, "mfad")
	if err != nil {
		t.Fatal(err)
	}
	p := newSMSProvider(t, http.StatusServiceUnavailable, http.StatusCreated, http.StatusBadRequest)
	g, err := New(js, Config{SMS: p.sender(t), RetryDelay: func(uint64) time.Duration { return 10 * time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop(context.Background()) })

	admin.publish(t, ChannelSMS, codeNote("+34600111222", "mfa_signin_code", "en", "244948")) // 503, then sent
	admin.settled(t)
	admin.publish(t, ChannelSMS, codeNote("+34600333444", "mfa_signin_code", "en", "282842")) // 400: dead letter
	if dl := admin.waitDead(t, 1); string(dl[0].Notification["to"]) != `"+34600333444"` || len(p.received()) != 3 {
		t.Fatalf("dead letter %s after %d requests", dl[0].raw, len(p.received()))
	}
	admin.settled(t)
	select {
	case err := <-denied:
		t.Fatalf("the gateway needed a permission it does not have: %s", err)
	default:
	}
}
