package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// SMSProvider sends one text message through a provider's HTTP API. It returns nil once
// the provider accepted the message; errors follow Sender's rules (httpOutcome
// classifies an HTTP answer).
type SMSProvider interface {
	SendSMS(ctx context.Context, to, body string) error
}

// SMSConfig is what every provider is configured with (--sms-url, --sms-from,
// --sms-user, --sms-password). A user and password given here win over the URL's.
type SMSConfig struct {
	URL      string
	From     string
	User     string
	Password string
	// Client makes the requests; nil means one that follows no redirect (a provider
	// that moved is a configuration to fix, and a POST must not turn into a GET).
	Client *http.Client
}

// smsProviders are the SMS APIs mfad speaks, by --sms-provider name. A provider is one
// file: its type and an init that registers its constructor here.
var smsProviders = map[string]func(SMSConfig) (SMSProvider, error){}

func registerSMSProvider(name string, newProvider func(SMSConfig) (SMSProvider, error)) {
	if _, dup := smsProviders[name]; dup {
		panic("gateway: SMS provider " + name + " registered twice")
	}
	smsProviders[name] = newProvider
}

// SMSProviders lists the provider names, sorted.
func SMSProviders() []string {
	names := make([]string, 0, len(smsProviders))
	for n := range smsProviders {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// NewSMS returns the SMS sender of the named provider.
func NewSMS(provider string, cfg SMSConfig) (Sender, error) {
	newProvider, ok := smsProviders[provider]
	if !ok {
		return nil, fmt.Errorf("unknown SMS provider %q (known: %s)", provider, strings.Join(SMSProviders(), ", "))
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	p, err := newProvider(cfg)
	if err != nil {
		return nil, fmt.Errorf("SMS provider %s: %w", provider, err)
	}
	return smsSender{p}, nil
}

// smsSender adapts an SMSProvider to Sender.
type smsSender struct{ p SMSProvider }

func (s smsSender) Send(ctx context.Context, m Message) error {
	return s.p.SendSMS(ctx, m.To, m.Text)
}

// httpOutcome reads a provider's answer: 2xx is accepted; 408, 429 and 5xx are
// transient (with the Retry-After the provider asked for); any other status, 3xx
// included, is permanent. It closes the body.
func httpOutcome(resp *http.Response) error {
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err := fmt.Errorf("SMS provider answered %s: %s", resp.Status, oneLine(snippet))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return &SendError{Err: err, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	default:
		return permanent(err)
	}
}

// parseRetryAfter reads seconds or an HTTP date (RFC 9110 §10.2.3); 0 if neither.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// oneLine makes a provider's error body fit one log line.
func oneLine(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return ' '
		}
		if !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, string(b))
	return strings.Join(strings.Fields(s), " ")
}
