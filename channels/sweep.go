package channels

import (
	"context"
	"log/slog"
	"time"

	mfa "github.com/mfad/mfad"
)

// The sweeper deletes what has expired: stored idempotent replies past their window
// (they hold sealed secrets and codes that must not outlive their use), pending setups
// and registrations nobody verified, one-time codes past their life, and send-limit
// records older than any window. Every query already ignores expired rows; sweeping
// keeps the tables from growing for ever.
const (
	sweepInterval = time.Minute
	sweepBatch    = 1000 // rows per table per sweep: the writer's transaction stays short
	// sendRecordsKept is how long a record of a code sent is kept: longer than any
	// sensible --code-send-window.
	sendRecordsKept = 24 * time.Hour
)

// sweeper queues a sweep through the batcher every interval, so it runs between batches
// in order with everything else. It lives from startSweeper to stop.
type sweeper struct {
	quit chan struct{}
	done chan struct{}
}

func startSweeper(interval time.Duration, enqueue func(respond func(mfa.Reply)) bool, log *slog.Logger) *sweeper {
	s := &sweeper{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-tick.C:
			}
			enqueue(func(r mfa.Reply) {
				if !r.OK {
					log.Warn("sweep failed", "code", r.Code)
				}
			})
		}
	}()
	return s
}

func (s *sweeper) stop() {
	select {
	case <-s.quit:
	default:
		close(s.quit)
	}
	<-s.done
}

func (r *rules) sweep(ctx context.Context, tx Tx, c *call) (any, error) {
	return nil, tx.Sweep(ctx, c.now, c.now.Add(-IdempotencyWindow), c.now.Add(-max(sendRecordsKept, r.cfg.CodeSendWindow)), sweepBatch)
}
