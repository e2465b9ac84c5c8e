package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels/postgres"
	"github.com/mfad/mfad/channels/sqlite"
)

const auditUsage = `Usage: mfad audit <command> [flags]

Commands:
  verify   walk the hash chain of the audit log in the data dir; exit 1 naming the
           first altered, removed or inserted record
  tail     follow MFA_EVENTS from NATS and print one line per event
  sink     copy MFA_EVENTS durably into another SQLite file (a compliance store)

Run 'mfad audit <command> --help' for its flags.
`

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return usageError{"audit: no command given"}
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(ctx, args[1:], getenv, stdout)
	case "tail":
		return runAuditTail(ctx, args[1:], getenv, stdout)
	case "sink":
		return runAuditSink(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, auditUsage)
		return flag.ErrHelp
	}
	fmt.Fprint(stderr, auditUsage)
	return usageError{fmt.Sprintf("audit: unknown command %q", args[0])}
}

const verifyAbout = `Reads the audit log of <data-dir>/mfad.db, or of the PostgreSQL database of
--database-url (read-only: it is safe while mfad runs)
and checks every record: sequence numbers follow each other from 1, each record's
hash is its HMAC link under the audit chain key (--audit-key, or audit.key in the
data dir), and each prev_hash is the hash of the record before. Without the key
nobody can rewrite a record and the chain after it so that this passes.
Prints "ok: N records" and exits 0, or names the first bad record and exits 1.
The newest records can still be dropped by someone able to write the file:
compare with MFA_EVENTS or an audit sink for that.
`

// runAuditVerify: mfad audit verify [--data-dir] [--audit-key].
func runAuditVerify(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var cfg Config
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory of mfad.db")
	cfg.registerDatabaseURL(fs)
	cfg.registerAuditKey(fs)
	annotateEnv(fs)
	if err := parseFlagsAbout(fs, args, getenv, stdout, verifyAbout); err != nil {
		return err
	}
	path := cfg.dbPath()
	var records audit.Records
	if cfg.DatabaseURL != "" {
		path = postgres.Describe(cfg.DatabaseURL)
		db, err := postgres.OpenReadOnly(ctx, cfg.DatabaseURL)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		defer db.Close()
		records = db.Records()
	} else {
		db, err := sqlite.OpenReadOnly(ctx, path)
		if err != nil {
			return fmt.Errorf("audit verify: %w", err)
		}
		defer db.Close()
		records = db.Records()
	}
	chain, err := cfg.auditChain(false)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	n, err := audit.Verify(ctx, records, chain)
	if err != nil {
		return fmt.Errorf("audit verify: %s: %w (%d records before it are intact)", path, err, n)
	}
	fmt.Fprintf(stdout, "ok: %d records\n", n)
	return nil
}

const tailAbout = `Follows MFA_EVENTS with an ordered (ephemeral) consumer and prints one line per
event: published time, audit seq, type, user, actor, summary. Nothing is
acknowledged or stored. --since takes an audit seq (start at that event) or a
duration (events published that long ago and later); without it only new events
are shown. Ends on Ctrl-C or SIGTERM.
`

// natsClientFlags are the connection flags of the audit commands.
type natsClientFlags struct{ url, creds, domain string }

func (f *natsClientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "nats-url", nats.DefaultURL, "NATS server(s) holding MFA_EVENTS, comma-separated; for the embedded server: $(mfad nats-url --role auditor)")
	fs.StringVar(&f.creds, "nats-creds", "", "NATS credentials file")
	fs.StringVar(&f.domain, "nats-js-domain", activity.DomainAuto, `JetStream domain of MFA_EVENTS: auto tries domain mfad (an outside account of mfad's NATS) and then none; none; or a domain`)
}

// runAuditTail: mfad audit tail [--nats-url] [--nats-creds] [--nats-js-domain] [--since seq|duration].
func runAuditTail(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	var (
		conn  natsClientFlags
		since string
	)
	fs := flag.NewFlagSet("audit tail", flag.ContinueOnError)
	conn.register(fs)
	annotateEnv(fs)
	fs.StringVar(&since, "since", "", "start at this audit seq (e.g. 1200) or this long ago (e.g. 15m); empty = new events only")
	if err := parseFlagsAbout(fs, args, getenv, stdout, tailAbout); err != nil {
		return err
	}
	var (
		fromSeq int64
		fromAge time.Duration
	)
	if since != "" {
		if n, err := strconv.ParseInt(since, 10, 64); err == nil && n > 0 {
			fromSeq = n
		} else if d, err := time.ParseDuration(since); err == nil && d > 0 {
			fromAge = d
		} else {
			return usageError{fmt.Sprintf("audit tail: --since %q is neither an audit seq nor a duration", since)}
		}
	}
	nc, _, stream, err := auditConnect(ctx, conn, "mfad-audit-tail")
	if err != nil {
		return fmt.Errorf("audit tail: %w", err)
	}
	defer nc.Close()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{activity.EventSubjects},
		DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case fromSeq > 0:
		start, err := streamSeqOf(ctx, stream, fromSeq)
		if err != nil {
			return err
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	case fromAge > 0:
		t := time.Now().Add(-fromAge)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("audit tail: consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("audit tail: consume: %w", err)
	}
	defer it.Stop()
	// Next runs on a goroutine of its own and Ctrl-C is answered here: while NATS is
	// away, Next can be busy recreating the ordered consumer, which Stop does not
	// interrupt, and an operator's Ctrl-C must not wait for that.
	type result struct {
		msg jetstream.Msg
		err error
	}
	results, quit := make(chan result), make(chan struct{})
	defer close(quit)
	go func() {
		for {
			msg, err := it.Next(jetstream.NextContext(ctx))
			select {
			case results <- result{msg, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		var r result
		select {
		case <-ctx.Done():
			return nil
		case r = <-results:
		}
		if errors.Is(r.err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
			return nil
		}
		if r.err != nil {
			return fmt.Errorf("audit tail: %w", r.err)
		}
		if seq, _ := strconv.ParseInt(r.msg.Headers().Get(activity.EventSeqHeader), 10, 64); seq > 0 && seq < fromSeq {
			continue // before the requested event: the search starts a little early
		}
		fmt.Fprintln(stdout, tailLine(r.msg.Subject(), r.msg.Data()))
	}
}

// tailLine renders one event for people: the members of API.md §4 that say what
// happened, and a plain note for anything that is not an audit event.
func tailLine(subject string, body []byte) string {
	var ev struct {
		Published string `json:"published"`
		Seq       int64  `json:"mfa:seq"`
		Event     string `json:"mfa:event"`
		User      string `json:"mfa:user"`
		Actor     struct {
			ID string `json:"id"`
		} `json:"actor"`
		Summary string `json:"summary"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Event == "" {
		return fmt.Sprintf("%-24s %8s  %s: not an audit event (%d bytes)", "-", "-", subject, len(body))
	}
	return fmt.Sprintf("%-24s %8d  %-24s user=%s actor=%s  %s",
		ev.Published, ev.Seq, ev.Event, ev.User, ev.Actor.ID, ev.Summary)
}

// streamSeqOf finds the stream sequence of the first event with audit seq ≥ seq by
// bisection. It relies on what the relay guarantees: audit events are in the stream in
// audit order. Deleted and foreign messages are stepped over.
func streamSeqOf(ctx context.Context, stream jetstream.Stream, seq int64) (uint64, error) {
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit tail: stream info: %w", err)
	}
	lo, hi := info.State.FirstSeq, info.State.LastSeq+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		at, auditSeq, err := eventAtOrAfter(ctx, stream, mid, hi)
		if err != nil {
			return 0, err
		}
		if at == 0 || auditSeq >= seq {
			hi = mid
		} else {
			lo = at + 1
		}
	}
	return max(lo, 1), nil
}

// eventAtOrAfter is the first audit event at a stream sequence in [from, before), and
// its audit seq; 0 when there is none.
func eventAtOrAfter(ctx context.Context, stream jetstream.Stream, from, before uint64) (uint64, int64, error) {
	for from < before {
		m, err := stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(activity.EventSubjects))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return 0, 0, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("audit tail: read message %d: %w", from, err)
		}
		if m.Sequence >= before {
			return 0, 0, nil
		}
		if n, err := strconv.ParseInt(m.Header.Get(activity.EventSeqHeader), 10, 64); err == nil {
			return m.Sequence, n, nil
		}
		from = m.Sequence + 1
	}
	return 0, 0, nil
}

const sinkAbout = `Copies MFA_EVENTS into a SQLite file of its own, for a compliance store on another
host. It reads with a durable pull consumer (--durable), so a restart continues
where the last run stopped, and acknowledges a batch only after it is committed.
Rows are keyed by event id: a redelivered event is stored once. Messages without
a Nats-Msg-Id are not audit events and are skipped. Ends on Ctrl-C or SIGTERM.
`

// runAuditSink: mfad audit sink --db other.db [--nats-url] [--nats-creds] [--durable].
func runAuditSink(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		conn            natsClientFlags
		dbPath, durable string
		batch           int
	)
	fs := flag.NewFlagSet("audit sink", flag.ContinueOnError)
	conn.register(fs)
	annotateEnv(fs)
	fs.StringVar(&dbPath, "db", "", "SQLite file to copy the events into (created if missing), required")
	fs.StringVar(&durable, "durable", "mfad-audit-sink", "durable consumer name: one per sink")
	fs.IntVar(&batch, "batch", 256, "events per transaction")
	if err := parseFlagsAbout(fs, args, getenv, stdout, sinkAbout); err != nil {
		return err
	}
	if dbPath == "" {
		return usageError{"audit sink: --db is required"}
	}
	if batch < 1 || batch > 10_000 {
		return usageError{"audit sink: --batch must be 1 to 10000"}
	}
	nc, js, _, err := auditConnect(ctx, conn, "mfad-audit-sink")
	if err != nil {
		return fmt.Errorf("audit sink: %w", err)
	}
	defer nc.Close()
	sink, err := sqlite.OpenSink(ctx, dbPath)
	if err != nil {
		return fmt.Errorf("audit sink: %w", err)
	}
	defer sink.Close()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	return runSink(ctx, js, sink, durable, batch, log)
}

// auditConnect connects to NATS for the audit commands, reconnecting for ever (a sink
// should outlive a NATS restart), and finds MFA_EVENTS (activity.OpenStream).
func auditConnect(ctx context.Context, f natsClientFlags, name string) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second)}
	if f.creds != "" {
		opts = append(opts, nats.UserCredentials(f.creds))
	}
	nc, err := nats.Connect(f.url, opts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to NATS at %s: %w", redactURLs(f.url), err)
	}
	domain := f.domain
	if domain == "none" {
		domain = ""
	}
	js, stream, err := activity.OpenStream(ctx, nc, activity.EventsStream, domain)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return nc, js, stream, nil
}

// runSink copies events until ctx ends: fetch a batch, store it in one transaction,
// then acknowledge it. A crash between commit and ack redelivers the batch, which the
// event-id key absorbs.
func runSink(ctx context.Context, js jetstream.JetStream, sink *sqlite.Sink, durable string, batch int, log *slog.Logger) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, activity.EventsStream, jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   "mfad audit sink",
		FilterSubject: activity.EventSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxAckPending: 4 * batch,
	})
	if err != nil {
		return fmt.Errorf("audit sink: consumer %s on %s: %w", durable, activity.EventsStream, err)
	}
	log.Info("audit sink started", "consumer", durable)
	for ctx.Err() == nil {
		msgs, err := cons.Fetch(batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("fetch failed, retrying", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		var got []jetstream.Msg
		for m := range msgs.Messages() {
			got = append(got, m)
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			log.Warn("fetch ended early", "err", err)
		}
		if len(got) == 0 {
			continue
		}
		stored, err := storeEvents(ctx, sink, got, log)
		if err != nil {
			// Not acknowledged: JetStream redelivers after AckWait.
			log.Error("store events failed, they will be redelivered", "err", err)
			sleepCtx(ctx, time.Second)
			continue
		}
		for _, m := range got {
			if err := m.Ack(); err != nil {
				log.Warn("ack failed, the event will be redelivered and ignored", "err", err)
			}
		}
		log.Info("events stored", "received", len(got), "new", stored)
	}
	log.Info("audit sink stopped")
	return nil
}

// storeEvents stores a batch in one transaction and returns how many were new.
// Messages without a Nats-Msg-Id are not audit events and are skipped.
func storeEvents(ctx context.Context, sink *sqlite.Sink, msgs []jetstream.Msg, log *slog.Logger) (int64, error) {
	events := make([]sqlite.SinkEvent, 0, len(msgs))
	for _, m := range msgs {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		meta, err := m.Metadata()
		if err != nil {
			return 0, fmt.Errorf("message metadata: %w", err)
		}
		if id == "" {
			log.Warn("skipping a message without Nats-Msg-Id: not an audit event",
				"subject", m.Subject(), "stream_seq", meta.Sequence.Stream)
			continue
		}
		seq, _ := strconv.ParseInt(m.Headers().Get(activity.EventSeqHeader), 10, 64)
		events = append(events, sqlite.SinkEvent{EventID: id, AuditSeq: seq, StreamSeq: meta.Sequence.Stream,
			Subject: m.Subject(), Body: m.Data()})
	}
	return sink.Store(ctx, events)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
