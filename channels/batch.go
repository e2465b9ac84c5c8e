package channels

import (
	"context"
	"errors"
	"log/slog"
	"time"

	mfa "github.com/mfad/mfad"
)

// job is one write command waiting for the batcher.
type job struct {
	cmd     *mfa.Command
	route   route
	respond func(mfa.Reply)
	queued  time.Time // when the worker took it; zero for the sweep, which is no command
}

// outcome is what running a job in a transaction produced.
type outcome struct {
	reply    mfa.Reply
	fault    bool // its writes are to be rolled back
	events   int
	notified int
	counted  counted
}

// errFault marks a unit whose command failed with a fault: the store rolls its writes
// back. The reply, already made, says what the caller learns.
var errFault = errors.New("command failed")

// batcher is the group commit: one goroutine takes the write commands in arrival order
// and hands them to the store in batches, one transaction and one fsync for a batch.
// Replies go out only after the commit, so a reply is never sent for a change that is
// not on disk. It lives from newBatcher to close.
type batcher struct {
	store  Store
	size   int
	wait   time.Duration
	log    *slog.Logger
	begin  func(batch []*job)
	run    func(ctx context.Context, tx Tx, j *job) outcome
	finish func(batch []*job, outs []outcome, start time.Time, committed time.Duration)
	queue  chan *job
	done   chan struct{}
}

func newBatcher(store Store, size int, wait time.Duration, log *slog.Logger,
	begin func([]*job),
	run func(context.Context, Tx, *job) outcome,
	finish func([]*job, []outcome, time.Time, time.Duration)) *batcher {
	b := &batcher{store: store, size: size, wait: wait, log: log, begin: begin, run: run, finish: finish,
		queue: make(chan *job, 4*size), done: make(chan struct{})}
	go b.loop()
	return b
}

// enqueue queues j. The caller makes sure close has not been called.
func (b *batcher) enqueue(j *job) { b.queue <- j }

// queued is the number of commands waiting.
func (b *batcher) queued() int { return len(b.queue) }

// close stops taking commands and returns when the queued ones are answered.
func (b *batcher) close() {
	close(b.queue)
	<-b.done
}

func (b *batcher) loop() {
	defer close(b.done)
	batch := make([]*job, 0, b.size)
	for first := range b.queue {
		start := time.Now()
		batch = b.gather(append(batch[:0], first))
		b.begin(batch)
		began := time.Now()
		outs := b.commit(batch)
		b.finish(batch, outs, start, time.Since(began))
	}
}

// gather adds the commands already queued, up to the batch size, waiting at most the
// batch wait for stragglers once the queue runs dry.
func (b *batcher) gather(batch []*job) []*job {
	var deadline <-chan time.Time
	for len(batch) < b.size {
		select {
		case j, ok := <-b.queue:
			if !ok {
				return batch
			}
			batch = append(batch, j)
			continue
		default:
		}
		if b.wait <= 0 {
			return batch
		}
		if deadline == nil {
			t := time.NewTimer(b.wait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case j, ok := <-b.queue:
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

// commit runs the batch in one store transaction. A command that faults is rolled back
// alone; when the transaction itself fails, every command gets its fault reply and
// nothing it did counts.
func (b *batcher) commit(batch []*job) []outcome {
	outs := make([]outcome, len(batch))
	units := make([]Unit, len(batch))
	for i, j := range batch {
		units[i] = Unit{UserID: j.cmd.UserID, ReadsUser: j.route.readsUser, Run: func(ctx context.Context, tx Tx) error {
			outs[i] = b.run(ctx, tx, j)
			if outs[i].fault {
				return errFault
			}
			return nil
		}}
	}
	// Background: a batch runs to its commit even when the worker is stopping.
	errs := b.store.Write(context.Background(), units)
	for i, err := range errs {
		switch {
		case err == nil, errors.Is(err, errFault):
			// A faulted unit's outcome already carries its reply and nothing to count.
		case errors.Is(err, ErrUnavailable):
			// The database could not take the batch (a failover, a lock held too long):
			// nothing was committed, and the client may retry.
			if i == 0 || errs[i-1] != err {
				b.log.Warn("write transaction failed, answering unavailable", "commands", len(batch), "err", err)
			}
			j := batch[i]
			outs[i] = outcome{reply: unavailableReply(j.cmd.Lang)}
		default:
			if i == 0 || errs[i-1] != err {
				b.log.Error("write transaction failed", "commands", len(batch), "err", err)
			}
			j := batch[i]
			outs[i] = outcome{reply: mfa.ErrorReply(&mfa.Error{Code: j.route.fault()}, j.cmd.Lang)}
		}
	}
	return outs
}
