package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Sink is the SQLite file of `mfad audit sink`: a copy of MFA_EVENTS for a compliance
// store on another host. One row per event, the event id its key, so a redelivery is a
// no-op.
type Sink struct{ db *sql.DB }

const sinkSchema = `CREATE TABLE IF NOT EXISTS events (
    event_id    TEXT    PRIMARY KEY,
    audit_seq   INTEGER,
    stream_seq  INTEGER NOT NULL,
    subject     TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_by_audit_seq ON events (audit_seq);`

const qSinkEvent = `INSERT INTO events (event_id, audit_seq, stream_seq, subject, body, received_at)
	VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`

// SinkEvent is one event as the sink stores it.
type SinkEvent struct {
	EventID   string
	AuditSeq  int64 // 0 when the message carried none
	StreamSeq uint64
	Subject   string
	Body      []byte
}

// OpenSink opens (creating) the sink database: WAL and synchronous=FULL, because an
// event is acknowledged to JetStream once it is committed here.
func OpenSink(ctx context.Context, path string) (*Sink, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create directory of %s: %w", path, err)
	}
	db, err := sql.Open("sqlite3", dsn(path, url.Values{
		"_journal_mode": {"WAL"}, "_synchronous": {"FULL"}, "_busy_timeout": {"10000"}, "_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, sinkSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create tables in %s: %w", path, err)
	}
	return &Sink{db: db}, nil
}

// Store inserts events in one transaction and returns how many were new. It runs to
// its end whatever ctx does: the caller acknowledges what was committed.
func (s *Sink) Store(ctx context.Context, events []SinkEvent) (int64, error) {
	ctx = context.WithoutCancel(ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	var stored int64
	now := time.Now().UnixMilli()
	for _, e := range events {
		var auditSeq sql.NullInt64
		if e.AuditSeq > 0 {
			auditSeq = sql.NullInt64{Int64: e.AuditSeq, Valid: true}
		}
		res, err := tx.ExecContext(ctx, qSinkEvent, e.EventID, auditSeq, e.StreamSeq, e.Subject, string(e.Body), now)
		if err != nil {
			return 0, fmt.Errorf("insert event %s: %w", e.EventID, err)
		}
		n, _ := res.RowsAffected()
		stored += n
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return stored, nil
}

// Close closes the sink database.
func (s *Sink) Close() error { return s.db.Close() }
