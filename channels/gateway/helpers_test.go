package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

// bus is a real JetStream server with mfad's streams, as mfad serve leaves it.
type bus struct {
	url string
	js  jetstream.JetStream
}

func newBus(t *testing.T) *bus {
	t.Helper()
	ns := natstest.Server(t)
	return &bus{url: ns.ClientURL(), js: natstest.JetStream(t, natstest.Connect(t, ns.ClientURL()))}
}

// publish queues n on mfa.notify.<channel> as the workers do, with a Nats-Msg-Id.
func (b *bus) publish(t *testing.T, channel string, n Notification) {
	t.Helper()
	body, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	b.publishRaw(t, fmt.Sprintf(activity.NotifySubjectT, channel), body)
}

func (b *bus) publishRaw(t *testing.T, subject string, body []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	if _, err := b.js.Publish(ctx, subject, body, jetstream.WithMsgID(id)); err != nil {
		t.Fatalf("publish on %s: %v", subject, err)
	}
}

// gateway starts a gateway on its own connection (as a separate process would have)
// and stops it when the test ends, unless the test stopped it.
func (b *bus) gateway(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	nc := natstest.Connect(t, b.url)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RetryDelay == nil {
		cfg.RetryDelay = func(uint64) time.Duration { return 10 * time.Millisecond }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	g, err := New(js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Stop(ctx); err != nil {
			t.Errorf("stop gateway: %v", err)
		}
	})
	return g
}

// testLog writes a gateway's log into the test's.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Helper()
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// stream looks up the stream name and its current state.
func (b *bus) stream(ctx context.Context, t *testing.T, name string) (jetstream.Stream, *jetstream.StreamInfo) {
	t.Helper()
	s, err := b.js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, info
}

// deadLetters reads every message of MFA_GATEWAY_DEAD so far.
func (b *bus) deadLetters(t *testing.T) []deadMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, info := b.stream(ctx, t, activity.GatewayDeadStream)
	var out []deadMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var dl DeadLetter
		if err := json.Unmarshal(m.Data, &dl); err != nil {
			t.Fatalf("dead letter %d is not JSON: %v\n%s", seq, err, m.Data)
		}
		out = append(out, deadMsg{subject: m.Subject, raw: string(m.Data), DeadLetter: dl})
	}
	return out
}

type deadMsg struct {
	subject, raw string
	DeadLetter
}

// waitDead waits until MFA_GATEWAY_DEAD holds n dead letters and returns them.
func (b *bus) waitDead(t *testing.T, n int) []deadMsg {
	t.Helper()
	var got []deadMsg
	eventually(t, fmt.Sprintf("%d dead letters", n), func() bool {
		got = b.deadLetters(t)
		return len(got) >= n
	})
	return got
}

// settled waits until the gateway's consumer has nothing left to deliver or to hear
// back about, and returns its state then. The consumer's pending count comes from an
// asynchronous signal of the stream, so it can read 0 for a moment after a publish;
// the ack floor reaching the stream's last message is what says that every message
// was handed out and answered.
func (b *bus) settled(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	eventually(t, "the gateway's consumer to settle", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, si := b.stream(ctx, t, activity.NotifyStream)
		c, err := s.Consumer(ctx, activity.GatewayConsumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err = c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0 &&
			info.AckFloor.Stream >= si.State.LastSeq
	})
	return info
}

// eventually polls cond until it holds; the limit only stops a broken test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// smsRequest is one message an SMS provider received.
type smsRequest struct {
	form       url.Values
	user, pass string
}

// smsProvider is an httptest server speaking the Twilio Messages API: it answers each
// request with the next status of its script (the last one for ever after).
type smsProvider struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	requests []smsRequest
	// hold, when set, makes each request wait until it is closed.
	hold chan struct{}
	got  chan struct{} // a value per request received
}

func newSMSProvider(t *testing.T, script ...int) *smsProvider {
	t.Helper()
	if len(script) == 0 {
		script = []int{http.StatusCreated}
	}
	p := &smsProvider{script: script, got: make(chan struct{}, 100)}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusMethodNotAllowed)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		user, pass, _ := r.BasicAuth()
		p.mu.Lock()
		p.requests = append(p.requests, smsRequest{form: r.PostForm, user: user, pass: pass})
		status := p.script[min(len(p.requests), len(p.script))-1]
		hold := p.hold
		p.mu.Unlock()
		p.got <- struct{}{}
		if hold != nil {
			<-hold
		}
		w.Header().Set("Content-Type", "application/json")
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(status)
		// Like Twilio, naming the number, and echoing the body, as a careless provider
		// might: the gateway must keep the code and the number out of what it logs and
		// the reasons it gives all the same.
		fmt.Fprintf(w, `{"status":%d,"message":"The 'To' number %s refused %s"}`, status, r.PostForm.Get("To"), r.PostForm.Get("Body"))
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *smsProvider) received() []smsRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]smsRequest(nil), p.requests...)
}

// sender is the gateway's Twilio sender for p, with credentials in the URL.
func (p *smsProvider) sender(t *testing.T) Sender {
	t.Helper()
	u, _ := url.Parse(p.URL + "/2010-04-01/Accounts/AC123/Messages.json")
	u.User = url.UserPassword("AC123", "twilio-token")
	s, err := NewSMS("twilio", SMSConfig{URL: u.String(), From: "+15005550006"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// counter reads a gateway counter.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}
