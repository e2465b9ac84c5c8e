package activity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	mfa "github.com/mfad/mfad"
)

// ErrUnavailable is returned when no worker answers: none is running, NATS is down, or
// the reply did not come in time. The command may or may not have been applied; a
// client retries with the same Idempotency-Key to find out safely.
var ErrUnavailable = &mfa.Error{Code: mfa.CodeUnavailable, RetryAfter: time.Second}

// Bus sends commands to the workers over NATS request/reply.
type Bus struct {
	nc      *nats.Conn
	timeout time.Duration
	metrics *busMetrics
}

// NewBus returns a Bus that waits at most timeout for each reply.
func NewBus(nc *nats.Conn, timeout time.Duration, opts ...BusOption) *Bus {
	b := &Bus{nc: nc, timeout: timeout}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Send delivers cmd to a worker and returns its reply. A domain outcome comes back as a
// reply with OK false, not as an error; errors are transport faults (ErrUnavailable).
func (b *Bus) Send(ctx context.Context, cmd mfa.Command) (mfa.Reply, error) {
	return b.SendInto(ctx, cmd, nil)
}

// SendInto is Send for a caller that knows the type of the reply's data: it decodes the
// data into data (a pointer) in the same pass as the envelope, and leaves reply.Data
// empty. Decoding the envelope first and the data from its RawMessage after scanned the
// data three times; on a status read that was a fifth of the API node's CPU.
func (b *Bus) SendInto(ctx context.Context, cmd mfa.Command, data any) (mfa.Reply, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return mfa.Reply{}, fmt.Errorf("encode command %s: %w", cmd.Type, err)
	}
	msg := nats.NewMsg(CommandSubject(cmd.Type))
	msg.Data = body
	if cmd.RequestID != "" {
		msg.Header.Set(RequestIDHeader, cmd.RequestID)
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	start := time.Now()
	resp, err := b.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		b.metrics.failed(cmd.Type, err)
		if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return mfa.Reply{}, fmt.Errorf("send %s: %w", cmd.Type, err)
		}
		return mfa.Reply{}, fmt.Errorf("send %s: %v: %w", cmd.Type, err, ErrUnavailable)
	}
	reply, err := decodeReply(resp.Data, data)
	if err != nil {
		b.metrics.failed(cmd.Type, errBadReply)
		return mfa.Reply{}, fmt.Errorf("decode reply to %s: %w", cmd.Type, err)
	}
	b.metrics.done(cmd.Type, start)
	return reply, nil
}

// replyInto is a Reply whose data decodes straight into the value Data points to: the
// shallower Data field takes "data" from the embedded Reply's.
type replyInto struct {
	mfa.Reply
	Data any `json:"data,omitempty"`
}

// decodeReply decodes a worker's reply, its data into data when data is not nil.
func decodeReply(body []byte, data any) (mfa.Reply, error) {
	if data == nil {
		var reply mfa.Reply
		err := json.Unmarshal(body, &reply)
		return reply, err
	}
	if reply, ok := decodeReadReply(body, data); ok {
		return reply, nil
	}
	r := replyInto{Data: data}
	err := json.Unmarshal(body, &r)
	return r.Reply, err
}
