package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/pquerna/otp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/postgres"
	"github.com/mfad/mfad/channels/sqlite"
	"github.com/mfad/mfad/handlers"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	if err := parseFlags(fs, args, getenv, stdout); err != nil {
		return err
	}
	if err := cfg.check(); err != nil {
		return err
	}
	log, text := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	logEffective(log, fs, text)
	// The data dir is owned by the process that keeps state in it: the embedded NATS
	// store or the database. An API node on external NATS only reads its dev secret.
	if cfg.NATSURL == "" || cfg.runsWorker() {
		release, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		defer release()
	}
	return serve(ctx, &cfg, log)
}

// shutdownStep is one thing to undo at shutdown; steps run in reverse start order.
type shutdownStep struct {
	name string
	fn   func(context.Context) error
}

// serve starts the roles of cfg and blocks until ctx ends, then shuts down gracefully,
// in the reverse order of start: stop accepting HTTP and activities, finish in-flight
// commands, drain the outbox, close the database, close the NATS connection, stop the
// embedded server.
func serve(ctx context.Context, cfg *Config, log *slog.Logger) (err error) {
	var steps []shutdownStep
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		for i := len(steps) - 1; i >= 0; i-- {
			if e := steps[i].fn(sctx); e != nil {
				log.Error("shutdown step failed", "step", steps[i].name, "err", e)
				err = errors.Join(err, fmt.Errorf("shutdown %s: %w", steps[i].name, e))
			}
		}
		log.Info("stopped")
	}()
	onStop := func(name string, fn func(context.Context) error) {
		steps = append(steps, shutdownStep{name, fn})
	}

	// One registry for the process: every package registers its series in it, the
	// HTTP role serves it at /metrics and --debug-addr at /metrics too (the worker role
	// has no other listener).
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var ns *embeddedNATS
	if cfg.NATSURL == "" {
		if ns, err = startEmbeddedNATS(cfg, log); err != nil {
			return err
		}
		onStop("embedded NATS", func(context.Context) error {
			ns.Shutdown()
			ns.WaitForShutdown()
			return nil
		})
	}
	nc, err := connectNATS(cfg.NATSURL, cfg.NATSCreds, ns, "mfad-"+cfg.Role, log)
	if err != nil {
		return fmt.Errorf("connect to NATS: %w", err)
	}
	onStop("NATS connection", func(context.Context) error { nc.Close(); return nil })
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	streams := activity.StreamOptions{Replicas: cfg.StreamReplicas,
		EventsMaxAge: cfg.EventsMaxAge.ptr(), EventsMaxBytes: cfg.EventsMaxBytes.ptr()}
	if err := ensureStreams(ctx, js, streams, log); err != nil {
		return err
	}
	checks := []handlers.Check{{Name: "nats", Check: func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("NATS connection is %s", s)
		}
		return nil
	}}}

	if cfg.runsWorker() {
		chain, err := cfg.auditChain(true)
		if err != nil {
			return err
		}
		store, err := openStore(ctx, cfg, chain, log)
		if err != nil {
			return err
		}
		onStop("database", func(context.Context) error { return store.Close() })
		// The relay starts before the workers and stops after them: it is drained
		// once no command can append to the log any more.
		relay, stopRelay, outboxDetail, err := startRelay(cfg, store, nc, reg, log)
		if err != nil {
			return err
		}
		onStop("outbox relay", stopRelay)
		worker, err := startWorker(cfg, store, nc, relay.Kick, reg, log)
		if err != nil {
			return err
		}
		onStop("workers", worker.Stop)
		database := store.describe()
		checks = append(checks,
			handlers.Check{Name: "database", Check: store.Writable, Detail: func(context.Context) string { return database }},
			handlers.Check{Name: "outbox", Check: relay.Ready, Detail: outboxDetail})

		ingest := activity.NewIngester(js, activity.NewBus(nc, cfg.CommandTimeout, activity.WithBusMetrics(reg)),
			log.With("component", "ingest"), cfg.IngestMaxAttempts)
		if err := untilJetStream(ctx, log, ingest.Start); err != nil {
			return err
		}
		onStop("activity ingest", ingest.Stop)
	}

	if cfg.runsAPI() {
		srv, addr, err := startHTTP(cfg, nc, js, checks, reg, log)
		if err != nil {
			return err
		}
		onStop("HTTP server", func(ctx context.Context) error { return shutdownHTTP(ctx, srv, cfg.ShutdownTimeout/2, log) })
		log.Info("HTTP listening", "addr", addr)
	}
	if cfg.DebugAddr != "" {
		srv, err := startDebug(cfg.DebugAddr, reg, checks, log)
		if err != nil {
			return err
		}
		// Profiles, scrapes and probes are not work to finish: they must not take the
		// time the API's requests and the drains need.
		onStop("debug server", func(context.Context) error { return srv.Close() })
	}
	log.Info("mfad started", "role", cfg.Role, "version", version)
	<-ctx.Done()
	log.Info("shutting down")
	return nil
}

// shutdownHTTP lets srv's requests finish for at most share of the shutdown, then closes
// the connections still open. Requests that reached the workers end within the command
// timeout; what is left after share is a client too slow to finish its request, and it
// must not take the time the workers and the outbox need to drain after it.
func shutdownHTTP(ctx context.Context, srv *http.Server, share time.Duration, log *slog.Logger) error {
	sctx, cancel := context.WithTimeout(ctx, share)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Warn("requests still open at the HTTP server's share of the shutdown timeout: connections closed",
		"share", share.String())
	return srv.Close()
}

// ensureStreams creates the streams, waiting for a JetStream that is still electing
// leaders.
func ensureStreams(ctx context.Context, js jetstream.JetStream, o activity.StreamOptions, log *slog.Logger) error {
	return untilJetStream(ctx, log, func(ctx context.Context) error { return activity.EnsureStreams(ctx, js, o) })
}

// jetStreamWait is how long a start waits for JetStream before it gives up (and a
// supervisor starts the process again).
const jetStreamWait = 30 * time.Second

// untilJetStream runs fn until it succeeds, for up to jetStreamWait: a cluster that just
// started, or just got its quorum back, answers "temporarily unavailable" or not at all
// while it elects leaders, and every stream and consumer a start creates meets that.
func untilJetStream(ctx context.Context, log *slog.Logger, fn func(context.Context) error) error {
	deadline := time.Now().Add(jetStreamWait)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(cctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		log.Warn("JetStream not ready, retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// workerStore is a store the worker role runs on: the rules' view, the audit log as
// the relay's outbox, and, on PostgreSQL, the relay lease.
type workerStore interface {
	channels.Store
	Outbox() audit.Outbox
	Close() error
	// lease is the relay lease, nil when one process owns the database (SQLite).
	lease() audit.Lease
	// describe names the database for /readyz and the log: no credentials.
	describe() string
}

type sqliteStore struct{ *sqlite.Store }

func (sqliteStore) lease() audit.Lease { return nil }
func (s sqliteStore) describe() string { return "sqlite" }

type postgresStore struct {
	*postgres.Store
	url string
}

func (s postgresStore) lease() audit.Lease { return s.RelayLease() }
func (s postgresStore) describe() string   { return postgres.Describe(s.url) }

// openStore opens the worker's database: PostgreSQL when a URL is configured, SQLite
// in the data dir otherwise.
func openStore(ctx context.Context, cfg *Config, chain *audit.Chain, log *slog.Logger) (workerStore, error) {
	if cfg.DatabaseURL == "" {
		s, err := sqlite.Open(ctx, cfg.dbPath(), chain)
		if err != nil {
			return nil, err
		}
		return sqliteStore{s}, nil
	}
	// Workers start at once after an outage or a failover: wait a while for the
	// database rather than exit on the first refusal.
	deadline := time.Now().Add(60 * time.Second)
	for {
		s, err := postgres.Open(ctx, cfg.DatabaseURL, chain, postgres.Options{MaxConns: int32(cfg.pipelines() + 12)})
		if err == nil {
			log.Info("database", "store", "postgres", "database", postgres.Describe(cfg.DatabaseURL),
				"schema_version", postgres.SchemaVersion)
			return postgresStore{s, cfg.DatabaseURL}, nil
		}
		if !errors.Is(err, channels.ErrUnavailable) || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		log.Warn("database not reachable, retrying", "err", err)
		time.Sleep(time.Second)
	}
}

// startRelay runs the outbox relay of the worker role until the returned stop
// function, which ends Run and then drains what is left (Drain gives up when the
// shutdown timeout ends; the rest goes out at the next start). The relay has a
// JetStream context of its own so that acknowledgements it stopped waiting for are
// dropped after its ack wait instead of piling up.
//
// On PostgreSQL every worker has a relay but only the holder of the lease runs it;
// the detail function names the holder for /readyz.
func startRelay(cfg *Config, store workerStore, nc *nats.Conn, reg prometheus.Registerer, log *slog.Logger) (*audit.Relay, func(context.Context) error, func(context.Context) string, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(audit.DefaultAckWait))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("JetStream for the outbox relay: %w", err)
	}
	relay := audit.NewRelay(store.Outbox(), js, log.With("component", "relay"), audit.WithMetrics(reg))
	if lease := store.lease(); lease != nil {
		leader := audit.NewLeader(lease, relay, relayHolder(), cfg.RelayLease, log.With("component", "relay"))
		detail := func(context.Context) string {
			st, known := leader.State()
			switch {
			case !known:
				return "relay lease unknown (database unreachable)"
			case !st.Held:
				return "relay lease free"
			case st.Holder == leader.Holder():
				return fmt.Sprintf("relay lease held by %s (this process), epoch %d", st.Holder, st.Epoch)
			}
			return fmt.Sprintf("relay lease held by %s, epoch %d", st.Holder, st.Epoch)
		}
		return relay, leader.Stop, detail, nil
	}
	// Not the serve context: that ends at the signal, and the relay must keep
	// publishing while the HTTP server and the workers finish their last commands.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		relay.Run(ctx)
	}()
	stop := func(sctx context.Context) error {
		cancel()
		select {
		case <-done:
		case <-sctx.Done():
			return fmt.Errorf("stop outbox relay: %w", sctx.Err())
		}
		return relay.Drain(sctx)
	}
	return relay, stop, func(context.Context) string { return "relay in this process" }, nil
}

// relayHolder names this process in the relay lease: host and pid, and a random
// suffix so that a restarted process with the same pid is a new holder.
func relayHolder() string {
	host, _ := os.Hostname()
	id := mfa.NewID()
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), id[len(id)-6:])
}

func startWorker(cfg *Config, store channels.Store, nc *nats.Conn, afterCommit func(), reg prometheus.Registerer, log *slog.Logger) (*channels.Worker, error) {
	sealer, err := cfg.sealer(true)
	if err != nil {
		return nil, err
	}
	mandatory, _ := cfg.mandatory() // checked in cfg.check
	webauthn, _ := cfg.webauthn()   // checked in cfg.check
	batch := cfg.BatchSize
	if !cfg.GroupCommit {
		batch = 1
	}
	alg, err := totpAlgorithm(cfg.TOTPAlgorithm)
	if err != nil {
		return nil, err
	}
	// Only SQLite has one writer, this process (runServe holds the data dir's lock):
	// workers sharing PostgreSQL would not see each other's writes in their caches.
	readCache := 0
	if cfg.DatabaseURL == "" {
		readCache = cfg.ReadCacheMB << 20
	}
	worker, err := channels.NewWorker(channels.Config{
		TOTP: channels.TOTPPolicy{Issuer: cfg.TOTPIssuer, Algorithm: alg,
			Digits: otp.Digits(cfg.TOTPDigits), Period: uint(cfg.TOTPPeriod)},
		MaxTOTPDevices: cfg.MaxTOTPDevices,
		Lockout: channels.LockoutPolicy{Threshold: cfg.LockoutThreshold, Duration: cfg.LockoutDuration,
			MaxDuration: cfg.LockoutMaxDuration, MaxFailures: cfg.LockoutMaxFailures},
		CodeSendLimit:  cfg.CodeSendLimit,
		CodeSendWindow: cfg.CodeSendWindow,
		Mandatory:      mandatory,
		WebAuthn:       webauthn,
		BatchSize:      batch,
		BatchWait:      cfg.BatchWait,
		Pipelines:      cfg.pipelines(),
		ReadCacheBytes: readCache,
		Version:        semver(version),
		Logger:         log.With("component", "worker"),
		AfterCommit:    afterCommit,
		Metrics:        reg,
	}, store, sealer)
	if err != nil {
		return nil, err
	}
	if err := worker.Start(nc); err != nil {
		_ = worker.Stop(context.Background())
		return nil, err
	}
	return worker, nil
}

func totpAlgorithm(name string) (otp.Algorithm, error) {
	alg, err := channels.ParseAlgorithm(name)
	if err != nil {
		return 0, usageError{fmt.Sprintf("--totp-algorithm must be SHA1, SHA256 or SHA512, not %q", name)}
	}
	return alg, nil
}

// semver is the micro service version: it must be semantic, "dev" is not.
func semver(v string) string {
	if v == "dev" {
		return "0.0.0-dev"
	}
	return v
}

func startHTTP(cfg *Config, nc *nats.Conn, js jetstream.JetStream, checks []handlers.Check, reg *prometheus.Registry, log *slog.Logger) (*http.Server, string, error) {
	secret, dev, err := cfg.jwtSecret()
	if err != nil {
		return nil, "", err
	}
	if dev {
		log.Warn("no token issuer configured: using the development HS256 secret in the data dir; mint tokens with `mfad token --sub <user>`")
	}
	auth, err := handlers.NewAuthenticator(handlers.AuthConfig{
		HMACSecret:           secret,
		JWKSURL:              cfg.JWKSURL,
		Issuer:               cfg.JWTIssuer,
		Audience:             cfg.JWTAudience,
		IntrospectionURL:     cfg.IntrospectionURL,
		IntrospectionID:      cfg.IntrospectionID,
		IntrospectionSecret:  cfg.IntrospectionSecret,
		IntrospectionTimeout: cfg.IntrospectionWait,
	})
	if err != nil {
		return nil, "", err
	}
	// The dashboard's live feed reads MFA_EVENTS straight from JetStream, so any API
	// node can serve it without a worker in the path.
	feed := activity.NewFeed(js, log.With("component", "feed"))
	e := handlers.New(handlers.Config{
		Bus:          activity.NewBus(nc, cfg.CommandTimeout, activity.WithBusMetrics(reg)),
		Auth:         auth,
		Logger:       log.With("component", "http"),
		Ready:        checks,
		StepUpMaxAge: cfg.StepUpMaxAge,
		TOTPDigits:   cfg.TOTPDigits,
		Metrics:      reg,
		Feed:         feed,
	})
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for responses to end, and a dashboard's event stream never ends
	// by itself: end them all as soon as shutdown starts (the pages reconnect elsewhere).
	srv.RegisterOnShutdown(feed.Close)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "err", err)
		}
	}()
	return srv, ln.Addr().String(), nil
}
