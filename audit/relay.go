package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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
// Order is enforced by the server, not hoped for: each message of a pipelined window
// carries Nats-Expected-Last-Sequence = the stream sequence its predecessor will get, so
// JetStream stores it only right after its predecessor, whatever the retries,
// reconnects, leader changes or a second relay do. The stream leader checks that
// expectation before it proposes the message to the replicas, so a mismatch is a clean
// refusal. (Nats-Expected-Last-Msg-Id, which chains on event ids, is checked only when
// the replicas apply a message: on a replicated stream a leader change in the middle of
// a window made every replica refuse the same entry and left the stream without a
// leader for good.) A copy of an event the stream already holds is therefore refused
// by the expectation (a single-replica stream checks it before the dedupe window), or,
// on a replicated stream within the window (2 s, activity.StreamConfigs), acknowledged
// as a duplicate; either way it is not stored twice, and the window is not what
// exactly-once rests on (TestRelayRefusesACopyPastTheDedupeWindow).
//
// Rows are marked published (published_at, the one column the triggers let change) once
// JetStream has acknowledged them, in the background (marks): marking needs the single
// writer, and a relay waiting for it between windows held events back for as long as a
// write batch took. (The SQLite store then commits a mark with the next write batch.)
//
// After any failure the relay backs off and reconciles: it reads the stream back from
// its last message to the oldest row not marked published, marks the rows it finds
// there, republishes the ones missing, and resumes after the stream's last event,
// republishing rows marked published but absent from the stream. Those were acknowledged
// and then lost by JetStream: the embedded server keeps nats-server's default 2-minute
// sync interval (cmd/mfad/nats.go), so a host crash can drop up to the last two minutes
// of acknowledged messages, and this reconcile, which also runs at every start, puts
// them back in order. That is cheaper than fsyncing every publish (sync_interval
// always), and the audit log, written with synchronous=FULL, stays the durable copy.
type Relay struct {
	outbox  Outbox
	js      jetstream.JetStream
	log     *slog.Logger
	cfg     relayConfig
	kick    chan struct{}
	metrics *relayMetrics

	mu  sync.Mutex // one publishing pass at a time: Run and Drain share the position
	pos position   // guarded by mu

	marks marks
}

// marks are the acknowledged rows waiting to be marked published. Run marks them in the
// background (markLoop), so the publishing never waits for the writer; ranges queued
// while a mark runs merge into one UPDATE. Drain marks what is left before it returns.
// A crash before a mark loses nothing: the reconcile at start finds those events in the
// stream and marks them.
type marks struct {
	mu     sync.Mutex
	queue  []markRange // in order
	kick   chan struct{}
	active sync.Mutex // held while marking: one marker at a time
}

type markRange struct{ from, to int64 }

// position is where the relay is in the log and what it expects the stream to hold.
type position struct {
	known bool   // reconciled since the last failure
	next  int64  // seq of the next row to publish
	seq   uint64 // the stream's last sequence: the next publish expects it
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
	metrics    prometheus.Registerer
}

// Outbox is the audit log as the relay reads and marks it.
type Outbox interface {
	// Load returns up to limit records with seq ≥ from, in seq order, with what is
	// published: Seq, EventID, Type, UserID, Body and CreatedAt.
	Load(ctx context.Context, from int64, limit int) ([]Record, error)
	// MarkPublished sets published_at to at on the records from..to that lack it.
	MarkPublished(ctx context.Context, from, to int64, at time.Time) error
	// FirstUnpublished is the seq of the oldest unpublished record, or the one after
	// the last record when every record is published (1 for an empty log).
	FirstUnpublished(ctx context.Context) (int64, error)
	// PublishedFrom counts the records from seq on that are marked published.
	PublishedFrom(ctx context.Context, seq int64) (int, error)
	// EventID is the event id of the record at seq, if there is one.
	EventID(ctx context.Context, seq int64) (string, bool, error)
	// Backlog counts the unpublished records and gives the creation time of the oldest.
	Backlog(ctx context.Context) (int, time.Time, error)
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

// NewRelay returns a relay over the audit log outbox, publishing with js. js should have a publish-async timeout
// (jetstream.WithPublishAsyncTimeout) so abandoned acknowledgements are forgotten; the
// relay itself never waits longer than its ack wait.
func NewRelay(outbox Outbox, js jetstream.JetStream, log *slog.Logger, opts ...RelayOption) *Relay {
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
	if log == nil {
		log = slog.Default()
	}
	r := &Relay{outbox: outbox, js: js, log: log, cfg: cfg, kick: make(chan struct{}, 1)}
	r.marks.kick = make(chan struct{}, 1)
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
	// Reconcile first, even when Run ran before: a relay that lost its lease and got it
	// back does not know what the other relays published meanwhile.
	r.mu.Lock()
	r.pos.known = false
	r.mu.Unlock()
	var marking sync.WaitGroup
	marking.Go(func() { r.markLoop(ctx) })
	defer marking.Wait()
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
			err = r.markQueued(ctx)
		}
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
	n, oldest, err := r.outbox.Backlog(ctx)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("count unpublished audit records: %w", err)
	}
	return n, oldest, nil
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
			return err // the position stays unknown: the next flush reconciles again
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

// queueMark queues the acknowledged rows from..to to be marked published, after every
// range queued before, and wakes markLoop.
func (r *Relay) queueMark(from, to int64) {
	m := &r.marks
	m.mu.Lock()
	if n := len(m.queue); n > 0 && m.queue[n-1].to+1 == from {
		m.queue[n-1].to = to
	} else {
		m.queue = append(m.queue, markRange{from, to})
	}
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// markQueued marks every queued range published, in order. A range that fails stays
// queued, with the ones after it, for the next try.
func (r *Relay) markQueued(ctx context.Context) error {
	m := &r.marks
	m.active.Lock()
	defer m.active.Unlock()
	m.mu.Lock()
	todo := m.queue
	m.queue = nil
	m.mu.Unlock()
	for i, rg := range todo {
		if err := r.markPublished(ctx, rg.from, rg.to); err != nil {
			m.mu.Lock()
			m.queue = append(todo[i:len(todo):len(todo)], m.queue...)
			m.mu.Unlock()
			return err
		}
	}
	return nil
}

// markLoop marks queued ranges until ctx ends; after a failure it waits a little
// before the next try (the next kick, or the interval).
func (r *Relay) markLoop(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.marks.kick:
		case <-retry.C:
		}
		if err := r.markQueued(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("outbox relay cannot mark published events, retrying", "err", err)
			retry.Reset(r.cfg.interval)
		}
	}
}

func (r *Relay) load(ctx context.Context, from int64) ([]Record, error) {
	rows, err := r.outbox.Load(ctx, from, r.cfg.window)
	if err != nil {
		return nil, fmt.Errorf("read audit records from %d: %w", from, err)
	}
	return rows, nil
}

// publish sends one window, waits for its acknowledgements in order, marks the
// acknowledged prefix published and moves the position past it. It returns the first
// failure; the messages after it are abandoned (their expectations make them fail on
// the server, or they are duplicates of what the retry sends).
func (r *Relay) publish(ctx context.Context, rows []Record) error {
	futures := make([]jetstream.PubAckFuture, 0, len(rows))
	var sendErr error
	for i, row := range rows {
		msg := &nats.Msg{
			Subject: activity.EventSubject(row.Type),
			Data:    []byte(row.Body),
			Header:  nats.Header{activity.EventSeqHeader: []string{strconv.FormatInt(row.Seq, 10)}},
		}
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(row.EventID),
			jetstream.WithExpectLastSequence(r.pos.seq+uint64(i)))
		if err != nil {
			sendErr = fmt.Errorf("publish audit record %d: %w", row.Seq, err)
			break
		}
		futures = append(futures, f)
	}

	acked, lastSeq, err := r.await(ctx, rows, futures)
	if err == nil {
		err = sendErr
	}
	if acked > 0 {
		done := rows[:acked]
		r.queueMark(done[0].Seq, done[acked-1].Seq)
		r.pos.next = done[acked-1].Seq + 1
		r.pos.seq = lastSeq
		r.metrics.acked(done, r.cfg.now())
		r.log.Debug("published audit records", "from", done[0].Seq, "to", done[acked-1].Seq)
	}
	return err
}

// await collects the acknowledgements of a window in order and returns how many of the
// first rows JetStream holds and the stream sequence of the last of them. A duplicate
// does not take a new sequence, so the expectations after it fail and the relay
// reconciles: a duplicate is rare enough for that.
func (r *Relay) await(ctx context.Context, rows []Record, futures []jetstream.PubAckFuture) (int, uint64, error) {
	timer := time.NewTimer(r.cfg.ackWait)
	defer timer.Stop()
	last := r.pos.seq
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			last = ack.Sequence
			if ack.Duplicate {
				// The stream knew this event id already. In steady state that only
				// happens to a re-send after a lost acknowledgement; after a purge or a
				// deletion inside the dedupe window it means the stream lacks an event
				// it claims to have, which no publisher can repair until the window
				// passes. Either way it is worth a line.
				r.log.Warn("JetStream reported an audit event as a duplicate",
					"seq", rows[i].Seq, "event_id", rows[i].EventID, "stream_seq", ack.Sequence)
			}
		case err := <-f.Err():
			return i, last, fmt.Errorf("publish audit record %d: %w", rows[i].Seq, err)
		case <-timer.C:
			return i, last, fmt.Errorf("publish audit record %d: no acknowledgement within %s", rows[i].Seq, r.cfg.ackWait)
		case <-ctx.Done():
			return i, last, fmt.Errorf("publish audit record %d: %w", rows[i].Seq, ctx.Err())
		}
	}
	return len(futures), last, nil
}

// markPublished sets published_at on the rows from..to that do not have it. It runs
// even when ctx has just ended (shutdown): JetStream holds these events, and recording
// that saves republishing them.
func (r *Relay) markPublished(ctx context.Context, from, to int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := r.outbox.MarkPublished(ctx, from, to, r.cfg.now()); err != nil {
		return fmt.Errorf("mark audit records %d to %d published: %w", from, to, err)
	}
	return nil
}

// maxTail bounds how far back a reconcile reads the stream: further than any window
// and any plausible backlog of acknowledged-but-unmarked rows.
const maxTail = 100_000

// reconcile finds where the stream ends in the audit log and sets the position after
// it. It reads the stream backwards from its last message down to the oldest row not
// marked published (u), noting which audit events it holds:
//   - rows from u up to the stream's last audit event k that the stream holds are
//     marked published (acknowledged, but the relay stopped before marking them);
//   - rows in that range the stream lacks (a message refused in the middle of a
//     window while a foreign message filled its place) are republished now, after k:
//     out of order, which is logged, but not lost;
//   - publishing resumes at k+1, whatever the marks after it say (rows marked published
//     after k were lost by JetStream);
//   - a stream that never held a message (new or recreated) gets the log from seq 1;
//     one that is empty but held messages once (purged, or aged out by limits an
//     operator set) gets only the rows not marked published, so the whole log is not
//     replayed.
func (r *Relay) reconcile(ctx context.Context) error {
	stream, err := r.js.Stream(ctx, activity.EventsStream)
	if err != nil {
		return fmt.Errorf("reconcile: look up stream %s: %w", activity.EventsStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: stream %s info: %w", activity.EventsStream, err)
	}
	state := info.State
	u, err := r.firstUnpublished(ctx)
	if err != nil {
		return err
	}
	// Walk back: k is the highest audit seq the stream holds, present the rows ≥ u it
	// holds. Events republished out of order after a gap sit after newer ones, so the
	// walk does not stop at the first old event: only after a window's worth of them.
	var (
		k       int64
		present = map[int64]bool{}
		foreign int
		older   int
		behind  []int64 // Mfa-Seq of our events whose row the log does not have
	)
	for s, walked := state.LastSeq, 0; s >= max(state.FirstSeq, 1) && s > 0 && walked < maxTail; s, walked = s-1, walked+1 {
		msg, err := stream.GetMsg(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			return fmt.Errorf("reconcile: read message %d of %s: %w", s, activity.EventsStream, err)
		}
		seq, err := r.auditSeq(ctx, msg)
		if err != nil {
			return err
		}
		if seq == 0 {
			if claimed, _ := strconv.ParseInt(msg.Header.Get(activity.EventSeqHeader), 10, 64); claimed > 0 {
				behind = append(behind, claimed)
			} else {
				foreign++
			}
			continue
		}
		k = max(k, seq)
		if seq < u {
			if older++; older > r.cfg.window {
				break
			}
			continue
		}
		present[seq] = true
	}
	if foreign > 0 {
		r.log.Error("MFA_EVENTS holds messages that are not audit events: only mfad may publish on mfa.events.>",
			"count", foreign)
	}
	if len(behind) > 0 {
		// The stream is ahead of the log: it holds events whose rows the database does
		// not have (a failover to a replica that had not received their commits, or a
		// database restored from an older backup). Their seqs will be given to new
		// records, so the stream will carry two events with one Mfa-Seq; the relay goes
		// on after the stream's end rather than stop publishing. Consumers tell them
		// apart by event id. A synchronous standby prevents this.
		r.log.Error("MFA_EVENTS holds audit events the audit log does not have (commits lost by the database?): publishing after them, their seqs will be reused",
			"count", len(behind), "from_seq", slices.Min(behind), "to_seq", slices.Max(behind))
	}
	var next int64
	switch {
	case k == 0 && state.LastSeq == 0:
		next = 1
	case k == 0:
		// Under MaxAge a quiet spell longer than it ages every event out: expected. The
		// other limits always keep the newest message, so they cannot empty the stream.
		level, why := slog.LevelError, "purged, or events lost"
		if maxAge := info.Config.MaxAge; maxAge > 0 && time.Since(state.LastTime) >= maxAge {
			level, why = slog.LevelInfo, "aged out under its limits"
		}
		r.log.Log(ctx, level, "MFA_EVENTS holds no audit event but held messages before: publishing only unpublished audit records",
			"why", why, "stream_last_seq", state.LastSeq)
		next = u
	default:
		next = k + 1
		// Mark each run of held rows with one UPDATE: after a crash under load the run
		// is thousands of rows, and a statement per row was a commit (an fsync) each.
		var missing []int64
		run := int64(0) // first seq of the current run of held rows, 0 outside one
		for seq := u; seq <= k+1; seq++ {
			if seq <= k && present[seq] {
				if run == 0 {
					run = seq
				}
				continue
			}
			if run != 0 {
				if err := r.markPublished(ctx, run, seq-1); err != nil {
					return err
				}
				run = 0
			}
			if seq <= k {
				missing = append(missing, seq)
			}
		}
		if len(missing) > 0 {
			r.log.Error("audit events missing from the middle of MFA_EVENTS: republishing them after the stream's end, out of order",
				"count", len(missing), "first", missing[0])
			// publish chains on the position's stream sequence; the position becomes
			// known only when the whole reconcile has succeeded (below), so one that
			// fails half way is started again rather than trusted.
			r.pos = position{seq: state.LastSeq}
			for _, seq := range missing {
				rows, err := r.load(ctx, seq)
				if err != nil {
					return err
				}
				if len(rows) == 0 || rows[0].Seq != seq {
					continue
				}
				if err := r.publish(ctx, rows[:1]); err != nil {
					return err
				}
			}
			state.LastSeq = r.pos.seq
		}
	}
	lost, err := r.publishedFrom(ctx, next)
	if err != nil {
		return err
	}
	if lost > 0 {
		r.log.Warn("republishing audit events JetStream acknowledged but no longer holds",
			"count", lost, "from_seq", next, "stream_last_seq", state.LastSeq)
	}
	r.pos = position{known: true, next: next, seq: state.LastSeq}
	r.log.Info("outbox reconciled", "stream_last_seq", state.LastSeq, "audit_seq", k, "next_seq", next)
	return nil
}

// auditSeq is the audit seq of a stream message, 0 when it is not one of our events:
// its Mfa-Seq header must name a row whose event id is its Nats-Msg-Id.
func (r *Relay) auditSeq(ctx context.Context, msg *jetstream.RawStreamMsg) (int64, error) {
	seq, err := strconv.ParseInt(msg.Header.Get(activity.EventSeqHeader), 10, 64)
	if err != nil || seq <= 0 {
		return 0, nil
	}
	id, found, err := r.outbox.EventID(ctx, seq)
	if err != nil {
		return 0, fmt.Errorf("reconcile: find audit record %d: %w", seq, err)
	}
	if !found || id != msg.Header.Get(jetstream.MsgIDHeader) {
		return 0, nil
	}
	return seq, nil
}

// firstUnpublished is the seq of the oldest unpublished row, or the one after the last
// row when every row is published.
func (r *Relay) firstUnpublished(ctx context.Context) (int64, error) {
	seq, err := r.outbox.FirstUnpublished(ctx)
	if err != nil {
		return 0, fmt.Errorf("reconcile: find the first unpublished audit record: %w", err)
	}
	return seq, nil
}

// publishedFrom counts rows from seq on that are marked published: after a reconcile,
// the events JetStream lost.
func (r *Relay) publishedFrom(ctx context.Context, seq int64) (int, error) {
	n, err := r.outbox.PublishedFrom(ctx, seq)
	if err != nil {
		return 0, fmt.Errorf("reconcile: count republished audit records: %w", err)
	}
	return n, nil
}
