package activity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FeedTail is how many of the latest events a new viewer of the feed gets before the
// live ones: enough to fill a screen, so the dashboard never opens empty.
const FeedTail = 50

// feedInactive is how long the server keeps a viewer's consumer after its client
// vanished without deleting it (a crash of the API node): the consumers hold no state
// worth keeping, so they go soon.
const feedInactive = 30 * time.Second

// FeedEvent is one message of MFA_EVENTS as a live viewer sees it.
type FeedEvent struct {
	Seq  uint64 // stream sequence: the viewer's resume point
	Type string // the mfa:event type, from the subject
	Body []byte // the Activity Streams 2.0 activity, as published
}

// Feed reads MFA_EVENTS for live viewers (the dashboard). Each viewer gets an ordered
// consumer of its own: ephemeral, in memory, unacknowledged, recreated by the client
// library from the last delivered sequence after a gap or a reconnect. Viewers hold no
// durable state on the server, so any API node can serve any reconnect.
type Feed struct {
	js  jetstream.JetStream
	log *slog.Logger
	// closed ends every viewer at once (Close).
	closed context.Context
	close  context.CancelFunc
}

// NewFeed returns a feed reading with js.
func NewFeed(js jetstream.JetStream, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.Default()
	}
	closed, cancel := context.WithCancel(context.Background())
	return &Feed{js: js, log: log, closed: closed, close: cancel}
}

// Close ends every viewer's events and refuses new ones. An HTTP server's graceful
// shutdown waits for open responses to finish, and a live feed never does by itself:
// the server calls Close when it starts shutting down (http.Server.RegisterOnShutdown).
func (f *Feed) Close() { f.close() }

// Events delivers MFA_EVENTS in stream order until ctx ends, starting right after
// stream sequence after, or with the last FeedTail events when after is 0. An after
// beyond the end of the stream cannot come from this stream's history (the stream was
// recreated since the viewer saw it), so it is treated as 0 rather than leaving the
// viewer waiting for sequences that will mean other events. The channel is closed when
// ctx ends, Close is called or the consumer fails for good; its consumer is deleted
// then.
func (f *Feed) Events(ctx context.Context, after uint64) (<-chan FeedEvent, error) {
	if f.closed.Err() != nil {
		return nil, errors.New("feed: closed")
	}
	// Close ends this viewer the way its own context would.
	ctx, cancel := context.WithCancel(ctx)
	unlink := context.AfterFunc(f.closed, cancel)
	release := func() { unlink(); cancel() }

	stream, err := f.js.Stream(ctx, EventsStream)
	if err != nil {
		release()
		return nil, fmt.Errorf("feed: look up stream %s: %w", EventsStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		release()
		return nil, fmt.Errorf("feed: stream %s info: %w", EventsStream, err)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{EventSubjects},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: feedInactive,
	}
	if start := feedStart(after, info.State.LastSeq); start > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = start
	}
	cons, err := stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		release()
		return nil, fmt.Errorf("feed: ordered consumer on %s: %w", EventsStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		f.remove(cons)
		release()
		return nil, fmt.Errorf("feed: read %s: %w", EventsStream, err)
	}
	// Next blocks until a message arrives; stopping the iterator is what unblocks it
	// when the viewer leaves.
	stop := context.AfterFunc(ctx, it.Stop)
	out := make(chan FeedEvent)
	go func() {
		defer close(out)
		defer release()
		defer f.remove(cons)
		defer stop()
		defer it.Stop()
		for {
			msg, err := it.Next()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					f.log.Warn("event feed stopped", "err", err)
				}
				return
			}
			meta, err := msg.Metadata()
			if err != nil {
				f.log.Warn("event feed: message without metadata", "subject", msg.Subject(), "err", err)
				continue
			}
			ev := FeedEvent{
				Seq:  meta.Sequence.Stream,
				Type: strings.TrimPrefix(msg.Subject(), strings.TrimSuffix(EventSubjects, ">")),
				Body: msg.Data(),
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// feedStart is the first stream sequence to deliver: right after after, or the start
// of the tail; 1 or less means the whole stream. An after past the stream's end comes
// from another stream (one created anew after its data was lost, say): the client
// gets the tail, as on a first connection, rather than nothing until the new stream
// reaches its old number.
func feedStart(after, lastSeq uint64) uint64 {
	if after > 0 && after <= lastSeq {
		return after + 1
	}
	if lastSeq <= FeedTail {
		return 1
	}
	return lastSeq - FeedTail + 1
}

// remove deletes the viewer's consumer at once instead of leaving it to the inactivity
// threshold: a dashboard that reconnects every few minutes would otherwise leave a
// trail of idle consumers on the server.
func (f *Feed) remove(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := f.js.DeleteConsumer(ctx, EventsStream, info.Name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		f.log.Debug("event feed: delete consumer", "consumer", info.Name, "err", err)
	}
}
