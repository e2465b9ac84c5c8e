package activity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// Activity ingest against a real JetStream and a real worker on SQLite: what a trusted
// producer publishes on mfa.activity.<verb> is applied exactly once.

// ingestRig is one embedded NATS server, the worker store, and a producer connection.
type ingestRig struct {
	t      *testing.T
	url    string
	js     jetstream.JetStream // the producer's
	store  *sqlite.Store
	sealer *channels.Sealer
	worker *channels.Worker
	log    *slog.Logger // the ingester's; quiet when nil
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newIngestRig(t *testing.T) *ingestRig {
	t.Helper()
	ns := natstest.Server(t)
	r := &ingestRig{t: t, url: ns.ClientURL()}
	r.js = natstest.JetStream(t, natstest.Connect(t, r.url))
	r.store = sqlitetest.Open(t, "")
	var err error
	if r.sealer, err = channels.NewSealer(bytes.Repeat([]byte{9}, channels.KeySize)); err != nil {
		t.Fatal(err)
	}
	return r
}

// startWorker puts a real worker on the bus.
func (r *ingestRig) startWorker() {
	r.t.Helper()
	w, err := channels.NewWorker(channels.Config{Logger: quietLog()}, r.store, r.sealer)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := w.Start(natstest.Connect(r.t, r.url)); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { w.Stop(context.Background()) })
	r.worker = w
}

// bus is a real command bus on a connection of its own.
func (r *ingestRig) bus() *activity.Bus {
	return activity.NewBus(natstest.Connect(r.t, r.url), 2*time.Second)
}

// ingester starts an ingester sending through send, on connection nc (a new one when
// nil), with a short AckWait and RetryDelay so redeliveries come within the test.
func (r *ingestRig) ingester(nc *nats.Conn, send activity.Sender, maxAttempts int) *activity.Ingester {
	r.t.Helper()
	if nc == nil {
		nc = natstest.Connect(r.t, r.url)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		r.t.Fatal(err)
	}
	log := r.log
	if log == nil {
		log = quietLog()
	}
	in := activity.NewIngester(js, send, log, maxAttempts)
	in.AckWait = time.Second
	in.RetryDelay = func(uint64) time.Duration { return 20 * time.Millisecond }
	if err := in.Start(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	return in
}

// publish puts an activity on mfa.activity.<verb> as a producer does.
func (r *ingestRig) publish(verb, body, msgID, from string) *jetstream.PubAck {
	r.t.Helper()
	msg := nats.NewMsg(fmt.Sprintf(activity.ActivitySubjectT, verb))
	msg.Data = []byte(body)
	if from != "" {
		msg.Header.Set(activity.FromHeader, from)
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ack, err := r.js.PublishMsg(context.Background(), msg, opts...)
	if err != nil {
		r.t.Fatalf("publish %s: %v", verb, err)
	}
	return ack
}

// drained waits until every activity published was acknowledged or terminated: the
// work queue stream is empty and the consumer has nothing outstanding.
func (r *ingestRig) drained() {
	r.t.Helper()
	waitUntil(r.t, "the activity stream to drain", func() bool {
		ctx := context.Background()
		st, err := r.js.Stream(ctx, activity.ActivitiesStream)
		if err != nil {
			return false
		}
		c, err := st.Consumer(ctx, activity.ActivityConsumer)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && st.CachedInfo().State.Msgs == 0 && ci.NumAckPending == 0 && ci.NumPending == 0
	})
}

// auditRecord is one audit_log row, its AS2 body decoded.
type auditRecord struct {
	Type, User string
	Body       map[string]any
}

func (r *ingestRig) audit(typ string) []auditRecord {
	r.t.Helper()
	rows, err := sqlitetest.DB(r.t, r.store).Query("SELECT type, user_id, body FROM audit_log WHERE ? = '' OR type = ? ORDER BY seq", typ, typ)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRecord
	for rows.Next() {
		var (
			rec  auditRecord
			body string
		)
		if err := rows.Scan(&rec.Type, &rec.User, &body); err != nil {
			r.t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(body), &rec.Body); err != nil {
			r.t.Fatalf("audit body: %v", err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		r.t.Fatal(err)
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sent is one command an ingester sent and what came back.
type sent struct {
	cmd   mfa.Command
	reply mfa.Reply
	err   error
}

// hookSender is a test hook around the real Bus: it records every command the
// ingester sends, and runs after (when set) once the real Send has returned, before
// the ingester sees the answer. drop, when it says so, loses a command in transit.
type hookSender struct {
	next   activity.Sender
	after  func(sent)
	drop   func(mfa.Command) bool
	refuse func(mfa.Command) string // a code to answer instead of sending, or ""
	lose   func(mfa.Command) bool   // send, then lose the answer

	mu   sync.Mutex
	sent []sent
}

func (h *hookSender) Send(ctx context.Context, cmd mfa.Command) (mfa.Reply, error) {
	var s sent
	var code string
	if h.refuse != nil {
		code = h.refuse(cmd)
	}
	switch {
	case h.drop != nil && h.drop(cmd):
		s = sent{cmd: cmd, err: fmt.Errorf("send %s: lost in transit: %w", cmd.Type, activity.ErrUnavailable)}
	case code != "":
		s = sent{cmd: cmd, reply: mfa.Reply{Code: code, Message: "refused by the test"}}
	case h.lose != nil && h.lose(cmd):
		reply, err := h.next.Send(ctx, cmd)
		if err == nil && reply.OK {
			err = fmt.Errorf("send %s: answer lost in transit: %w", cmd.Type, activity.ErrUnavailable)
		}
		s = sent{cmd: cmd, err: err}
	default:
		reply, err := h.next.Send(ctx, cmd)
		s = sent{cmd: cmd, reply: reply, err: err}
	}
	h.mu.Lock()
	h.sent = append(h.sent, s)
	h.mu.Unlock()
	if h.after != nil {
		h.after(s)
	}
	return s.reply, s.err
}

// of is what was sent of one command type.
func (h *hookSender) of(typ string) []sent {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []sent
	for _, s := range h.sent {
		if s.cmd.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

// registerSMS is a DruID update registering alice's phone, with an optional id.
func registerSMS(id string) string {
	if id == "" {
		return activityJSON(activity.VerbUpdate)
	}
	return activityJSON(activity.VerbUpdate, "id", id)
}

// TestIngestDuplicatePublishAppliedOnce: the same activity published twice with one
// Nats-Msg-Id is stored once by JetStream and applied once.
func TestIngestDuplicatePublishAppliedOnce(t *testing.T) {
	r := newIngestRig(t)
	r.startWorker()
	h := &hookSender{next: r.bus()}
	r.ingester(nil, h, 3)

	if ack := r.publish(activity.VerbUpdate, registerSMS(""), "act-1", "bank-web"); ack.Duplicate {
		t.Fatal("the first publish is a duplicate")
	}
	if ack := r.publish(activity.VerbUpdate, registerSMS(""), "act-1", "bank-web"); !ack.Duplicate {
		t.Fatal("JetStream took the same Nats-Msg-Id twice")
	}
	r.drained()
	if n := len(h.of(mfa.CmdChannelRegister)); n != 1 {
		t.Fatalf("%d channel.register commands sent, want 1", n)
	}
	if n := len(r.audit(mfa.EventChannelRegistered)); n != 1 {
		t.Fatalf("%d channel.registered records, want 1", n)
	}
	if n := len(r.audit(mfa.EventChannelCodeSent)); n != 1 {
		t.Fatalf("%d codes sent, want 1", n)
	}
	rec := r.audit(mfa.EventChannelRegistered)[0]
	if rec.User != "alice" || member(rec.Body, "generator", "id") != "bank-web" || member(rec.Body, "instrument", "name") != "pc" {
		t.Fatalf("the activity's user, entry point or source is lost: %+v", rec)
	}
}

// TestIngestActivityIDAppliedOnce: an activity with an id published twice under two
// Nats-Msg-Ids (a producer retrying after a lost ack, past any dedupe window) reaches
// the worker twice and is applied once, because the activity id is the command's
// idempotency key.
func TestIngestActivityIDAppliedOnce(t *testing.T) {
	r := newIngestRig(t)
	r.startWorker()
	h := &hookSender{next: r.bus()}
	r.ingester(nil, h, 3)

	r.publish(activity.VerbUpdate, registerSMS("urn:uuid:0b0e"), "try-1", "bank-web")
	r.publish(activity.VerbUpdate, registerSMS("urn:uuid:0b0e"), "try-2", "bank-web")
	r.drained()
	cmds := h.of(mfa.CmdChannelRegister)
	if len(cmds) != 2 {
		t.Fatalf("%d channel.register commands sent, want 2", len(cmds))
	}
	if cmds[0].reply.Replayed || !cmds[1].reply.Replayed || !cmds[1].reply.OK {
		t.Fatalf("second delivery was not answered from the stored reply: %+v / %+v", cmds[0].reply, cmds[1].reply)
	}
	if cmds[0].cmd.Key != cmds[1].cmd.Key || cmds[0].cmd.Key == "" {
		t.Fatalf("keys %q and %q", cmds[0].cmd.Key, cmds[1].cmd.Key)
	}
	if n := len(r.audit(mfa.EventChannelRegistered)); n != 1 {
		t.Fatalf("%d channel.registered records, want 1", n)
	}

	// Without a body id, the Nats-Msg-Id is the activity id: two of them are two
	// activities (here a second registration, which replaces the first).
	r.publish(activity.VerbUpdate, registerSMS(""), "other-1", "bank-web")
	r.publish(activity.VerbUpdate, registerSMS(""), "other-2", "bank-web")
	r.drained()
	if n := len(r.audit(mfa.EventChannelRegistered)); n != 3 {
		t.Fatalf("%d channel.registered records, want 3", n)
	}
}

// TestIngestRejects: an activity that cannot be applied is terminated at once (no
// retries) and recorded as activity.rejected with the reason, against its user when
// the body names one.
func TestIngestRejects(t *testing.T) {
	r := newIngestRig(t)
	r.startWorker()
	h := &hookSender{next: r.bus()}
	r.ingester(nil, h, 3)

	tests := []struct {
		name, verb, body, from string
		user, reason           string
	}{
		{"field error", activity.VerbDelete, activityJSON(activity.VerbDelete, "actor.objectType", "user"), "bank-web",
			"alice", "actor.objectType (enum)"},
		{"wrong JSON type", activity.VerbDelete, activityJSON(activity.VerbDelete, "context.mfa_channel", 1), "bank-web",
			"alice", "context.mfa_channel (type)"},
		{"not JSON", activity.VerbDelete, `{"actor":`, "bank-web", "unknown", "body (syntax)"},
		{"actor id not a string", activity.VerbDelete, activityJSON(activity.VerbDelete, "actor.id", 7), "bank-web",
			"unknown", "actor.id (type)"},
		{"verb of another subject", activity.VerbValidate, activityJSON(activity.VerbDelete), "bank-web",
			"alice", "verb (mismatch)"},
		{"unknown verb", "remove", activityJSON(activity.VerbDelete), "bank-web", "alice", `unknown verb "remove"`},
		{"no From", activity.VerbDelete, activityJSON(activity.VerbDelete), "", "alice", "header From is required"},
		{"From not an entry point id", activity.VerbDelete, activityJSON(activity.VerbDelete), "bank web", "alice",
			"header From is not an entry point id"},
		{"From too long", activity.VerbDelete, activityJSON(activity.VerbDelete), strings.Repeat("e", 129), "alice",
			"header From is not an entry point id"},
		{"refused by the rules", activity.VerbDelete, activityJSON(activity.VerbDelete), "bank-web",
			"alice", "refused: mfa_channel_not_found"},
		// An actor id the workers' user-id rule refuses is the activity's fault, found by
		// the parser: the rejection goes to the unknown actor, which the workers take.
		{"actor id with a bidi override", activity.VerbDelete, activityJSON(activity.VerbDelete, "actor.id", "ing-\u202ebob"),
			"bank-web", activity.UnknownActor, "actor.id (format)"},
		{"actor id with a control character", activity.VerbDelete, activityJSON(activity.VerbDelete, "actor.id", "ing-\u0007bob"),
			"bank-web", activity.UnknownActor, "actor.id (format)"},
		{"larger than an HTTP body may be", activity.VerbDelete,
			activityJSON(activity.VerbDelete, "summary", strings.Repeat("x", mfa.MaxRequestBody)), "bank-web",
			activity.UnknownActor, "body larger than 65536 bytes"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("reject-%d", i)
			r.publish(tc.verb, tc.body, id, tc.from)
			r.drained()
			var rec *auditRecord
			for _, a := range r.audit(mfa.EventActivityRejected) {
				if member(a.Body, "object", "id") == id {
					rec = &a
				}
			}
			if rec == nil {
				t.Fatalf("no activity.rejected record for %s", id)
			}
			reason, _ := rec.Body["mfa:reason"].(string)
			if rec.User != tc.user || !strings.Contains(reason, tc.reason) || rec.Body["mfa:attempts"] != float64(1) ||
				rec.Body["mfa:subject"] != fmt.Sprintf(activity.ActivitySubjectT, tc.verb) {
				t.Fatalf("rejection %+v, want user %s and a reason with %q after 1 attempt", rec, tc.user, tc.reason)
			}
		})
	}
	if n := len(r.audit("")) - len(r.audit(mfa.EventActivityRejected)); n != 0 {
		t.Fatalf("rejected activities changed something: %d other records", n)
	}
	// Each was refused at its first delivery: one rejection each, no retries.
	if n := len(h.of(mfa.CmdActivityRejected)); n != len(tests) {
		t.Fatalf("%d rejections sent for %d activities", n, len(tests))
	}
}

// TestIngestCrashBetweenApplyAndAck: the ingester dies after the worker applied an
// activity and before its ack reached JetStream. The activity is delivered again to
// the next ingester, which finds it applied and changes nothing twice.
func TestIngestCrashBetweenApplyAndAck(t *testing.T) {
	r := newIngestRig(t)
	r.startWorker()

	doomed := natstest.Connect(t, r.url)
	applied := make(chan struct{})
	var once sync.Once
	first := &hookSender{next: r.bus(), after: func(s sent) {
		if s.cmd.Type == mfa.CmdChannelRegister && s.err == nil && s.reply.OK {
			// The process dies here: its connection, and so the ack, are gone.
			doomed.Close()
			once.Do(func() { close(applied) })
		}
	}}
	r.ingester(doomed, first, 3)
	r.publish(activity.VerbUpdate, registerSMS(""), "crash-1", "bank-web")
	select {
	case <-applied:
	case <-time.After(10 * time.Second):
		t.Fatal("the activity was never applied")
	}
	if n := len(r.audit(mfa.EventChannelRegistered)); n != 1 {
		t.Fatalf("%d channel.registered records after the first delivery, want 1", n)
	}

	second := &hookSender{next: r.bus()}
	r.ingester(nil, second, 3)
	r.drained()
	again := second.of(mfa.CmdChannelRegister)
	if len(again) != 1 || !again[0].reply.OK || !again[0].reply.Replayed {
		t.Fatalf("redelivery: %+v, want one command answered from the stored reply", again)
	}
	if again[0].cmd.Key != first.of(mfa.CmdChannelRegister)[0].cmd.Key {
		t.Fatal("the redelivered activity got another idempotency key")
	}
	for _, typ := range []string{mfa.EventChannelRegistered, mfa.EventChannelCodeSent} {
		if n := len(r.audit(typ)); n != 1 {
			t.Fatalf("%d %s records after the redelivery, want 1", n, typ)
		}
	}
}

// TestIngestGivesUpOnUndeliverable: an activity whose command never gets an answer is
// tried maxAttempts times, then rejected as undeliverable and terminated.
func TestIngestGivesUpOnUndeliverable(t *testing.T) {
	r := newIngestRig(t)
	r.startWorker()
	h := &hookSender{next: r.bus(), drop: func(cmd mfa.Command) bool { return cmd.Type == mfa.CmdChannelRegister }}
	r.ingester(nil, h, 3)

	r.publish(activity.VerbUpdate, registerSMS(""), "poison-1", "bank-web")
	r.drained()
	if n := len(h.of(mfa.CmdChannelRegister)); n != 3 {
		t.Fatalf("%d attempts, want 3", n)
	}
	recs := r.audit(mfa.EventActivityRejected)
	if len(recs) != 1 {
		t.Fatalf("%d activity.rejected records, want 1", len(recs))
	}
	reason, _ := recs[0].Body["mfa:reason"].(string)
	if !strings.HasPrefix(reason, "undeliverable after 3 attempts") || recs[0].Body["mfa:attempts"] != float64(3) ||
		member(recs[0].Body, "object", "id") != "poison-1" || recs[0].User != "alice" {
		t.Fatalf("rejection %+v", recs[0])
	}
	if n := len(r.audit(mfa.EventChannelRegistered)); n != 0 {
		t.Fatalf("an undeliverable activity was applied")
	}
}

// TestIngestRejectionRefused: a rejection the workers refuse to record (they would
// refuse it on every delivery) is not tried again: the activity is terminated, so more
// of them than the consumer may hold unacknowledged (256) do not stop the activities
// behind them. (One they cannot take for the moment is kept:
// TestIngestOutlivesAWorkerOutage.)
func TestIngestRejectionRefused(t *testing.T) {
	r := newIngestRig(t)
	r.startWorker()
	h := &hookSender{next: r.bus(), refuse: func(cmd mfa.Command) string {
		if cmd.Type == mfa.CmdActivityRejected {
			return mfa.CodeValidation
		}
		return ""
	}}
	r.ingester(nil, h, 3)

	const poison = 260
	for i := range poison {
		r.publish(activity.VerbDelete, activityJSON(activity.VerbDelete, "actor.objectType", "user"),
			fmt.Sprintf("poison-%d", i), "bank-web")
	}
	r.publish(activity.VerbUpdate, registerSMS(""), "after-the-poison", "bank-web")
	r.drained()
	if n := len(r.audit(mfa.EventChannelRegistered)); n != 1 {
		t.Fatalf("the activity after the poison: %d channel.registered records, want 1", n)
	}
	if n := len(h.of(mfa.CmdActivityRejected)); n != poison {
		t.Fatalf("%d rejections tried for %d poison activities, want one each", n, poison)
	}
	if n := len(r.audit(mfa.EventActivityRejected)); n != 0 {
		t.Fatalf("%d rejections recorded, want none", n)
	}
}

// TestIngestRejectionAnswerLost: a rejection recorded whose answer was lost is sent
// again with the next delivery, which differs in its attempt count; the workers refuse
// that as a reused key, and the ingester takes it for what it is, recorded: one
// record, the activity terminated.
func TestIngestRejectionAnswerLost(t *testing.T) {
	r := newIngestRig(t)
	r.startWorker()
	lost := 0
	h := &hookSender{next: r.bus(), lose: func(cmd mfa.Command) bool {
		if cmd.Type == mfa.CmdActivityRejected && lost == 0 {
			lost++
			return true
		}
		return false
	}}
	var logged syncBuffer
	r.log = slog.New(slog.NewTextHandler(&logged, nil))
	r.ingester(nil, h, 3)
	r.publish(activity.VerbDelete, activityJSON(activity.VerbDelete, "actor.objectType", "user"), "lost-answer", "bank-web")
	r.drained()
	if out := logged.String(); strings.Contains(out, "rejection refused") || !strings.Contains(out, "activity rejection already recorded") {
		t.Fatalf("the second rejection was not taken for recorded:\n%s", out)
	}
	if n := len(h.of(mfa.CmdActivityRejected)); n != 2 {
		t.Fatalf("%d rejections sent, want 2 (the second after the lost answer)", n)
	}
	recs := r.audit(mfa.EventActivityRejected)
	if len(recs) != 1 || recs[0].Body["mfa:attempts"] != float64(1) {
		t.Fatalf("rejection records %+v, want the first one alone", recs)
	}
}

// TestIngestRetriesAWorkerFault: a worker that fails on the activity (here its store
// refuses the write) answers INTERNAL_ERROR; that is no verdict on the activity, which is
// delivered again and applied once the fault is gone.
func TestIngestRetriesAWorkerFault(t *testing.T) {
	r := newIngestRig(t)
	r.startWorker()
	db := sqlitetest.DB(t, r.store)
	if _, err := db.Exec(`CREATE TRIGGER broken_disk BEFORE INSERT ON methods
		BEGIN SELECT RAISE(ABORT, 'disk trouble'); END`); err != nil {
		t.Fatal(err)
	}
	faulted, repaired := make(chan struct{}), make(chan struct{})
	faults := 0
	h := &hookSender{next: r.bus(), after: func(s sent) {
		if s.cmd.Type == mfa.CmdChannelRegister && s.reply.Code == mfa.CodeInternal {
			if faults++; faults == 2 {
				close(faulted)
				select {
				case <-repaired:
				case <-time.After(10 * time.Second):
				}
			}
		}
	}}
	r.ingester(nil, h, 5)
	r.publish(activity.VerbUpdate, registerSMS(""), "fault-1", "bank-web")
	select {
	case <-faulted:
	case <-time.After(10 * time.Second):
		t.Fatal("the fault was not met twice")
	}
	if _, err := db.Exec("DROP TRIGGER broken_disk"); err != nil {
		t.Fatal(err)
	}
	close(repaired)
	r.drained()
	if n := len(r.audit(mfa.EventActivityRejected)); n != 0 {
		t.Fatalf("a worker fault was recorded as a rejection of the activity: %+v", r.audit(mfa.EventActivityRejected))
	}
	if n := len(r.audit(mfa.EventChannelRegistered)); n != 1 {
		t.Fatalf("%d channel.registered records, want 1", n)
	}
	if n := len(h.of(mfa.CmdChannelRegister)); n != 3 {
		t.Fatalf("%d deliveries, want 2 faulted and 1 applied", n)
	}
}

// TestIngestOutlivesAWorkerOutage: with no worker at all, not even the rejection can be
// recorded, so the activity is kept (delivered again and again, past maxAttempts)
// rather than lost; once a worker is back it is applied, once.
func TestIngestOutlivesAWorkerOutage(t *testing.T) {
	r := newIngestRig(t)
	// The worker comes back between two deliveries, after the ingester tried to give up
	// a second time: the moment is the hook's, so the test does not race the redelivery.
	gaveUp, resume := make(chan struct{}), make(chan struct{})
	attempts := 0
	h := &hookSender{next: r.bus(), after: func(s sent) {
		if s.cmd.Type != mfa.CmdActivityRejected {
			return
		}
		if attempts++; attempts == 2 {
			close(gaveUp)
			select {
			case <-resume:
			case <-time.After(10 * time.Second):
			}
		}
	}}
	r.ingester(nil, h, 2)
	r.publish(activity.VerbUpdate, registerSMS(""), "outage-1", "bank-web")

	select {
	case <-gaveUp:
	case <-time.After(10 * time.Second):
		t.Fatal("the ingester did not try to give up twice")
	}
	if n := len(h.of(mfa.CmdChannelRegister)); n != 3 {
		t.Fatalf("%d deliveries before the worker came back, want 3", n)
	}
	for _, s := range append(h.of(mfa.CmdChannelRegister), h.of(mfa.CmdActivityRejected)...) {
		if !errors.Is(s.err, activity.ErrUnavailable) {
			t.Fatalf("with no worker, %s got %+v / %v", s.cmd.Type, s.reply, s.err)
		}
	}
	r.startWorker()
	close(resume)
	r.drained()
	if n := len(r.audit(mfa.EventChannelRegistered)); n != 1 {
		t.Fatalf("%d channel.registered records, want 1", n)
	}
	if n := len(r.audit(mfa.EventActivityRejected)); n != 0 {
		t.Fatalf("an applied activity was also recorded as rejected")
	}
}

// member walks a decoded JSON value: member(v, "object", "id").
func member(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// syncBuffer is a bytes.Buffer for a logger written from the consumer's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
