package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/mfad/mfad/activity"
)

// embeddedNATS is the NATS server mfad runs in its own process when no external one is
// configured, and the password of mfad's own user on it.
type embeddedNATS struct {
	*server.Server
	password string
}

// startEmbeddedNATS runs a nats-server with JetStream inside this process. It listens
// on cfg.NATSListen too, for the outside users of the data dir's NATS users file: no
// connection is accepted without a user and password. mfad's own clients connect
// in-process as a user whose password is made up now and never leaves memory.
func startEmbeddedNATS(cfg *Config, log *slog.Logger) (*embeddedNATS, error) {
	host, portText, err := net.SplitHostPort(cfg.NATSListen)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--nats-listen %q: %v", cfg.NATSListen, err)}
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--nats-listen %q: bad port", cfg.NATSListen)}
	}
	users, err := cfg.natsUsers()
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// nats-server only logs a bind failure and keeps waiting; say it at once.
		ln, err := net.Listen("tcp", cfg.NATSListen)
		if err != nil {
			return nil, fmt.Errorf("embedded NATS cannot listen on %s (another mfad or nats-server? set --nats-listen): %w", cfg.NATSListen, err)
		}
		ln.Close()
	}
	password := randomPassword()
	opts := &server.Options{}
	if err := opts.ProcessConfigString(embeddedNATSConfig(password, users)); err != nil {
		return nil, fmt.Errorf("configure embedded NATS accounts: %w", err)
	}
	opts.ServerName = "mfad-embedded"
	opts.Host, opts.Port = host, port
	opts.JetStream = true
	opts.StoreDir = filepath.Join(cfg.DataDir, "nats")
	opts.NoSigs = true
	// The default 2-minute sync interval is kept: an event acknowledged by JetStream
	// but lost in a host crash is republished at start by the relay, which compares
	// the stream's last event with the audit log (audit.Relay.Reconcile).
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded NATS: %w", err)
	}
	ns.SetLoggerV2(&natsLog{log: log.With("component", "nats-server")}, false, false, false)
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded NATS did not start listening on %s", cfg.NATSListen)
	}
	outside := make([]string, 0, len(users))
	for _, u := range activity.OutsideUsers {
		if _, ok := users[u]; ok {
			outside = append(outside, u)
		}
	}
	log.Info("embedded NATS listening", "addr", ns.Addr().String(), "store", opts.StoreDir,
		"users", strings.Join(outside, ","))
	return &embeddedNATS{Server: ns, password: password}, nil
}

// connectNATS connects to the embedded server ns in-process (no TCP: about twice the
// request throughput) or, when ns is nil, to url, reconnecting for ever. mfad serve and
// mfad gateway both use it, so their connections behave and log alike. The caller
// wraps the error: only it knows how to name the server without a password.
func connectNATS(url, creds string, ns *embeddedNATS, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			// Close at shutdown reports a disconnect too, asynchronously and after
			// "stopped" is logged; only an unplanned loss of the server is news.
			if nc.IsClosed() {
				return
			}
			log.Warn("NATS disconnected", "conn", name, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", "conn", name, "url", nc.ConnectedUrlRedacted())
		}),
		// Without a handler nats.go drops asynchronous errors. A permissions violation
		// shows here and nowhere else: the NATS user (of an external server, or the
		// gateway's) lacks a grant this process needs (README: Running against an
		// external NATS cluster).
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{"conn", name, "err", err}
			if sub != nil {
				attrs = append(attrs, "subject", sub.Subject)
			}
			if errors.Is(err, nats.ErrPermissionViolation) {
				log.Error("NATS refused an operation", attrs...)
				return
			}
			log.Warn("NATS error", attrs...)
		}),
	}
	if ns != nil {
		url = ns.ClientURL()
		opts = append(opts, nats.InProcessServer(ns), nats.UserInfo(internalNATSUser, ns.password))
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	return nats.Connect(url, opts...)
}

// natsLog adapts the embedded server's logger to slog.
type natsLog struct{ log *slog.Logger }

func (l *natsLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }

// Warnf logs the server's warnings, except its advice to hash passwords: the embedded
// server's configuration lives in memory only, and the passwords are in the users file
// in clear anyway (mfad nats-url prints them).
func (l *natsLog) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Plaintext passwords detected") {
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}

// Errorf logs the server's errors, except a client's own fault (a wrong password, an
// operation its user is not allowed) at warning level: a stranger knocking at the
// port is not a failure of mfad, and must not flood the error log.
func (l *natsLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if clientFault(msg) {
		l.log.Warn(msg)
		return
	}
	l.log.Error(msg)
}

// clientFault recognises nats-server's log lines about a client's authentication or
// permissions (server/client.go: authViolation, pubPermissionViolation, …).
func clientFault(msg string) bool {
	for _, s := range []string{"authentication error", "Publish Violation", "Subscription Violation"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func (l *natsLog) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLog) Tracef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
