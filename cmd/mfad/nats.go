package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startEmbeddedNATS runs a nats-server with JetStream inside this process. It listens
// on cfg.NATSListen too, so `nats sub 'mfa.events.>'` and a gateway can connect.
func startEmbeddedNATS(cfg *Config, log *slog.Logger) (*server.Server, error) {
	host, portText, err := net.SplitHostPort(cfg.NATSListen)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--nats-listen %q: %v", cfg.NATSListen, err)}
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--nats-listen %q: bad port", cfg.NATSListen)}
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
	opts := &server.Options{
		ServerName: "mfad-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "nats"),
		NoSigs:     true,
		// The default 2-minute sync interval is kept: an event acknowledged by JetStream
		// but lost in a host crash is republished at start by the relay, which compares
		// the stream's last event with the audit log (audit.Relay.Reconcile).
	}
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
	log.Info("embedded NATS listening", "addr", ns.Addr().String(), "store", opts.StoreDir)
	return ns, nil
}

// connectNATS connects to the embedded server in-process (no TCP: about twice the
// request throughput) or to the external URL, reconnecting for ever.
func connectNATS(cfg *Config, ns *server.Server, name string, log *slog.Logger) (*nats.Conn, error) {
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
	}
	url := cfg.NATSURL
	if ns != nil {
		url = ns.ClientURL()
		opts = append(opts, nats.InProcessServer(ns))
	}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}

// natsLog adapts the embedded server's logger to slog.
type natsLog struct{ log *slog.Logger }

func (l *natsLog) Noticef(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLog) Warnf(format string, v ...any)   { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLog) Fatalf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLog) Errorf(format string, v ...any)  { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLog) Debugf(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLog) Tracef(format string, v ...any)  { l.log.Debug(fmt.Sprintf(format, v...)) }
