package channels

import (
	"context"
	"fmt"
	"time"

	mfa "github.com/mfad/mfad"
)

// The sweeper deletes what has expired: stored idempotent replies past their window
// (they hold sealed secrets and codes that must not outlive their use), pending setups
// and registrations nobody verified, and one-time codes past their life. Every query
// already ignores expired rows; sweeping keeps the tables from growing for ever.
const (
	sweepInterval = time.Minute
	sweepBatch    = 1000 // rows per table per sweep: the writer's transaction stays short
)

// sweeper runs a sweep through the writer every sweepInterval until ctx ends.
func (w *Worker) sweeper(ctx context.Context) {
	defer w.relays.Done()
	every(ctx, sweepInterval, func() {
		w.enqueueSweep(func(r mfa.Reply) {
			if !r.OK {
				w.log.Warn("sweep failed", "code", r.Code)
			}
		})
	})
}

// enqueueSweep queues a sweep like a command, so it runs between batches of the single
// writer, in order with everything else; respond gets its outcome. It reports false
// when the worker has stopped and nothing was queued.
func (w *Worker) enqueueSweep(respond func(mfa.Reply)) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return false
	}
	cmd := &mfa.Command{ID: mfa.NewID(), Type: "sweep", UserID: "mfad", Actor: "mfad"}
	w.queue <- &job{cmd: cmd, route: route{fn: w.sweep}, respond: respond}
	return true
}

func (w *Worker) sweep(ctx context.Context, tx *dbTx, c *call) (any, error) {
	now := c.now.UnixMilli()
	for _, q := range []struct {
		what, query string
		before      int64
	}{
		{"idempotent replies", `DELETE FROM commands WHERE (user_id, key) IN
			(SELECT user_id, key FROM commands WHERE created_at < ? LIMIT ?)`, c.now.Add(-IdempotencyWindow).UnixMilli()},
		{"pending setups", `DELETE FROM methods WHERE id IN
			(SELECT id FROM methods WHERE verified = 0 AND expires_at < ? LIMIT ?)`, now},
		{"one-time codes", `DELETE FROM pending_codes WHERE method_id IN
			(SELECT method_id FROM pending_codes WHERE expires_at < ? LIMIT ?)`, now},
	} {
		if _, err := tx.ExecContext(ctx, q.query, q.before, sweepBatch); err != nil {
			return nil, fmt.Errorf("sweep %s: %w", q.what, err)
		}
	}
	return nil, nil
}
