// Package sqlite is the SQLite store of the workers (channels.Store): the embedded
// default, one worker host per database file. It holds the SQL (named statements in
// queries.go), the numbered migrations, the single writer with group commit (one
// savepoint per command, one fsync per batch), the read pool and the checkpointer; and
// the audit log's outbox and verification reads, and the file of `mfad audit sink`.
package sqlite
