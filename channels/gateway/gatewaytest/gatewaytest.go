// Package gatewaytest runs a nats-server in which the SMS/e-mail gateway has a NATS
// account of its own, as mfad's embedded server and README's external configuration
// give it, for the tests of channels/gateway and of mfad gateway.
package gatewaytest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Users of the server: Admin in MFAD (JetStream, mfad's streams), Gateway in GATEWAY.
const (
	Admin, AdminPassword     = "admin", "admin"
	Gateway, GatewayPassword = "gateway", "gateway"
	// Domain is the JetStream domain under which GATEWAY sees MFAD's API.
	Domain = "mfad"
)

// conf is a nats-server configuration in which the gateway has an
// account of its own, as mfad's embedded server and README's external configuration
// give it: MFAD holds JetStream and exports to GATEWAY the notifications, the consumer
// API of mfad-gateway (which GATEWAY sees under the domain prefix $JS.mfad.API), its
// acks and the dead-letter subjects.
const conf = `
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

// OutsideAccount starts the server, with the gateway's user allowed to publish to
// publish and subscribe to subscribe, until the test ends.
func OutsideAccount(t testing.TB, publish, subscribe []string) *server.Server {
	t.Helper()
	quote := func(list []string) string {
		q := make([]string, len(list))
		for i, s := range list {
			q[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(conf, t.TempDir(), quote(publish), quote(subscribe))), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
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
	return ns
}
