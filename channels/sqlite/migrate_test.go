package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// v1Database copies testdata/mfad-v1.db, written by the first release (schema version
// 1, an unkeyed audit chain) with sealing key 0x01…: alice has two TOTP devices, ten
// backup codes, a pending SMS registration and one failed attempt; bob a pending
// setup, an idempotent reply and a pending e-mail registration; carol is locked out.
func v1Database(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mfad.db")
	src, err := os.Open("testdata/mfad-v1.db")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMigrateFromTheFirstRelease: a database of schema 1 upgrades in place, keeps every
// user, method, code, reply and audit record, and its chain still verifies: the old
// records as the plain links they were, the new ones keyed after them.
func TestMigrateFromTheFirstRelease(t *testing.T) {
	path := v1Database(t)
	counts := func(db *sql.DB) map[string]int {
		out := map[string]int{}
		for _, table := range []string{"users", "methods", "backup_codes", "pending_codes", "commands", "notify_outbox", "audit_log"} {
			var n int
			if err := db.QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[table] = n
		}
		return out
	}
	// The methods' AUTOINCREMENT high-water mark: schema 3 rebuilds the table, and an
	// id must still never be reused.
	seq := func(db *sql.DB) int {
		var n int
		if err := db.QueryRow("SELECT seq FROM sqlite_sequence WHERE name = 'methods'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	old, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	before := counts(old)
	seqBefore := seq(old)
	old.Close()
	if before["audit_log"] == 0 || before["methods"] == 0 || before["backup_codes"] == 0 || before["commands"] == 0 {
		t.Fatalf("the test data is not what it claims: %v", before)
	}

	ctx := context.Background()
	chain := testChain(t)
	store, err := Open(ctx, path, chain)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if after := counts(store.read); !mapsEqual(after, before) {
		t.Fatalf("rows after the upgrade %v, before %v", after, before)
	}
	if before["pending_codes"] == 0 {
		t.Fatal("the test data has no pending code: the methods rebuild's cascade is not tested")
	}
	if after := seq(store.read); after != seqBefore {
		t.Fatalf("methods sequence %d after the upgrade, %d before", after, seqBefore)
	}
	var version int
	store.read.QueryRow("PRAGMA user_version").Scan(&version)
	var applied []int
	rows, err := store.read.Query("SELECT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		rows.Scan(&v)
		applied = append(applied, v)
	}
	rows.Close()
	if version != SchemaVersion || len(applied) != SchemaVersion || applied[0] != 1 {
		t.Fatalf("user_version %d, migrations recorded %v; want %d of them", version, applied, SchemaVersion)
	}
	if n, err := audit.Verify(ctx, store.Records(), chain); err != nil || n != int64(before["audit_log"]) {
		t.Fatalf("the upgraded chain: %d records, %v", n, err)
	}

	// The old data is usable with the key it was sealed with, and the log grows keyed.
	sealer, err := channels.NewSealer(bytes.Repeat([]byte{1}, channels.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	w, err := channels.NewWorker(channels.Config{Now: func() time.Time { return time.Date(2026, 11, 29, 12, 3, 0, 0, time.UTC) }}, store, sealer)
	if err != nil {
		t.Fatalf("a worker on the upgraded database: %v", err)
	}
	defer w.Stop(ctx)
	var st mfa.Status
	r := do(t, w, mfa.CmdStatus, "alice", nil)
	if err := json.Unmarshal(r.Data, &st); err != nil || !st.SignInEnabled || len(st.Methods) != 2 ||
		st.BackupCodesRemaining != 10 || st.FailedAttempts != 1 {
		t.Fatalf("alice after the upgrade: %+v (%v)", st, err)
	}
	if r := do(t, w, mfa.CmdTOTPRemove, "alice", mfa.DeviceParams{DeviceID: st.Methods[0].ID}); !r.OK {
		t.Fatalf("remove a device of the first release: %+v", r)
	}
	// bob's idempotent reply of the first release still answers his retry.
	cmd := mfa.Command{ID: mfa.NewID(), Key: "k-1", Type: mfa.CmdTOTPSetup, UserID: "bob", Actor: "bob",
		Params: mustJSON(t, mfa.TOTPSetupParams{DeviceName: "Laptop"})}
	if r, err := w.Do(ctx, cmd); err != nil || !r.OK || !r.Replayed {
		t.Fatalf("bob's retry after the upgrade: %+v %v", r, err)
	}
	n, err := audit.Verify(ctx, store.Records(), chain)
	if err != nil || n <= int64(before["audit_log"]) {
		t.Fatalf("the chain after new records: %d, %v", n, err)
	}
	var keyed int
	store.read.QueryRow("SELECT count(*) FROM audit_log WHERE key_id = ?", chain.PrimaryKeyID()).Scan(&keyed)
	if keyed != int(n)-before["audit_log"] {
		t.Fatalf("%d keyed records, want the %d new ones", keyed, int(n)-before["audit_log"])
	}

	// Opening again migrates nothing more.
	store.Close()
	again, err := Open(ctx, path, chain)
	if err != nil {
		t.Fatal(err)
	}
	again.Close()
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestNewerSchemaRefused: a database written by a newer mfad is refused with a clear
// error, not misread; an older binary sees the same through PRAGMA user_version.
func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mfad.db")
	store, err := Open(context.Background(), path, testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', 0)", SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(context.Background(), path, testChain(t))
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), path) {
		t.Fatalf("open a newer database: %v, want ErrNewerSchema naming the file", err)
	}
}

// TestSchemaOfRecord: the readable schema at the module root (schema.sql) is what the
// migrations build: same tables, columns, indexes and triggers.
func TestSchemaOfRecord(t *testing.T) {
	migrated, err := Open(context.Background(), filepath.Join(t.TempDir(), "mfad.db"), testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	defer migrated.Close()
	record, err := sql.Open("sqlite3", "file:"+filepath.Join(t.TempDir(), "record.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer record.Close()
	if _, err := record.Exec(mfa.Schema); err != nil {
		t.Fatalf("schema.sql does not apply: %v", err)
	}
	want, got := describe(t, migrated.read), describe(t, record)
	for _, name := range []string{"table schema_migrations"} {
		delete(want, name) // the migrator's own table
	}
	if !mapsEqualS(want, got) {
		for k := range want {
			if want[k] != got[k] {
				t.Errorf("%s:\nmigrations: %s\nschema.sql: %s", k, want[k], got[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s is in schema.sql only: %s", k, got[k])
			}
		}
	}
}

// describe is every table (its columns, as sets), index and trigger of db.
func describe(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	rows, err := db.Query("SELECT type, name, tbl_name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'")
	if err != nil {
		t.Fatal(err)
	}
	type obj struct{ typ, name, table string }
	var objs []obj
	for rows.Next() {
		var o obj
		rows.Scan(&o.typ, &o.name, &o.table)
		objs = append(objs, o)
	}
	rows.Close()
	for _, o := range objs {
		var desc []string
		switch o.typ {
		case "table":
			cols, err := db.Query("SELECT name, type, \"notnull\", coalesce(dflt_value, ''), pk FROM pragma_table_info(?)", o.name)
			if err != nil {
				t.Fatal(err)
			}
			for cols.Next() {
				var name, typ, dflt string
				var notnull, pk int
				cols.Scan(&name, &typ, &notnull, &dflt, &pk)
				desc = append(desc, strings.Join([]string{name, typ, itoa(notnull), dflt, itoa(pk)}, " "))
			}
			cols.Close()
		case "index":
			cols, err := db.Query("SELECT coalesce(name, '') FROM pragma_index_info(?)", o.name)
			if err != nil {
				t.Fatal(err)
			}
			for cols.Next() {
				var name string
				cols.Scan(&name)
				desc = append(desc, name)
			}
			cols.Close()
			desc = append(desc, "on "+o.table)
		default:
			desc = append(desc, o.typ+" on "+o.table)
		}
		if o.typ == "table" {
			slices.Sort(desc)
		}
		out[o.typ+" "+o.name] = strings.Join(desc, "; ")
	}
	return out
}

func itoa(n int) string { return string(rune('0' + n)) }

func mapsEqualS(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
