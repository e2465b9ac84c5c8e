package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/channels"
)

// TestCommandsAcrossNATSRestart runs the real command path while the embedded NATS
// server restarts (issue 5): clients send 1,000 TOTP setups through activity.Bus to a
// channels.Worker on NATS, the worker's commits kick an audit.Relay, and the server is
// stopped and started again on the same store and port in the middle. Clients retry
// SERVICE_UNAVAILABLE with the same command, idempotency key included, as API.md §0
// tells them to. While the server is down, more commands reach the worker in process
// (worker.Do), so the audit log grows during the outage.
//
// Afterwards every command has been applied exactly once (one commands row per key,
// one methods insert per key, one totp.device_set_up event per key, carrying the
// device id its client was given), and MFA_EVENTS holds exactly the audit rows, once
// each, in seq order.
func TestCommandsAcrossNATSRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a NATS server under load: skipped with -short")
	}
	const (
		busUsers     = 200
		perUser      = 5 // setups per user; each replaces the user's pending one
		busTotal     = busUsers * perUser
		clients      = 32
		localUsers   = 20 // users whose commands go in process while NATS is down
		localTotal   = localUsers * perUser
		restartAfter = busTotal / 3 // replies received before the server stops
	)
	store, b := openStore(t), newBus(t)
	relay := fastRelay(t, store, b)
	run(t, relay)

	sealer, err := channels.NewSealer(bytes.Repeat([]byte{7}, channels.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	worker, err := channels.NewWorker(channels.Config{
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		AfterCommit: relay.Kick,
	}, store, sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { worker.Stop(context.Background()) })
	// The worker and the clients have connections of their own, as separate processes
	// would; both reconnect to the restarted server by themselves.
	if err := worker.Start(natstest.Connect(t, b.ns.ClientURL())); err != nil {
		t.Fatal(err)
	}
	client := activity.NewBus(natstest.Connect(t, b.ns.ClientURL()), 2*time.Second)

	var (
		replies     atomic.Int64 // successful replies received over NATS
		unavailable atomic.Int64 // SERVICE_UNAVAILABLE answers and timeouts, retried
		replayed    atomic.Int64 // retries answered from the idempotency store
		mu          sync.Mutex
		deviceOf    = map[string]int64{} // idempotency key → device id in its reply
		lastOf      = map[string]int64{} // user → device id of their last setup
		failures    []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		failures = append(failures, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	record := func(user, key string, r mfa.Reply) bool {
		var setup mfa.TOTPSetup
		if err := json.Unmarshal(r.Data, &setup); err != nil || setup.DeviceID == 0 {
			fail("%s: reply data %s (%v)", key, r.Data, err)
			return false
		}
		mu.Lock()
		deviceOf[key] = setup.DeviceID
		lastOf[user] = setup.DeviceID
		mu.Unlock()
		return true
	}
	setup := func(user string, i int) mfa.Command {
		cmd, err := activity.NewCommand(mfa.CmdTOTPSetup, activity.Origin{
			UserID: user, Actor: user, Source: "pc", EntryPoint: "restart-test",
			Key: fmt.Sprintf("%s-setup-%d", user, i),
		}, mfa.TOTPSetupParams{DeviceName: fmt.Sprint("phone ", i)})
		if err != nil {
			t.Fatal(err)
		}
		return cmd
	}

	// send delivers one command over NATS until it gets an answer other than
	// SERVICE_UNAVAILABLE, resending the very same command (same id and key).
	send := func(cmd mfa.Command) {
		deadline := time.Now().Add(30 * time.Second)
		for attempt := 1; ; attempt++ {
			r, err := client.Send(context.Background(), cmd)
			retry := errors.Is(err, activity.ErrUnavailable) || err == nil && r.Code == mfa.CodeUnavailable
			switch {
			case retry && time.Now().Before(deadline):
				unavailable.Add(1)
				time.Sleep(20 * time.Millisecond)
				continue
			case err != nil:
				fail("%s after %d attempts: %v", cmd.Key, attempt, err)
				return
			case !r.OK:
				fail("%s after %d attempts: %s %s", cmd.Key, attempt, r.Code, r.Message)
				return
			}
			if r.Replayed {
				replayed.Add(1)
			}
			if record(cmd.UserID, cmd.Key, r) {
				replies.Add(1)
			}
			return
		}
	}

	var wg sync.WaitGroup
	work := make(chan int)
	for range clients {
		wg.Go(func() {
			for u := range work {
				user := fmt.Sprint("user-", u)
				for i := range perUser {
					send(setup(user, i))
				}
			}
		})
	}
	wg.Go(func() {
		for u := range busUsers {
			work <- u
		}
		close(work)
	})

	waitFor(t, fmt.Sprint(restartAfter, " replies"), func() bool { return replies.Load() >= restartAfter })

	// Hold the worker's only writer connection, so the commands that reach it now wait
	// in its queue, and stop NATS once a good number of them are there. Released
	// during the outage, they commit and their replies go nowhere: the clients time
	// out and resend, and the retry must be answered from the idempotency store.
	ctx := context.Background()
	// A write transaction of our own holds the store's one writer connection.
	release, holding, held := make(chan struct{}), make(chan struct{}), make(chan []error, 1)
	go func() {
		held <- store.Write(ctx, []channels.Unit{{Run: func(context.Context, channels.Tx) error {
			close(holding)
			<-release
			return nil
		}}})
	}()
	<-holding
	var waiting int64
	waitFor(t, "commands waiting for the writer", func() bool {
		waiting = delivered(t, b) - replies.Load()
		return waiting >= clients/2
	})
	b.stop()
	stoppedAt := replies.Load()
	close(release)
	if errs := <-held; errs[0] != nil {
		t.Fatal(errs[0])
	}

	// The outage: commands keep coming in process, so the log grows while the relay
	// cannot publish, and the client retries pile up on its reconnecting connection.
	before := len(auditRows(t, store))
	for u := range localUsers {
		user := fmt.Sprint("local-", u)
		for i := range perUser {
			cmd := setup(user, i)
			r, err := worker.Do(ctx, cmd)
			if err != nil || !r.OK {
				t.Fatalf("%s in process: %v %s %s", cmd.Key, err, r.Code, r.Message)
			}
			record(user, cmd.Key, r)
		}
	}
	during := len(auditRows(t, store)) - before
	if backlog, err := relay.Backlog(ctx); err != nil || backlog < during {
		t.Fatalf("backlog during the outage %d (%v), want at least the %d rows appended", backlog, err, during)
	}
	// Every client has given up on the request it had in flight when NATS went
	// down, so no reply still buffered in the worker's connection can reach one.
	waitFor(t, "every client to time out", func() bool { return unavailable.Load() >= clients })
	b.start()
	t.Logf("NATS stopped after %d of %d replies with %d commands held at the writer; %d audit rows appended while it was down; restarted",
		stoppedAt, busTotal, waiting, during)

	wg.Wait()
	mu.Lock()
	for _, f := range failures {
		t.Error(f)
	}
	mu.Unlock()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d answers were SERVICE_UNAVAILABLE or timeouts and retried; %d retries were replayed", unavailable.Load(), replayed.Load())
	if replayed.Load() == 0 {
		t.Fatal("no retry was answered from the idempotency store: the held commands' replies were not lost")
	}

	rows := auditRows(t, store)
	waitPublished(t, relay, b, len(rows))
	checkStream(t, b, store)

	// Exactly once: every key has one stored reply, one methods insert and one
	// totp.device_set_up event, which names the device its client was given.
	const total = busTotal + localTotal
	db := dbOf(t, store)
	scalar := func(query string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return n
	}
	if n := scalar("SELECT count(*) FROM commands WHERE type = 'totp.setup'"); n != total || len(deviceOf) != total {
		t.Fatalf("commands table holds %d setups, clients got %d answers, want %d", n, len(deviceOf), total)
	}
	if n := scalar("SELECT seq FROM sqlite_sequence WHERE name = 'methods'"); n != total {
		t.Fatalf("%d methods rows were ever inserted for %d setups", n, total)
	}
	users := busUsers + localUsers
	if n := scalar("SELECT count(*) FROM methods"); n != users {
		t.Fatalf("%d methods rows remain, want one pending setup for each of %d users", n, users)
	}
	for user, id := range lastOf {
		var owner string
		if err := db.QueryRow("SELECT user_id FROM methods WHERE id = ? AND verified = 0", id).Scan(&owner); err != nil || owner != user {
			t.Fatalf("the last setup of %s (device %d) is not its pending setup: %q %v", user, id, owner, err)
		}
	}
	setUp := map[string]int{} // device id → totp.device_set_up events
	types := map[string]int{}
	for _, r := range rows {
		types[r.Type]++
		if r.Type != mfa.EventTOTPDeviceSetUp {
			continue
		}
		var body struct {
			Object mfa.EventObject `json:"object"`
		}
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
			t.Fatal(err)
		}
		setUp[body.Object.ID]++
	}
	for key, id := range deviceOf {
		if n := setUp[fmt.Sprint(id)]; n != 1 {
			t.Fatalf("%s: device %d has %d totp.device_set_up events, want 1", key, id, n)
		}
	}
	want := map[string]int{mfa.EventTOTPDeviceSetUp: total, mfa.EventTOTPSecretRemoved: total - users}
	if len(types) != len(want) || types[mfa.EventTOTPDeviceSetUp] != want[mfa.EventTOTPDeviceSetUp] ||
		types[mfa.EventTOTPSecretRemoved] != want[mfa.EventTOTPSecretRemoved] {
		t.Fatalf("audit rows by type %v, want %v", types, want)
	}
}

// delivered is how many requests the mfa micro service has taken, from its stats.
func delivered(t *testing.T, b *bus) int64 {
	t.Helper()
	subject, err := micro.ControlSubject(micro.StatsVerb, activity.ServiceName, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := b.nc.Request(subject, nil, 5*time.Second)
	if err != nil {
		t.Fatalf("service stats: %v", err)
	}
	var stats micro.Stats
	if err := json.Unmarshal(msg.Data, &stats); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range stats.Endpoints {
		n += int64(e.NumRequests)
	}
	return n
}
