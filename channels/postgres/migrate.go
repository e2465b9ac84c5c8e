package postgres

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// migrate brings the database to SchemaVersion. Several nodes may start at the same
// moment: a session advisory lock on one connection makes them take turns, and each
// reads what is applied only once it holds the lock. Each migration runs in a
// transaction of its own (PostgreSQL's DDL is transactional), recorded in
// schema_migrations in the same transaction.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms := migrations
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
		done, err := migrateOne(ctx, conn.Conn(), ms)
		if err != nil || done {
			return err
		}
	}
}

func migrateOne(ctx context.Context, conn *pgx.Conn, ms []channels.Migration) (bool, error) {
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
	if _, err := tx.Exec(ctx, qRecordMigration, m.Version, m.Name, time.Now().UnixMilli()); err != nil {
		return false, fmt.Errorf("record migration %d: %w", m.Version, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("commit migration %d: %w", m.Version, err)
	}
	return false, nil
}
