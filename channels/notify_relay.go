package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mfad/mfad/activity"
)

// notifier publishes the notification outbox to MFA_NOTIFY and deletes what JetStream
// acknowledged. A message may be published twice after a crash between the ack and the
// delete; Nats-Msg-Id lets the stream drop the copy. It lives from startNotifier to
// stop.
type notifier struct {
	store  Store
	sealer *Sealer
	js     jetstream.JetStream
	log    *slog.Logger

	kicks      chan struct{}
	cancel     context.CancelFunc
	done       chan struct{}
	unreadable sync.Map // ids of queued notifications already reported unopenable
}

// notifyBatch is how many notifications one pass publishes before deleting them.
const notifyBatch = 256

func startNotifier(nc *nats.Conn, store Store, sealer *Sealer, log *slog.Logger) (*notifier, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("jetstream for notifications: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{store: store, sealer: sealer, js: js, log: log,
		kicks: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go n.run(ctx)
	return n, nil
}

func (n *notifier) run(ctx context.Context) {
	defer close(n.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := n.flush(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("notification outbox not flushed, will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-n.kicks:
		case <-tick.C:
		}
	}
}

// kick wakes the relay without blocking.
func (n *notifier) kick() {
	select {
	case n.kicks <- struct{}{}:
	default:
	}
}

// stop ends the relay after one last flush: the last commits may have queued
// notifications.
func (n *notifier) stop(ctx context.Context) error {
	n.cancel()
	<-n.done
	return n.flush(ctx)
}

// flush publishes the outbox in batches until it is empty or a publish fails; what was
// acknowledged is deleted either way.
func (n *notifier) flush(ctx context.Context) error {
	var after int64
	for {
		var failed error
		last, err := n.store.RelayNotifications(ctx, after, notifyBatch, func(batch []QueuedNotification) []int64 {
			var sent []int64
			sent, failed = n.publish(ctx, batch)
			return sent
		})
		if err != nil || failed != nil {
			return errors.Join(err, failed)
		}
		if last == after {
			return nil
		}
		after = last
	}
}

// publish sends a batch and returns the ids JetStream acknowledged. A row that does
// not open (its key was removed from the configuration) cannot ever be sent: it is
// skipped, and reported once, so that it does not hold up the ones behind it. It stays
// in the table for an operator.
func (n *notifier) publish(ctx context.Context, batch []QueuedNotification) ([]int64, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	ids := make([]int64, 0, len(batch))
	var failed error
	for _, q := range batch {
		body, err := n.sealer.Open(q.BodySealed, notifyAAD(q.MsgID))
		if err != nil {
			if _, reported := n.unreadable.LoadOrStore(q.ID, true); !reported {
				n.log.Error("queued notification cannot be opened and is skipped", "id", q.ID, "err", err)
			}
			continue
		}
		msg := nats.NewMsg(q.Subject)
		msg.Data = body
		opts := []jetstream.PublishOpt{jetstream.WithMsgID(q.MsgID)}
		if carriesCode(body) {
			opts = append(opts, jetstream.WithMsgTTL(activity.CodeMessageTTL))
		}
		f, err := n.js.PublishMsgAsync(msg, opts...)
		if err != nil {
			failed = err
			break
		}
		futures = append(futures, f)
		ids = append(ids, q.ID)
	}
	var sent []int64
	for i, f := range futures {
		select {
		case <-f.Ok():
			sent = append(sent, ids[i])
		case err := <-f.Err():
			failed = errors.Join(failed, err)
		case <-ctx.Done():
			return sent, ctx.Err()
		}
	}
	if failed != nil {
		failed = fmt.Errorf("publish notifications: %w", failed)
	}
	return sent, failed
}

// carriesCode says whether a notification's body holds a one-time code, which must not
// outlive activity.CodeMessageTTL in MFA_NOTIFY. A body that cannot be read is treated
// as holding one.
func carriesCode(body []byte) bool {
	var n struct {
		Code string `json:"code"`
	}
	return json.Unmarshal(body, &n) != nil || n.Code != ""
}
