package channels

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/mattn/go-sqlite3"

	mfa "github.com/mfad/mfad"
)

// Store is the SQLite database of one worker host. Writes go through a single connection:
// SQLite allows one writer at a time, and queueing in our own process (the write loop)
// is cheaper and fairer than contending for the file lock. Reads use a pool of their own
// and see committed data only (WAL).
type Store struct {
	path  string
	write *sql.DB
	read  *sql.DB

	checkpoint     *sql.DB // the checkpointer's own connection
	stopCheckpoint context.CancelFunc
	checkpointDone chan struct{}
}

// writerDriver is the SQLite driver of the writer connection: SQLite's automatic
// checkpoint is off there. It runs inside the commit that crosses the WAL threshold,
// copying pages back to the database file and fsyncing it, and on a large database
// that made one commit in every few hundred tens of milliseconds late. The
// checkpointer does that work beside the writer instead.
const writerDriver = "sqlite3-mfad-writer"

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA wal_autocheckpoint = 0", nil)
		return err
	}})
}

// checkpointEvery is how often the checkpointer copies the WAL back into the database.
// Each checkpoint ends with an fsync of the database file, which the writer's WAL fsync
// then queues behind; on a large database checkpoints every 250 ms set the tail of the
// write latency (1M users, delete-device p99 80–104 ms against 53–69 ms at 1 s, with the
// same throughput; BENCHMARKS.md). Less often again (2 s) gained nothing more and grew
// the WAL and RSS.
const checkpointEvery = time.Second

// OpenStore opens (creating if needed) the database at path and brings its schema to
// mfa.SchemaVersion.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	// _txlock=immediate: every transaction takes the write lock at BEGIN, so a
	// read-then-write inside it can never fail with SQLITE_BUSY half way.
	// synchronous=FULL: a commit is on disk before the reply leaves.
	write, err := sql.Open(writerDriver, dsn(path, url.Values{
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_foreign_keys": {"on"},
		"_busy_timeout": {"10000"},
		"_txlock":       {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	s := &Store{path: path, write: write}
	if err := s.migrate(ctx); err != nil {
		write.Close()
		return nil, err
	}

	read, err := sql.Open("sqlite3", dsn(path, url.Values{
		"_foreign_keys": {"on"},
		"_busy_timeout": {"10000"},
		"_query_only":   {"true"},
	}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	n := 2 * runtime.GOMAXPROCS(0)
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	s.read = read

	cp, err := sql.Open("sqlite3", dsn(path, url.Values{"_busy_timeout": {"10000"}, "_synchronous": {"FULL"}}))
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("open database %s for checkpoints: %w", path, err)
	}
	cp.SetMaxOpenConns(1)
	s.checkpoint = cp
	cctx, stop := context.WithCancel(context.Background())
	s.stopCheckpoint, s.checkpointDone = stop, make(chan struct{})
	go s.checkpointer(cctx)
	return s, nil
}

// checkpointer copies committed WAL frames back into the database file, PASSIVE: it
// never waits for the writer or the readers, and the writer never waits for it.
func (s *Store) checkpointer(ctx context.Context) {
	defer close(s.checkpointDone)
	every(ctx, checkpointEvery, func() {
		// Errors are transient (SQLITE_BUSY while another checkpoint runs); the next
		// tick tries again.
		_, _ = s.checkpoint.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	})
}

// every calls fn once per interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func()) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			fn()
		}
	}
}

func dsn(path string, params url.Values) string {
	return "file:" + path + "?" + params.Encode()
}

// migrate applies the schema to a new database and refuses one that is newer than this
// binary. There are no migrations yet: version 1 is the first release.
func (s *Store) migrate(ctx context.Context) error {
	var version int
	if err := s.write.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version of %s: %w", s.path, err)
	}
	switch {
	case version == mfa.SchemaVersion:
		return nil
	case version > mfa.SchemaVersion:
		return fmt.Errorf("database %s has schema version %d, newer than this mfad (%d)", s.path, version, mfa.SchemaVersion)
	case version != 0:
		return fmt.Errorf("database %s has schema version %d and no migration to %d exists", s.path, version, mfa.SchemaVersion)
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin schema migration: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, mfa.Schema); err != nil {
		return fmt.Errorf("apply schema to %s: %w", s.path, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", mfa.SchemaVersion)); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit schema migration: %w", err)
	}
	return nil
}

// Writer is the single-connection handle for writes; the audit relay marks published
// records through it.
func (s *Store) Writer() *sql.DB { return s.write }

// Reader is the read-only pool.
func (s *Store) Reader() *sql.DB { return s.read }

// Writable commits a small write, so the lock, the file system and fsync all answer:
// the readiness probe of a worker.
func (s *Store) Writable(ctx context.Context) error {
	_, err := s.write.ExecContext(ctx,
		"INSERT INTO store_meta (name, value) VALUES ('readiness', CAST(CAST(unixepoch('subsec') AS TEXT) AS BLOB)) "+
			"ON CONFLICT (name) DO UPDATE SET value = excluded.value")
	if err != nil {
		return fmt.Errorf("database not writable: %w", err)
	}
	return nil
}

// Close stops the checkpointer, checkpoints what is left and closes the pools.
func (s *Store) Close() error {
	s.stopCheckpoint()
	<-s.checkpointDone
	_, err := s.checkpoint.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return errors.Join(err, s.checkpoint.Close(), s.read.Close(), s.write.Close())
}
