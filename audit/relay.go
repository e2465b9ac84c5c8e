package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mfad/mfad/activity"
)

// Relay defaults. A window of 256 in-flight publishes keeps the pipe full on a loopback
// or LAN link (one round trip per window, one UPDATE per window) while bounding what is
// re-sent after a failure. The readiness limits are the Ready policy below.
const (
	DefaultWindow     = 256
	DefaultAckWait    = 5 * time.Second
	DefaultInterval   = time.Second
	DefaultMaxBacklog = 10_000
	DefaultMaxLag     = time.Minute
	minBackoff        = 100 * time.Millisecond
	maxBackoff        = 5 * time.Second
)

// Relay publishes the audit log, the outbox of MFA_EVENTS, to JetStream: each row once,
// in seq order, on mfa.events.<type>, with Nats-Msg-Id = event_id and Mfa-Seq = seq.
//
// Order is enforced by the server, not hoped for: every message carries
// Nats-Expected-Last-Msg-Id = the event id of the row before it, so JetStream stores it
// only right after its predecessor, whatever the pipelining, retries, reconnects or a
// second relay do. JetStream checks the dedupe window before that expectation, so
// re-sending an event the stream already holds is acknowledged as a duplicate and
// changes nothing. The first message after a reconcile expects the stream's last
// sequence instead: the reconcile has just read which event sits there, and the
// server's memory of the last message id does not survive every repair (it is empty
// after a restart whose last stored sequence was deleted, and stale after a deletion).
//
// Rows are marked published (published_at, the one column the triggers let change) once
// JetStream has acknowledged them, one UPDATE per window.
//
// After any failure the relay backs off and reconciles: it reads the stream's last
// message, finds that event in the audit log and republishes every row after it,
// published or not. Rows marked published but absent from the stream were acknowledged
// and then lost by JetStream: the embedded server keeps nats-server's default
// 2-minute sync interval (cmd/mfad/nats.go), so a host crash can drop up to the last two
// minutes of acknowledged messages, and this reconcile, which also runs at every start,
// puts them back in order. That is cheaper than fsyncing every publish (sync_interval
// always), and the audit log, written with synchronous=FULL, stays the durable copy.
type Relay struct {
	write   *sql.DB // marks published_at
	read    *sql.DB // reads rows
	js      jetstream.JetStream
	log     *slog.Logger
	cfg     relayConfig
	kick    chan struct{}
	metrics *relayMetrics

	mu  sync.Mutex // one publishing pass at a time: Run and Drain share the position
	pos position   // guarded by mu
}

// position is where the relay is in the log and what it expects the stream to hold.
type position struct {
	known bool   // reconciled since the last failure
	next  int64  // seq of the next row to publish
	bySeq bool   // the next publish expects streamSeq, not lastID
	seq   uint64 // the stream's last sequence, when bySeq
	last  string // event id of the row before next, when !bySeq
}

type relayConfig struct {
	window     int
	ackWait    time.Duration
	interval   time.Duration
	maxBacklog int
	maxLag     time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration
	now        func() time.Time
	read       *sql.DB
	metrics    prometheus.Registerer
}

// RelayOption adjusts a Relay.
type RelayOption func(*relayConfig)

// WithWindow sets how many publishes may await their acknowledgement at once.
func WithWindow(n int) RelayOption { return func(c *relayConfig) { c.window = n } }

// WithAckWait sets how long the relay waits for a window's acknowledgements before it
// treats the window as failed and reconciles.
func WithAckWait(d time.Duration) RelayOption { return func(c *relayConfig) { c.ackWait = d } }

// WithInterval sets how often Run looks for rows without being kicked.
func WithInterval(d time.Duration) RelayOption { return func(c *relayConfig) { c.interval = d } }

// WithBackoff sets the first and the longest pause after a failure.
func WithBackoff(first, longest time.Duration) RelayOption {
	return func(c *relayConfig) { c.minBackoff, c.maxBackoff = first, longest }
}

// WithReadiness sets the Ready limits: most unpublished rows, and the oldest
// unpublished row's greatest age while NATS is connected.
func WithReadiness(maxBacklog int, maxLag time.Duration) RelayOption {
	return func(c *relayConfig) { c.maxBacklog, c.maxLag = maxBacklog, maxLag }
}

// WithClock sets the clock of published_at and of the lag check.
func WithClock(now func() time.Time) RelayOption { return func(c *relayConfig) { c.now = now } }

// WithReader reads rows from a pool of their own, so the relay does not queue for the
// single writer connection except to mark rows published.
func WithReader(db *sql.DB) RelayOption { return func(c *relayConfig) { c.read = db } }

// NewRelay returns a relay over the audit log in db, which must be the writer (the relay
// marks rows published), publishing with js. js should have a publish-async timeout
// (jetstream.WithPublishAsyncTimeout) so abandoned acknowledgements are forgotten; the
// relay itself never waits longer than its ack wait.
func NewRelay(db *sql.DB, js jetstream.JetStream, log *slog.Logger, opts ...RelayOption) *Relay {
	cfg := relayConfig{
		window:     DefaultWindow,
		ackWait:    DefaultAckWait,
		interval:   DefaultInterval,
		maxBacklog: DefaultMaxBacklog,
		maxLag:     DefaultMaxLag,
		minBackoff: minBackoff,
		maxBackoff: maxBackoff,
		now:        time.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.window < 1 {
		cfg.window = 1
	}
	if cfg.read == nil {
		cfg.read = db
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Relay{write: db, read: cfg.read, js: js, log: log, cfg: cfg, kick: make(chan struct{}, 1)}
	r.metrics = newRelayMetrics(cfg.metrics, r)
	return r
}

// Kick wakes Run to publish new rows. It never blocks: it is called by the worker after
// each commit that appended audit records.
func (r *Relay) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run publishes until ctx ends: it reconciles, publishes the backlog, then waits for a
// Kick or the interval. After a failure it backs off (kicks do not cut the pause short,
// so a NATS outage is not hammered once per commit) and reconciles before going on.
func (r *Relay) Run(ctx context.Context) {
	// Go 1.23 timers: Reset and Stop never leave a stale tick behind.
	timer := time.NewTimer(r.cfg.interval)
	defer timer.Stop()
	backoff := r.cfg.minBackoff
	var (
		failures  int
		failSince time.Time
		lastWarn  time.Time
	)
	for {
		err := r.flush(ctx)
		if ctx.Err() != nil {
			return
		}
		wait, kick := r.cfg.interval, r.kick
		if err != nil {
			if failures == 0 {
				failSince = time.Now()
			}
			failures++
			// One warning when it starts, then one a minute: an outage must be visible
			// without flooding the log.
			if failures == 1 || time.Since(lastWarn) >= time.Minute {
				r.log.Warn("outbox relay cannot publish, retrying", "err", err,
					"failures", failures, "since", failSince, "retry_in", backoff)
				lastWarn = time.Now()
			} else {
				r.log.Debug("outbox relay retry failed", "err", err, "failures", failures)
			}
			wait, kick = backoff, nil
			r.metrics.failed()
			backoff = min(2*backoff, r.cfg.maxBackoff)
		} else {
			if failures > 0 {
				r.log.Info("outbox relay publishing again", "failures", failures,
					"outage", time.Since(failSince).Round(time.Millisecond))
			}
			failures, backoff = 0, r.cfg.minBackoff
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-kick:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// Drain publishes everything not yet published, retrying until ctx ends: the last step
// of a shutdown, after the workers have stopped appending. What it cannot publish stays
// in the log and goes out at the next start.
func (r *Relay) Drain(ctx context.Context) error {
	backoff := r.cfg.minBackoff
	for {
		err := r.flush(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			left, berr := r.Backlog(context.WithoutCancel(ctx))
			if berr != nil {
				return fmt.Errorf("drain outbox: %w (last error: %v)", ctx.Err(), err)
			}
			return fmt.Errorf("drain outbox: %d events left unpublished until the next start: %w (last error: %v)",
				left, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(2*backoff, r.cfg.maxBackoff)
	}
}

// Backlog is the number of rows not yet marked published.
func (r *Relay) Backlog(ctx context.Context) (int, error) {
	n, _, err := r.backlog(ctx)
	return n, err
}

// backlog counts the unpublished rows and returns the creation time of the oldest.
func (r *Relay) backlog(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullInt64
	)
	err := r.read.QueryRowContext(ctx, `SELECT count(*),
		(SELECT created_at FROM audit_log WHERE published_at IS NULL ORDER BY seq LIMIT 1)
		FROM audit_log WHERE published_at IS NULL`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count unpublished audit records: %w", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, time.UnixMilli(oldest.Int64), nil
}

// Ready is the outbox's readiness check. It fails when
//   - more than the backlog limit (10,000 by default) of rows wait: the relay is far
//     behind whatever the cause, and consumers of MFA_EVENTS are seeing stale news; or
//   - the oldest waiting row is older than the lag limit (a minute by default) while the
//     NATS connection is up: the relay is stuck although the bus works (JetStream has
//     no quorum, the stream is missing, or something refuses every publish).
//
// A disconnected NATS alone does not fail it (the nats check reports that), and a
// short burst of commits does not either: the relay drains about 18,000 events a
// second on a 2-core machine (BenchmarkRelayDrain).
func (r *Relay) Ready(ctx context.Context) error {
	n, oldest, err := r.backlog(ctx)
	if err != nil {
		return err
	}
	if n > r.cfg.maxBacklog {
		return fmt.Errorf("outbox backlog is %d events, more than %d", n, r.cfg.maxBacklog)
	}
	if n > 0 && r.js.Conn().Status() == nats.CONNECTED {
		if lag := r.cfg.now().Sub(oldest); lag > r.cfg.maxLag {
			return fmt.Errorf("oldest unpublished event is %s old while NATS is connected", lag.Round(time.Second))
		}
	}
	return nil
}

// flush reconciles if needed and publishes every row after the position, window by
// window. Any failure forgets the position, so the next flush reconciles first.
func (r *Relay) flush(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.pos.known {
		if err := r.reconcile(ctx); err != nil {
			return err
		}
	}
	for {
		rows, err := r.load(ctx, r.pos.next)
		if err != nil {
			r.pos.known = false
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if err := r.publish(ctx, rows); err != nil {
			r.pos.known = false
			return err
		}
	}
}

// outRow is what the relay needs of a row.
type outRow struct {
	seq       int64
	eventID   string
	typ       string
	body      string
	createdAt int64 // Unix milliseconds
}

func (r *Relay) load(ctx context.Context, from int64) ([]outRow, error) {
	rows, err := r.read.QueryContext(ctx,
		"SELECT seq, event_id, type, body, created_at FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?", from, r.cfg.window)
	if err != nil {
		return nil, fmt.Errorf("read audit records from %d: %w", from, err)
	}
	defer rows.Close()
	var out []outRow
	for rows.Next() {
		var o outRow
		if err := rows.Scan(&o.seq, &o.eventID, &o.typ, &o.body, &o.createdAt); err != nil {
			return nil, fmt.Errorf("scan audit record: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read audit records from %d: %w", from, err)
	}
	return out, nil
}

// publish sends one window, waits for its acknowledgements in order, marks the
// acknowledged prefix published and moves the position past it. It returns the first
// failure; the messages after it are abandoned (their expectations make them fail on
// the server, or they are duplicates of what the retry sends).
func (r *Relay) publish(ctx context.Context, rows []outRow) error {
	futures := make([]jetstream.PubAckFuture, 0, len(rows))
	var sendErr error
	for i, row := range rows {
		msg := &nats.Msg{
			Subject: activity.EventSubject(row.typ),
			Data:    []byte(row.body),
			Header:  nats.Header{activity.EventSeqHeader: []string{strconv.FormatInt(row.seq, 10)}},
		}
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(row.eventID)}
		switch {
		case i > 0:
			opts = append(opts, jetstream.WithExpectLastMsgID(rows[i-1].eventID))
		case r.pos.bySeq:
			opts = append(opts, jetstream.WithExpectLastSequence(r.pos.seq))
		default:
			opts = append(opts, jetstream.WithExpectLastMsgID(r.pos.last))
		}
		f, err := r.js.PublishMsgAsync(msg, opts...)
		if err != nil {
			sendErr = fmt.Errorf("publish audit record %d: %w", row.seq, err)
			break
		}
		futures = append(futures, f)
	}

	acked, err := r.await(ctx, rows, futures)
	if err == nil {
		err = sendErr
	}
	if acked > 0 {
		done := rows[:acked]
		if merr := r.markPublished(ctx, done[0].seq, done[acked-1].seq); merr != nil {
			err = errors.Join(err, merr)
		}
		r.pos.next = done[acked-1].seq + 1
		r.pos.last = done[acked-1].eventID
		r.pos.bySeq = false
		r.metrics.acked(done, r.cfg.now())
		r.log.Debug("published audit records", "from", done[0].seq, "to", done[acked-1].seq)
	}
	return err
}

// await collects the acknowledgements of a window in order and returns how many of the
// first rows JetStream holds.
func (r *Relay) await(ctx context.Context, rows []outRow, futures []jetstream.PubAckFuture) (int, error) {
	timer := time.NewTimer(r.cfg.ackWait)
	defer timer.Stop()
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				// The stream knew this event id already. In steady state that only
				// happens to a re-send after a lost acknowledgement; after a purge or a
				// deletion inside the dedupe window it means the stream lacks an event
				// it claims to have, which no publisher can repair until the window
				// passes. Either way it is worth a line.
				r.log.Warn("JetStream reported an audit event as a duplicate",
					"seq", rows[i].seq, "event_id", rows[i].eventID, "stream_seq", ack.Sequence)
			}
		case err := <-f.Err():
			return i, fmt.Errorf("publish audit record %d: %w", rows[i].seq, err)
		case <-timer.C:
			return i, fmt.Errorf("publish audit record %d: no acknowledgement within %s", rows[i].seq, r.cfg.ackWait)
		case <-ctx.Done():
			return i, fmt.Errorf("publish audit record %d: %w", rows[i].seq, ctx.Err())
		}
	}
	return len(futures), nil
}

// markPublished sets published_at on the rows from..to that do not have it. It runs
// even when ctx has just ended (shutdown): JetStream holds these events, and recording
// that saves republishing them.
func (r *Relay) markPublished(ctx context.Context, from, to int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := r.write.ExecContext(ctx,
		"UPDATE audit_log SET published_at = ? WHERE seq BETWEEN ? AND ? AND published_at IS NULL",
		r.cfg.now().UnixMilli(), from, to)
	if err != nil {
		return fmt.Errorf("mark audit records %d to %d published: %w", from, to, err)
	}
	return nil
}

// reconcile finds where the stream ends in the audit log and sets the position after
// it:
//   - the stream's last message is an audit event (seq k): everything up to k is in the
//     stream (each message was stored only after its predecessor), so rows up to k are
//     marked published, and publishing resumes at k+1, whatever the marks after it say;
//   - the stream never held a message (new or recreated): publishing starts at seq 1;
//   - the stream is empty but held messages once (purged, or aged out by limits an
//     operator set), or its last message is not an audit event (foreign content, or a
//     database restored from an older backup): the error is logged and only the rows
//     not yet marked published are sent, so the whole log is not replayed.
//
// In every case the first publish expects the stream's last sequence as read here.
func (r *Relay) reconcile(ctx context.Context) error {
	stream, err := r.js.Stream(ctx, activity.EventsStream)
	if err != nil {
		return fmt.Errorf("reconcile: look up stream %s: %w", activity.EventsStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: stream %s info: %w", activity.EventsStream, err)
	}
	lastSeq := info.State.LastSeq
	msg, err := stream.GetLastMsgForSubject(ctx, activity.EventSubjects)
	var (
		next    int64
		lastID  string
		auditAt int64
	)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound) && lastSeq == 0:
		next = 1
	case errors.Is(err, jetstream.ErrMsgNotFound):
		r.log.Error("MFA_EVENTS is empty but held messages before (purged or limited): publishing only unpublished audit records",
			"stream_last_seq", lastSeq)
		if next, err = r.firstUnpublished(ctx); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("reconcile: read the last message of %s: %w", activity.EventsStream, err)
	case msg.Sequence > lastSeq:
		// Stored after the info was read: read again rather than reason about a moving
		// target.
		return fmt.Errorf("reconcile: stream %s moved while being read", activity.EventsStream)
	default:
		lastID = msg.Header.Get(jetstream.MsgIDHeader)
		auditAt, err = r.seqOf(ctx, lastID)
		if err != nil {
			return err
		}
		if auditAt == 0 {
			r.log.Error("MFA_EVENTS ends with a message that is not an audit event: publishing only unpublished audit records",
				"stream_seq", msg.Sequence, "subject", msg.Subject, "msg_id", lastID)
			if next, err = r.firstUnpublished(ctx); err != nil {
				return err
			}
			break
		}
		next = auditAt + 1
		if err := r.markPublished(ctx, 1, auditAt); err != nil {
			return err
		}
	}
	lost, err := r.publishedFrom(ctx, next)
	if err != nil {
		return err
	}
	if lost > 0 {
		r.log.Warn("republishing audit events JetStream acknowledged but no longer holds",
			"count", lost, "from_seq", next, "stream_last_seq", lastSeq)
	}
	r.pos = position{known: true, next: next, bySeq: true, seq: lastSeq}
	r.log.Info("outbox reconciled", "stream_last_seq", lastSeq, "stream_last_event", lastID,
		"audit_seq", auditAt, "next_seq", next)
	return nil
}

// seqOf is the audit seq of an event id, 0 when the log has no such event.
func (r *Relay) seqOf(ctx context.Context, eventID string) (int64, error) {
	if eventID == "" {
		return 0, nil
	}
	var seq int64
	err := r.read.QueryRowContext(ctx, "SELECT seq FROM audit_log WHERE event_id = ?", eventID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reconcile: find event %s in the audit log: %w", eventID, err)
	}
	return seq, nil
}

// firstUnpublished is the seq of the oldest unpublished row, or the one after the last
// row when every row is published.
func (r *Relay) firstUnpublished(ctx context.Context) (int64, error) {
	var seq int64
	err := r.read.QueryRowContext(ctx, `SELECT coalesce(
		(SELECT seq FROM audit_log WHERE published_at IS NULL ORDER BY seq LIMIT 1),
		(SELECT max(seq) + 1 FROM audit_log), 1)`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("reconcile: find the first unpublished audit record: %w", err)
	}
	return seq, nil
}

// publishedFrom counts rows from seq on that are marked published: after a reconcile,
// the events JetStream lost.
func (r *Relay) publishedFrom(ctx context.Context, seq int64) (int, error) {
	var n int
	err := r.read.QueryRowContext(ctx,
		"SELECT count(*) FROM audit_log WHERE seq >= ? AND published_at IS NOT NULL", seq).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("reconcile: count republished audit records: %w", err)
	}
	return n, nil
}
