package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	mfa "github.com/mfad/mfad"
)

// Page sizes of Query.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Query returns one page of audit records matching q, oldest first. Paging is by seq:
// q.Cursor is the last seq of the previous page, and NextCursor is set only when more
// records follow. A user filter walks the (user_id, seq) index and a type filter the
// (type, seq) index, so a page costs its own size plus the rows the other filters skip;
// since compares created_at, which has no index of its own.
func Query(ctx context.Context, tx Tx, q mfa.AuditQuery) (mfa.AuditPage, error) {
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var (
		where = []string{"seq > ?"}
		args  = []any{max(q.Cursor, 0)}
	)
	if q.UserID != "" {
		where = append(where, "user_id = ?")
		args = append(args, q.UserID)
	}
	if q.Type != "" {
		where = append(where, "type = ?")
		args = append(args, q.Type)
	}
	if q.Since > 0 {
		where = append(where, "created_at >= ?")
		args = append(args, q.Since)
	}
	// One row more than the page tells whether another page follows.
	args = append(args, limit+1)
	rows, err := tx.QueryContext(ctx, `SELECT seq, event_id, type, user_id, actor, entry_point, source,
		body, created_at, published_at IS NOT NULL FROM audit_log WHERE `+strings.Join(where, " AND ")+
		" ORDER BY seq LIMIT ?", args...)
	if err != nil {
		return mfa.AuditPage{}, fmt.Errorf("query audit log: %w", err)
	}
	defer rows.Close()
	page := mfa.AuditPage{Records: make([]mfa.AuditRecord, 0, min(limit, 64))}
	for rows.Next() {
		if len(page.Records) == limit {
			page.NextCursor = page.Records[limit-1].Seq
			break
		}
		var (
			r       mfa.AuditRecord
			body    string
			created int64
		)
		err := rows.Scan(&r.Seq, &r.EventID, &r.Type, &r.UserID, &r.Actor, &r.EntryPoint, &r.Source,
			&body, &created, &r.Published)
		if err != nil {
			return mfa.AuditPage{}, fmt.Errorf("scan audit record: %w", err)
		}
		r.CreatedAt = time.UnixMilli(created).UTC()
		r.Event = json.RawMessage(body)
		page.Records = append(page.Records, r)
	}
	if err := rows.Err(); err != nil {
		return mfa.AuditPage{}, fmt.Errorf("query audit log: %w", err)
	}
	return page, nil
}
