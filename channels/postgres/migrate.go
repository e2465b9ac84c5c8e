package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// SchemaVersion is the version of the newest migration this binary knows.
var SchemaVersion = func() int {
	ms, err := channels.Migrations(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded files are part of the build: a broken set is a bug
	}
	return len(ms)
}()

// ErrNewerSchema means the database was written by a newer mfad: it is refused rather
// than misread.
var ErrNewerSchema = errors.New("database schema is newer than this mfad")

// afterMigration is Go work a migration needs in its transaction.
var afterMigration = map[int]func(ctx context.Context, tx pgx.Tx, chain *audit.Chain) error{}

// migrate brings the database to SchemaVersion. Several nodes may start at the same
// moment: a session advisory lock on one connection makes them take turns, and each
// reads what is applied only once it holds the lock. Each migration runs in a
// transaction of its own (PostgreSQL's DDL is transactional), recorded in
// schema_migrations in the same transaction.
func migrate(ctx context.Context, pool *pgxpool.Pool, chain *audit.Chain) error {
	ms, err := channels.Migrations(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return wrapUnavailable(fmt.Errorf("connect to migrate: %w", err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, qMigrationLock); err != nil {
		return wrapUnavailable(fmt.Errorf("take the migration lock: %w", err))
	}
	defer func() {
		// The lock is the session's; a connection that failed is closed, which frees it.
		if _, err := conn.Exec(context.WithoutCancel(ctx), qMigrationUnlock); err != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	for {
		done, err := migrateOne(ctx, conn.Conn(), ms, chain)
		if err != nil || done {
			return err
		}
	}
}

func migrateOne(ctx context.Context, conn *pgx.Conn, ms []channels.Migration, chain *audit.Chain) (bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, qMigrationsTable); err != nil {
		return false, fmt.Errorf("create schema_migrations: %w", err)
	}
	var applied int
	if err := tx.QueryRow(ctx, qAppliedVersion).Scan(&applied); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	if applied > len(ms) {
		return false, fmt.Errorf("the database has schema version %d, this mfad knows %d: %w", applied, len(ms), ErrNewerSchema)
	}
	if applied == len(ms) {
		return true, tx.Commit(ctx)
	}
	m := ms[applied]
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrate to version %d (%s): %w", m.Version, m.Name, err)
	}
	if after := afterMigration[m.Version]; after != nil {
		if err := after(ctx, tx, chain); err != nil {
			return false, fmt.Errorf("migrate to version %d (%s): %w", m.Version, m.Name, err)
		}
	}
	if _, err := tx.Exec(ctx, qRecordMigration, m.Version, m.Name, time.Now().UnixMilli()); err != nil {
		return false, fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("commit migration %d: %w", m.Version, err)
	}
	return false, nil
}
