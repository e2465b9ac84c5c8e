package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mfad/mfad/audit"
)

// auditLog reads the audit log: what the relay and Verify need.
type auditLog struct{ pool *pgxpool.Pool }

var _ audit.Records = auditLog{}

func scanRecord(r scanner) (audit.Record, error) {
	var rec audit.Record
	err := r.Scan(&rec.Seq, &rec.EventID, &rec.Type, &rec.UserID, &rec.Actor, &rec.EntryPoint, &rec.Source, &rec.Body,
		&rec.KeyID, &rec.PrevHash, &rec.Hash, &rec.CreatedAt, &rec.Published)
	return rec, err
}

func (l auditLog) Load(ctx context.Context, from int64, limit int) ([]audit.Record, error) {
	rows, err := l.pool.Query(ctx, qAuditFrom, from, limit)
	if err != nil {
		return nil, wrapUnavailable(err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var r audit.Record
		if err := rows.Scan(&r.Seq, &r.EventID, &r.Type, &r.UserID, &r.Body, &r.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, wrapUnavailable(rows.Err())
}

// walkPage is how many records one query of Walk reads: a walk of a large log is many
// short queries, not one snapshot held for minutes.
const walkPage = 10_000

func (l auditLog) Walk(ctx context.Context, fn func(*audit.Record) error) error {
	var after int64
	for {
		rows, err := l.pool.Query(ctx, qAuditWalk, after, walkPage)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			r, err := scanRecord(rows)
			if err == nil {
				err = fn(&r)
			}
			if err != nil {
				rows.Close()
				return err
			}
			after = r.Seq
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if n < walkPage {
			return nil
		}
	}
}

func (l auditLog) KeyedFrom(ctx context.Context) ([]byte, error) {
	var v []byte
	err := l.pool.QueryRow(ctx, qMeta, audit.KeyedFromMeta).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

func (l auditLog) FirstUnpublished(ctx context.Context) (int64, error) {
	var seq int64
	err := l.pool.QueryRow(ctx, qFirstUnpublished).Scan(&seq)
	return seq, wrapUnavailable(err)
}

func (l auditLog) PublishedFrom(ctx context.Context, seq int64) (int, error) {
	var n int
	err := l.pool.QueryRow(ctx, qPublishedFrom, seq).Scan(&n)
	return n, wrapUnavailable(err)
}

func (l auditLog) EventID(ctx context.Context, seq int64) (string, bool, error) {
	var id string
	err := l.pool.QueryRow(ctx, qEventID, seq).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, wrapUnavailable(err)
}

func (l auditLog) Backlog(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest *int64
	)
	if err := l.pool.QueryRow(ctx, qBacklog).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, wrapUnavailable(err)
	}
	if oldest == nil {
		return n, time.Time{}, nil
	}
	return n, time.UnixMilli(*oldest), nil
}

// outbox is the audit log as the relay reads and marks it.
type outbox struct{ auditLog }

var _ audit.Outbox = outbox{}

func (o outbox) MarkPublished(ctx context.Context, from, to int64, at time.Time) error {
	_, err := o.pool.Exec(ctx, qMarkPublished, at.UnixMilli(), from, to)
	return wrapUnavailable(err)
}

// Outbox is the audit log as the outbox relay reads and marks it.
func (s *Store) Outbox() audit.Outbox { return outbox{auditLog{s.pool}} }

// Records is the audit log as audit.Verify reads it.
func (s *Store) Records() audit.Records { return auditLog{s.pool} }

// eventsLease is the name of the lease of the MFA_EVENTS relay.
const eventsLease = "events-relay"

// lease is the relay lease row.
type lease struct{ pool *pgxpool.Pool }

var _ audit.Lease = lease{}

// RelayLease is the lease that lets one relay at a time publish MFA_EVENTS.
func (s *Store) RelayLease() audit.Lease { return lease{s.pool} }

func (l lease) Claim(ctx context.Context, holder string, ttl time.Duration) (audit.LeaseState, error) {
	var st audit.LeaseState
	err := l.pool.QueryRow(ctx, qClaimLease, eventsLease, holder, ttl.Seconds()).Scan(&st.Holder, &st.Epoch, &st.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		// Held by another whose lease has not expired.
		return l.Current(ctx)
	}
	if err != nil {
		return audit.LeaseState{}, fmt.Errorf("claim the relay lease: %w", wrapUnavailable(err))
	}
	st.Held = true
	return st, nil
}

func (l lease) Current(ctx context.Context) (audit.LeaseState, error) {
	var st audit.LeaseState
	err := l.pool.QueryRow(ctx, qLease, eventsLease).Scan(&st.Holder, &st.Epoch, &st.Expires, &st.Held)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.LeaseState{}, nil
	}
	if err != nil {
		return audit.LeaseState{}, fmt.Errorf("read the relay lease: %w", wrapUnavailable(err))
	}
	return st, nil
}

func (l lease) Release(ctx context.Context, holder string) error {
	if _, err := l.pool.Exec(ctx, qReleaseLease, eventsLease, holder); err != nil {
		return fmt.Errorf("release the relay lease: %w", wrapUnavailable(err))
	}
	return nil
}

// ReadOnly is a database opened only to read its audit log (mfad audit verify): it
// never creates or migrates anything.
type ReadOnly struct{ pool *pgxpool.Pool }

// OpenReadOnly connects to url and refuses a database whose schema this binary does
// not know.
func OpenReadOnly(ctx context.Context, url string) (*ReadOnly, error) {
	cfg, err := poolConfig(url, Options{KeepAlive: 5 * time.Second, MaxConns: 2})
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", Describe(url), err)
	}
	var exists bool
	var v int
	err = pool.QueryRow(ctx, qIsTable).Scan(&exists)
	if err == nil && exists {
		err = pool.QueryRow(ctx, qAppliedVersion).Scan(&v)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("read schema version of %s: %w", Describe(url), err)
	}
	if v != SchemaVersion {
		pool.Close()
		return nil, fmt.Errorf("%s has schema version %d, this mfad reads %d (start mfad serve once to migrate it)", Describe(url), v, SchemaVersion)
	}
	return &ReadOnly{pool: pool}, nil
}

// Records is the audit log as audit.Verify reads it.
func (r *ReadOnly) Records() audit.Records { return auditLog{r.pool} }

// Close closes the connections.
func (r *ReadOnly) Close() error {
	r.pool.Close()
	return nil
}
