package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
)

// Tx is what Append needs of the caller's transaction: a *sql.Tx, or a wrapper of one.
type Tx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// HeadCache is a transaction that remembers the chain head between appends: a command
// that records several facts, and a group commit of many commands, then read it once.
// Whoever rolls back part of the transaction (a savepoint) must forget the head.
type HeadCache interface {
	ChainHead() (seq int64, hash []byte, ok bool)
	SetChainHead(seq int64, hash []byte)
}

// Append records ev in the caller's transaction, chained to the last record. It must run
// in the transaction that makes the change ev describes: then the record, and so the
// event, exists if and only if the change committed.
func Append(ctx context.Context, tx Tx, ev mfa.Event) (seq int64, err error) {
	prev := genesis
	var last int64
	cache, cached := tx.(HeadCache)
	if s, h, ok := headOf(cache, cached); ok {
		last, prev = s, h
	} else {
		err = tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)").Scan(&last, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("read audit chain head: %w", err)
		}
	}
	r := record{
		Seq:        last + 1,
		EventID:    ev.ID,
		Type:       ev.Type,
		UserID:     ev.UserID,
		Actor:      ev.Actor,
		EntryPoint: ev.EntryPoint,
		Source:     ev.Source,
		PrevHash:   prev,
		CreatedAt:  ev.Time.UnixMilli(),
	}
	body, err := activity.EncodeEvent(ev, r.Seq)
	if err != nil {
		return 0, err
	}
	r.Body = string(body)
	r.Hash = chainHash(&r)
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_log
		(seq, event_id, type, user_id, actor, entry_point, source, body, prev_hash, hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Seq, r.EventID, r.Type, r.UserID, r.Actor, r.EntryPoint, r.Source, r.Body, r.PrevHash, r.Hash, r.CreatedAt)
	if err != nil {
		return 0, fmt.Errorf("append audit record %s: %w", ev.Type, err)
	}
	if cached {
		cache.SetChainHead(r.Seq, r.Hash)
	}
	return r.Seq, nil
}

func headOf(c HeadCache, ok bool) (int64, []byte, bool) {
	if !ok {
		return 0, nil, false
	}
	return c.ChainHead()
}
