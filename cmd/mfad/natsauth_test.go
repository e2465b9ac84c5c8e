package main

// The embedded NATS server's users, against the real server in this process: each
// outside user can do its job, and is refused everything else.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

// embeddedBus starts the embedded server on a data dir of its own and returns it, the
// outside users' passwords and an in-process connection of mfad's own user with the
// streams created.
func embeddedBus(t *testing.T) (*embeddedNATS, natsUsers, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	cfg := &Config{DataDir: t.TempDir(), NATSListen: "127.0.0.1:0", Role: "all"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns, err := startEmbeddedNATS(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	users, err := cfg.natsUsers()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := connectNATS(cfg.NATSURL, cfg.NATSCreds, ns, "mfad-test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js := natstest.JetStream(t, nc)
	return ns, users, nc, js
}

// connectAs connects over TCP as an outside user.
func connectAs(t *testing.T, ns *embeddedNATS, users natsUsers, user string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("nats://"+ns.Addr().String(), nats.UserInfo(user, users[user]), nats.Name("test-"+user))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// refused does op on nc and wants the server to refuse it with a permissions violation
// naming what: the error reaches the client before the answer to the flush's ping.
func refused(t *testing.T, nc *nats.Conn, what string, op func() error) {
	t.Helper()
	if err := op(); err != nil && !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatalf("%s: %v", what, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush after %s: %v", what, err)
	}
	err := nc.LastError()
	if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), fmt.Sprintf("%q", what)) {
		t.Fatalf("%s: last error %v, want a permissions violation for it", what, err)
	}
}

// legacyDurable creates or updates a durable consumer through the JetStream API of the
// older clients (CONSUMER.DURABLE.CREATE, the consumer's name in the subject) and
// wants it done.
func legacyDurable(t *testing.T, nc *nats.Conn, stream, name, config string) {
	t.Helper()
	subject := fmt.Sprintf("%s.CONSUMER.DURABLE.CREATE.%s.%s", activity.OutsideAPIPrefix, stream, name)
	m, err := nc.Request(subject, []byte(fmt.Sprintf(`{"stream_name":%q,"config":%s}`, stream, config)), 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subject, err)
	}
	var resp struct {
		Name  string          `json:"name"`
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil || resp.Name != name || resp.Error != nil {
		t.Fatalf("%s: %s", subject, m.Data)
	}
}

// none wants no message on sub within a moment: what was sent went nowhere.
func none(t *testing.T, sub *nats.Subscription, why string) {
	t.Helper()
	if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("%s: %s got %q", why, sub.Subject, m.Data)
	}
}

func TestEmbeddedNATSRefusesAnonymousAndWrongPasswords(t *testing.T) {
	ns, users, _, _ := embeddedBus(t)
	url := "nats://" + ns.Addr().String()
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"wrong password", []nats.Option{nats.UserInfo(activity.UserAuditor, users[activity.UserAuditor]+"x")}},
		{"mfad's own user over TCP with a guess", []nats.Option{nats.UserInfo(internalNATSUser, users[activity.UserAuditor])}},
		{"an api user, which only an external server has", []nats.Option{nats.UserInfo(activity.UserAPI, users[activity.UserAuditor])}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := nats.Connect(url, append(tc.opts, nats.NoReconnect())...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), "Authorization Violation") {
				t.Fatalf("error %v, want Authorization Violation", err)
			}
		})
	}
}

func TestGatewayUser(t *testing.T) {
	ns, users, mfad, js := embeddedBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	gw := connectAs(t, ns, users, activity.UserGateway)

	live, err := gw.SubscribeSync(activity.NotifySubjects)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, activity.NotifySMS, []byte(`{"to":"+34600000001","code":"123456"}`)); err != nil {
		t.Fatal(err)
	}
	if m, err := live.NextMsg(5 * time.Second); err != nil || !strings.Contains(string(m.Data), "123456") {
		t.Fatalf("live notification: %v", err)
	}

	t.Run("consumes MFA_NOTIFY with its durable consumer and acks", func(t *testing.T) {
		gjs, stream, err := activity.OpenStream(ctx, gw, activity.NotifyStream, activity.DomainAuto)
		if err != nil {
			t.Fatal(err)
		}
		if stream.CachedInfo().Config.Name != activity.NotifyStream {
			t.Fatalf("stream info %+v", stream.CachedInfo().Config)
		}
		// The gateway tunes the consumer mfad created: an update.
		cfg := activity.GatewayConsumerConfig()
		cfg.AckWait, cfg.MaxDeliver = 45*time.Second, 5
		cons, err := gjs.CreateOrUpdateConsumer(ctx, activity.NotifyStream, cfg)
		if err != nil {
			t.Fatalf("update the gateway consumer: %v", err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []jetstream.Msg
		for m := range batch.Messages() {
			got = append(got, m)
		}
		if len(got) != 1 || !strings.Contains(string(got[0].Data()), "123456") {
			t.Fatalf("fetched %d messages (%v)", len(got), batch.Error())
		}
		if err := got[0].DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
		info, err := cons.Info(ctx)
		if err != nil || info.AckFloor.Stream != 1 || info.Config.AckWait != 45*time.Second {
			t.Fatalf("consumer info %+v (%v)", info, err)
		}
		// Dead letters, with their PubAck.
		ack, err := gjs.Publish(ctx, fmt.Sprintf(activity.GatewayDeadSubjectT, "sms"), got[0].Data())
		if err != nil || ack.Stream != activity.GatewayDeadStream {
			t.Fatalf("dead letter: %+v %v", ack, err)
		}
		// …and reads them back, as an operator looking into them does.
		dead, err := gjs.Stream(ctx, activity.GatewayDeadStream)
		if err != nil {
			t.Fatalf("dead letters stream: %v", err)
		}
		if m, err := dead.GetMsg(ctx, ack.Sequence); err != nil || !strings.Contains(string(m.Data), "123456") {
			t.Fatalf("get the dead letter: %v", err)
		}
		view, err := dead.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			t.Fatalf("view the dead letters: %v", err)
		}
		if m, err := view.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil || !strings.Contains(string(m.Data()), "123456") {
			t.Fatalf("next dead letter: %v", err)
		}
	})

	t.Run("older clients update the consumer too", func(t *testing.T) {
		legacyDurable(t, gw, activity.NotifyStream, activity.GatewayConsumer,
			`{"durable_name":"mfad-gateway","filter_subject":"mfa.notify.>","deliver_policy":"all","ack_policy":"explicit","ack_wait":60000000000}`)
	})

	t.Run("cannot turn its consumer into a push consumer", func(t *testing.T) {
		gjs, err := jetstream.NewWithDomain(gw, activity.OutsideDomain)
		if err != nil {
			t.Fatal(err)
		}
		cfg := activity.GatewayConsumerConfig()
		cfg.DeliverSubject = "mfa.cmd.signin.disable"
		if _, err := gjs.CreateOrUpdatePushConsumer(ctx, activity.NotifyStream, cfg); err == nil {
			t.Fatal("the gateway made mfad-gateway a push consumer")
		}
		if c, err := js.Consumer(ctx, activity.NotifyStream, activity.GatewayConsumer); err != nil || c.CachedInfo().Config.DeliverSubject != "" {
			t.Fatalf("mfad-gateway after the attempt: %v", err)
		}
	})

	t.Run("a pull request's reply cannot reach mfad's account", func(t *testing.T) {
		if _, err := js.Publish(ctx, activity.NotifySMS, []byte(`{"to":"+34600000001","user_id":"victim","code":"654321"}`)); err != nil {
			t.Fatal(err)
		}
		cmd, err := mfad.SubscribeSync("mfa.cmd.>")
		if err != nil {
			t.Fatal(err)
		}
		if err := mfad.Flush(); err != nil {
			t.Fatal(err)
		}
		next := activity.OutsideAPIPrefix + ".CONSUMER.MSG.NEXT." + activity.NotifyStream + "." + activity.GatewayConsumer
		if err := gw.PublishRequest(next, "mfa.cmd.signin.disable", []byte(`{"batch":1}`)); err != nil {
			t.Fatal(err)
		}
		if err := gw.Flush(); err != nil {
			t.Fatal(err)
		}
		none(t, cmd, "pull reply redirected")
	})

	t.Run("refused", func(t *testing.T) {
		refusedPub(t, ns, users, activity.UserGateway, "mfa.cmd.admin.reset", "mfa.events.totp.device_verified", "mfa.activity.delete",
			activity.OutsideAPIPrefix+".STREAM.PURGE."+activity.NotifyStream,
			activity.OutsideAPIPrefix+".STREAM.DELETE."+activity.NotifyStream,
			activity.OutsideAPIPrefix+".CONSUMER.CREATE."+activity.NotifyStream+".other",
			activity.OutsideAPIPrefix+".CONSUMER.DELETE."+activity.NotifyStream+"."+activity.GatewayConsumer,
			activity.OutsideAPIPrefix+".STREAM.INFO."+activity.EventsStream,
			"$JS.API.STREAM.PURGE."+activity.NotifyStream, "$SRV.PING")
		refusedSub(t, ns, users, activity.UserGateway, activity.EventSubjects, activity.CommandSubjects, activity.ActivitySubjects)
	})
}

// refusedPub and refusedSub are refused with a fresh connection each, so that every
// violation is the connection's last error.
func refusedPub(t *testing.T, ns *embeddedNATS, users natsUsers, user string, subjects ...string) {
	t.Helper()
	for _, subject := range subjects {
		nc := connectAs(t, ns, users, user)
		refused(t, nc, subject, func() error { return nc.Publish(subject, []byte(`{}`)) })
	}
}

func refusedSub(t *testing.T, ns *embeddedNATS, users natsUsers, user string, subjects ...string) {
	t.Helper()
	for _, subject := range subjects {
		nc := connectAs(t, ns, users, user)
		refused(t, nc, subject, func() error { _, err := nc.SubscribeSync(subject); return err })
	}
}

func TestAuditorUser(t *testing.T) {
	ns, users, mfad, js := embeddedBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := micro.AddService(mfad, micro.Config{Name: activity.ServiceName, Version: "1.0.0", QueueGroup: activity.QueueGroup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	au := connectAs(t, ns, users, activity.UserAuditor)
	live, err := au.SubscribeSync(activity.EventSubjects)
	if err != nil {
		t.Fatal(err)
	}
	if err := au.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx, "mfa.events.totp.device_verified", []byte(fmt.Sprintf(`{"mfa:seq":%d}`, i+1))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := live.NextMsg(5 * time.Second); err != nil {
		t.Fatalf("live event: %v", err)
	}

	ajs, stream, err := activity.OpenStream(ctx, au, activity.EventsStream, activity.DomainAuto)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("reads MFA_EVENTS: get, ordered consumer, durable consumer", func(t *testing.T) {
		if m, err := stream.GetMsg(ctx, 2); err != nil || string(m.Data) != `{"mfa:seq":2}` {
			t.Fatalf("get message 2: %v", err)
		}
		oc, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{activity.EventSubjects}})
		if err != nil {
			t.Fatal(err)
		}
		it, err := oc.Messages()
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			m, err := it.Next()
			if err != nil || string(m.Data()) != fmt.Sprintf(`{"mfa:seq":%d}`, i+1) {
				t.Fatalf("ordered consumer message %d: %v", i+1, err)
			}
		}
		it.Stop()
		dc, err := ajs.CreateOrUpdateConsumer(ctx, activity.EventsStream, jetstream.ConsumerConfig{
			Durable: "compliance", FilterSubject: activity.EventSubjects, AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := dc.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
			n++
		}
		if info, err := dc.Info(ctx); n != 3 || err != nil || info.AckFloor.Stream != 3 {
			t.Fatalf("durable: %d fetched, info %+v, %v", n, info, err)
		}
		legacyDurable(t, au, activity.EventsStream, "older-client", `{"durable_name":"older-client","deliver_policy":"all","ack_policy":"explicit"}`)
	})

	t.Run("discovers the mfa service like nats micro ls", func(t *testing.T) {
		for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
			for _, name := range []string{"", activity.ServiceName} {
				subject, err := micro.ControlSubject(verb, name, "")
				if err != nil {
					t.Fatal(err)
				}
				m, err := au.Request(subject, nil, 5*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", subject, err)
				}
				var answer struct{ Name string }
				if err := json.Unmarshal(m.Data, &answer); err != nil || answer.Name != activity.ServiceName {
					t.Fatalf("%s answered %s", subject, m.Data)
				}
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		refusedPub(t, ns, users, activity.UserAuditor, "mfa.cmd.admin.reset", "mfa.events.x", "mfa.activity.delete", "mfa.notify.sms",
			activity.OutsideAPIPrefix+".STREAM.PURGE."+activity.EventsStream,
			activity.OutsideAPIPrefix+".STREAM.DELETE."+activity.EventsStream,
			activity.OutsideAPIPrefix+".STREAM.MSG.DELETE."+activity.EventsStream,
			activity.OutsideAPIPrefix+".STREAM.UPDATE."+activity.EventsStream,
			activity.OutsideAPIPrefix+".STREAM.CREATE.MINE",
			activity.OutsideAPIPrefix+".CONSUMER.DELETE."+activity.EventsStream+".compliance",
			activity.OutsideAPIPrefix+".STREAM.INFO."+activity.NotifyStream,
			activity.OutsideAPIPrefix+".CONSUMER.MSG.NEXT."+activity.NotifyStream+"."+activity.GatewayConsumer,
			"$JS.API.STREAM.PURGE."+activity.EventsStream, "$JS.API.STREAM.DELETE."+activity.EventsStream)
		refusedSub(t, ns, users, activity.UserAuditor, activity.NotifySubjects, "mfa.notify.sms", activity.CommandSubjects,
			activity.ActivitySubjects, activity.GatewayDeadSubjects)
	})

	// Even mfad's own user cannot drop events: the stream refuses.
	t.Run("MFA_EVENTS refuses purges and deletes", func(t *testing.T) {
		s, err := js.Stream(ctx, activity.EventsStream)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Purge(ctx); err == nil {
			t.Fatal("MFA_EVENTS was purged")
		}
		if err := s.DeleteMsg(ctx, 1); err == nil {
			t.Fatal("an event was deleted")
		}
		if info, err := s.Info(ctx); err != nil || info.State.Msgs != 3 {
			t.Fatalf("MFA_EVENTS after the attempts: %+v %v", info, err)
		}
	})
}

func TestProducerUser(t *testing.T) {
	ns, users, mfad, js := embeddedBus(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pr := connectAs(t, ns, users, activity.UserProducer)
	pjs, err := jetstream.New(pr)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := pjs.Publish(ctx, "mfa.activity.delete", []byte(`{"id":"a1"}`), jetstream.WithMsgID("a1"))
	if err != nil || ack.Stream != activity.ActivitiesStream || ack.Sequence != 1 {
		t.Fatalf("publish an activity: %+v %v", ack, err)
	}
	if s, err := js.Stream(ctx, activity.ActivitiesStream); err != nil || s.CachedInfo().State.Msgs != 1 {
		t.Fatalf("MFA_ACTIVITIES: %v", err)
	}
	// Its PubAcks come to its own inbox, which mfad's account never sees.
	inboxes, err := mfad.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := mfad.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := pjs.Publish(ctx, "mfa.activity.update", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	none(t, inboxes, "the producer's PubAck")

	refusedPub(t, ns, users, activity.UserProducer, "mfa.cmd.admin.reset", "mfa.events.x", "mfa.notify.sms", "$SRV.PING",
		"$JS.API.STREAM.PURGE."+activity.ActivitiesStream, activity.OutsideAPIPrefix+".STREAM.INFO."+activity.ActivitiesStream)
	refusedSub(t, ns, users, activity.UserProducer, activity.ActivitySubjects, activity.EventSubjects, activity.NotifySubjects,
		activity.CommandSubjects)
}

// TestNATSUsersFile: generated once, 0600, the same for processes starting at once; a
// configured file is taken as it is, and refused when it is not sane.
func TestNATSUsersFile(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	got := make([]natsUsers, 8)
	for i := range got {
		wg.Go(func() {
			cfg := &Config{DataDir: dir}
			u, err := cfg.natsUsers()
			if err != nil {
				t.Error(err)
			}
			got[i] = u
		})
	}
	wg.Wait()
	for _, u := range got[1:] {
		if fmt.Sprint(u) != fmt.Sprint(got[0]) {
			t.Fatalf("processes starting at once disagree: %v and %v", got[0], u)
		}
	}
	for _, user := range activity.OutsideUsers {
		if !goodPassword(got[0][user]) {
			t.Fatalf("generated password of %s: %q", user, got[0][user])
		}
	}
	st, err := os.Stat(filepath.Join(dir, natsUsersFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v, mode %v", err, st.Mode())
	}

	for _, tc := range []struct {
		content, err string
	}{
		{`{"auditor":"0123456789abcdefXYZ_-.~"}`, ""},
		{`{"auditor":"short"}`, "password of auditor"},
		{`{"auditor":"has a space in it 0123"}`, "password of auditor"},
		{`{"root":"0123456789abcdefXYZ"}`, `unknown user "root"`},
		{`["auditor"]`, "not a JSON object"},
	} {
		path := filepath.Join(t.TempDir(), "users.json")
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := &Config{DataDir: t.TempDir(), NATSUsersFile: path}
		u, err := cfg.natsUsers()
		if tc.err == "" && (err != nil || len(u) != 1) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: %v %v, want error %q", tc.content, u, err, tc.err)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, natsUsersFile)); err == nil {
			t.Errorf("%s: a users file was generated although one is configured", tc.content)
		}
	}
	cfg := &Config{DataDir: t.TempDir(), NATSUsersFile: filepath.Join(t.TempDir(), "missing.json")}
	if _, err := cfg.natsUsers(); err == nil {
		t.Error("a missing configured users file is not an error")
	}
}

// TestNATSURL: mfad nats-url prints the URL of an outside user with the password of the
// users file, creating the file like serve would, and refuses what cannot work.
func TestNATSURL(t *testing.T) {
	dir := t.TempDir()
	users, err := (&Config{DataDir: dir}).natsUsers()
	if err != nil {
		t.Fatal(err)
	}
	configured := filepath.Join(t.TempDir(), "users.json")
	if err := os.WriteFile(configured, []byte(`{"producer":"0123456789abcdefXYZ"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := t.TempDir()
	var usage usageError
	for _, tc := range []struct {
		name   string
		getenv func(string) string
		args   []string
		want   string // stdout
		err    string
		usage  bool
	}{
		{"auditor", env(), []string{"nats-url", "--role", "auditor", "--data-dir", dir},
			"nats://auditor:" + users["auditor"] + "@127.0.0.1:4222\n", "", false},
		{"address and data dir from the environment", env("MFAD_DATA_DIR", dir, "MFAD_NATS_LISTEN", "127.0.0.1:5222"),
			[]string{"nats-url", "--role", "gateway"}, "nats://gateway:" + users["gateway"] + "@127.0.0.1:5222\n", "", false},
		{"every interface is reached on loopback", env(), []string{"nats-url", "--role", "producer", "--data-dir", dir, "--nats-listen", ":4333"},
			"nats://producer:" + users["producer"] + "@127.0.0.1:4333\n", "", false},
		{"IPv6", env(), []string{"nats-url", "--role", "producer", "--data-dir", dir, "--nats-listen", "[::1]:4333"},
			"nats://producer:" + users["producer"] + "@[::1]:4333\n", "", false},
		{"a configured users file", env("MFAD_NATS_USERS_FILE", configured), []string{"nats-url", "--role", "producer", "--data-dir", fresh},
			"nats://producer:0123456789abcdefXYZ@127.0.0.1:4222\n", "", false},
		{"a user the configured file leaves out", env("MFAD_NATS_USERS_FILE", configured), []string{"nats-url", "--role", "auditor"},
			"", "no user auditor", false},
		{"no role", env(), []string{"nats-url", "--data-dir", dir}, "", "--role must be gateway, auditor, producer", true},
		{"mfad's own user is not for outsiders", env(), []string{"nats-url", "--role", "mfad", "--data-dir", dir}, "", "--role must be", true},
		{"MFAD_ROLE is serve's, not this", env("MFAD_ROLE", "auditor"), []string{"nats-url", "--data-dir", dir}, "", "--role must be", true},
		{"a random port", env(), []string{"nats-url", "--role", "auditor", "--data-dir", dir, "--nats-listen", "127.0.0.1:0"}, "", "port 0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runCLI(t, tc.getenv, tc.args...)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			if errors.As(err, &usage) != tc.usage {
				t.Fatalf("usage error: %v, want %v", err, tc.usage)
			}
			if stdout != tc.want {
				t.Fatalf("stdout %q, want %q", stdout, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(fresh, natsUsersFile)); err == nil {
		t.Fatal("nats-url generated a users file although one is configured")
	}
	// Before the first serve: nats-url creates the file, and serve takes it.
	first := t.TempDir()
	stdout, _, err := runCLI(t, env(), "nats-url", "--role", "auditor", "--data-dir", first)
	if err != nil {
		t.Fatal(err)
	}
	later, err := (&Config{DataDir: first}).natsUsers()
	if err != nil || stdout != "nats://auditor:"+later["auditor"]+"@127.0.0.1:4222\n" {
		t.Fatalf("nats-url printed %q, the users file holds %v (%v)", stdout, later, err)
	}
}
