package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// Write runs units in one transaction on the single writer: one savepoint per unit (a
// unit that fails is rolled back to it and the others go on), then the batch's audit
// records, then one COMMIT, one fsync, for all of them.
//
// The records are linked into the chain at the end of the batch: the head is read
// once, and a unit rolled back to its savepoint never took a seq.
//
// A batch, once begun, runs to its commit whatever ctx does. Without a Done channel
// go-sqlite3 also runs each statement on this goroutine instead of a new one that
// watches for cancellation (worth 20% of the writer's throughput).
func (s *Store) Write(ctx context.Context, units []channels.Unit) []error {
	ctx = context.WithoutCancel(ctx)
	errs := make([]error, len(units))
	s.wmu.Lock()
	defer s.wmu.Unlock()
	defer s.wrote()
	fail := func(err error) []error {
		_, _ = s.writer.exec(ctx, "ROLLBACK") // a no-op error when nothing is open
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	w := s.writer
	if _, err := w.exec(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fail(fmt.Errorf("begin: %w", err))
	}
	t := &tx{conn: w}
	var kept int // events of the units run so far that are kept
	for i, u := range units {
		if _, err := w.exec(ctx, "SAVEPOINT unit"); err != nil {
			return fail(fmt.Errorf("savepoint: %w", err))
		}
		if err := u.Run(ctx, t); err != nil {
			errs[i] = err
			if _, err := w.exec(ctx, "ROLLBACK TO unit"); err != nil {
				return fail(fmt.Errorf("rollback to savepoint: %w", err))
			}
			t.pending = t.pending[:kept]
		}
		if _, err := w.exec(ctx, "RELEASE unit"); err != nil {
			return fail(fmt.Errorf("release savepoint: %w", err))
		}
		kept = len(t.pending)
	}
	if err := s.appendPending(ctx, t); err != nil {
		return fail(err)
	}
	// The relay's queued marks ride on this commit. A mark that fails is reported
	// to its relay, which retries it, and the batch goes on (applyInBatch). The
	// marks' waiters are woken before the writer is let go (markPublished relies on
	// it).
	marks := s.marks.take()
	merr := marks.applyInBatch(ctx, w)
	if _, err := w.exec(ctx, "COMMIT"); err != nil {
		err = fmt.Errorf("commit: %w", err)
		marks.end(err)
		return fail(err)
	}
	marks.end(merr)
	return errs
}

// withWriter runs fn on the writer connection, between batches.
func (s *Store) withWriter(ctx context.Context, fn func(c *conn) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	defer s.wrote()
	return fn(s.writer)
}

// appendPending links the batch's events after the chain head and inserts them.
func (s *Store) appendPending(ctx context.Context, t *tx) error {
	if len(t.pending) == 0 {
		return nil
	}
	var (
		seq  int64
		prev = audit.Genesis
	)
	err := t.queryRow(ctx, qChainHead).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read audit chain head: %w", err)
	}
	for _, ev := range t.pending {
		r, err := s.chain.Next(ev, seq+1, prev)
		if err != nil {
			return err
		}
		_, err = t.exec(ctx, qAppendAudit, r.Seq, r.EventID, r.Type, r.UserID, r.Actor, r.EntryPoint, r.Source,
			r.Body, r.KeyID, r.PrevHash, r.Hash, r.CreatedAt)
		if err != nil {
			return fmt.Errorf("append audit record %s: %w", ev.Type, err)
		}
		seq, prev = r.Seq, r.Hash
	}
	t.pending = t.pending[:0]
	return nil
}

// Read runs fn in a read transaction of the read pool.
func (s *Store) Read(ctx context.Context, fn func(ctx context.Context, tx channels.Tx) error) error {
	// Not cancellable, for the reason Write gives; reads are short.
	ctx = context.WithoutCancel(ctx)
	return s.readers.with(ctx, func(c *conn) error {
		if _, err := c.exec(ctx, "BEGIN"); err != nil {
			return fmt.Errorf("begin read: %w", err)
		}
		err := fn(ctx, &tx{conn: c})
		if _, rerr := c.exec(ctx, "ROLLBACK"); rerr != nil && err == nil {
			err = fmt.Errorf("end read: %w", rerr)
		}
		return err
	})
}

// wrote records the end of a write transaction, for the checkpointer's idle check.
func (s *Store) wrote() { s.lastWrite.Store(time.Now().UnixNano()) }
