package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mfad/mfad/channels/sqlite"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
	"github.com/mfad/mfad/channels/storetest"
)

// TestConformance runs the store suite. Each handle is a store of its own on the same
// file, as another process would open it: the races cross SQLite's file lock, not just
// this process's single writer.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Database {
		path := filepath.Join(t.TempDir(), "mfad.db")
		return storetest.Database{
			Chain: sqlitetest.Chain(),
			Open: func() storetest.Store {
				s, err := sqlite.Open(context.Background(), path, sqlitetest.Chain())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			},
			OneRelay: true,
		}
	})
}
