package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// openStore opens a real worker store in a temporary directory.
func openStore(t testing.TB) *channels.Store {
	t.Helper()
	store, err := channels.OpenStore(context.Background(), filepath.Join(t.TempDir(), "mfad.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

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

// appendEvents appends the events in one transaction on the writer, as a worker does.
func appendEvents(t testing.TB, db *sql.DB, evs ...mfa.Event) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, ev := range evs {
		if _, err := audit.Append(ctx, tx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// appendN appends n events of user, one transaction each, and returns them.
func appendN(t testing.TB, db *sql.DB, n int, user string) []mfa.Event {
	t.Helper()
	evs := make([]mfa.Event, n)
	for i := range evs {
		evs[i] = newEvent(i, user, time.Now())
		appendEvents(t, db, evs[i])
	}
	return evs
}

// auditRow is a row as the tests read it back.
type auditRow struct {
	Seq       int64
	EventID   string
	Type      string
	Body      string
	Published bool
}

func auditRows(t testing.TB, db *sql.DB) []auditRow {
	t.Helper()
	rows, err := db.Query("SELECT seq, event_id, type, body, published_at IS NOT NULL FROM audit_log ORDER BY seq")
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
