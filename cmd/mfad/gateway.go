package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/channels/gateway"
)

// GatewayConfig is every setting of mfad gateway.
type GatewayConfig struct {
	NATSURL   string
	NATSCreds string
	JSDomain  string

	SMTPURL    string
	SMTPFrom   string
	SMTPCAFile string

	SMSProvider string
	SMSURL      string
	SMSFrom     string
	SMSUser     string
	SMSPassword string

	Dev             bool
	AppName         string
	MaxAttempts     int
	SendTimeout     time.Duration
	Concurrency     int
	MetricsAddr     string
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string
}

func (c *GatewayConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.NATSURL, "nats-url", nats.DefaultURL, "NATS server(s) holding MFA_NOTIFY, comma-separated; for the embedded server: $(mfad nats-url --role gateway)")
	fs.StringVar(&c.NATSCreds, "nats-creds", "", "NATS credentials file")
	fs.StringVar(&c.JSDomain, "nats-js-domain", activity.DomainAuto, "JetStream domain of MFA_NOTIFY: auto tries domain "+activity.OutsideDomain+" (an outside account of mfad's NATS, as the gateway user's) and then none; none; or a domain")
	fs.StringVar(&c.SMTPURL, "smtp-url", "", "e-mail server: smtp://user:password@host:587 (STARTTLS when offered; plain text only to a loopback host) or smtps://…:465; empty = e-mail off")
	fs.StringVar(&c.SMTPFrom, "smtp-from", "", "sender of the e-mails, e.g. 'Acme <no-reply@acme.example>'")
	fs.StringVar(&c.SMTPCAFile, "smtp-ca-file", "", "PEM file of the CA(s) that sign the e-mail server's certificate; empty = the system's")
	fs.StringVar(&c.SMSProvider, "sms-provider", "twilio", "SMS API: "+strings.Join(gateway.SMSProviders(), ", "))
	fs.StringVar(&c.SMSURL, "sms-url", "", "SMS API endpoint, e.g. https://SID:TOKEN@api.twilio.com/2010-04-01/Accounts/SID/Messages.json; empty = SMS off")
	fs.StringVar(&c.SMSFrom, "sms-from", "", "sender of the SMS: a phone number or an alphanumeric sender id")
	fs.StringVar(&c.SMSUser, "sms-user", "", "SMS API user (basic auth), if not in --sms-url")
	fs.StringVar(&c.SMSPassword, "sms-password", "", "SMS API password or token (basic auth), if not in --sms-url")
	fs.BoolVar(&c.Dev, "dev", false, "print every message, with its code, on stdout instead of delivering it (development only)")
	fs.StringVar(&c.AppName, "app-name", "mfad", "the service's name in the messages")
	fs.IntVar(&c.MaxAttempts, "max-attempts", 8, "attempts at a provider before a message is dead-lettered to mfa.gateway.dead.<channel>")
	fs.DurationVar(&c.SendTimeout, "send-timeout", 15*time.Second, "longest wait for a provider to accept a message")
	fs.IntVar(&c.Concurrency, "concurrency", 4, "messages delivered at once")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "127.0.0.1:9464", "listen address of /metrics; empty = off")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for the messages being sent")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", logFormatAuto, "text, json, or auto: text on a terminal, JSON otherwise")
	annotateEnv(fs)
}

func (c *GatewayConfig) check() error {
	switch {
	case c.Dev && (c.SMTPURL != "" || c.SMSURL != ""):
		return usageError{"gateway: --dev prints messages instead of delivering them; it does not go with --smtp-url or --sms-url"}
	case !c.Dev && c.SMTPURL == "" && c.SMSURL == "":
		return usageError{"gateway: nothing to deliver with: set --smtp-url and/or --sms-url, or --dev to print the messages"}
	case c.SMTPURL != "" && c.SMTPFrom == "":
		return usageError{"gateway: --smtp-from is required with --smtp-url"}
	case c.MaxAttempts < 1:
		return usageError{fmt.Sprintf("gateway: --max-attempts must be at least 1, not %d", c.MaxAttempts)}
	case c.SendTimeout <= 0:
		return usageError{"gateway: --send-timeout must be positive"}
	case c.Concurrency < 1 || c.Concurrency > 256:
		return usageError{fmt.Sprintf("gateway: --concurrency must be 1 to 256, not %d", c.Concurrency)}
	}
	return checkLogFormat(c.LogFormat)
}

const gatewayAbout = `Reads MFA_NOTIFY with the durable consumer mfad-gateway (every instance shares it)
and delivers each message: SMS through --sms-url, e-mail through --smtp-url. A
message is acknowledged once the provider accepted it; a transient failure is
retried with backoff, and a permanent one, or the last of --max-attempts, goes to
mfa.gateway.dead.<channel> (stream MFA_GATEWAY_DEAD) without its code. With --dev
every message is printed on stdout instead, code included. Ends on Ctrl-C or
SIGTERM after the messages in hand.
`

// runGateway: mfad gateway [flags].
func runGateway(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg GatewayConfig
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	cfg.register(fs)
	if err := parseFlagsAbout(fs, args, getenv, stdout, gatewayAbout); err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	email, sms, err := cfg.senders(stdout)
	if err != nil {
		return err
	}
	log, text := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	logEffective(log, fs, text)
	return runGatewayWith(ctx, &cfg, email, sms, log)
}

// senders builds the e-mail and SMS senders of cfg; nil is a channel turned off.
func (c *GatewayConfig) senders(stdout io.Writer) (email, sms gateway.Sender, err error) {
	if c.Dev {
		dev := gateway.NewDev(stdout)
		return dev, dev, nil
	}
	if c.SMTPURL != "" {
		smtpCfg := gateway.SMTPConfig{URL: c.SMTPURL, From: c.SMTPFrom}
		if c.SMTPCAFile != "" {
			pem, err := os.ReadFile(c.SMTPCAFile)
			if err != nil {
				return nil, nil, fmt.Errorf("gateway: --smtp-ca-file: %w", err)
			}
			smtpCfg.RootCAs = x509.NewCertPool()
			if !smtpCfg.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, usageError{fmt.Sprintf("gateway: --smtp-ca-file %s holds no PEM certificate", c.SMTPCAFile)}
			}
		}
		s, err := gateway.NewSMTP(smtpCfg)
		if err != nil {
			return nil, nil, usageError{"gateway: " + redactURLs(err.Error())}
		}
		email = s
	}
	if c.SMSURL != "" {
		s, err := gateway.NewSMS(c.SMSProvider, gateway.SMSConfig{URL: c.SMSURL, From: c.SMSFrom, User: c.SMSUser, Password: c.SMSPassword})
		if err != nil {
			return nil, nil, usageError{"gateway: " + redactURLs(err.Error())}
		}
		sms = s
	}
	return email, sms, nil
}

// runGatewayWith runs the gateway until ctx ends, then stops it: the messages in hand
// are finished within the shutdown timeout.
func runGatewayWith(ctx context.Context, cfg *GatewayConfig, email, sms gateway.Sender, log *slog.Logger) (err error) {
	defer log.Info("stopped")
	if cfg.Dev {
		log.Warn("--dev: messages are printed on stdout, codes included, and delivered to no one; never use it in production")
	}
	if !cfg.Dev && email == nil {
		log.Warn("e-mail is off (no --smtp-url): e-mail messages will be dead-lettered")
	}
	if !cfg.Dev && sms == nil {
		log.Warn("SMS is off (no --sms-url): SMS messages will be dead-lettered")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.MetricsAddr != "" {
		srv, err := serveMetrics(cfg.MetricsAddr, reg, log)
		if err != nil {
			return err
		}
		defer srv.Close()
	}

	nc, err := connectNATS(cfg.NATSURL, cfg.NATSCreds, nil, "mfad-gateway", log)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", redactURLs(cfg.NATSURL), err)
	}
	defer nc.Close()
	newGateway := func(domain string) (*gateway.Gateway, error) {
		js, err := jetstream.New(nc)
		if domain != "" {
			js, err = jetstream.NewWithDomain(nc, domain)
		}
		if err != nil {
			return nil, fmt.Errorf("JetStream: %w", err)
		}
		return gateway.New(js, gateway.Config{Email: email, SMS: sms, AppName: cfg.AppName, MaxAttempts: cfg.MaxAttempts,
			SendTimeout: cfg.SendTimeout, Concurrency: cfg.Concurrency, Logger: log.With("component", "gateway"), Metrics: reg})
	}
	g, err := startGateway(ctx, cfg.JSDomain, newGateway, log)
	if err != nil {
		return err
	}
	if g == nil { // ended while waiting
		log.Info("shutting down")
		return nil
	}
	if ctx.Err() == nil {
		log.Info("gateway started", "email", describe(email, cfg.SMTPURL), "sms", describe(sms, cfg.SMSURL),
			"consumer", activity.GatewayConsumer)
		<-ctx.Done()
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := g.Stop(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return err
	}
	return nil
}

// startGateway starts a gateway on the JetStream of domain (none: the account's own),
// waiting as long as it takes for MFA_NOTIFY: a gateway may well start before the mfad
// serve that creates the stream. With activity.DomainAuto it tries
// activity.OutsideDomain, through which mfad's NATS serves an outside account such as
// the gateway user's, and the account's own JetStream when nothing answers there.
// (activity.OpenStream does the same with a stream lookup, which the gateway's minimal
// permissions do not allow.) It returns nil, nil if ctx ends first.
func startGateway(ctx context.Context, domain string, newGateway func(string) (*gateway.Gateway, error), log *slog.Logger) (*gateway.Gateway, error) {
	domains := []string{domain}
	switch domain {
	case activity.DomainAuto:
		domains = []string{activity.OutsideDomain, ""}
	case "none":
		domains = []string{""}
	}
	// Built once per domain, not per attempt: a gateway parses its templates and
	// registers its metrics when made, and Start may be tried again on a failure.
	built := make(map[string]*gateway.Gateway, len(domains))
	for attempt := 0; ; attempt++ {
		var err error
		for _, d := range domains {
			g, ok := built[d]
			if !ok {
				if g, err = newGateway(d); err != nil {
					return nil, err
				}
				built[d] = g
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err = g.Start(cctx)
			cancel()
			if err == nil {
				if d != "" {
					log.Info("JetStream domain", "domain", d)
				}
				return g, nil
			}
			if ctx.Err() != nil {
				return nil, nil
			}
			// Nobody answers for a domain a plain server does not have, and a user
			// restricted to its account's own API cannot even ask (the request times
			// out): try the next. Any answer is that domain's, and final.
			if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, context.DeadlineExceeded) {
				break
			}
		}
		if attempt%15 == 0 { // every 30 s or so, not every 2
			log.Warn("waiting for the stream MFA_NOTIFY (is mfad serve running, and may this user bind the consumer?)", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(2 * time.Second):
		}
	}
}

// serveMetrics serves reg at /metrics on addr, on a listener of its own: the gateway
// has no other.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (*http.Server, error) {
	srv, at, err := serveWithMetrics(addr, "--metrics-addr", "metrics", http.NewServeMux(), reg, log)
	if err != nil {
		return nil, err
	}
	log.Info("metrics listening", "addr", at.String())
	return srv, nil
}

// describe says in the log where a channel goes.
func describe(s gateway.Sender, rawURL string) string {
	switch {
	case s == nil:
		return "off"
	case rawURL == "":
		return "printed (--dev)"
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "on"
	}
	return u.Scheme + "://" + u.Host
}
