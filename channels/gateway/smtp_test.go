package gateway

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfad/mfad/channels/gateway/smtptest"
)

func newSMTPSender(t *testing.T, cfg SMTPConfig) *SMTP {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Acme Security <security@acme.example>"
	}
	s, err := NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestEmailDelivery: codes and notices reach a real SMTP server from the configured
// sender, to the user's address, with a subject and plain-text and HTML bodies in the
// user's language, through each kind of connection the URL can ask for.
func TestEmailDelivery(t *testing.T) {
	cases := []struct {
		name   string
		opts   smtptest.Options
		scheme string
	}{
		{"plain to loopback", smtptest.Options{}, "smtp"},
		{"STARTTLS with AUTH", smtptest.Options{StartTLS: true, Auth: true}, "smtp"},
		// aiosmtpd 1.4 offers AUTH only after STARTTLS, never on an SMTPS connection.
		{"implicit TLS", smtptest.Options{Implicit: true}, "smtps"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.Start(t, tc.opts)
			b := newBus(t)
			reg := prometheus.NewRegistry()
			email := newSMTPSender(t, SMTPConfig{URL: srv.URL(tc.scheme, tc.opts.Auth), RootCAs: srv.Roots})
			b.gateway(t, Config{Email: email, AppName: "Acme", Metrics: reg})

			b.publish(t, ChannelEmail, codeNote("alice@example.com", "mfa_channel_code", "en", "236067"))
			b.publish(t, ChannelEmail, codeNote("bob@example.com", "mfa_signin_code", "es", "977535"))
			got := srv.Wait(t, 2)
			b.settled(t)
			byTo := map[string]smtptest.Message{}
			for _, m := range got {
				byTo[m.Header.Get("To")] = m
			}
			want := []struct {
				to, code, subject, text, html string
			}{
				{"<alice@example.com>", "236067", "Your Acme verification code",
					"Use this code to confirm this e-mail address", "It expires in 5 minutes"},
				{"<bob@example.com>", "977535", "Tu código de inicio de sesión de Acme",
					"Usa este código para terminar de iniciar sesión", "Caduca en 5 minutos"},
			}
			for _, w := range want {
				m, ok := byTo[w.to]
				if !ok {
					t.Fatalf("no message to %s among %d", w.to, len(got))
				}
				if from := m.Header.Get("From"); from != `"Acme Security" <security@acme.example>` {
					t.Errorf("From: %q", from)
				}
				if m.Header.Get("X-MailFrom") != "security@acme.example" || m.Header.Get("X-RcptTo") != strings.Trim(w.to, "<>") {
					t.Errorf("envelope from %q to %q", m.Header.Get("X-MailFrom"), m.Header.Get("X-RcptTo"))
				}
				if s, err := m.Subject(); err != nil || s != w.subject {
					t.Errorf("Subject %q (%v), want %q", s, err, w.subject)
				}
				if !strings.Contains(m.Text, w.code) || !strings.Contains(m.Text, w.text) {
					t.Errorf("text part lacks the code or %q:\n%s", w.text, m.Text)
				}
				if !strings.Contains(m.HTML, ">"+w.code+"<") || !strings.Contains(m.HTML, w.html) {
					t.Errorf("HTML part lacks the code or %q:\n%s", w.html, m.HTML)
				}
				if !regexp.MustCompile(`^<mfad\.[A-Za-z0-9._-]+@acme\.example>$`).MatchString(m.Header.Get("Message-ID")) ||
					m.Header.Get("Auto-Submitted") != "auto-generated" || m.Header.Get("Date") == "" {
					t.Errorf("headers: %v", m.Header)
				}
			}
			if n := counter(t, reg, "mfad_gateway_sent_total", "channel", "email"); n != 2 {
				t.Fatalf("sent{email} = %v, want 2", n)
			}
		})
	}
}

// TestEmailRefusals: what the server or its certificate refuses. A refused password is
// a 5xx reply, permanent: dead-lettered at once. An untrusted certificate and an
// unreachable server are transient: retried until MaxAttempts.
func TestEmailRefusals(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{StartTLS: true, Auth: true})
	cases := []struct {
		name     string
		url      string
		roots    bool
		attempts uint64
		reason   string
	}{
		{"wrong password", strings.Replace(srv.URL("smtp", true), "s3cret", "wrong", 1), true, 1, "535"},
		{"untrusted certificate", srv.URL("smtp", true), false, 2, "certificate"},
		{"no server", fmt.Sprintf("smtp://127.0.0.1:%d", freePort(t)), false, 2, "connection refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus(t)
			cfg := SMTPConfig{URL: tc.url}
			if tc.roots {
				cfg.RootCAs = srv.Roots
			}
			reg := prometheus.NewRegistry()
			b.gateway(t, Config{Email: newSMTPSender(t, cfg), MaxAttempts: 2, Metrics: reg})
			b.publish(t, ChannelEmail, codeNote("carol@example.com", "mfa_signin_code", "en", "414213"))
			dl := b.waitDead(t, 1)[0]
			if dl.subject != "mfa.gateway.dead.email" || dl.Attempts != tc.attempts || !strings.Contains(dl.Reason, tc.reason) {
				t.Fatalf("dead letter %s, want %d attempts and %q", dl.raw, tc.attempts, tc.reason)
			}
			if strings.Contains(dl.raw, "414213") || strings.Contains(dl.raw, ":p@ss") {
				t.Fatalf("the dead letter holds the code or the password: %s", dl.raw)
			}
		})
	}
	if got := srv.Messages(t); len(got) != 0 {
		t.Fatalf("the server stored %d messages", len(got))
	}
}

// TestEmailNotInClearToARemoteHost: a server that offers no STARTTLS gets nothing
// unless it is on this machine. The real server here is on loopback, so the test tells
// the sender to treat it as remote.
func TestEmailNotInClearToARemoteHost(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	s := newSMTPSender(t, SMTPConfig{URL: srv.URL("smtp", false)})
	s.local = func(string) bool { return false }
	r := testRenderer(t)
	m, err := r.render(ChannelEmail, codeNote("dave@example.com", "mfa_signin_code", "en", "732050"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m.ID = "test-1"
	err = s.Send(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") || isPermanent(err) {
		t.Fatalf("Send = %v, want a transient refusal to send in clear", err)
	}
	if got := srv.Messages(t); len(got) != 0 {
		t.Fatalf("the server received %d messages", len(got))
	}
	// The same server is fine as what it is, a local relay.
	s.local = loopback
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, 1)
}

func TestNewSMTPRefuses(t *testing.T) {
	cases := []struct{ url, from, want string }{
		{"http://mail.example.com", "a@example.com", "scheme must be smtp or smtps"},
		{"smtp://", "a@example.com", "no host"},
		{"smtp://mail.example.com/x", "a@example.com", "path or query"},
		{"smtp://mail.example.com", "", "(From) address"},
		{"smtp://mail.example.com", "not an address", "(From) address"},
	}
	for _, tc := range cases {
		t.Run(tc.url+" "+tc.from, func(t *testing.T) {
			_, err := NewSMTP(SMTPConfig{URL: tc.url, From: tc.from})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	s, err := NewSMTP(SMTPConfig{URL: "smtps://u:p@mail.example.com", From: "a@example.com"})
	if err != nil || s.addr != "mail.example.com:465" || !s.implicitTLS || s.user != "u" || s.pass != "p" {
		t.Fatalf("smtps defaults: %+v %v", s, err)
	}
	if s, _ := NewSMTP(SMTPConfig{URL: "smtp://mail.example.com", From: "a@example.com"}); s.addr != "mail.example.com:587" {
		t.Fatalf("smtp default port: %s", s.addr)
	}
}

// TestHTTPOutcome: how a provider's answer is read.
func TestHTTPOutcome(t *testing.T) {
	cases := []struct {
		status     int
		retryAfter string
		ok, perm   bool
		wait       time.Duration
	}{
		{http.StatusOK, "", true, false, 0},
		{http.StatusCreated, "", true, false, 0},
		{http.StatusBadRequest, "", false, true, 0},
		{http.StatusUnauthorized, "", false, true, 0},
		{http.StatusNotFound, "", false, true, 0},
		{http.StatusFound, "", false, true, 0},
		{http.StatusRequestTimeout, "", false, false, 0},
		{http.StatusTooManyRequests, "7", false, false, 7 * time.Second},
		{http.StatusInternalServerError, "", false, false, 0},
		{http.StatusServiceUnavailable, "120", false, false, 2 * time.Minute},
		{http.StatusBadGateway, "soon", false, false, 0},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			resp := &http.Response{StatusCode: tc.status, Status: fmt.Sprint(tc.status), Header: http.Header{},
				Body: http.NoBody}
			if tc.retryAfter != "" {
				resp.Header.Set("Retry-After", tc.retryAfter)
			}
			err := httpOutcome(resp)
			if (err == nil) != tc.ok || isPermanent(err) != tc.perm || retryAfter(err) != tc.wait {
				t.Fatalf("err %v (permanent %v, retry after %v)", err, isPermanent(err), retryAfter(err))
			}
		})
	}
}

func TestTwilioConfig(t *testing.T) {
	cases := []struct {
		name            string
		cfg             SMSConfig
		want            string // error, or "" for none
		url, user, pass string
	}{
		{"credentials in the URL", SMSConfig{URL: "https://AC1:tok@api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", From: "+1500"},
			"", "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", "AC1", "tok"},
		{"flags win", SMSConfig{URL: "https://AC1:tok@sms.example/m", From: "Acme", User: "u2", Password: "p2"},
			"", "https://sms.example/m", "u2", "p2"},
		{"http to loopback", SMSConfig{URL: "http://127.0.0.1:8080/m", From: "Acme"}, "", "http://127.0.0.1:8080/m", "", ""},
		{"http elsewhere", SMSConfig{URL: "http://sms.example/m", From: "Acme"}, "plain http only to a loopback host", "", "", ""},
		{"no sender", SMSConfig{URL: "https://sms.example/m"}, "no sender", "", "", ""},
		{"not a URL", SMSConfig{URL: "sms.example", From: "Acme"}, "scheme must be https", "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSMS("twilio", tc.cfg)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tw := s.(smsSender).p.(*twilio)
			if tw.url != tc.url || tw.user != tc.user || tw.pass != tc.pass {
				t.Fatalf("twilio %+v", tw)
			}
		})
	}
	if _, err := NewSMS("carrier-pigeon", SMSConfig{}); err == nil || !strings.Contains(err.Error(), "twilio") {
		t.Fatalf("unknown provider: %v", err)
	}
}
