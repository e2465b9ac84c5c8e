// Package postgres is the channels.Store of several worker processes sharing one
// PostgreSQL database (github.com/jackc/pgx/v5): the statements (queries.go), the
// embedded numbered migrations run under a lock, write batches that lock their users
// first and the audit chain head last, the audit log as the relay's outbox, the relay
// lease, the notification outbox claimed with SKIP LOCKED, and `mfad store copy`'s
// import from SQLite.
package postgres
