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

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

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
}

// OpenStore opens (creating if needed) the database at path and brings its schema to
// mfa.SchemaVersion.
func OpenStore(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	// _txlock=immediate: every transaction takes the write lock at BEGIN, so a
	// read-then-write inside it can never fail with SQLITE_BUSY half way.
	// synchronous=FULL: a commit is on disk before the reply leaves.
	write, err := sql.Open("sqlite3", dsn(path, url.Values{
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
	return s, nil
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

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}
