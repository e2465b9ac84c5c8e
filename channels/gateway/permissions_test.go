package gateway

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/channels/gateway/gatewaytest"
)

// TestLeastPrivilege runs the gateway as a NATS user in mfad's account allowed exactly
// PublishPermissions("") and SubscribePermissions: it delivers, retries and
// dead-letters with nothing more, and the server does hold it to them.
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

// TestOutsideAccount: in an account of its own, with mfad's JetStream API imported
// under a domain, and only PublishPermissions("mfad") and SubscribePermissions, the
// gateway delivers, retries and dead-letters.
func TestOutsideAccount(t *testing.T) {
	ns := gatewaytest.OutsideAccount(t, PublishPermissions(gatewaytest.Domain), SubscribePermissions)
	admin := &bus{url: ns.ClientURL(), js: natstest.JetStream(t, natstest.Connect(t, ns.ClientURL(),
		nats.UserInfo(gatewaytest.Admin, gatewaytest.AdminPassword)))}

	denied := make(chan string, 16)
	nc := natstest.Connect(t, ns.ClientURL(), nats.UserInfo(gatewaytest.Gateway, gatewaytest.GatewayPassword),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err.Error() }))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.NewWithDomain(nc, gatewaytest.Domain)
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

// TestGrantCoversTheGateway: the gateway user mfad's NATS creates (activity.Grants)
// may do all the gateway needs through the outside domain; a grant narrowed below
// that would leave codes undelivered.
func TestGrantCoversTheGateway(t *testing.T) {
	g, ok := activity.GrantOf(activity.UserGateway)
	if !ok {
		t.Fatal("no grant for the gateway user")
	}
	for _, need := range []struct {
		what       string
		want, have []string
	}{
		{"publish", PublishPermissions(activity.OutsideDomain), g.Publish},
		{"subscribe", SubscribePermissions, g.Subscribe},
	} {
		for _, s := range need.want {
			if !slices.Contains(need.have, s) {
				t.Errorf("the gateway grant may not %s %s (it may %v)", need.what, s, need.have)
			}
		}
	}
}
