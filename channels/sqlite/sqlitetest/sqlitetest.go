// Package sqlitetest runs the workers on real SQLite stores for tests: a store in a
// temporary directory, a worker over it without NATS, and a plain connection to the
// same file for a test to look at (or tamper with) the tables as an outsider would.
package sqlitetest

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite"
)

// ChainKey is the audit chain key of the test stores.
var ChainKey = bytes.Repeat([]byte{0xa7}, audit.KeySize)

// Chain is the audit chain of the test stores.
func Chain() *audit.Chain {
	c, err := audit.NewChain(ChainKey)
	if err != nil {
		panic(err)
	}
	return c
}

// Key is a sealing key made of b.
func Key(b byte) []byte { return bytes.Repeat([]byte{b}, channels.KeySize) }

// Quiet is a logger that drops everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// Open opens a store at path (t.TempDir()/mfad.db when path is empty), closed when the
// test ends.
func Open(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "mfad.db")
	}
	store, err := sqlite.Open(context.Background(), path, Chain())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// Worker runs a worker without NATS over a store at path (see Open), sealing with keys
// (Key(1) when none); tests call Do.
func Worker(t testing.TB, path string, cfg channels.Config, keys ...[]byte) (*channels.Worker, *sqlite.Store) {
	t.Helper()
	store := Open(t, path)
	if len(keys) == 0 {
		keys = [][]byte{Key(1)}
	}
	sealer, err := channels.NewSealer(keys...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = Quiet()
	}
	if cfg.ReadCacheBytes == 0 {
		// As mfad serve runs a worker on SQLite: every test that reads after a write
		// checks that the write's commit emptied the cache. -1 turns it off.
		cfg.ReadCacheBytes = 1 << 20
	}
	w, err := channels.NewWorker(cfg, store, sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })
	return w, store
}

// DB opens another connection pool on the store's file, closed when the test ends.
func DB(t testing.TB, store *sqlite.Store) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+store.Path()+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Count runs a COUNT query on db.
func Count(t testing.TB, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// Append appends events to store's audit log in one write transaction, as a worker's
// command does.
func Append(t testing.TB, store channels.Store, evs ...mfa.Event) {
	t.Helper()
	errs := store.Write(context.Background(), []channels.Unit{{Run: func(ctx context.Context, tx channels.Tx) error {
		for _, ev := range evs {
			if err := tx.Append(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	}}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
}
