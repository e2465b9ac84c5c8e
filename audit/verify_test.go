package audit_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
)

func TestTriggersKeepTheLogAppendOnly(t *testing.T) {
	db := openStore(t).Writer()
	appendN(t, db, 3, "alice")
	refused := []string{
		"DELETE FROM audit_log WHERE seq = 2",
		"DELETE FROM audit_log",
		"UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
		"UPDATE audit_log SET body = '{}' WHERE seq = 1",
		"UPDATE audit_log SET hash = prev_hash WHERE seq = 3",
		"UPDATE audit_log SET seq = 10 WHERE seq = 3",
		// published_at together with another column is still a change
		"UPDATE audit_log SET published_at = 1, user_id = 'bob' WHERE seq = 1",
	}
	for _, stmt := range refused {
		if _, err := db.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
		}
	}
	// Setting published_at once is the one change allowed…
	if _, err := db.Exec("UPDATE audit_log SET published_at = 1000 WHERE seq = 1"); err != nil {
		t.Fatalf("setting published_at: %v", err)
	}
	// …and only once.
	for _, stmt := range []string{
		"UPDATE audit_log SET published_at = 2000 WHERE seq = 1",
		"UPDATE audit_log SET published_at = NULL WHERE seq = 1",
	} {
		if _, err := db.Exec(stmt); err == nil {
			t.Errorf("%s: allowed", stmt)
		}
	}
	if n, err := audit.Verify(context.Background(), db); err != nil || n != 3 {
		t.Fatalf("Verify = %d, %v; want 3 records, intact", n, err)
	}
}

// dropTriggers lets a test tamper as an attacker with write access to the file would.
func dropTriggers(t *testing.T, db *sql.DB) {
	t.Helper()
	for _, stmt := range []string{"DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// forgeHash recomputes a record's hash as chain.go does: an attacker can, since the
// chain is unkeyed.
func forgeHash(seq int64, eventID, typ, user, actor, entry, source, body string, prev []byte, created int64) []byte {
	h := sha256.New()
	h.Write(prev)
	putInt := func(v int64) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	putString := func(s string) { putInt(int64(len(s))); h.Write([]byte(s)) }
	putInt(seq)
	for _, s := range []string{eventID, typ, user, actor, entry, source, body} {
		putString(s)
	}
	putInt(created)
	return h.Sum(nil)
}

func hashOf(t *testing.T, db *sql.DB, seq int64) []byte {
	t.Helper()
	var h []byte
	if err := db.QueryRow("SELECT hash FROM audit_log WHERE seq = ?", seq).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestVerifyNamesTheFirstBadRecord(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, db *sql.DB)
		seq     int64
		problem audit.Problem
	}{
		{"altered body", func(t *testing.T, db *sql.DB) {
			db.Exec(`UPDATE audit_log SET body = replace(body, '"alice"', '"mallory"') WHERE seq = 4`)
		}, 4, audit.Altered},
		{"altered actor", func(t *testing.T, db *sql.DB) {
			db.Exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 7")
		}, 7, audit.Altered},
		{"altered created_at", func(t *testing.T, db *sql.DB) {
			db.Exec("UPDATE audit_log SET created_at = created_at - 3600000 WHERE seq = 1")
		}, 1, audit.Altered},
		{"altered with a recomputed hash", func(t *testing.T, db *sql.DB) {
			var id, typ, user, entry, source, body string
			var prev []byte
			var created int64
			db.QueryRow("SELECT event_id, type, user_id, entry_point, source, body, prev_hash, created_at FROM audit_log WHERE seq = 5").
				Scan(&id, &typ, &user, &entry, &source, &body, &prev, &created)
			h := forgeHash(5, id, typ, user, "mallory", entry, source, body, prev, created)
			db.Exec("UPDATE audit_log SET actor = 'mallory', hash = ? WHERE seq = 5", h)
		}, 5, audit.Altered},
		{"removed from the middle", func(t *testing.T, db *sql.DB) {
			db.Exec("DELETE FROM audit_log WHERE seq = 6")
		}, 6, audit.Removed},
		{"removed several", func(t *testing.T, db *sql.DB) {
			db.Exec("DELETE FROM audit_log WHERE seq BETWEEN 3 AND 5")
		}, 3, audit.Removed},
		{"removed the first", func(t *testing.T, db *sql.DB) {
			db.Exec("DELETE FROM audit_log WHERE seq = 1")
		}, 1, audit.Removed},
		{"inserted in the middle", func(t *testing.T, db *sql.DB) {
			// Make room at seq 5 (highest first, the primary key is unique), then
			// insert a record chained to 4 with a correct hash of its own.
			for seq := int64(10); seq >= 5; seq-- {
				if _, err := db.Exec("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", seq); err != nil {
					t.Fatal(err)
				}
			}
			prev := hashOf(t, db, 4)
			id, body := mfa.NewID(), `{"forged":true}`
			h := forgeHash(5, id, mfa.EventSignInDisabled, "alice", "alice", "", "", body, prev, 1)
			_, err := db.Exec(`INSERT INTO audit_log (seq, event_id, type, user_id, actor, entry_point, source, body, prev_hash, hash, created_at)
				VALUES (5, ?, ?, 'alice', 'alice', '', '', ?, ?, ?, 1)`, id, mfa.EventSignInDisabled, body, prev, h)
			if err != nil {
				t.Fatal(err)
			}
		}, 5, audit.Inserted},
		{"appended with a wrong hash", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`INSERT INTO audit_log (seq, event_id, type, user_id, actor, entry_point, source, body, prev_hash, hash, created_at)
				SELECT 11, 'x', type, user_id, actor, entry_point, source, body, hash, hash, created_at FROM audit_log WHERE seq = 10`)
			if err != nil {
				t.Fatal(err)
			}
		}, 11, audit.Altered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openStore(t).Writer()
			appendN(t, db, 10, "alice")
			if n, err := audit.Verify(context.Background(), db); err != nil || n != 10 {
				t.Fatalf("before tampering: Verify = %d, %v", n, err)
			}
			dropTriggers(t, db)
			tt.tamper(t, db)
			_, err := audit.Verify(context.Background(), db)
			var ce *audit.ChainError
			if !errors.As(err, &ce) {
				t.Fatalf("Verify = %v, want a ChainError", err)
			}
			if ce.Seq != tt.seq || ce.Problem != tt.problem {
				t.Fatalf("Verify: %v; want record %d %s", err, tt.seq, tt.problem)
			}
		})
	}
}

func TestVerifyAcceptsAnIntactLog(t *testing.T) {
	db := openStore(t).Writer()
	if n, err := audit.Verify(context.Background(), db); err != nil || n != 0 {
		t.Fatalf("empty log: Verify = %d, %v", n, err)
	}
	// Several records per transaction, as a group commit writes them.
	now := time.Now()
	for batch := range 5 {
		evs := make([]mfa.Event, 20)
		for i := range evs {
			evs[i] = newEvent(i, "user-"+string(rune('a'+batch)), now)
		}
		appendEvents(t, db, evs...)
	}
	// Marking published changes nothing the chain covers.
	if _, err := db.Exec("UPDATE audit_log SET published_at = 1 WHERE seq <= 50"); err != nil {
		t.Fatal(err)
	}
	if n, err := audit.Verify(context.Background(), db); err != nil || n != 100 {
		t.Fatalf("Verify = %d, %v; want 100, nil", n, err)
	}
}

// BenchmarkAppend measures one event encoded, chained, hashed and inserted inside a
// transaction of 128, the worker's group-commit batch, without the commit (whose fsync
// the batch shares; BenchmarkAppendCommit has it). The transactions are rolled back,
// so every batch starts from the same table.
func BenchmarkAppend(b *testing.B) {
	db := openStore(b).Writer()
	appendN(b, db, 1000, "alice") // a log that is not empty
	ctx := context.Background()
	ev := newEvent(0, "alice", time.Now())
	var tx *sql.Tx
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		if n%128 == 0 {
			if tx != nil {
				tx.Rollback()
			}
			var err error
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
		n++
		ev.ID = mfa.NewID()
		if _, err := audit.Append(ctx, tx, ev); err != nil {
			b.Fatal(err)
		}
	}
	tx.Rollback()
}

// BenchmarkAppendCommit is one event per transaction, commit (fsync) included.
func BenchmarkAppendCommit(b *testing.B) {
	db := openStore(b).Writer()
	ev := newEvent(0, "alice", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		ev.ID = mfa.NewID()
		appendEvents(b, db, ev)
	}
}
