package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are the store's schema changes, in order.
var migrations = channels.MustMigrations(migrationFiles, "migrations")

// SchemaVersion is the version of the newest migration this binary knows.
var SchemaVersion = len(migrations)

// ErrNewerSchema means the database was written by a newer mfad (channels.ErrNewerSchema).
var ErrNewerSchema = channels.ErrNewerSchema

// afterMigration is Go work a migration needs in its transaction.
var afterMigration = map[int]func(ctx context.Context, tx *sql.Tx, chain *audit.Chain) error{
	2: sealKeyedChainStart,
}

// migrate brings the database to SchemaVersion, one migration per transaction, each
// recorded in schema_migrations. The writer's transactions begin IMMEDIATE, so
// processes starting at once take turns, and each re-reads what is applied.
//
// Databases of the first release carry no schema_migrations table, only PRAGMA
// user_version 1: that is recorded as migration 1. user_version follows the newest
// migration, so a binary of the first release refuses a newer database by itself.
func migrate(ctx context.Context, db *sql.DB, path string, chain *audit.Chain) error {
	ms := migrations
	for {
		done, err := migrateOne(ctx, db, path, ms, chain)
		if err != nil || done {
			return err
		}
	}
}

// migrateOne applies the next migration, or reports that none is left.
func migrateOne(ctx context.Context, db *sql.DB, path string, ms []channels.Migration, chain *audit.Chain) (bool, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin migration of %s: %w", path, err)
	}
	defer tx.Rollback()
	applied, err := appliedVersion(ctx, tx)
	if err != nil {
		return false, fmt.Errorf("read schema version of %s: %w", path, err)
	}
	if applied > len(ms) {
		return false, fmt.Errorf("%s has schema version %d, this mfad knows %d: %w", path, applied, len(ms), ErrNewerSchema)
	}
	if applied == len(ms) {
		return true, nil
	}
	m := ms[applied]
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrate %s to version %d (%s): %w", path, m.Version, m.Name, err)
	}
	if after := afterMigration[m.Version]; after != nil {
		if err := after(ctx, tx, chain); err != nil {
			return false, fmt.Errorf("migrate %s to version %d (%s): %w", path, m.Version, m.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
		m.Version, m.Name, time.Now().UnixMilli()); err != nil {
		return false, fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.Version)); err != nil {
		return false, fmt.Errorf("record schema version %d: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit migration %d of %s: %w", m.Version, path, err)
	}
	return false, nil
}

// appliedVersion is the newest migration applied, creating the record table (and
// recording the first release's schema) when it is missing.
func appliedVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var userVersion int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&userVersion); err != nil {
		return 0, err
	}
	var tables int
	if err := tx.QueryRowContext(ctx,
		"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").Scan(&tables); err != nil {
		return 0, err
	}
	if tables == 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL) STRICT`); err != nil {
			return 0, err
		}
		if userVersion > 1 {
			return userVersion, nil // newer than the record table: refused by the caller
		}
		if userVersion == 1 {
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'initial', ?)",
				time.Now().UnixMilli()); err != nil {
				return 0, err
			}
		}
	}
	var v int
	err := tx.QueryRowContext(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	return v, err
}

// sealKeyedChainStart records, sealed with the chain key, that the records already in
// the log were linked without a key (schema 1): audit.Verify accepts such records only
// before this seq, so nobody holding only the database can unkey newer ones.
func sealKeyedChainStart(ctx context.Context, tx *sql.Tx, chain *audit.Chain) error {
	var last int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM audit_log").Scan(&last); err != nil {
		return fmt.Errorf("read audit log end: %w", err)
	}
	if last == 0 {
		return nil
	}
	if chain == nil {
		return errors.New("the audit log of schema 1 needs the audit chain key to upgrade")
	}
	_, err := tx.ExecContext(ctx, qSetMeta, audit.KeyedFromMeta, audit.KeyedFromFact(chain, last+1))
	return err
}
