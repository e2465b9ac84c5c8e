package channels

import (
	"context"
	"fmt"
	"time"

	mfa "github.com/mfad/mfad"
)

// writeLoop is the single writer. It takes the write commands in arrival order and runs
// them in batches: one transaction, one savepoint per command, one COMMIT (one fsync)
// for the batch. Replies go out only after the commit, so a reply is never sent for a
// change that is not on disk. With BatchSize 1 every command commits on its own.
func (w *Worker) writeLoop() {
	defer w.running.Done()
	batch := make([]*job, 0, w.cfg.BatchSize)
	for first := range w.queue {
		start := time.Now()
		batch = append(batch[:0], first)
		batch = w.gather(batch)
		began := time.Now()
		replies, c := w.commitBatch(batch)
		committed := time.Since(began)
		// Metrics first: a client that has its reply may already be reading them.
		w.metrics.batch(len(batch), committed, &c.tallies)
		for i, j := range batch {
			w.metrics.command(j.cmd.Type, replies[i], start)
		}
		for i, j := range batch {
			j.respond(replies[i])
		}
		if c.events > 0 {
			w.cfg.AfterCommit()
		}
		if c.notified > 0 {
			w.kickNotifier()
		}
	}
}

// gather adds the commands already queued, up to BatchSize, waiting at most BatchWait
// for stragglers once the queue runs dry.
func (w *Worker) gather(batch []*job) []*job {
	var deadline <-chan time.Time
	for len(batch) < w.cfg.BatchSize {
		select {
		case j, ok := <-w.queue:
			if !ok {
				return batch
			}
			batch = append(batch, j)
			continue
		default:
		}
		if w.cfg.BatchWait <= 0 {
			return batch
		}
		if deadline == nil {
			t := time.NewTimer(w.cfg.BatchWait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case j, ok := <-w.queue:
			if !ok {
				return batch
			}
			batch = append(batch, j)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// totals counts what a batch produced, to wake the relays.
type totals struct {
	events, notified int
	tallies          tallies // what the metrics count
}

// commitBatch runs the batch in one transaction. A command that fails with a fault is
// rolled back to its savepoint and the others go on; if the transaction itself cannot
// begin or commit, every command in it fails and nothing is applied.
func (w *Worker) commitBatch(batch []*job) ([]mfa.Reply, totals) {
	// A batch, once begun, runs to its commit: the worker's context ends only after the
	// writer has stopped. Without a Done channel go-sqlite3 also runs each statement on
	// this goroutine instead of a new one that watches for cancellation.
	ctx := context.WithoutCancel(w.ctx)
	replies := make([]mfa.Reply, len(batch))
	var sum totals
	fail := func(err error) ([]mfa.Reply, totals) {
		w.log.Error("write transaction failed", "commands", len(batch), "err", err)
		for i, j := range batch {
			replies[i] = mfa.ErrorReply(&mfa.Error{Code: faultCode(j.route)}, j.cmd.Lang)
		}
		return replies, totals{}
	}
	raw, err := w.store.write.BeginTx(ctx, nil)
	if err != nil {
		return fail(fmt.Errorf("begin: %w", err))
	}
	defer func() {
		// Roll back first (a no-op after a commit): preparing needs the single writer
		// connection, which an open transaction would hold for ever.
		_ = raw.Rollback()
		w.writeStmts.prepareMissing(ctx)
	}()
	tx := &dbTx{Tx: raw, stmts: w.writeStmts}
	for i, j := range batch {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT command"); err != nil {
			return fail(fmt.Errorf("savepoint: %w", err))
		}
		c := &call{cmd: j.cmd, now: w.cfg.Now()}
		reply, keep := w.apply(ctx, tx, c, j.route)
		if !keep {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO command"); err != nil {
				return fail(fmt.Errorf("rollback to savepoint: %w", err))
			}
			tx.forgetChainHead()
			c.events, c.notified, c.counted = 0, 0, counted{}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE command"); err != nil {
			return fail(fmt.Errorf("release savepoint: %w", err))
		}
		replies[i] = reply
		sum.events += c.events
		sum.notified += c.notified
		sum.tallies.add(c.counted)
	}
	if err := tx.Commit(); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	return replies, sum
}

func faultCode(rt route) string {
	if rt.faultCode != "" {
		return rt.faultCode
	}
	return mfa.CodeInternal
}

// apply runs one command inside its savepoint and reports whether its writes are kept.
// A command with an idempotency key that was seen before gets the stored reply and
// changes nothing.
func (w *Worker) apply(ctx context.Context, tx *dbTx, c *call, rt route) (mfa.Reply, bool) {
	if c.cmd.Key != "" {
		stored, found, err := w.storedReply(ctx, tx, c)
		if err != nil {
			return w.reply(c, rt, nil, err), false
		}
		if found {
			stored.Replayed = true
			return stored, true
		}
	}
	data, err := rt.fn(ctx, tx, c)
	reply := w.reply(c, rt, data, err)
	if err != nil && mfa.AsError(err) == nil {
		return reply, false
	}
	if c.cmd.Key != "" {
		if err := w.storeReply(ctx, tx, c, reply); err != nil {
			return w.reply(c, rt, nil, err), false
		}
	}
	return reply, true
}
