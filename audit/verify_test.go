package audit_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"hash"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

func TestTriggersKeepTheLogAppendOnly(t *testing.T) {
	store := openStore(t)
	db := dbOf(t, store)
	appendN(t, store, 3, "alice")
	refused := []string{
		"DELETE FROM audit_log WHERE seq = 2",
		"DELETE FROM audit_log",
		"UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
		"UPDATE audit_log SET body = '{}' WHERE seq = 1",
		"UPDATE audit_log SET hash = prev_hash WHERE seq = 3",
		"UPDATE audit_log SET seq = 10 WHERE seq = 3",
		"UPDATE audit_log SET key_id = '' WHERE seq = 3",
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
	if n, err := audit.Verify(context.Background(), store.Records(), chain); err != nil || n != 3 {
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

// forgeHash recomputes a record's hash as an attacker without the chain key can: a
// plain SHA-256 of the same canonical form (the link of schema 1), or an HMAC under a
// key of the attacker's own.
func forgeHash(key []byte, seq int64, eventID, typ, user, actor, entry, source, body, keyID string, prev []byte, created int64) []byte {
	var h hash.Hash
	if key == nil {
		h = sha256.New()
	} else {
		h = hmac.New(sha256.New, key)
	}
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
	if key != nil {
		putString(keyID)
	}
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

// rechain rewrites records from..to as an attacker who holds the database but not the
// chain key would: each gets a hash recomputed with key (nil: plain SHA-256) and keyID,
// and is linked to the rewritten record before it, so the chain is consistent again
// everywhere but in the key.
func rechain(t *testing.T, db *sql.DB, from, to int64, key []byte, keyID string) {
	t.Helper()
	prev := audit.Genesis
	if from > 1 {
		prev = hashOf(t, db, from-1)
	}
	for seq := from; seq <= to; seq++ {
		var id, typ, user, actor, entry, source, body string
		var created int64
		err := db.QueryRow("SELECT event_id, type, user_id, actor, entry_point, source, body, created_at FROM audit_log WHERE seq = ?", seq).
			Scan(&id, &typ, &user, &actor, &entry, &source, &body, &created)
		if err != nil {
			t.Fatal(err)
		}
		h := forgeHash(key, seq, id, typ, user, actor, entry, source, body, keyID, prev, created)
		if _, err := db.Exec("UPDATE audit_log SET prev_hash = ?, hash = ?, key_id = ? WHERE seq = ?", prev, h, keyID, seq); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
}

// insertAt5 makes room at seq 5 (highest first, the primary key is unique), then
// inserts a record linked to 4: with a plain SHA-256 hash, or under c when it is set.
func insertAt5(t *testing.T, db *sql.DB, c *audit.Chain) {
	t.Helper()
	for seq := int64(10); seq >= 5; seq-- {
		if _, err := db.Exec("UPDATE audit_log SET seq = seq + 1 WHERE seq = ?", seq); err != nil {
			t.Fatal(err)
		}
	}
	prev := hashOf(t, db, 4)
	ev := mfa.Event{ID: mfa.NewID(), Type: mfa.EventSignInDisabled, UserID: "alice", Actor: "alice", Time: time.UnixMilli(1)}
	r, err := chain.Next(ev, 5, prev)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil {
		r.Hash = forgeHash(nil, 5, r.EventID, r.Type, r.UserID, r.Actor, r.EntryPoint, r.Source, r.Body, r.KeyID, prev, r.CreatedAt)
	}
	_, err = db.Exec(`INSERT INTO audit_log (seq, event_id, type, user_id, actor, entry_point, source, body, key_id, prev_hash, hash, created_at)
		VALUES (5, ?, ?, ?, ?, '', '', ?, ?, ?, ?, ?)`, r.EventID, r.Type, r.UserID, r.Actor, r.Body, r.KeyID, prev, r.Hash, r.CreatedAt)
	if err != nil {
		t.Fatal(err)
	}
}

func TestVerifyNamesTheFirstBadRecord(t *testing.T) {
	keyID := chain.PrimaryKeyID()
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
		{"altered with its hash recomputed", func(t *testing.T, db *sql.DB) {
			db.Exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5")
			rechain(t, db, 5, 5, nil, keyID)
		}, 5, audit.Altered},
		// The attack a plain hash chain let through: rewrite a record, then recompute
		// every later hash so that each links to the one before.
		{"rewritten and every later hash recomputed", func(t *testing.T, db *sql.DB) {
			db.Exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
			rechain(t, db, 4, 10, nil, keyID)
		}, 4, audit.Altered},
		{"rewritten under a key of the attacker's", func(t *testing.T, db *sql.DB) {
			db.Exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
			rechain(t, db, 4, 10, bytes.Repeat([]byte{1}, audit.KeySize), keyID)
		}, 4, audit.Altered},
		{"rewritten as an unkeyed log of schema 1", func(t *testing.T, db *sql.DB) {
			db.Exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
			rechain(t, db, 1, 10, nil, "")
		}, 1, audit.Altered},
		{"unkeyed under a forged start of the keyed chain", func(t *testing.T, db *sql.DB) {
			rechain(t, db, 1, 10, nil, "")
			db.Exec("INSERT INTO store_meta (name, value) VALUES (?, CAST('11:' || hex(randomblob(40)) AS BLOB))", audit.KeyedFromMeta)
		}, 1, audit.Altered},
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
			insertAt5(t, db, nil)
		}, 5, audit.Altered},
		// Even whoever holds the key cannot slip a record in: the one after it still
		// links to the one before.
		{"inserted in the middle with the key", func(t *testing.T, db *sql.DB) {
			insertAt5(t, db, chain)
		}, 5, audit.Inserted},
		{"appended with a wrong hash", func(t *testing.T, db *sql.DB) {
			_, err := db.Exec(`INSERT INTO audit_log (seq, event_id, type, user_id, actor, entry_point, source, body, key_id, prev_hash, hash, created_at)
				SELECT 11, 'x', type, user_id, actor, entry_point, source, body, key_id, hash, hash, created_at FROM audit_log WHERE seq = 10`)
			if err != nil {
				t.Fatal(err)
			}
		}, 11, audit.Altered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := openStore(t)
			db := dbOf(t, store)
			appendN(t, store, 10, "alice")
			if n, err := audit.Verify(context.Background(), store.Records(), chain); err != nil || n != 10 {
				t.Fatalf("before tampering: Verify = %d, %v", n, err)
			}
			dropTriggers(t, db)
			tt.tamper(t, db)
			_, err := audit.Verify(context.Background(), store.Records(), chain)
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
	store := openStore(t)
	if n, err := audit.Verify(context.Background(), store.Records(), chain); err != nil || n != 0 {
		t.Fatalf("empty log: Verify = %d, %v", n, err)
	}
	// Several records per transaction, as a group commit writes them.
	now := time.Now()
	for batch := range 5 {
		evs := make([]mfa.Event, 20)
		for i := range evs {
			evs[i] = newEvent(i, "user-"+string(rune('a'+batch)), now)
		}
		appendEvents(t, store, evs...)
	}
	// Marking published changes nothing the chain covers.
	if _, err := dbOf(t, store).Exec("UPDATE audit_log SET published_at = 1 WHERE seq <= 50"); err != nil {
		t.Fatal(err)
	}
	if n, err := audit.Verify(context.Background(), store.Records(), chain); err != nil || n != 100 {
		t.Fatalf("Verify = %d, %v; want 100, nil", n, err)
	}
	// Verifying needs the key: under another one, nothing checks.
	other, _ := audit.NewChain(bytes.Repeat([]byte{9}, audit.KeySize))
	if _, err := audit.Verify(context.Background(), store.Records(), other); !errors.Is(err, audit.ErrUnknownChainKey) {
		t.Fatalf("Verify under a key that did not link the log = %v, want ErrUnknownChainKey named", err)
	}
	// After a rotation the old key, kept second, still verifies the old records.
	rotated, _ := audit.NewChain(bytes.Repeat([]byte{9}, audit.KeySize), sqlitetest.ChainKey)
	if n, err := audit.Verify(context.Background(), store.Records(), rotated); err != nil || n != 100 {
		t.Fatalf("Verify with the old key second = %d, %v", n, err)
	}
}

// BenchmarkAppend measures one event encoded, chained, hashed and inserted in a group
// commit of 128 commands of one event each, the fsync of the batch's commit included.
func BenchmarkAppend(b *testing.B) {
	store := openStore(b)
	appendN(b, store, 1000, "alice") // a log that is not empty
	ctx := context.Background()
	units := make([]channels.Unit, 128)
	for i := range units {
		units[i] = channels.Unit{UserID: "alice", Run: func(ctx context.Context, tx channels.Tx) error {
			return tx.Append(ctx, newEvent(i, "alice", time.Now()))
		}}
	}
	b.ReportAllocs()
	for n := 0; b.Loop(); n++ {
		if n%len(units) == 0 {
			for _, err := range store.Write(ctx, units) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
}

// BenchmarkAppendCommit is one event per transaction, commit (fsync) included.
func BenchmarkAppendCommit(b *testing.B) {
	store := openStore(b)
	ev := newEvent(0, "alice", time.Now())
	b.ReportAllocs()
	for b.Loop() {
		ev.ID = mfa.NewID()
		appendEvents(b, store, ev)
	}
}
