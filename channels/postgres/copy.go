package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
)

// Source is a database to copy from (the SQLite store's snapshot): whole tables, row
// by row, values as database/sql gives them (integers, strings, byte slices, nil).
type Source interface {
	Tables(ctx context.Context) ([]string, error)
	// HighWater is the largest id each table ever gave out, deleted rows included
	// (SQLite's AUTOINCREMENT), so that ids are not reused after the copy.
	HighWater(ctx context.Context) (map[string]int64, error)
	Rows(ctx context.Context, table string, columns []string, fn func([]any) error) error
}

// copied is a table `mfad store copy` moves, with the columns both schemas share and
// which of them are booleans here (integers 0/1 in SQLite).
type copied struct {
	name    string
	columns []string
	bools   []string
}

// copiedTables are every table of the SQLite schema, parents before children (the
// foreign keys are checked as rows arrive).
var copiedTables = []copied{
	{"users", []string{"id", "mfa_signin_enabled", "failed_attempts", "locked_until", "created_at", "updated_at",
		"webauthn_handle"}, []string{"mfa_signin_enabled"}},
	{"methods", []string{"id", "user_id", "kind", "label", "secret_enc", "destination_enc", "destination_hint", "verified",
		"entry_point", "last_used_step", "algorithm", "digits", "period", "created_at", "verified_at", "last_used_at",
		"expires_at"}, []string{"verified"}},
	{"webauthn_credentials", []string{"method_id", "credential_id", "public_key", "sign_count", "aaguid", "user_verified",
		"backup_eligible", "backup_state", "attestation_format", "transports", "attachment", "flagged_at"},
		[]string{"user_verified", "backup_eligible", "backup_state"}},
	{"webauthn_challenges", []string{"id", "user_id", "purpose", "session_sealed", "expires_at", "created_at"}, nil},
	{"backup_codes", []string{"id", "user_id", "key_id", "code_hash", "used_at", "created_at"}, nil},
	{"pending_codes", []string{"method_id", "purpose", "key_id", "code_hash", "expires_at", "created_at"}, nil},
	{"code_sends", []string{"user_id", "sent_at"}, nil},
	{"commands", []string{"user_id", "key", "type", "request_hash", "reply_sealed", "created_at"}, nil},
	{"notify_outbox", []string{"id", "msg_id", "subject", "body_sealed", "created_at"}, nil},
	{"audit_log", []string{"seq", "event_id", "type", "user_id", "actor", "entry_point", "source", "body", "key_id",
		"prev_hash", "hash", "created_at", "published_at"}, nil},
	{"store_meta", []string{"name", "value"}, nil},
}

// notCopied are store_meta rows that belong to the database they are in.
var notCopied = map[string]bool{"readiness": true, chainCanary: true}

// ErrNotEmpty means the target of a copy already holds data.
var ErrNotEmpty = errors.New("the target database is not empty")

// copyChunk is how many rows one COPY sends.
const copyChunk = 10_000

// Import copies every row of src into this store's database, which must be empty, in
// one transaction: users, methods, codes, pending setups, idempotent replies,
// notifications, the audit log as it is (seq, hashes, key ids) and the store's facts
// (the key canary, the sealed start of the keyed chain), so the same keys open
// everything and the copied chain verifies. Ids are kept, and the id sequences and the
// chain head continue after the copied rows. It returns the rows copied per table.
func (s *Store) Import(ctx context.Context, src Source) (map[string]int, error) {
	tables, err := src.Tables(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		if !slices.ContainsFunc(copiedTables, func(c copied) bool { return c.name == t }) {
			return nil, fmt.Errorf("the source has a table %s this mfad does not know how to copy", t)
		}
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, wrapUnavailable(fmt.Errorf("begin copy: %w", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The head first: a worker started on the target by mistake waits until the copy
	// is in, and the emptiness checked below stays true.
	var head int64
	var prev []byte
	if err := tx.QueryRow(ctx, qLockHead).Scan(&head, &prev); err != nil {
		return nil, fmt.Errorf("lock audit chain head: %w", err)
	}
	var used bool
	if err := tx.QueryRow(ctx, qTargetUsed).Scan(&used); err != nil {
		return nil, fmt.Errorf("check the target is empty: %w", err)
	}
	if used || head != 0 {
		return nil, ErrNotEmpty
	}
	counts := map[string]int{}
	for _, c := range copiedTables {
		if !slices.Contains(tables, c.name) {
			continue
		}
		n, err := copyTable(ctx, tx, src, c)
		if err != nil {
			return nil, err
		}
		counts[c.name] = n
	}
	high, err := src.HighWater(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range []string{"methods", "backup_codes", "notify_outbox"} {
		if _, err := tx.Exec(ctx, qRestartIDs, t, high[t]); err != nil {
			return nil, fmt.Errorf("continue the ids of %s after the copied rows: %w", t, err)
		}
	}
	if _, err := tx.Exec(ctx, qHeadAfterCopy); err != nil {
		return nil, fmt.Errorf("continue the audit chain after the copied records: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, wrapUnavailable(fmt.Errorf("commit copy: %w", err))
	}
	return counts, nil
}

func copyTable(ctx context.Context, tx pgx.Tx, src Source, c copied) (int, error) {
	var (
		chunk [][]any
		total int
	)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.name}, c.columns, pgx.CopyFromRows(chunk)); err != nil {
			return fmt.Errorf("copy %s: %w", c.name, err)
		}
		total += len(chunk)
		chunk = chunk[:0]
		return nil
	}
	err := src.Rows(ctx, c.name, c.columns, func(row []any) error {
		if c.name == "store_meta" {
			if name, _ := row[0].(string); notCopied[name] {
				return nil
			}
		}
		for i, col := range c.columns {
			if slices.Contains(c.bools, col) {
				v, ok := row[i].(int64)
				if !ok {
					return fmt.Errorf("copy %s: %s is %T, want 0 or 1", c.name, col, row[i])
				}
				row[i] = v != 0
			}
		}
		chunk = append(chunk, row)
		if len(chunk) == copyChunk {
			return flush()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := flush(); err != nil {
		return 0, err
	}
	return total, nil
}
