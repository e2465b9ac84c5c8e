package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// auditLog reads the audit log from db: what the relay and Verify need.
type auditLog struct{ db *sql.DB }

var _ audit.Records = auditLog{}

func scanRecord(row scanner) (audit.Record, error) {
	var r audit.Record
	err := row.Scan(&r.Seq, &r.EventID, &r.Type, &r.UserID, &r.Actor, &r.EntryPoint, &r.Source, &r.Body,
		&r.KeyID, &r.PrevHash, &r.Hash, &r.CreatedAt, &r.Published)
	return r, err
}

func (l auditLog) Load(ctx context.Context, from int64, limit int) ([]audit.Record, error) {
	rows, err := l.db.QueryContext(ctx, qAuditFrom, from, limit)
	if err != nil {
		return nil, err
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
	return out, rows.Err()
}

func (l auditLog) Walk(ctx context.Context, fn func(*audit.Record) error) error {
	rows, err := l.db.QueryContext(ctx, qAuditWalk)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (l auditLog) KeyedFrom(ctx context.Context) ([]byte, error) {
	var v []byte
	err := l.db.QueryRowContext(ctx, qMeta, audit.KeyedFromMeta).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return v, err
}

func (l auditLog) FirstUnpublished(ctx context.Context) (int64, error) {
	var seq int64
	err := l.db.QueryRowContext(ctx, qFirstUnpublished).Scan(&seq)
	return seq, err
}

func (l auditLog) PublishedFrom(ctx context.Context, seq int64) (int, error) {
	var n int
	err := l.db.QueryRowContext(ctx, qPublishedFrom, seq).Scan(&n)
	return n, err
}

func (l auditLog) EventID(ctx context.Context, seq int64) (string, bool, error) {
	var id string
	err := l.db.QueryRowContext(ctx, qEventID, seq).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return id, err == nil, err
}

func (l auditLog) Backlog(ctx context.Context) (int, time.Time, error) {
	var (
		n      int
		oldest sql.NullInt64
	)
	if err := l.db.QueryRowContext(ctx, qBacklog).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, err
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, time.UnixMilli(oldest.Int64), nil
}

// outbox is the audit log as the relay sees it: read from the read pool, so the relay
// queues for the single writer only to mark records published.
type outbox struct {
	auditLog
	s *Store
}

var _ audit.Outbox = outbox{}

// MarkPublished returns once the mark is committed, usually by the next command batch
// (markPublished).
func (o outbox) MarkPublished(ctx context.Context, from, to int64, at time.Time) error {
	return o.s.markPublished(ctx, markRange{from: from, to: to, at: at.UnixMilli()})
}

// Outbox is the audit log as the outbox relay reads and marks it.
func (s *Store) Outbox() audit.Outbox { return outbox{auditLog{s.read}, s} }

// Records is the audit log as audit.Verify reads it.
func (s *Store) Records() audit.Records { return auditLog{s.read} }

// RelayNotifications reads queued notifications from the read pool and deletes the
// sent ones through the writer. One worker host owns a SQLite file, and its one relay
// is the only reader of the outbox.
func (s *Store) RelayNotifications(ctx context.Context, after int64, limit int, send func([]channels.QueuedNotification) []int64) (int64, error) {
	rows, err := s.read.QueryContext(ctx, qNotifications, after, limit)
	if err != nil {
		return after, fmt.Errorf("read notification outbox: %w", err)
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
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return after, fmt.Errorf("read notification outbox: %w", err)
	}
	if len(batch) == 0 {
		return after, nil
	}
	return last, s.deleteNotifications(ctx, send(batch))
}

func (s *Store) deleteNotifications(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	// Not prepared: the list's length varies from one call to the next.
	q := "DELETE FROM notify_outbox WHERE id IN (?" + strings.Repeat(",?", len(ids)-1) + ")"
	err := s.withWriter(ctx, func(c *conn) error {
		_, err := c.c.ExecContext(ctx, q, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete published notifications: %w", err)
	}
	return nil
}

// ReadOnly is a database opened only to read its audit log (mfad audit verify): it
// never creates, migrates or locks the file, so it is safe beside a running mfad.
type ReadOnly struct {
	db *sql.DB
}

// OpenReadOnly opens the database at path read-only. It refuses a file that does not
// exist or whose schema this binary does not know.
func OpenReadOnly(ctx context.Context, path string) (*ReadOnly, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no database: %w", err)
	}
	db, err := sql.Open("sqlite3", dsn(path, url.Values{
		"mode": {"ro"}, "_query_only": {"true"}, "_busy_timeout": {"10000"}}))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		db.Close()
		return nil, fmt.Errorf("read schema version of %s: %w", path, err)
	}
	if v != SchemaVersion {
		db.Close()
		return nil, fmt.Errorf("%s has schema version %d, this mfad reads %d (start mfad serve once to migrate it)", path, v, SchemaVersion)
	}
	return &ReadOnly{db: db}, nil
}

// Records is the audit log as audit.Verify reads it.
func (r *ReadOnly) Records() audit.Records { return auditLog{r.db} }

// Close closes the database.
func (r *ReadOnly) Close() error { return r.db.Close() }

// Export runs fn on one read snapshot of the database: what `mfad store copy` reads.
func (r *ReadOnly) Export(ctx context.Context, fn func(Snapshot) error) error {
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin export: %w", err)
	}
	defer tx.Rollback()
	return fn(Snapshot{tx})
}

// Snapshot reads whole tables of one consistent state of the database.
type Snapshot struct{ tx *sql.Tx }

// identifier is a table or column name as the store's schema spells them: the names
// are spliced into a statement, so nothing else is accepted.
var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// Tables lists the tables of the schema, without SQLite's and the migrator's own.
func (s Snapshot) Tables(ctx context.Context) ([]string, error) {
	rows, err := s.tx.QueryContext(ctx, qTables)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, rows.Err()
}

// HighWater is the largest id each AUTOINCREMENT table ever gave out (sqlite_sequence):
// ids of deleted rows are never reused, so a copy must go on after these, not after
// the largest id left.
func (s Snapshot) HighWater(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	var exists int
	if err := s.tx.QueryRowContext(ctx, qHasSequences).Scan(&exists); err != nil || exists == 0 {
		return out, err
	}
	rows, err := s.tx.QueryContext(ctx, qSequences)
	if err != nil {
		return nil, fmt.Errorf("read sqlite_sequence: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			seq  int64
		)
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, err
		}
		out[name] = seq
	}
	return out, rows.Err()
}

// Rows calls fn with each row of table (columns in the order given), in the order of
// the first column. fn may keep the slice.
func (s Snapshot) Rows(ctx context.Context, table string, columns []string, fn func([]any) error) error {
	for _, n := range append([]string{table}, columns...) {
		if !identifier.MatchString(n) {
			return fmt.Errorf("export %s: %q is not a name of the schema", table, n)
		}
	}
	rows, err := s.tx.QueryContext(ctx, "SELECT "+strings.Join(columns, ", ")+" FROM "+table+" ORDER BY 1")
	if err != nil {
		return fmt.Errorf("export %s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]any, len(columns))
		ptrs := make([]any, len(columns))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("export %s: %w", table, err)
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}
