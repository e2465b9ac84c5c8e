package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/mfad/mfad/channels/postgres"
	"github.com/mfad/mfad/channels/postgres/pgtest"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
	"github.com/mfad/mfad/channels/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open opens a store on url, closed when the test ends.
func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, sqlitetest.Chain(), postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the store suite on a database of its own per test. Each handle
// is a store with its own pool, as another worker process would have: the races cross
// connections and PostgreSQL's locks, and two notification relays are raced.
func TestConformance(t *testing.T) {
	srv := pgtest.Shared(t)
	storetest.Run(t, func(t *testing.T) storetest.Database {
		url := srv.NewDatabase(t)
		return storetest.Database{
			Chain: sqlitetest.Chain(),
			Open:  func() storetest.Store { return open(t, url) },
		}
	})
}
