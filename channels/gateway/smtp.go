package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"time"
)

// SMTPConfig configures e-mail delivery.
type SMTPConfig struct {
	// URL is smtp://[user:password@]host[:port] (port 587; STARTTLS whenever the server
	// offers it, and plain text only to a loopback host) or smtps://…[:port] (port 465,
	// TLS from the first byte). With a user, the gateway authenticates with AUTH PLAIN,
	// always over TLS except on loopback.
	URL string
	// From is the sender, "Name <address>" or a bare address.
	From string
	// RootCAs verifies the server's certificate; nil means the system's roots.
	RootCAs *x509.CertPool
	// HelloName is the name given in EHLO; empty means the host name.
	HelloName string
}

// SMTP sends e-mail through one submission server, a connection per message: codes
// are few and urgent, and a pooled connection the server dropped would only add a
// failure mode.
type SMTP struct {
	host, addr  string
	implicitTLS bool
	user, pass  string
	from        *mail.Address
	tls         *tls.Config
	hello       string
	// local decides where plain text is allowed: loopback, except in a test that
	// needs a real server on loopback to stand for a remote one.
	local func(host string) bool
}

// NewSMTP checks cfg and returns its sender.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("SMTP URL: %w", err)
	}
	s := &SMTP{host: u.Hostname(), hello: cfg.HelloName, local: loopback}
	port := u.Port()
	switch u.Scheme {
	case "smtp":
		port = cmp.Or(port, "587")
	case "smtps":
		port, s.implicitTLS = cmp.Or(port, "465"), true
	default:
		return nil, fmt.Errorf("SMTP URL %s: the scheme must be smtp or smtps", u.Redacted())
	}
	if s.host == "" {
		return nil, fmt.Errorf("SMTP URL %s: no host", u.Redacted())
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("SMTP URL %s: a path or query means nothing here", u.Redacted())
	}
	s.addr = net.JoinHostPort(s.host, port)
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	if cfg.From == "" {
		return nil, errors.New("no sender (From) address for e-mail")
	}
	if s.from, err = mail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("sender (From) address %q: %w", cfg.From, err)
	}
	if s.hello == "" {
		if s.hello, err = os.Hostname(); err != nil || s.hello == "" {
			s.hello = "localhost"
		}
	}
	s.tls = &tls.Config{ServerName: s.host, RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	return s, nil
}

// Send delivers m. A 4xx reply, a network or TLS failure and a timeout are transient;
// a 5xx reply is permanent (the server refused this message, sender or recipient).
func (s *SMTP) Send(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return permanent(fmt.Errorf("recipient: %w", err)) // not the address: reasons are logged
	}
	body, err := composeEmail(s.from, to, m, time.Now())
	if err != nil {
		return permanent(err)
	}
	err = s.send(ctx, to.Address, body)
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 {
		return permanent(err)
	}
	return err
}

func (s *SMTP) send(ctx context.Context, to string, body []byte) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("connect to SMTP server: %w", err)
	}
	defer conn.Close()
	// net/smtp knows no context: the deadline bounds the whole dialogue and a cancel
	// (shutdown) breaks it off.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if s.implicitTLS {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS with SMTP server %s: %w", s.addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return fmt.Errorf("SMTP greeting: %w", err)
	}
	defer c.Close()
	if err := c.Hello(s.hello); err != nil {
		return fmt.Errorf("SMTP EHLO: %w", err)
	}
	if !s.implicitTLS {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tls); err != nil {
				return fmt.Errorf("SMTP STARTTLS: %w", err)
			}
		} else if !s.local(s.host) {
			// A server that stops offering STARTTLS may be behind someone stripping it:
			// codes and the password go in clear to no one but a local relay.
			return fmt.Errorf("SMTP server %s does not offer STARTTLS; mfad sends in clear only to a loopback host", s.addr)
		}
	}
	if s.user != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("SMTP server %s offers no AUTH, and the SMTP URL has a user", s.addr)
		}
		if err := c.Auth(smtp.PlainAuth("", s.user, s.pass, s.host)); err != nil {
			return fmt.Errorf("SMTP AUTH as %s: %w", s.user, err)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return fmt.Errorf("SMTP RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return fmt.Errorf("SMTP message: %w", err)
	}
	// The server's answer to the end of DATA is its acceptance: from here on the
	// message is the server's to deliver.
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP end of DATA: %w", err)
	}
	_ = c.Quit() // accepted already; a failed QUIT changes nothing
	return nil
}

// loopback reports whether host is this machine.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
