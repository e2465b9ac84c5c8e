package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite"
)

// bus is an embedded JetStream server that a test can restart on the same store and
// port, with a client connection that reconnects across restarts.
type bus struct {
	t    testing.TB
	dir  string
	port int
	ns   *server.Server
	nc   *nats.Conn
	js   jetstream.JetStream
}

func newBus(t testing.TB) *bus {
	t.Helper()
	b := &bus{t: t, dir: t.TempDir()}
	b.ns = natstest.ServerAt(t, b.dir, server.RANDOM_PORT)
	b.port = b.ns.Addr().(*net.TCPAddr).Port
	b.nc = natstest.Connect(t, b.ns.ClientURL())
	js, err := jetstream.New(b.nc, jetstream.WithPublishAsyncTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	b.js = js
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := activity.EnsureStreams(ctx, js, activity.StreamOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	return b
}

// stop shuts the server down and waits until the client has noticed, so nothing a
// test sends afterwards can be written to the dead connection.
func (b *bus) stop() {
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
	waitFor(b.t, "the client to see the server gone", func() bool { return b.nc.Status() != nats.CONNECTED })
}

// start starts the server again on the same store and port, and waits until the
// client is back and JetStream answers for the stream.
func (b *bus) start() {
	b.ns = natstest.ServerAt(b.t, b.dir, b.port)
	waitFor(b.t, "the client to reconnect", func() bool { return b.nc.Status() == nats.CONNECTED })
	waitFor(b.t, "JetStream to answer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := b.js.Stream(ctx, activity.EventsStream)
		return err == nil
	})
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *bus) stream() jetstream.Stream {
	b.t.Helper()
	s, err := b.js.Stream(context.Background(), activity.EventsStream)
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// streamed is one message of MFA_EVENTS.
type streamed struct {
	streamSeq uint64
	subject   string
	msgID     string
	auditSeq  string // the Mfa-Seq header; empty on foreign messages
	body      string
}

// messages reads every message the stream holds, in stream order.
func (b *bus) messages() []streamed {
	b.t.Helper()
	ctx := context.Background()
	s := b.stream()
	info, err := s.Info(ctx)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []streamed
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted
		}
		if err != nil {
			b.t.Fatal(err)
		}
		out = append(out, streamed{m.Sequence, m.Subject, m.Header.Get(jetstream.MsgIDHeader),
			m.Header.Get(activity.EventSeqHeader), string(m.Data)})
	}
	return out
}

// ours keeps the audit events among msgs.
func ours(msgs []streamed) []streamed {
	var out []streamed
	for _, m := range msgs {
		if m.auditSeq != "" {
			out = append(out, m)
		}
	}
	return out
}

// checkStream fails unless the audit events in the stream are exactly the audit log's
// rows, once each, in seq order, with the contract's subject, headers and body.
func checkStream(t *testing.T, b *bus, db *sqlite.Store) {
	t.Helper()
	checkStreamOrder(t, b, db, true)
}

// checkStreamOrder is checkStream; with ordered false the events may stand in any
// order (a foreign message inside a window displaces one), but every one must be there
// once.
func checkStreamOrder(t *testing.T, b *bus, db *sqlite.Store, ordered bool) {
	t.Helper()
	rows := auditRows(t, db)
	got := ours(b.messages())
	if !ordered {
		sort.Slice(got, func(i, j int) bool {
			a, _ := strconv.Atoi(got[i].auditSeq)
			b, _ := strconv.Atoi(got[j].auditSeq)
			return a < b
		})
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.msgID] {
			t.Errorf("event %s (seq %s) is in the stream twice", m.msgID, m.auditSeq)
		}
		seen[m.msgID] = true
	}
	if len(got) != len(rows) {
		t.Fatalf("stream holds %d audit events, the log %d rows", len(got), len(rows))
	}
	for i, r := range rows {
		m := got[i]
		if m.msgID != r.EventID || m.auditSeq != strconv.FormatInt(r.Seq, 10) ||
			m.subject != "mfa.events."+r.Type || m.body != r.Body {
			t.Fatalf("stream event %d = {%s seq %s %s}, want row {%s seq %d mfa.events.%s}",
				i, m.msgID, m.auditSeq, m.subject, r.EventID, r.Seq, r.Type)
		}
		if !r.Published {
			t.Fatalf("row %d is in the stream but not marked published", r.Seq)
		}
	}
}

// testLog sends the relay's log to the test's log.
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fastRelay is a relay with small windows and short pauses, so tests cross window
// boundaries and recover quickly.
func fastRelay(t *testing.T, store *sqlite.Store, b *bus, opts ...audit.RelayOption) *audit.Relay {
	opts = append([]audit.RelayOption{audit.WithWindow(64), audit.WithAckWait(2 * time.Second),
		audit.WithInterval(50 * time.Millisecond), audit.WithBackoff(20*time.Millisecond, 200*time.Millisecond)}, opts...)
	return audit.NewRelay(store.Outbox(), b.js, testLog(t), opts...)
}

// run starts r.Run and returns a function that stops it and waits.
func run(t *testing.T, r *audit.Relay) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// waitPublished waits until the relay has no backlog and the stream holds want audit
// events.
func waitPublished(t *testing.T, r *audit.Relay, b *bus, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := r.Backlog(context.Background())
		if err == nil && n == 0 && len(ours(b.messages())) >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not published in time: backlog %d (%v), stream holds %d of %d", n, err, len(ours(b.messages())), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func drain(t *testing.T, r *audit.Relay) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestRelayPublishesEveryRecordOnceInOrder(t *testing.T) {
	store, b := openStore(t), newBus(t)
	db := store
	appendN(t, db, 150, "alice") // before the relay starts: the start publishes them
	r := fastRelay(t, db, b)
	stop := run(t, r)
	waitPublished(t, r, b, 150)
	for range 3 { // more after start, several per transaction, woken by Kick
		evs := make([]mfa.Event, 40)
		for i := range evs {
			evs[i] = newEvent(i, "bob", time.Now())
		}
		appendEvents(t, db, evs...)
		r.Kick()
	}
	waitPublished(t, r, b, 270)
	stop()
	checkStream(t, b, db)

	// A restarted relay, and a second one over the same log, publish nothing again.
	for range 2 {
		drain(t, fastRelay(t, db, b))
	}
	checkStream(t, b, db)
	if got := len(b.messages()); got != 270 {
		t.Fatalf("stream holds %d messages, want 270", got)
	}
}

// TestRelayKeepsOrderAcrossNATSRestart restarts the embedded server while 1,000 events
// are appended: afterwards the stream and the log agree, once each, in order.
func TestRelayKeepsOrderAcrossNATSRestart(t *testing.T) {
	store, b := openStore(t), newBus(t)
	db := store
	r := fastRelay(t, db, b)
	run(t, r)

	const total = 1000
	// NATS goes away twice, after a quarter and after half of the appends. The appender
	// waits at each mark until the server is down, so appends always happen during the
	// outage, however fast the disk.
	type mark struct{ reached, down chan struct{} }
	marks := map[int]mark{}
	for _, at := range []int{total / 4, total / 2} {
		marks[at] = mark{make(chan struct{}), make(chan struct{})}
	}
	done := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for i := range total {
			ev := newEvent(i, fmt.Sprint("user-", i%7), time.Now())
			errs := db.Write(ctx, []channels.Unit{{Run: func(ctx context.Context, tx channels.Tx) error {
				return tx.Append(ctx, ev)
			}}})
			if errs[0] != nil {
				done <- errs[0]
				return
			}
			r.Kick()
			if m, ok := marks[i]; ok {
				close(m.reached)
				<-m.down
			}
		}
		done <- nil
	}()
	for _, at := range []int{total / 4, total / 2} {
		<-marks[at].reached
		b.stop()
		close(marks[at].down)
		time.Sleep(300 * time.Millisecond) // appends go on while NATS is away
		b.start()
		t.Logf("NATS back after %d of %d appends (down at %d)", len(auditRows(t, db)), total, at+1)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitPublished(t, r, b, total)
	checkStream(t, b, db)
	if n := len(b.messages()); n != total {
		t.Fatalf("stream holds %d messages, the log %d rows", n, total)
	}
}

// TestRelayRepublishesEventsJetStreamLost simulates a host crash that loses the tail
// of the stream after JetStream acknowledged it: the last messages are deleted and the
// server restarts, so its dedupe memory is rebuilt without them. The next relay start
// puts them back, in order, before anything newer.
func TestRelayRepublishesEventsJetStreamLost(t *testing.T) {
	store, b := openStore(t), newBus(t)
	db := store
	ctx := context.Background()
	// MFA_EVENTS refuses message deletes (activity.StreamConfigs); the loss is simulated
	// with deletes, so this test runs on a stream made without that lock.
	unlocked := activity.StreamConfigs(1)[0]
	unlocked.DenyDelete, unlocked.DenyPurge = false, false
	if err := b.js.DeleteStream(ctx, activity.EventsStream); err != nil {
		t.Fatal(err)
	}
	if _, err := b.js.CreateStream(ctx, unlocked); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 50, "alice")
	drain(t, fastRelay(t, db, b))
	checkStream(t, b, db)

	s := b.stream()
	for seq := uint64(41); seq <= 50; seq++ {
		if err := s.DeleteMsg(ctx, seq); err != nil {
			t.Fatal(err)
		}
	}
	b.stop()
	b.start()
	if got := len(b.messages()); got != 40 {
		t.Fatalf("after the simulated loss the stream holds %d, want 40", got)
	}
	appendN(t, db, 5, "alice") // and newer events the crash never saw

	r := fastRelay(t, db, b)
	drain(t, r)
	checkStream(t, b, db)
	if n, _ := r.Backlog(ctx); n != 0 {
		t.Fatalf("backlog %d", n)
	}
}

// TestRelayRepublishesIntoARecreatedStream: a stream deleted and created again (a new
// NATS cluster, an operator's mistake) gets the whole log again, in order, from a
// relay that is already running.
func TestRelayRepublishesIntoARecreatedStream(t *testing.T) {
	store, b := openStore(t), newBus(t)
	db := store
	r := fastRelay(t, db, b)
	run(t, r)
	appendN(t, db, 30, "alice")
	r.Kick()
	waitPublished(t, r, b, 30)

	ctx := context.Background()
	if err := b.js.DeleteStream(ctx, activity.EventsStream); err != nil {
		t.Fatal(err)
	}
	if err := activity.EnsureStreams(ctx, b.js, activity.StreamOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 1, "alice")
	r.Kick() // its publish fails (the stream forgot its predecessor); the reconcile repairs
	waitPublished(t, r, b, 31)
	checkStream(t, b, db)
}

// TestRelayIsNotWedgedByAForeignMessage: something else published into MFA_EVENTS. The
// relay logs it and goes on after it, for a running relay and for one that starts with
// the foreign message last.
func TestRelayIsNotWedgedByAForeignMessage(t *testing.T) {
	store, b := openStore(t), newBus(t)
	db := store
	r := fastRelay(t, db, b)
	stop := run(t, r)
	appendN(t, db, 10, "alice")
	r.Kick()
	waitPublished(t, r, b, 10)

	ctx := context.Background()
	if _, err := b.js.Publish(ctx, "mfa.events.foreign.note", []byte(`{"hello":1}`),
		jetstream.WithMsgID("not-an-audit-event")); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 10, "alice")
	r.Kick()
	waitPublished(t, r, b, 20)
	stop()
	// The foreign message took the place the next event expected: that event is refused
	// and republished after the window, out of order (logged as an error), not lost.

	// Now a foreign message without any id, and a relay starting after it.
	if _, err := b.js.Publish(ctx, "mfa.events.foreign.note", []byte(`{"hello":2}`)); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 5, "alice")
	r2 := fastRelay(t, db, b)
	drain(t, r2)
	checkStreamOrder(t, b, db, false)
	all := b.messages()
	if len(all) != 27 || all[10].auditSeq != "" || all[21].auditSeq != "" {
		t.Fatalf("foreign messages not where they were published: %d messages", len(all))
	}
}

func TestDrainPublishesTheBacklog(t *testing.T) {
	store, b := openStore(t), newBus(t)
	db := store
	appendN(t, db, 100, "alice")
	r := fastRelay(t, db, b)
	drain(t, r)
	checkStream(t, b, db)

	// With NATS gone, Drain gives up when its context ends and says what is left.
	b.stop()
	appendN(t, db, 3, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := r.Drain(ctx)
	if err == nil || !strings.Contains(err.Error(), "3 events left unpublished") {
		t.Fatalf("Drain without NATS = %v", err)
	}
	b.start()
	drain(t, r)
	checkStream(t, b, db)
}

func TestReadyReportsBacklogAndAStuckRelay(t *testing.T) {
	store, b := openStore(t), newBus(t)
	db := store
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx := context.Background()

	appendN(t, db, 10, "alice")
	small := fastRelay(t, db, b, audit.WithReadiness(5, time.Minute), audit.WithClock(clock))
	if err := small.Ready(ctx); err == nil || !strings.Contains(err.Error(), "backlog is 10") {
		t.Fatalf("Ready over the backlog limit = %v", err)
	}
	r := fastRelay(t, db, b, audit.WithClock(clock))
	if err := r.Ready(ctx); err != nil {
		t.Fatalf("Ready with a fresh backlog = %v", err)
	}
	advance(2 * time.Minute)
	if err := r.Ready(ctx); err == nil || !strings.Contains(err.Error(), "while NATS is connected") {
		t.Fatalf("Ready with a stale backlog and NATS up = %v", err)
	}
	// NATS down: that is the nats check's to report, not the outbox's.
	b.stop()
	if err := r.Ready(ctx); err != nil {
		t.Fatalf("Ready with NATS down = %v", err)
	}
	b.start()
	drain(t, r)
	if err := r.Ready(ctx); err != nil {
		t.Fatalf("Ready after draining = %v", err)
	}
}

// BenchmarkRelayDrain measures the relay end to end: one op is one audit row read,
// published with its expectations, acknowledged and marked published, over loopback
// TCP to an embedded server with a file store.
func BenchmarkRelayDrain(b *testing.B) {
	for _, window := range []int{1, 64, audit.DefaultWindow} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			store, bs := openStore(b), newBus(b)
			db := store
			for done := 0; done < b.N; {
				n := min(500, b.N-done)
				evs := make([]mfa.Event, n)
				for i := range evs {
					evs[i] = newEvent(done+i, "alice", time.Now())
				}
				appendEvents(b, db, evs...)
				done += n
			}
			r := audit.NewRelay(store.Outbox(), bs.js, slog.New(slog.DiscardHandler), audit.WithWindow(window))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			b.ReportAllocs()
			b.ResetTimer()
			if err := r.Drain(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n, _ := r.Backlog(ctx); n != 0 {
				b.Fatalf("backlog %d", n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestRelayRecoversFromAStreamAheadOfTheLog: after a failover to a database that lost
// the last commits (asynchronous replication), MFA_EVENTS holds events the new log
// does not have, and the new log gives their seqs to new records. The relay must not
// wedge: it says what happened and publishes the new records after the stream's end,
// each once, and marks them published.
func TestRelayRecoversFromAStreamAheadOfTheLog(t *testing.T) {
	b := newBus(t)
	old := openStore(t)
	evs := make([]mfa.Event, 10)
	for i := range evs {
		evs[i] = newEvent(i, "alice", time.Now())
		appendEvents(t, old, evs[i])
	}
	r := fastRelay(t, old, b)
	stop := run(t, r)
	waitPublished(t, r, b, 10)
	stop()

	// The promoted replica had received only the first 7 commits: the same records
	// (the chain is deterministic), then new ones at seqs 8–12.
	replica := openStore(t)
	for _, ev := range evs[:7] {
		appendEvents(t, replica, ev)
	}
	appendN(t, replica, 5, "bob")
	var logged strings.Builder
	r = audit.NewRelay(replica.Outbox(), b.js, slog.New(slog.NewTextHandler(&logged, nil)),
		audit.WithWindow(64), audit.WithAckWait(2*time.Second), audit.WithInterval(50*time.Millisecond),
		audit.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	stop = run(t, r)
	waitPublished(t, r, b, 15)
	stop()

	got := ours(b.messages())
	var seqs []string
	for _, m := range got {
		seqs = append(seqs, m.auditSeq)
	}
	if strings.Join(seqs, ",") != "1,2,3,4,5,6,7,8,9,10,8,9,10,11,12" {
		t.Fatalf("stream Mfa-Seqs %v, want the old 1–10 then the new 8–12", seqs)
	}
	rows := auditRows(t, replica)
	for i, r := range rows {
		m := got[i]
		if i >= 7 {
			m = got[i+3]
		}
		if m.msgID != r.EventID || !r.Published {
			t.Fatalf("row %d (%s, published %v) streamed as %s", r.Seq, r.EventID, r.Published, m.msgID)
		}
	}
	if !strings.Contains(logged.String(), "audit events the audit log does not have") ||
		!strings.Contains(logged.String(), "from_seq=8 to_seq=10") {
		t.Fatalf("the relay did not say the stream was ahead of the log:\n%s", logged.String())
	}
}

// stalledMarks is an outbox whose marks wait until released: the writer busy with
// other work, as it is under load.
type stalledMarks struct {
	audit.Outbox
	release chan struct{}
	waiting chan struct{}
}

func (o stalledMarks) MarkPublished(ctx context.Context, from, to int64, at time.Time) error {
	select {
	case o.waiting <- struct{}{}:
	default:
	}
	<-o.release
	return o.Outbox.MarkPublished(ctx, from, to, at)
}

// TestRelayPublishesWhileAMarkWaits: marking rows published takes the single writer,
// and the relay does not wait for it: events committed while a mark waits reach the
// stream at once, and the marks follow when the writer is free.
func TestRelayPublishesWhileAMarkWaits(t *testing.T) {
	store, b := openStore(t), newBus(t)
	outbox := stalledMarks{store.Outbox(), make(chan struct{}), make(chan struct{}, 1)}
	r := audit.NewRelay(outbox, b.js, testLog(t), audit.WithWindow(64), audit.WithAckWait(2*time.Second),
		audit.WithInterval(50*time.Millisecond), audit.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	appendN(t, store, 10, "alice")
	run(t, r)
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(outbox.release) }) }
	t.Cleanup(release) // before the relay stops, which waits for its marks
	waitFor(t, "the first events in the stream", func() bool { return len(ours(b.messages())) == 10 })
	<-outbox.waiting // their mark waits for the writer
	appendN(t, store, 100, "bob")
	r.Kick()
	waitFor(t, "the events committed during the mark in the stream", func() bool { return len(ours(b.messages())) == 110 })
	if n, err := r.Backlog(context.Background()); err != nil || n != 110 {
		t.Fatalf("backlog %d (%v) while the marks wait, want 110", n, err)
	}
	release()
	waitPublished(t, r, b, 110)
	checkStream(t, b, store)
}

// shortDedupeWindow sets MFA_EVENTS' dedupe window to the server's minimum, so a
// copy sent a moment later is past it and only the relay's own checks stop it.
func shortDedupeWindow(t *testing.T, b *bus) {
	t.Helper()
	ctx := context.Background()
	info, err := b.stream().Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := b.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * cfg.Duplicates)
}

// publishAsRelay puts row in the stream the way the relay does (its subject, Mfa-Seq
// and Nats-Msg-Id), expecting the stream's last sequence to be last.
func publishAsRelay(t *testing.T, b *bus, row auditRow, last uint64) {
	t.Helper()
	msg := &nats.Msg{Subject: activity.EventSubject(row.Type), Data: []byte(row.Body),
		Header: nats.Header{activity.EventSeqHeader: []string{strconv.FormatInt(row.Seq, 10)}}}
	if _, err := b.js.PublishMsg(context.Background(), msg, jetstream.WithMsgID(row.EventID),
		jetstream.WithExpectLastSequence(last)); err != nil {
		t.Fatal(err)
	}
}

// TestRelayRefusesACopyPastTheDedupeWindow: a copy of the relay's next event reaches
// the stream behind its back (a deposed relay's, or one whose acknowledgement was
// lost) and the relay then publishes that row itself, past the dedupe window. The
// expected last sequence refuses the second copy, and the reconcile that follows finds
// the first: exactly-once does not rest on the window (activity.StreamConfigs).
func TestRelayRefusesACopyPastTheDedupeWindow(t *testing.T) {
	db, b := openStore(t), newBus(t)
	shortDedupeWindow(t, b)
	appendN(t, db, 10, "alice")
	r := fastRelay(t, db, b, audit.WithInterval(time.Hour))
	drain(t, r)
	appendN(t, db, 1, "alice")
	publishAsRelay(t, b, auditRows(t, db)[10], 10)
	time.Sleep(300 * time.Millisecond)
	drain(t, r)
	checkStream(t, b, db)
}

// loadFailsOnce is an outbox whose Load fails the first time it is asked for at.
type loadFailsOnce struct {
	audit.Outbox
	at     int64
	failed atomic.Bool
}

func (o *loadFailsOnce) Load(ctx context.Context, from int64, limit int) ([]audit.Record, error) {
	if from == o.at && o.failed.CompareAndSwap(false, true) {
		return nil, errors.New("database gone for a moment")
	}
	return o.Outbox.Load(ctx, from, limit)
}

// TestRelayRetriesAFailedReconcileFromTheStart: the stream lacks an event in its
// middle, and the reconcile that republishes it fails on the database. The next
// attempt must reconcile again rather than go on from a position the failed one left
// half set, which republished the whole log past the dedupe window.
func TestRelayRetriesAFailedReconcileFromTheStart(t *testing.T) {
	db, b := openStore(t), newBus(t)
	shortDedupeWindow(t, b)
	appendN(t, db, 10, "alice")
	var last uint64
	for _, row := range auditRows(t, db) {
		if row.Seq == 5 {
			continue
		}
		publishAsRelay(t, b, row, last)
		last++
	}
	time.Sleep(300 * time.Millisecond)
	outbox := &loadFailsOnce{Outbox: db.Outbox(), at: 5}
	r := audit.NewRelay(outbox, b.js, testLog(t), audit.WithWindow(64), audit.WithAckWait(2*time.Second),
		audit.WithInterval(time.Hour), audit.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	drain(t, r)
	if !outbox.failed.Load() {
		t.Fatal("the reconcile never loaded the missing row")
	}
	checkStreamOrder(t, b, db, false)
}

// TestRelayStartsQuietlyAfterEventsAgedOut: with a limit on MFA_EVENTS, a quiet spell
// longer than its age leaves the stream empty, every event published long ago. A relay
// starting then publishes only what is unpublished, republishes nothing, and says so
// at Info: the state is expected. Without limits the same state is an error (purged).
func TestRelayStartsQuietlyAfterEventsAgedOut(t *testing.T) {
	store, b := openStore(t), newBus(t)
	db := store
	ctx := context.Background()
	maxAge := 2 * time.Second
	if err := activity.EnsureStreams(ctx, b.js, activity.StreamOptions{Replicas: 1, EventsMaxAge: &maxAge}); err != nil {
		t.Fatal(err)
	}
	appendN(t, db, 5, "alice")
	drain(t, fastRelay(t, db, b))
	waitFor(t, "the events to age out", func() bool { return len(b.messages()) == 0 })
	appendN(t, db, 3, "alice")

	var logged strings.Builder
	r := audit.NewRelay(store.Outbox(), b.js, slog.New(slog.NewTextHandler(&logged, nil)),
		audit.WithWindow(64), audit.WithAckWait(2*time.Second), audit.WithInterval(50*time.Millisecond),
		audit.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	drain(t, r)
	var seqs []string
	for _, m := range ours(b.messages()) {
		seqs = append(seqs, m.auditSeq)
	}
	if strings.Join(seqs, ",") != "6,7,8" {
		t.Fatalf("stream Mfa-Seqs %v after the start, want 6,7,8", seqs)
	}
	if out := logged.String(); !strings.Contains(out, `level=INFO msg="MFA_EVENTS holds no audit event`) ||
		!strings.Contains(out, "aged out under its limits") || strings.Contains(out, "level=ERROR") {
		t.Fatalf("the relay's log:\n%s", out)
	}
}
