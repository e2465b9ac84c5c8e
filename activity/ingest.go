package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
)

// ReservedKeyPrefix starts the idempotency keys of ingested activities; HTTP clients may
// not use keys that start with it.
const ReservedKeyPrefix = "activity"

// Sender delivers a command to the workers (Bus).
type Sender interface {
	Send(ctx context.Context, cmd mfa.Command) (mfa.Reply, error)
}

// Ingester applies the DruID activities that trusted producers publish on
// mfa.activity.<verb> (stream MFA_ACTIVITIES), through the same parser and the same
// workers as the HTTP dialect. Delivery is at least once; each activity is applied once,
// because its command carries the activity id as idempotency key. Nothing here checks
// who published: NATS account permissions on mfa.activity.> are what protect it.
type Ingester struct {
	// AckWait is how long JetStream waits for an activity's ack before delivering it
	// again (after a crash); it must exceed the command timeout of the Sender.
	AckWait time.Duration
	// RetryDelay is the pause before the next delivery of an activity the workers could
	// not take, by the number of deliveries so far.
	RetryDelay func(attempt uint64) time.Duration

	js          jetstream.JetStream
	send        Sender
	log         *slog.Logger
	maxAttempts int

	mu sync.Mutex
	cc jetstream.ConsumeContext
}

// NewIngester returns an ingester that gives up on an activity the workers could not
// take after maxAttempts deliveries. AckWait and RetryDelay may be changed before Start.
func NewIngester(js jetstream.JetStream, send Sender, log *slog.Logger, maxAttempts int) *Ingester {
	if maxAttempts <= 0 {
		maxAttempts = 10
	}
	return &Ingester{AckWait: 30 * time.Second, RetryDelay: retryDelay,
		js: js, send: send, log: log, maxAttempts: maxAttempts}
}

// Start creates (or updates) the durable consumer and begins consuming.
func (in *Ingester) Start(ctx context.Context) error {
	cons, err := in.js.CreateOrUpdateConsumer(ctx, ActivitiesStream, jetstream.ConsumerConfig{
		Durable:       ActivityConsumer,
		Description:   "mfad: apply DruID activities",
		FilterSubject: ActivitySubjects,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       in.AckWait,
		MaxAckPending: 256,
	})
	if err != nil {
		return fmt.Errorf("create activity consumer: %w", err)
	}
	cc, err := cons.Consume(in.handle)
	if err != nil {
		return fmt.Errorf("consume activities: %w", err)
	}
	in.mu.Lock()
	in.cc = cc
	in.mu.Unlock()
	return nil
}

// Stop stops taking activities and lets the ones being applied finish, until ctx ends.
func (in *Ingester) Stop(ctx context.Context) error {
	in.mu.Lock()
	cc := in.cc
	in.mu.Unlock()
	if cc == nil {
		return nil
	}
	cc.Drain()
	select {
	case <-cc.Closed():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("drain the activity consumer: %w", ctx.Err())
	}
}

// retryDelay backs off between deliveries of an activity the workers could not take.
func retryDelay(attempt uint64) time.Duration {
	d := time.Second << min(attempt, 7) // 2 s … 128 s
	return min(d, 2*time.Minute)
}

func (in *Ingester) handle(msg jetstream.Msg) {
	ctx := context.Background()
	meta, err := msg.Metadata()
	if err != nil {
		in.log.Error("activity without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	verb := strings.TrimPrefix(msg.Subject(), strings.TrimSuffix(ActivitySubjects, ">"))
	if len(msg.Data()) > mfa.MaxRequestBody {
		// The limit of the HTTP dialect, so that a producer cannot do what a client may
		// not; such a body is not parsed at all, not even for its id or actor.
		in.reject(ctx, msg, meta, headerID(msg, meta), "", fmt.Sprintf("invalid activity: body larger than %d bytes", mfa.MaxRequestBody))
		return
	}
	id := activityID(msg, meta)
	a, err := Parse(msg.Data(), verb)
	from := msg.Headers().Get(FromHeader)
	switch {
	case verb != VerbDelete && verb != VerbUpdate && verb != VerbValidate:
		in.reject(ctx, msg, meta, id, lenientActor(msg.Data()), "unknown verb "+strconv.Quote(verb))
		return
	case err != nil:
		in.reject(ctx, msg, meta, id, lenientActor(msg.Data()), "invalid activity: "+err.Error())
		return
	case from == "":
		in.reject(ctx, msg, meta, id, a.ActorID, "invalid activity: header From is required")
		return
	case !ValidEntryPoint(from):
		in.reject(ctx, msg, meta, id, a.ActorID, "invalid activity: header From is not an entry point id")
		return
	}
	cmd, err := a.Command(Origin{UserID: a.ActorID, Actor: a.ActorID, EntryPoint: from,
		Lang: mfa.LangEnglish, RequestID: id, Key: ReservedKeyPrefix + ":" + id})
	if err != nil {
		in.reject(ctx, msg, meta, id, a.ActorID, err.Error())
		return
	}
	reply, err := in.send.Send(ctx, cmd)
	if err != nil {
		in.retry(ctx, msg, meta, id, a.ActorID, err)
		return
	}
	if !reply.OK {
		if transient(reply.Code) {
			// A fault, or a worker on its way out: nothing was applied (the worker rolls
			// a faulted command back), so the activity is tried again like an unanswered one.
			in.retry(ctx, msg, meta, id, a.ActorID, errors.New(strings.ToLower(reply.Code)))
			return
		}
		// A refusal by the rules is final: the activity was processed, with this outcome.
		in.reject(ctx, msg, meta, id, a.ActorID, "refused: "+strings.ToLower(reply.Code))
		return
	}
	if err := msg.Ack(); err != nil {
		in.log.Warn("ack activity", "activity_id", id, "err", err) // redelivery is harmless
	}
}

// transient reports a reply code that says nothing about the activity: a fault of the
// worker, not a refusal by the rules.
func transient(code string) bool {
	return code == mfa.CodeInternal || code == mfa.CodeUnavailable
}

// retry asks for redelivery later, or gives up after maxAttempts.
func (in *Ingester) retry(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, id, actor string, cause error) {
	if meta.NumDelivered >= uint64(in.maxAttempts) {
		in.reject(ctx, msg, meta, id, actor, fmt.Sprintf("undeliverable after %d attempts: %v", meta.NumDelivered, cause))
		return
	}
	in.log.Warn("activity not applied, will retry", "activity_id", id, "attempt", meta.NumDelivered, "err", cause)
	_ = msg.NakWithDelay(in.RetryDelay(meta.NumDelivered))
}

// UnknownActor is the user a rejection is recorded against when the activity names
// none the workers accept.
const UnknownActor = "unknown"

// reject records the refusal as an audit event (mfa.events.activity.rejected) and
// terminates the message, which takes it out of the work-queue stream. A rejection the
// workers cannot take for the moment (none answers, or one faulted) is tried again
// with the activity, past its last attempt: an outage must not lose it, and the
// activity may yet be applied. One the workers refuse would be refused on every
// delivery: it is logged as an error with the activity's id and subject (not its body,
// which may hold an address or a code) and terminated, so that it is not delivered
// forever and does not hold up the activities behind it.
func (in *Ingester) reject(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, id, actor, reason string) {
	if !mfa.ValidUserID(actor) {
		actor = UnknownActor
	}
	in.log.Warn("activity rejected", "activity_id", id, "subject", msg.Subject(), "reason", reason)
	cmd, err := NewCommand(mfa.CmdActivityRejected, Origin{UserID: actor, Actor: actor,
		Lang: mfa.LangEnglish, RequestID: id, Key: ReservedKeyPrefix + "-rejected:" + id},
		mfa.ActivityRejection{ActivityID: id, Subject: msg.Subject(), Reason: reason, Attempts: int(meta.NumDelivered)})
	retryable := false
	if err == nil {
		var reply mfa.Reply
		reply, err = in.send.Send(ctx, cmd)
		retryable = err != nil
		switch {
		case err != nil || reply.OK:
		case reply.Code == mfa.CodeKeyReused:
			// The rejection of an earlier delivery was recorded and its answer lost:
			// this one differs only in its attempt count.
			in.log.Info("activity rejection already recorded", "activity_id", id, "attempt", meta.NumDelivered)
		default:
			err, retryable = errors.New(reply.Code), transient(reply.Code)
		}
	}
	if err == nil {
		_ = msg.Term()
		return
	}
	if retryable {
		in.log.Error("record activity rejection", "activity_id", id, "attempt", meta.NumDelivered, "err", err)
		_ = msg.NakWithDelay(in.RetryDelay(meta.NumDelivered))
		return
	}
	in.log.Error("activity rejected and its rejection refused: dropped unrecorded",
		"activity_id", id, "subject", msg.Subject(), "stream_seq", meta.Sequence.Stream,
		"attempts", meta.NumDelivered, "reason", reason, "err", err)
	_ = msg.Term()
}

// activityID is the activity's id, else the publisher's Nats-Msg-Id, else its place in
// the stream: the same on every redelivery.
func activityID(msg jetstream.Msg, meta *jetstream.MsgMetadata) string {
	var head struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(msg.Data(), &head) == nil {
		if s, ok := head.ID.(string); ok && saneHeader(s) {
			return s
		}
	}
	return headerID(msg, meta)
}

// headerID is the activity id without looking into the body: the publisher's
// Nats-Msg-Id, else the message's place in the stream.
func headerID(msg jetstream.Msg, meta *jetstream.MsgMetadata) string {
	if id := msg.Headers().Get(MsgIDHeader); saneHeader(id) {
		return id
	}
	return fmt.Sprintf("%s-%d", ActivitiesStream, meta.Sequence.Stream)
}

// lenientActor digs the actor id out of an activity that failed validation, so the
// rejection is recorded against the user when possible.
func lenientActor(body []byte) string {
	var head struct {
		Actor struct {
			ID any `json:"id"`
		} `json:"actor"`
	}
	if json.Unmarshal(body, &head) == nil {
		if s, ok := head.Actor.ID.(string); ok && mfa.ValidUserID(s) {
			return s
		}
	}
	return ""
}

func saneHeader(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
