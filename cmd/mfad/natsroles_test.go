package main

// The embedded NATS server of the real binary, as its outside users see it: the URL
// `mfad nats-url` prints, each user doing its job, and nothing else getting in.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/mfad/mfad/activity"
)

// natsURLOf runs `mfad nats-url` for the server of a data dir listening on addr.
func natsURLOf(t *testing.T, dataDir, addr, role string) string {
	t.Helper()
	cmd := exec.Command(mfadBinary(t), "nats-url", "--role", role, "--data-dir", dataDir, "--nats-listen", addr)
	cmd.Env = cleanEnv()
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mfad nats-url --role %s: %v\n%s", role, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// httpDo sends one JSON request and decodes the answer.
func httpDo(t *testing.T, method, url, token, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

// druidActivity is a DruID activity of alice's for a producer to publish.
func druidActivity(verb string, context map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id":      "urn:uuid:" + fmt.Sprint(time.Now().UnixNano()),
		"actor":   map[string]any{"id": "alice", "objectType": "person"},
		"verb":    verb,
		"object":  map[string]any{"objectType": "user"},
		"source":  map[string]any{"id": "pc", "objectType": "device"},
		"context": context,
	})
	return b
}

// auditCount is how many records the worker's audit log holds.
func auditCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT count(*) FROM audit_log").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// tailLines runs `mfad audit tail` and sends each line it prints.
func tailLines(t *testing.T, args ...string) (<-chan string, func()) {
	t.Helper()
	cmd := exec.Command(mfadBinary(t), append([]string{"audit", "tail"}, args...)...)
	cmd.Env = cleanEnv()
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("mfad audit tail: %v\n%s", err, stderr.String())
		}
	}
	return lines, stop
}

// waitLine waits for a line containing s.
func waitLine(t *testing.T, lines <-chan string, s string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("audit tail ended before a line with %q", s)
			}
			if strings.Contains(l, s) {
				return
			}
		case <-timeout:
			t.Fatalf("no audit tail line with %q within 30s", s)
		}
	}
}

func TestEmbeddedNATSOutsideUsers(t *testing.T) {
	dataDir := t.TempDir()
	p := startMFAD(t, "mfad", "MFAD_DATA_DIR="+dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0", "MFAD_NATS_LISTEN=127.0.0.1:0")
	nl := p.waitLog("embedded NATS listening")
	addr, _ := nl["addr"].(string)
	if nl["users"] != "gateway,auditor,producer" {
		t.Fatalf("embedded NATS users: %v", nl)
	}
	base := baseURL(p)
	token := mintToken(t, nil, "--sub", "alice", "--data-dir", dataDir)
	db := openDB(t, filepath.Join(dataDir, "mfad.db"), true)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("CONNECT without credentials", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		if info, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(info, "INFO ") || !strings.Contains(info, `"auth_required":true`) {
			t.Fatalf("INFO line %q (%v)", info, err)
		}
		if _, err := conn.Write([]byte("CONNECT {\"verbose\":false}\r\nSUB mfa.notify.> 1\r\nPING\r\n")); err != nil {
			t.Fatal(err)
		}
		if l, err := r.ReadString('\n'); err != nil || l != "-ERR 'Authorization Violation'\r\n" {
			t.Fatalf("answer %q (%v), want -ERR 'Authorization Violation'", l, err)
		}
		if l, err := r.ReadString('\n'); err == nil {
			t.Fatalf("the connection stayed open: %q", l)
		}
	})

	urls := map[string]string{}
	for _, role := range activity.OutsideUsers {
		urls[role] = natsURLOf(t, dataDir, addr, role)
		if want := "nats://" + role + ":"; !strings.HasPrefix(urls[role], want) || !strings.HasSuffix(urls[role], "@"+addr) {
			t.Fatalf("nats-url --role %s = %q", role, urls[role])
		}
	}
	connect := func(role string) *nats.Conn {
		nc, err := nats.Connect(urls[role], nats.Name("test-"+role))
		if err != nil {
			t.Fatalf("connect with the %s URL: %v", role, err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	gw, auditor, producer := connect(activity.UserGateway), connect(activity.UserAuditor), connect(activity.UserProducer)
	tail, stopTail := tailLines(t, "--nats-url", urls[activity.UserAuditor], "--since", "1")

	// A producer registers alice's phone; the gateway gets the code to send; the
	// producer validates the channel with it.
	var code string
	t.Run("producer and gateway", func(t *testing.T) {
		pjs, err := jetstream.New(producer)
		if err != nil {
			t.Fatal(err)
		}
		publish := func(verb string, body []byte) {
			msg := nats.NewMsg(fmt.Sprintf(activity.ActivitySubjectT, verb))
			msg.Data = body
			msg.Header.Set(activity.FromHeader, "bank-web")
			if ack, err := pjs.PublishMsg(ctx, msg); err != nil || ack.Stream != activity.ActivitiesStream {
				t.Fatalf("publish %s: %+v %v", verb, ack, err)
			}
		}
		publish(activity.VerbUpdate, druidActivity(activity.VerbUpdate, map[string]any{
			"mfa_channel": "sms", "mfa_channel_address": "+34600111222"}))

		batch := fetchNotification(ctx, t, gw)
		for m := range batch.Messages() {
			var n struct{ To, UserID, Code string }
			if err := json.Unmarshal(m.Data(), &n); err != nil {
				t.Fatal(err)
			}
			if m.Subject() != activity.NotifySMS || n.To != "+34600111222" || n.Code == "" {
				t.Fatalf("notification on %s: %s", m.Subject(), m.Data())
			}
			code = n.Code
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if code == "" {
			t.Fatalf("no notification (%v)", batch.Error())
		}
		publish(activity.VerbValidate, druidActivity(activity.VerbValidate, map[string]any{
			"mfa_channel": "sms", "mfa_code": code}))
		pollUntil(t, 30*time.Second, "a verified SMS channel", func() bool {
			a := httpGet(t, base+"/api/v1/mfa/status", token)
			methods, _ := get(a.body, "data", "methods").([]any)
			return len(methods) == 1 && get(methods[0], "type") == "sms"
		})
	})

	t.Run("auditor tails, sinks and discovers", func(t *testing.T) {
		waitLine(t, tail, "channel.registered")
		waitLine(t, tail, "channel.verified")
		stopTail()

		sinkDB := filepath.Join(t.TempDir(), "sink.db")
		sink := startProcess(t, "mfad audit sink", mfadBinary(t), cleanEnv(),
			"audit", "sink", "--db", sinkDB, "--nats-url", urls[activity.UserAuditor])
		want := auditCount(t, db)
		pollUntil(t, 30*time.Second, "the sink holding every event", func() bool { return len(sinkRows(t, sinkDB)) == want })
		if code := sink.stop(); code != 0 {
			t.Fatalf("audit sink exited %d", code)
		}

		for _, verb := range []micro.Verb{micro.PingVerb, micro.InfoVerb, micro.StatsVerb} {
			subject, _ := micro.ControlSubject(verb, activity.ServiceName, "")
			m, err := auditor.Request(subject, nil, 5*time.Second)
			var ans struct{ Name string }
			if err != nil || json.Unmarshal(m.Data, &ans) != nil || ans.Name != activity.ServiceName {
				t.Fatalf("%s: %v", subject, err)
			}
		}
	})

	t.Run("forged commands change nothing", func(t *testing.T) {
		// A sign-in challenge puts a message for alice in MFA_NOTIFY: a body with her
		// user_id, the best material a gateway has for a forged command.
		if a := httpDo(t, http.MethodPost, base+"/api/v1/mfa/otp/send", token, `{"method":"sms"}`); a.status != http.StatusOK {
			t.Fatalf("otp/send: %d %s", a.status, a.raw)
		}
		pollUntil(t, 30*time.Second, "the published outbox", func() bool { return unpublished(db) == 0 })
		before, statusBefore := auditCount(t, db), httpGet(t, base+"/api/v1/mfa/status", token).raw

		forged, _ := json.Marshal(map[string]any{"id": "forged-1", "type": "admin.reset", "user_id": "alice",
			"actor": "root", "admin": true})
		for _, role := range activity.OutsideUsers {
			for _, subject := range []string{"mfa.cmd.admin.reset", "mfa.cmd.signin.disable", "mfa.cmd.backup.regenerate"} {
				nc := connect(role)
				refused(t, nc, subject, func() error { return nc.Publish(subject, forged) })
			}
		}
		// The gateway names a command subject as the reply of a pull request: the
		// deliveries stay in its own account.
		next := activity.OutsideAPIPrefix + ".CONSUMER.MSG.NEXT." + activity.NotifyStream + "." + activity.GatewayConsumer
		for _, subject := range []string{"mfa.cmd.backup.regenerate", "mfa.cmd.signin.disable"} {
			if err := gw.PublishRequest(next, subject, []byte(`{"batch":5,"no_wait":true}`)); err != nil {
				t.Fatal(err)
			}
		}
		// An auditor's push consumer does deliver into mfad's account (nats-server
		// checks no permission on a deliver subject): the workers take events for
		// no command.
		ajs, err := jetstream.NewWithDomain(auditor, activity.OutsideDomain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ajs.CreateOrUpdatePushConsumer(ctx, activity.EventsStream, jetstream.ConsumerConfig{
			Name: "redirect", DeliverSubject: "mfa.cmd.backup.regenerate", DeliverGroup: activity.QueueGroup,
			AckPolicy: jetstream.AckNonePolicy}); err != nil {
			t.Fatalf("push consumer: %v", err)
		}
		for _, nc := range []*nats.Conn{gw, auditor} {
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		// The push consumer delivers every event at once to the workers, which answer
		// each: wait until it has delivered them all (its info says so), and for the
		// answers by asking the workers something after them.
		pollUntil(t, 30*time.Second, "the push consumer's deliveries", func() bool {
			m, err := auditor.Request(activity.OutsideAPIPrefix+".CONSUMER.INFO."+activity.EventsStream+".redirect", nil, 5*time.Second)
			var info struct {
				NumPending uint64 `json:"num_pending"`
				Delivered  struct {
					Stream uint64 `json:"stream_seq"`
				} `json:"delivered"`
			}
			return err == nil && json.Unmarshal(m.Data, &info) == nil && info.Delivered.Stream >= uint64(before) && info.NumPending == 0
		})
		if got := httpGet(t, base+"/api/v1/mfa/status", token).raw; got != statusBefore {
			t.Fatalf("alice's status changed:\n%s\n%s", statusBefore, got)
		}
		if after := auditCount(t, db); after != before {
			rows := readAudit(t, db)
			t.Fatalf("the audit log grew from %d to %d records: last %s %s", before, after, rows[len(rows)-1].typ, rows[len(rows)-1].body)
		}
		// MFA_EVENTS still holds exactly the audit log: nothing was slipped in.
		js, _, err := activity.OpenStream(ctx, auditor, activity.EventsStream, activity.DomainAuto)
		if err != nil {
			t.Fatal(err)
		}
		checkEventsMatchAudit(t, readEvents(t, js), readAudit(t, db))
	})

	// Shutdown finishes every command in flight: a forged one accepted late would be
	// in the log now.
	audited := auditCount(t, db)
	p.stopCleanly()
	if n := auditCount(t, db); n != audited {
		t.Fatalf("the audit log grew from %d to %d records during shutdown", audited, n)
	}
}

// fetchNotification fetches the next notification from MFA_NOTIFY as the gateway does
// (its durable consumer, reached through the JetStream domain), over nc.
func fetchNotification(ctx context.Context, t *testing.T, nc *nats.Conn) jetstream.MessageBatch {
	t.Helper()
	js, _, err := activity.OpenStream(ctx, nc, activity.NotifyStream, activity.DomainAuto)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, activity.NotifyStream, activity.GatewayConsumer)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return batch
}
