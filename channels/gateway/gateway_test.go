package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

func codeNote(to, template, lang, code string) Notification {
	return Notification{To: to, UserID: "alice", Template: template, Lang: lang, Code: code,
		ExpiresAt: time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339)}
}

// TestSMSDelivery: a code reaches the provider as a Twilio form POST with the account's
// credentials, in the user's language, and is acknowledged once accepted.
func TestSMSDelivery(t *testing.T) {
	b := newBus(t)
	p := newSMSProvider(t, http.StatusCreated)
	reg := prometheus.NewRegistry()
	b.gateway(t, Config{SMS: p.sender(t), AppName: "Acme", Metrics: reg})

	cases := []struct {
		note Notification
		want string
	}{
		{codeNote("+34600111222", "mfa_channel_code", "en", "104729"), "104729 is your Acme code to confirm this number"},
		{codeNote("+34600333444", "mfa_signin_code", "es", "271828"), "271828 es tu código de inicio de sesión de Acme"},
		{Notification{To: "+34600555666", Template: "mfa_disabled", Lang: "es"}, "se ha desactivado la verificación en dos pasos"},
	}
	for _, tc := range cases {
		b.publish(t, ChannelSMS, tc.note)
	}
	b.settled(t)
	got := p.received()
	if len(got) != len(cases) {
		t.Fatalf("provider received %d messages, want %d", len(got), len(cases))
	}
	for i, tc := range cases {
		r := got[i] // one consumer, messages in stream order; Concurrency may reorder, so look it up
		for _, g := range got {
			if g.form.Get("To") == tc.note.To {
				r = g
			}
		}
		if r.form.Get("To") != tc.note.To || r.form.Get("From") != "+15005550006" || !strings.Contains(r.form.Get("Body"), tc.want) {
			t.Errorf("message to %s: %v, want a body with %q", tc.note.To, r.form, tc.want)
		}
		if r.user != "AC123" || r.pass != "twilio-token" {
			t.Errorf("basic auth %q:%q, want the URL's user and password", r.user, r.pass)
		}
	}
	if n := counter(t, reg, "mfad_gateway_sent_total", "channel", "sms"); n != 3 {
		t.Fatalf("sent{sms} = %v, want 3", n)
	}
}

// TestSMSRetry: a transient refusal (503, 429) hands the message back and the next
// attempt delivers it; nothing is dead-lettered.
func TestSMSRetry(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusInternalServerError} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			b := newBus(t)
			p := newSMSProvider(t, status, http.StatusCreated)
			reg := prometheus.NewRegistry()
			b.gateway(t, Config{SMS: p.sender(t), Metrics: reg})
			b.publish(t, ChannelSMS, codeNote("+34600111222", "mfa_signin_code", "en", "314159"))
			b.settled(t)

			got := p.received()
			if len(got) != 2 || got[0].form.Get("Body") != got[1].form.Get("Body") {
				t.Fatalf("provider received %d messages, want the same one twice: %v", len(got), got)
			}
			if dl := b.deadLetters(t); len(dl) != 0 {
				t.Fatalf("dead letters after a retry that succeeded: %v", dl)
			}
			for name, want := range map[string]float64{"mfad_gateway_sent_total": 1, "mfad_gateway_retried_total": 1,
				"mfad_gateway_dead_lettered_total": 0} {
				if n := counter(t, reg, name, "channel", "sms"); n != want {
					t.Errorf("%s{sms} = %v, want %v", name, n, want)
				}
			}
			if n := counter(t, reg, "mfad_gateway_failed_total", "channel", "sms", "kind", "transient"); n != 1 {
				t.Errorf("failed{sms,transient} = %v, want 1", n)
			}
		})
	}
}

// TestSMSDeadLetter: a permanent refusal is dead-lettered at once; repeated transient
// ones after MaxAttempts. The dead letter says why and how often, and never holds the
// code, even though this provider echoes it in its error.
func TestSMSDeadLetter(t *testing.T) {
	cases := []struct {
		name     string
		script   []int
		attempts uint64
		reason   string
		retried  float64
	}{
		{"400 at once", []int{http.StatusBadRequest}, 1, "400 Bad Request", 0},
		{"404 at once", []int{http.StatusNotFound}, 1, "404 Not Found", 0},
		{"503 until the last attempt", []int{http.StatusServiceUnavailable}, 3, "(attempt 3 of 3)", 2},
		{"503 then 400", []int{http.StatusServiceUnavailable, http.StatusBadRequest}, 2, "400 Bad Request", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus(t)
			p := newSMSProvider(t, tc.script...)
			reg := prometheus.NewRegistry()
			b.gateway(t, Config{SMS: p.sender(t), MaxAttempts: 3, Metrics: reg})
			note := codeNote("+34600111222", "mfa_channel_code", "es", "577215")
			note.UserID = "bob"
			b.publish(t, ChannelSMS, note)

			dl := b.waitDead(t, 1)[0]
			b.settled(t)
			if dl.subject != "mfa.gateway.dead.sms" || dl.Channel != "sms" || dl.Subject != activity.NotifySMS ||
				dl.Attempts != tc.attempts || !strings.Contains(dl.Reason, tc.reason) || dl.StreamSeq != 1 || dl.MsgID == "" {
				t.Fatalf("dead letter %s", dl.raw)
			}
			if strings.Contains(dl.raw, "577215") {
				t.Fatalf("the dead letter holds the code: %s", dl.raw)
			}
			if strings.Contains(dl.Reason, "600111222") || !strings.Contains(dl.Reason, mfa.MaskAddress(mfa.KindSMS, "+34600111222")) {
				t.Fatalf("the reason, which is logged, does not mask the number: %q", dl.Reason)
			}
			if _, ok := dl.Notification["code"]; ok || string(dl.Notification["to"]) != `"+34600111222"` ||
				string(dl.Notification["template"]) != `"mfa_channel_code"` || string(dl.Notification["user_id"]) != `"bob"` ||
				string(dl.Notification["lang"]) != `"es"` {
				t.Fatalf("dead letter's notification: %s", dl.raw)
			}
			if got := p.received(); uint64(len(got)) != tc.attempts {
				t.Fatalf("provider received %d attempts, want %d", len(got), tc.attempts)
			}
			if n := counter(t, reg, "mfad_gateway_dead_lettered_total", "channel", "sms"); n != 1 {
				t.Errorf("dead_lettered{sms} = %v, want 1", n)
			}
			if n := counter(t, reg, "mfad_gateway_retried_total", "channel", "sms"); n != tc.retried {
				t.Errorf("retried{sms} = %v, want %v", n, tc.retried)
			}
			if n := counter(t, reg, "mfad_gateway_sent_total", "channel", "sms"); n != 0 {
				t.Errorf("sent{sms} = %v, want 0", n)
			}
		})
	}
}

// TestUndeliverable: what no attempt can deliver is dead-lettered without calling a
// provider, and the gateway goes on with the next message.
func TestUndeliverable(t *testing.T) {
	expired := codeNote("+34600111222", "mfa_signin_code", "en", "999999")
	expired.ExpiresAt = time.Now().Add(-time.Second).UTC().Format(time.RFC3339)
	cases := []struct {
		name, subject string
		body          string
		note          *Notification
		reason        string
	}{
		{"unknown template", activity.NotifySMS, "", &Notification{To: "+34600111222", Template: "mfa_fax_code", Code: "123456"},
			`unknown template "mfa_fax_code"`},
		{"not JSON", activity.NotifySMS, `{"to": "+34600111222", "code": "123456"`, nil, "invalid notification"},
		{"no recipient", activity.NotifySMS, `{"template":"mfa_signin_code","code":"123456"}`, nil, "no recipient"},
		{"expired code", activity.NotifySMS, "", &expired, "expired"},
		{"channel not configured", activity.NotifyEmail, "", &Notification{To: "a@example.com", Template: "mfa_disabled"},
			"no email delivery is configured"},
		{"unknown channel", "mfa.notify.fax", "", &Notification{To: "+34600111222", Template: "mfa_disabled"},
			"no fax delivery is configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus(t)
			p := newSMSProvider(t, http.StatusCreated)
			reg := prometheus.NewRegistry()
			b.gateway(t, Config{SMS: p.sender(t), Metrics: reg})
			if tc.note != nil {
				b.publish(t, strings.TrimPrefix(tc.subject, "mfa.notify."), *tc.note)
			} else {
				b.publishRaw(t, tc.subject, []byte(tc.body))
			}
			// A good message behind it still goes out.
			b.publish(t, ChannelSMS, codeNote("+34600999999", "mfa_signin_code", "en", "161803"))

			dl := b.waitDead(t, 1)[0]
			b.settled(t)
			channel := strings.TrimPrefix(tc.subject, "mfa.notify.")
			if dl.subject != "mfa.gateway.dead."+channel || !strings.Contains(dl.Reason, tc.reason) || dl.Attempts != 1 {
				t.Fatalf("dead letter %s, want reason %q", dl.raw, tc.reason)
			}
			if strings.Contains(dl.raw, "123456") || strings.Contains(dl.raw, "999999") {
				t.Fatalf("the dead letter holds the code: %s", dl.raw)
			}
			got := p.received()
			if len(got) != 1 || got[0].form.Get("To") != "+34600999999" {
				t.Fatalf("provider received %v, want only the good message", got)
			}
			if n := counter(t, reg, "mfad_gateway_dead_lettered_total", "channel", metricChannel(channel)); n != 1 {
				t.Errorf("dead_lettered{%s} = %v, want 1", metricChannel(channel), n)
			}
		})
	}
}

// TestRestartDoesNotResend: a second gateway instance, after the first one acked its
// messages and stopped, delivers only what is new.
func TestRestartDoesNotResend(t *testing.T) {
	b := newBus(t)
	p := newSMSProvider(t, http.StatusCreated)
	first := b.gateway(t, Config{SMS: p.sender(t), Concurrency: 1})
	b.publish(t, ChannelSMS, codeNote("+34600000001", "mfa_signin_code", "en", "100001"))
	b.publish(t, ChannelSMS, codeNote("+34600000002", "mfa_signin_code", "en", "100002"))
	b.settled(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	// Messages queued while no gateway runs wait in the stream.
	b.publish(t, ChannelSMS, codeNote("+34600000003", "mfa_signin_code", "en", "100003"))
	b.gateway(t, Config{SMS: p.sender(t), Concurrency: 1})
	b.settled(t)

	var to []string
	for _, r := range p.received() {
		to = append(to, r.form.Get("To"))
	}
	if strings.Join(to, " ") != "+34600000001 +34600000002 +34600000003" {
		t.Fatalf("provider received messages to %v, want each number once in order", to)
	}
}

// TestStopFinishesTheMessageInHand: Stop waits for a delivery in progress and acks it,
// so a SIGTERM neither loses nor repeats the message being sent.
func TestStopFinishesTheMessageInHand(t *testing.T) {
	b := newBus(t)
	p := newSMSProvider(t, http.StatusCreated)
	p.hold = make(chan struct{})
	g := b.gateway(t, Config{SMS: p.sender(t)})
	b.publish(t, ChannelSMS, codeNote("+34600111222", "mfa_signin_code", "en", "141421"))
	<-p.got // the provider has the message and has not answered yet

	var stopped atomic.Bool
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := g.Stop(ctx)
		stopped.Store(true)
		done <- err
	}()
	close(p.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Stop returned after the ack, not before: the consumer already holds it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := b.js.Consumer(ctx, activity.NotifyStream, activity.GatewayConsumer)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 1 || info.NumAckPending != 0 {
		t.Fatalf("after Stop: ack floor %d, %d awaiting ack; want the message acked", info.AckFloor.Stream, info.NumAckPending)
	}
	if len(p.received()) != 1 || !stopped.Load() {
		t.Fatalf("provider received %d messages", len(p.received()))
	}
}

// TestStopRunsOutOfTime: when the shutdown timeout ends first, the delivery is broken
// off and its message handed back, to be sent by the next instance.
func TestStopRunsOutOfTime(t *testing.T) {
	b := newBus(t)
	p := newSMSProvider(t, http.StatusCreated)
	p.hold = make(chan struct{})
	t.Cleanup(func() { close(p.hold) })
	g := b.gateway(t, Config{SMS: p.sender(t)})
	b.publish(t, ChannelSMS, codeNote("+34600111222", "mfa_signin_code", "en", "173205"))
	<-p.got
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Stop(ctx); err == nil {
		t.Fatal("Stop reported a clean stop although a delivery was broken off")
	}

	next := newSMSProvider(t, http.StatusCreated)
	b.gateway(t, Config{SMS: next.sender(t)})
	b.settled(t)
	if got := next.received(); len(got) != 1 || !strings.Contains(got[0].form.Get("Body"), "173205") {
		t.Fatalf("the next instance received %v, want the message broken off", got)
	}
}

// TestSlowSendIsNotSentTwice: a send slower than the consumer's ack wait (set shorter
// here, as another instance with another --send-timeout would) stays in this
// instance's hands: the gateway keeps telling JetStream it is in progress, so the
// message is not redelivered and sent again meanwhile.
func TestSlowSendIsNotSentTwice(t *testing.T) {
	b := newBus(t)
	p := newSMSProvider(t)
	p.mu.Lock()
	p.hold = make(chan struct{})
	p.mu.Unlock()
	b.gateway(t, Config{SMS: p.sender(t), SendTimeout: 10 * time.Second, KeepAlive: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	short := consumerConfig(time.Second)
	short.AckWait = time.Second
	if _, err := b.js.UpdateConsumer(ctx, activity.NotifyStream, short); err != nil {
		t.Fatal(err)
	}
	b.publish(t, ChannelSMS, codeNote("+34600111222", "mfa_signin_code", "en", "222222"))
	<-p.got
	time.Sleep(3 * time.Second) // three ack waits with the send in hand
	close(p.hold)
	b.settled(t)
	if got := len(p.received()); got != 1 {
		t.Fatalf("the provider got the message %d times, want once", got)
	}
}

// TestRetryKeepsItsBackoff: the keep-alive stops before a verdict, so a late "in
// progress" cannot reach JetStream after a NAK and stretch a 20 ms back-off to the
// whole ack wait (45 s here). Eighty retries marked every 20 µs make that race all
// but certain without the ordering.
func TestRetryKeepsItsBackoff(t *testing.T) {
	b := newBus(t)
	script := make([]int, 80) // the fake provider buffers 100 requests
	for i := range script {
		script[i] = http.StatusServiceUnavailable
	}
	p := newSMSProvider(t, append(script, http.StatusCreated)...)
	b.gateway(t, Config{SMS: p.sender(t), MaxAttempts: 40, KeepAlive: 20 * time.Microsecond,
		RetryDelay: func(uint64) time.Duration { return 20 * time.Millisecond }})
	for i := range 4 {
		b.publish(t, ChannelSMS, codeNote("+3460011122"+strconv.Itoa(i), "mfa_signin_code", "en", "22222"+strconv.Itoa(i)))
	}
	deadline := time.Now().Add(15 * time.Second)
	for len(p.received()) < len(script)+4 {
		if time.Now().After(deadline) {
			t.Fatalf("after 15 s the provider had %d requests of %d: a retry waited out the ack wait",
				len(p.received()), len(script)+4)
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.settled(t)
}
