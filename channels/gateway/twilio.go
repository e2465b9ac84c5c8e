package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// twilio speaks Twilio's Messages API, which other providers copy: a form POST of To,
// From and Body with HTTP basic auth, 201 on acceptance. The URL is the Messages
// resource, https://api.twilio.com/2010-04-01/Accounts/<sid>/Messages.json; the
// account SID and auth token are the URL's user and password or --sms-user and
// --sms-password.
type twilio struct {
	url        string
	from       string
	user, pass string
	client     *http.Client
}

func init() { registerSMSProvider("twilio", newTwilio) }

func newTwilio(cfg SMSConfig) (SMSProvider, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("SMS URL: %w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("SMS URL %s: the scheme must be https", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("SMS URL %s: no host", u.Redacted())
	case u.Scheme == "http" && !loopback(u.Hostname()):
		// The request carries the code and the account's credentials.
		return nil, fmt.Errorf("SMS URL %s: plain http only to a loopback host", u.Redacted())
	case cfg.From == "":
		return nil, errors.New("no sender (--sms-from): a number or alphanumeric sender id")
	}
	t := &twilio{from: cfg.From, user: cfg.User, pass: cfg.Password, client: cfg.Client}
	if u.User != nil && t.user == "" {
		t.user = u.User.Username()
		if t.pass == "" {
			t.pass, _ = u.User.Password()
		}
	}
	u.User = nil
	t.url = u.String()
	return t, nil
}

func (t *twilio) SendSMS(ctx context.Context, to, body string) error {
	form := url.Values{"To": {to}, "From": {t.from}, "Body": {body}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(form.Encode()))
	if err != nil {
		return permanent(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if t.user != "" {
		req.SetBasicAuth(t.user, t.pass)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("SMS provider: %w", err)
	}
	return httpOutcome(resp)
}
