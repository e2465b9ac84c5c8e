package sqlite

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// markWait is how long a relay's mark waits for a command batch to carry it before it
// takes the writer for a transaction of its own. Under load a batch commits every few
// milliseconds; an idle writer costs a mark this much delay, which nobody waits for
// (the relay marks in the background).
const markWait = 20 * time.Millisecond

// markQueue holds the relay's marks (published_at on acknowledged audit records) until
// a transaction commits them. A mark in a transaction of its own costs the single
// writer a commit and an fsync; carried by the next command batch it costs one UPDATE
// in a commit that fsyncs anyway. Under delete-device load that took a third of the
// fsyncs away (0.092 to 0.060 per request); throughput did not move measurably on a
// local SSD, but a disk with an IOPS budget pays for every fsync (BENCHMARKS.md,
// 2026-11-30, second session).
type markQueue struct {
	mu   sync.Mutex
	open *markGroup // the marks not yet taken by a transaction; nil when none
}

// markGroup is the marks one transaction commits. done is closed once that
// transaction has ended; err then says whether the marks are in the database.
type markGroup struct {
	ranges []markRange
	done   chan struct{}
	err    error
}

type markRange struct{ from, to, at int64 }

// add queues a mark and returns the group that will carry it.
func (q *markQueue) add(r markRange) *markGroup {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.open == nil {
		q.open = &markGroup{done: make(chan struct{})}
	}
	q.open.ranges = append(q.open.ranges, r)
	return q.open
}

// take hands the queued marks to the caller's transaction; nil when there are none.
func (q *markQueue) take() *markGroup {
	q.mu.Lock()
	defer q.mu.Unlock()
	g := q.open
	q.open = nil
	return g
}

// apply runs g's updates on c, inside the caller's transaction.
func (g *markGroup) apply(ctx context.Context, c *conn) error {
	for _, r := range g.ranges {
		if _, err := c.exec(ctx, qMarkPublished, r.at, r.from, r.to); err != nil {
			return fmt.Errorf("mark audit records %d to %d published: %w", r.from, r.to, err)
		}
	}
	return nil
}

// applyInBatch runs g's updates inside a command batch's transaction, all or none of
// them: a mark that fails is undone to its savepoint and the batch goes on. (An error
// after which SQLite rolls back the whole transaction, a full disk say, fails the
// batch's COMMIT; the batch would not have committed either way.) A nil group, no
// marks queued, does nothing.
func (g *markGroup) applyInBatch(ctx context.Context, c *conn) error {
	if g == nil {
		return nil
	}
	if _, err := c.exec(ctx, "SAVEPOINT marks"); err != nil {
		return fmt.Errorf("savepoint marks: %w", err)
	}
	err := g.apply(ctx, c)
	if err != nil {
		_, _ = c.exec(ctx, "ROLLBACK TO marks")
	}
	if _, rerr := c.exec(ctx, "RELEASE marks"); rerr != nil && err == nil {
		err = fmt.Errorf("release savepoint marks: %w", rerr)
	}
	return err
}

// end records how g's transaction ended and wakes its waiters (none for a nil group).
func (g *markGroup) end(err error) {
	if g == nil {
		return
	}
	g.err = err
	close(g.done)
}

// markPublished queues a mark and returns once it is committed: by a command batch
// (Write takes the queue before its COMMIT) or, when none comes within markWait, by a
// transaction of its own.
func (s *Store) markPublished(ctx context.Context, r markRange) error {
	g := s.marks.add(r)
	t := time.NewTimer(markWait)
	defer t.Stop()
	// ctx is not watched: the group is shared with other marks and may already be in
	// a batch. Past markWait the mark waits for the writer like any write does.
	select {
	case <-g.done:
		return g.err
	case <-t.C:
	}
	s.commitMarks(context.WithoutCancel(ctx))
	// Whichever transaction took g has ended: Write ends its group before it lets
	// go of the writer, and commitMarks held the writer.
	<-g.done
	return g.err
}

// commitMarks commits the queued marks, if any, in a transaction of their own, and
// ends their group with the outcome.
func (s *Store) commitMarks(ctx context.Context) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	g := s.marks.take()
	if g == nil {
		return
	}
	defer s.wrote()
	c := s.writer
	if _, err := c.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		g.end(fmt.Errorf("begin marks: %w", err))
		return
	}
	err := g.apply(ctx, c)
	if err == nil {
		if _, err = c.exec(ctx, "COMMIT"); err != nil {
			err = fmt.Errorf("commit marks: %w", err)
		}
	}
	if err != nil {
		_, _ = c.exec(ctx, "ROLLBACK")
	} else {
		s.markCommits.Add(1)
	}
	g.end(err)
}
