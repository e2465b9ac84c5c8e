package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
)

// DeadLetter is the body of a message on mfa.gateway.dead.<channel>: what the gateway
// gave up on and why, for an operator. It never holds the code, which is useless by
// the time anyone reads it and dangerous until then; it does hold the address, which
// is what the operator needs to look into a refused number.
type DeadLetter struct {
	Channel string `json:"channel"`
	Subject string `json:"subject"`
	// Notification is the message's body without its code; null when the body was not
	// a JSON object.
	Notification map[string]json.RawMessage `json:"notification"`
	Reason       string                     `json:"reason"`
	// Attempts is how many times the message was delivered to the gateway.
	Attempts  uint64    `json:"attempts"`
	StreamSeq uint64    `json:"stream_seq"`
	MsgID     string    `json:"msg_id"`
	Queued    time.Time `json:"queued"` // when it entered MFA_NOTIFY
	FailedAt  time.Time `json:"failed_at"`
}

// deadLetterOf builds the dead letter of d.
func deadLetterOf(d *delivery, reason string, now time.Time) DeadLetter {
	dl := DeadLetter{Channel: d.channel, Subject: d.msg.Subject(), Reason: reason, Attempts: d.meta.NumDelivered,
		StreamSeq: d.meta.Sequence.Stream, MsgID: d.id, Queued: d.meta.Timestamp.UTC(), FailedAt: now.UTC()}
	var fields map[string]json.RawMessage
	if json.Unmarshal(d.msg.Data(), &fields) == nil && fields != nil {
		delete(fields, "code")
		dl.Notification = fields
	}
	return dl
}

// giveUp publishes d's dead letter and, once JetStream has stored it, terminates the
// message. If the dead letter cannot be stored, the message is handed back and judged
// again later (after its last attempt it comes straight back here, unsent).
func (g *Gateway) giveUp(d *delivery, reason string) {
	reason = redact(reason, d.note, d.channel)
	body, err := json.Marshal(deadLetterOf(d, reason, g.cfg.Now()))
	if err != nil {
		g.log.Error("encode dead letter", d.attrs("err", err)...)
		return
	}
	msg := nats.NewMsg(fmt.Sprintf(activity.GatewayDeadSubjectT, d.channel))
	msg.Data = body
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The same id on every try: a retry after a lost PubAck is dropped by the stream.
	if _, err := g.js.PublishMsg(ctx, msg, jetstream.WithMsgID("dead-"+d.id)); err != nil {
		delay := g.cfg.RetryDelay(d.meta.NumDelivered)
		g.log.Error("dead letter not stored; the message is handed back", d.attrs("reason", reason, "err", err)...)
		if err := d.msg.NakWithDelay(delay); err != nil {
			g.log.Warn("hand a message back", d.attrs("err", err)...)
		}
		return
	}
	if err := d.msg.TermWithReason(reason); err != nil {
		// Redelivered after AckWait, it is dead-lettered again under the same id.
		g.log.Warn("terminate a dead-lettered message", d.attrs("err", err)...)
	}
	g.metrics.deadLetter(d.channel)
	g.log.Warn("message dead-lettered", d.attrs("reason", reason)...)
}
