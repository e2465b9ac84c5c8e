package audit_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels/sqlite"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// openStore opens a real worker store in a temporary directory.
func openStore(t testing.TB) *sqlite.Store { return sqlitetest.Open(t, "") }

// chain is the test stores' audit chain.
var chain = sqlitetest.Chain()

// types cycles through a few event types so subjects differ.
var types = []string{mfa.EventVerifyFailed, mfa.EventTOTPDeviceVerified, mfa.EventSignInEnabled, mfa.EventBackupUsed}

// newEvent is an event of user at time at, its type picked by i.
func newEvent(i int, user string, at time.Time) mfa.Event {
	return mfa.Event{
		ID:     mfa.NewID(),
		Type:   types[i%len(types)],
		UserID: user,
		Actor:  user,
		Source: "pc",
		Object: mfa.EventObject{Type: mfa.ObjectTOTPDevice, ID: fmt.Sprint(i)},
		Time:   at,
	}
}

// appendEvents appends the events in one transaction, as a worker's command does.
func appendEvents(t testing.TB, store *sqlite.Store, evs ...mfa.Event) {
	t.Helper()
	sqlitetest.Append(t, store, evs...)
}

// appendN appends n events of user, one transaction each, and returns them.
func appendN(t testing.TB, store *sqlite.Store, n int, user string) []mfa.Event {
	t.Helper()
	evs := make([]mfa.Event, n)
	for i := range evs {
		evs[i] = newEvent(i, user, time.Now())
		appendEvents(t, store, evs[i])
	}
	return evs
}

// dbOf is a plain connection to the store's file.
func dbOf(t testing.TB, store *sqlite.Store) *sql.DB { return sqlitetest.DB(t, store) }

// auditRow is a row as the tests read it back.
type auditRow struct {
	Seq       int64
	EventID   string
	Type      string
	Body      string
	Published bool
}

func auditRows(t testing.TB, store *sqlite.Store) []auditRow {
	t.Helper()
	rows, err := dbOf(t, store).Query("SELECT seq, event_id, type, body, published_at IS NOT NULL FROM audit_log ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []auditRow
	for rows.Next() {
		var r auditRow
		if err := rows.Scan(&r.Seq, &r.EventID, &r.Type, &r.Body, &r.Published); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
