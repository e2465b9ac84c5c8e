package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// maxRetries is how often a batch that PostgreSQL aborted on its own (a deadlock, a
// serialization failure) is run again before its units are answered unavailable.
const maxRetries = 3

// Write runs units in one transaction:
//
//  1. the users' advisory locks, sorted (qBeginWrite): one global order, so batches of
//     different workers never deadlock, and each user's rules see the previous
//     holder's commit in every statement;
//  2. the units' rules, in order;
//  3. the chain head, locked last (qLockHead); the batch's records linked after it
//     in Go, inserted in one multi-row statement that also moves the head;
//  4. COMMIT, which releases everything.
//
// The head is held only for steps 3 and 4, whatever the batch size, which is what lets
// several workers commit thousands of commands a second into one gap-free chain.
//
// No savepoints: a transaction with more than 64 subtransactions overflows PostgreSQL's
// per-backend cache and slows every backend (and every standby) down. When a unit
// fails, the batch is rolled back and run again without it, so a failing unit keeps
// none of its writes and the others keep theirs; Run is called again for them.
func (s *Store) Write(ctx context.Context, units []channels.Unit) []error {
	// A batch, once begun, runs to its commit whatever ctx does (the batcher's replies
	// wait on it); WriteTimeout bounds it instead.
	ctx = context.WithoutCancel(ctx)
	errs := make([]error, len(units))
	dropped := make([]bool, len(units))
	retries := 0
	speculate := true
	for {
		live := make([]int, 0, len(units))
		for i := range units {
			if !dropped[i] {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			return errs
		}
		bad, err := s.attempt(ctx, units, live, speculate)
		switch {
		case err == nil:
			return errs
		case bad >= 0:
			errs[bad], dropped[bad] = err, true
		case errors.Is(err, errMispredicted) && speculate:
			s.mispredicted.Add(1)
			speculate = false
		case retryable(err) && retries < maxRetries:
			retries++
		default:
			err = wrapUnavailable(err)
			for _, i := range live {
				errs[i] = err
			}
			return errs
		}
	}
}

// attempt runs the live units in one transaction and commits it. When a unit fails it
// returns the unit's index and error (nothing is committed); bad is -1 when the
// transaction failed as a whole, or committed (err nil).
func (s *Store) attempt(ctx context.Context, units []channels.Unit, live []int, speculate bool) (bad int, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return -1, fmt.Errorf("connect: %w", err)
	}
	// Released with its transaction open after a failure, the pool closes the
	// connection instead of reusing it; ROLLBACK first keeps it when it still works.
	committed := false
	defer func() {
		if !committed {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_, _ = conn.Exec(rctx, "ROLLBACK")
			cancel()
		}
		conn.Release()
	}()
	// BEGIN, the locks and the sign-ins' reads in one round trip (pipelined). The
	// reads run after the locks are granted, so they see every commit before them.
	begin := &pgx.Batch{}
	begin.Queue("BEGIN")
	begin.Queue(qBeginWrite, seconds(s.opts.LockTimeout), seconds(s.opts.IdleInTransaction),
		seconds(s.opts.StatementTimeout), userLocks(units, live))
	readers := usersRead(units, live)
	if len(readers) > 0 {
		begin.Queue(qPrefetchUsers, readers)
	}
	t := &tx{raw: conn, speculate: speculate}
	if err := t.begin(ctx, conn.SendBatch(ctx, begin), len(readers) > 0); err != nil {
		return -1, fmt.Errorf("begin and lock users: %w", err)
	}
	for _, i := range live {
		t.startUnit(units[i].UserID)
		runErr := units[i].Run(ctx, t)
		if t.failed != nil && (unavailable(t.failed) || errors.Is(t.failed, errMispredicted)) { // retryable failures included
			// The database's failure (or a wrong prediction), not the unit's: the whole
			// batch goes.
			return -1, t.failed
		}
		if runErr != nil {
			return i, runErr
		}
		if t.failed != nil {
			// The unit went on after a statement failed; the transaction is aborted.
			return i, t.failed
		}
	}
	held, err := s.commit(ctx, conn, t)
	if err != nil {
		return -1, err
	}
	committed = true
	if !held.IsZero() {
		s.headBatches.Add(1)
		s.headHeldNS.Add(int64(time.Since(held)))
	}
	return -1, nil
}

// userLocks are the advisory lock keys of the live units' users, sorted, once each.
// A 64-bit hash of the id: two users sharing a key only wait for each other.
func userLocks(units []channels.Unit, live []int) []int64 {
	keys := make([]int64, 0, len(live))
	for _, i := range live {
		if id := units[i].UserID; id != "" {
			h := fnv.New64a()
			h.Write([]byte(id))
			keys = append(keys, int64(h.Sum64()))
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// usersRead are the users of the live units that start by reading them
// (Unit.ReadsUser), once each; units of no user (an empty or NUL-led id) read no one.
func usersRead(units []channels.Unit, live []int) []string {
	var ids []string
	for _, i := range live {
		if u := units[i]; u.ReadsUser && readable(u.UserID) && !slices.Contains(ids, u.UserID) {
			ids = append(ids, u.UserID)
		}
	}
	return ids
}

// commit locks the chain head, links the batch's events after it, and sends their
// insert (which also moves the head) and COMMIT in one round trip. It returns when the
// head was granted (zero when the batch appended nothing).
func (s *Store) commit(ctx context.Context, conn *pgxpool.Conn, t *tx) (time.Time, error) {
	n := len(t.pending)
	if n == 0 || s.unchained {
		// No head to take: the deferred writes go alone, not with the COMMIT.
		if err := t.flush(ctx); err != nil {
			return time.Time{}, fmt.Errorf("send deferred writes: %w", err)
		}
	}
	if n == 0 {
		tag, err := conn.Exec(ctx, "COMMIT")
		return time.Time{}, committedOK(tag, err)
	}
	var (
		seq     int64
		prev    = audit.Genesis
		granted time.Time
	)
	if s.unchained {
		seq = s.unchainedSeq.Add(int64(n)) - int64(n)
	} else {
		if err := t.queryRow(ctx, qLockHead).Scan(&seq, &prev); err != nil {
			return time.Time{}, fmt.Errorf("lock audit chain head: %w", err)
		}
		granted = time.Now()
	}
	var (
		seqs, created                                   = make([]int64, n), make([]int64, n)
		ids, types, users, actors, eps, sources, bodies = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		keyIDs                                          = make([]string, n)
		prevs, hashes                                   = make([][]byte, n), make([][]byte, n)
	)
	for i, ev := range t.pending {
		r, err := s.chain.Next(ev, seq+1, prev)
		if err != nil {
			return time.Time{}, err
		}
		seqs[i], ids[i], types[i], users[i], actors[i] = r.Seq, r.EventID, r.Type, r.UserID, r.Actor
		eps[i], sources[i], bodies[i], keyIDs[i] = r.EntryPoint, r.Source, r.Body, r.KeyID
		prevs[i], hashes[i], created[i] = r.PrevHash, r.Hash, r.CreatedAt
		seq, prev = r.Seq, r.Hash
	}
	args := []any{seqs, ids, types, users, actors, eps, sources, bodies, keyIDs, prevs, hashes, created}
	query := qAppendAudit
	if s.unchained {
		query = qAppendUnchained
	} else {
		args = append(args, seq, prev)
	}
	b := &pgx.Batch{}
	b.Queue(query, args...)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	_, err := br.Exec()
	if err != nil {
		br.Close()
		return time.Time{}, fmt.Errorf("append %d audit records: %w", n, err)
	}
	tag, err := br.Exec()
	if err := errors.Join(committedOK(tag, err), br.Close()); err != nil {
		return time.Time{}, err
	}
	t.pending = t.pending[:0]
	return granted, nil
}

// committedOK checks a COMMIT's outcome: PostgreSQL answers COMMIT in a failed
// transaction with ROLLBACK and no error.
func committedOK(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if tag.String() != "COMMIT" {
		return fmt.Errorf("commit: the transaction was rolled back (%s)", tag.String())
	}
	return nil
}

// Read runs fn in a read-only REPEATABLE READ transaction: one snapshot for all of
// fn's statements.
func (s *Store) Read(ctx context.Context, fn func(ctx context.Context, tx channels.Tx) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.WriteTimeout)
	defer cancel()
	raw, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return wrapUnavailable(fmt.Errorf("begin read: %w", err))
	}
	defer raw.Rollback(context.WithoutCancel(ctx)) // read only: nothing to keep
	t := &tx{raw: raw}
	err = fn(ctx, t)
	if t.failed != nil && unavailable(t.failed) {
		return wrapUnavailable(t.failed)
	}
	return err
}

// RelayNotifications claims queued notifications no other relay holds, hands them to
// send and deletes the ones it reports sent, all in one transaction: the claimed rows
// stay locked while they are published, so another worker's relay skips them, and
// a relay that dies before deleting them leaves them to the next.
func (s *Store) RelayNotifications(ctx context.Context, after int64, limit int, send func([]channels.QueuedNotification) []int64) (int64, error) {
	raw, err := s.pool.Begin(ctx)
	if err != nil {
		return after, wrapUnavailable(fmt.Errorf("claim notifications: %w", err))
	}
	defer raw.Rollback(context.WithoutCancel(ctx))
	if _, err := raw.Exec(ctx, qBeginRelayTx, seconds(relayClaimIdle)); err != nil {
		return after, wrapUnavailable(fmt.Errorf("claim notifications: %w", err))
	}
	rows, err := raw.Query(ctx, qClaimNotifications, after, limit)
	if err != nil {
		return after, wrapUnavailable(fmt.Errorf("claim notifications: %w", err))
	}
	var batch []channels.QueuedNotification
	last := after
	for rows.Next() {
		var (
			n       channels.QueuedNotification
			created int64
		)
		if err := rows.Scan(&n.ID, &n.MsgID, &n.Subject, &n.BodySealed, &created); err != nil {
			rows.Close()
			return after, fmt.Errorf("scan notification: %w", err)
		}
		n.CreatedAt = fromMS(created)
		batch = append(batch, n)
		last = n.ID
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return after, wrapUnavailable(fmt.Errorf("claim notifications: %w", err))
	}
	if len(batch) == 0 {
		return after, nil
	}
	if sent := send(batch); len(sent) > 0 {
		if _, err := raw.Exec(ctx, qDeleteNotifications, sent); err != nil {
			return after, wrapUnavailable(fmt.Errorf("delete published notifications: %w", err))
		}
	}
	if err := raw.Commit(ctx); err != nil {
		return after, wrapUnavailable(fmt.Errorf("delete published notifications: %w", err))
	}
	return last, nil
}

// readable says whether id may go into the batch's shared prefetch: PostgreSQL refuses
// text with a NUL or invalid UTF-8, and the refusal would fail the whole batch instead
// of the one unit (the workers refuse such ids anyway; this keeps it so).
func readable(id string) bool {
	return id != "" && strings.IndexByte(id, 0) < 0 && utf8.ValidString(id)
}
