package postgres_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/postgres"
	"github.com/mfad/mfad/channels/postgres/pgtest"
	"github.com/mfad/mfad/channels/sqlite"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
	"github.com/mfad/mfad/channels/storetest"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func write(t *testing.T, s channels.Store, user string, fn func(ctx context.Context, tx channels.Tx) error) {
	t.Helper()
	if errs := s.Write(context.Background(), []channels.Unit{{UserID: user, Run: fn}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

func read(t *testing.T, s channels.Store, fn func(ctx context.Context, tx channels.Tx) error) {
	t.Helper()
	if err := s.Read(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

func event(user string, i int) mfa.Event {
	return mfa.Event{ID: mfa.NewID(), Type: mfa.EventVerifyFailed, UserID: user, Actor: user, Source: "pc",
		Object: mfa.EventObject{Type: mfa.ObjectUser, ID: user}, Time: t0.Add(time.Duration(i) * time.Second)}
}

// TestMigrationsUnderALock: nodes starting at the same moment on an empty database
// all come up on the newest schema, each migration applied once.
func TestMigrationsUnderALock(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), url, sqlitetest.Chain(), postgres.Options{MaxConns: 2})
			if err == nil {
				err = s.Writable(context.Background())
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
	}
	s := open(t, url)
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error { return tx.Append(ctx, event("alice", 0)) })
	if n, err := audit.Verify(context.Background(), s.Records(), sqlitetest.Chain()); err != nil || n != 1 {
		t.Fatalf("verify: %d %v", n, err)
	}
}

// TestNewerSchemaRefused: a database migrated by a newer mfad is refused, not misread;
// so is one whose records another audit chain key links.
func TestNewerSchemaRefused(t *testing.T) {
	srv := pgtest.Shared(t)
	url := srv.NewDatabase(t)
	open(t, url).Close()
	wrong, _ := audit.NewChain(bytes.Repeat([]byte{1}, audit.KeySize))
	if _, err := postgres.Open(context.Background(), url, wrong, postgres.Options{}); !errors.Is(err, postgres.ErrChainKey) {
		t.Fatalf("another chain key: %v, want ErrChainKey", err)
	}
	db := lastPathElement(url)
	if err := srv.Exec(context.Background(), db, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future', 0)",
		postgres.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(context.Background(), url, sqlitetest.Chain(), postgres.Options{}); !errors.Is(err, postgres.ErrNewerSchema) {
		t.Fatalf("open a newer schema: %v, want ErrNewerSchema", err)
	}
	if _, err := postgres.OpenReadOnly(context.Background(), url); err == nil {
		t.Fatal("audit verify would read a newer schema")
	}
}

func lastPathElement(url string) string {
	db := filepath.Base(url)
	if i := bytes.IndexByte([]byte(db), '?'); i >= 0 {
		db = db[:i]
	}
	return db
}

// TestBatchReRunWithoutFailedUnits: a batch where every fifth unit fails commits the
// others once each, with their records consecutive in one chain, and hands the failed
// units' errors back; the failed ones leave nothing.
func TestBatchReRunWithoutFailedUnits(t *testing.T) {
	s := open(t, pgtest.Shared(t).NewDatabase(t))
	const n = 100
	boom := errors.New("boom")
	units := make([]channels.Unit, n)
	runs := make([]int, n)
	for i := range units {
		user := fmt.Sprint("user-", i)
		units[i] = channels.Unit{UserID: user, Run: func(ctx context.Context, tx channels.Tx) error {
			runs[i]++
			if _, err := tx.SetSignIn(ctx, user, true, t0); err != nil {
				return err
			}
			if err := tx.EnsureUser(ctx, user, t0); err != nil {
				return err
			}
			if _, err := tx.SetSignIn(ctx, user, true, t0); err != nil {
				return err
			}
			if err := tx.Append(ctx, event(user, i)); err != nil {
				return err
			}
			if i%5 == 0 {
				return boom
			}
			return nil
		}}
	}
	errs := s.Write(context.Background(), units)
	for i, err := range errs {
		if (i%5 == 0) != (err == boom) {
			t.Fatalf("unit %d: %v", i, err)
		}
	}
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		for i := range n {
			u, err := tx.User(ctx, fmt.Sprint("user-", i))
			if err != nil || u.SignInEnabled == (i%5 == 0) {
				return fmt.Errorf("user %d after the batch: %+v %v", i, u, err)
			}
		}
		return nil
	})
	if got, err := audit.Verify(context.Background(), s.Records(), sqlitetest.Chain()); err != nil || got != n-n/5 {
		t.Fatalf("verify: %d records, %v; want %d", got, err, n-n/5)
	}
	// Each failure rolled the batch back and ran it again from the start without the
	// failed unit: unit 1 ran in every attempt but the first (which stopped at unit 0),
	// the units after the last failure only in the one that committed.
	if runs[1] != n/5 || runs[n-1] != 1 {
		t.Fatalf("unit 1 ran %d times, want %d; the last unit %d, want 1", runs[1], n/5, runs[n-1])
	}
}

// TestFrozenWorkerReleasesItsLocks: a worker that stops talking inside its transaction
// (frozen, or its host gone while the connection stays open) holds its users' locks
// only until PostgreSQL ends its session; the batch is answered unavailable, and the
// next writer of those users goes through.
func TestFrozenWorkerReleasesItsLocks(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	frozen, err := postgres.Open(context.Background(), url, sqlitetest.Chain(),
		postgres.Options{IdleInTransaction: 300 * time.Millisecond, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	other := open(t, url)
	holding := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		errs := frozen.Write(context.Background(), []channels.Unit{{UserID: "alice", Run: func(ctx context.Context, tx channels.Tx) error {
			if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
				return err
			}
			close(holding)
			time.Sleep(2 * time.Second) // frozen, holding alice's lock
			_, err := tx.SetSignIn(ctx, "alice", true, t0)
			return err
		}}})
		result <- errs[0]
	}()
	<-holding
	write(t, other, "alice", func(ctx context.Context, tx channels.Tx) error {
		_, _, err := tx.AddFailure(ctx, "alice", t0)
		return err
	})
	if err := <-result; !errors.Is(err, channels.ErrUnavailable) {
		t.Fatalf("the frozen worker's batch: %v, want ErrUnavailable", err)
	}
	read(t, other, func(ctx context.Context, tx channels.Tx) error {
		u, err := tx.User(ctx, "alice")
		if err != nil || u.SignInEnabled || u.FailedAttempts != 1 {
			return fmt.Errorf("alice: %+v %v", u, err)
		}
		return nil
	})
}

// TestRelayLease: one holder at a time, renewed by it, taken over when released or
// expired, the epoch counting changes of holder.
func TestRelayLease(t *testing.T) {
	url := pgtest.Shared(t).NewDatabase(t)
	a, b := open(t, url).RelayLease(), open(t, url).RelayLease()
	ctx := context.Background()
	st, err := a.Claim(ctx, "a", time.Minute)
	if err != nil || !st.Held || st.Holder != "a" || st.Epoch != 1 {
		t.Fatalf("first claim: %+v %v", st, err)
	}
	if st, err = b.Claim(ctx, "b", time.Minute); err != nil || st.Holder != "a" || !st.Held {
		t.Fatalf("claim of a held lease: %+v %v", st, err)
	}
	if st, err = a.Claim(ctx, "a", time.Minute); err != nil || st.Holder != "a" || st.Epoch != 1 {
		t.Fatalf("renewal: %+v %v", st, err)
	}
	if err := a.Release(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if st, err = b.Claim(ctx, "b", 200*time.Millisecond); err != nil || st.Holder != "b" || st.Epoch != 2 {
		t.Fatalf("claim after a release: %+v %v", st, err)
	}
	// b stops renewing: once its lease has expired (by the database's clock), a takes it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err = a.Claim(ctx, "a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if st.Holder == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's expired lease was never taken over: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st.Epoch != 3 {
		t.Fatalf("epoch %d after two changes of holder", st.Epoch)
	}
	if st, err = b.Claim(ctx, "b", time.Minute); err != nil || st.Holder != "a" {
		t.Fatalf("the deposed holder renewed: %+v %v", st, err)
	}
}

// TestCopyFromSQLite: `mfad store copy`'s import. A SQLite store holding every kind of
// row is copied; the copy holds the same users, methods, codes, pending setups,
// idempotent replies, notifications, send records and audit log (seqs, hashes, key
// ids, the sealed facts), its chain verifies under the same key, new ids and records
// continue after the copied ones, and a second copy into it is refused.
func TestCopyFromSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mfad.db")
	src := sqlitetest.Open(t, path)
	var totp, sms, pending, gone int64
	write(t, src, "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
			return err
		}
		if _, err := tx.SetSignIn(ctx, "alice", true, t0); err != nil {
			return err
		}
		var err error
		if totp, err = tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindTOTP, Label: "Phone",
			SecretEnc: []byte("sealed secret"), Algorithm: "SHA256", Digits: 8, Period: 30, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if _, err := tx.MarkVerified(ctx, totp, t0, 1234, 5); err != nil {
			return err
		}
		if sms, err = tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindSMS, DestEnc: []byte("sealed number"),
			Hint: "+34***22", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if pending, err = tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindTOTP, Label: "Tablet",
			SecretEnc: []byte("pending secret"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		// The newest method is removed: its id must not be given out again after the copy.
		if gone, err = tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindEmail, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if err := tx.DeleteMethod(ctx, gone); err != nil {
			return err
		}
		if err := tx.PutCode(ctx, channels.PendingCode{MethodID: sms, Purpose: "register",
			Hash: channels.CodeHash{KeyID: "k1", Sum: []byte("code hash")}, ExpiresAt: t0.Add(time.Hour), CreatedAt: t0}); err != nil {
			return err
		}
		if _, err := tx.ReplaceBackupCodes(ctx, "alice", []channels.CodeHash{{KeyID: "k1", Sum: []byte("b1")}, {KeyID: "k1", Sum: []byte("b2")}}, t0); err != nil {
			return err
		}
		if _, _, err := tx.TakeSendSlot(ctx, "alice", t0, time.Hour, 5); err != nil {
			return err
		}
		if _, _, err := tx.ReserveCommand(ctx, "alice", "key-1", "totp.setup", []byte("hash"), t0, time.Hour); err != nil {
			return err
		}
		if err := tx.SaveReply(ctx, "alice", "key-1", []byte("sealed reply")); err != nil {
			return err
		}
		if err := tx.QueueNotification(ctx, channels.QueuedNotification{MsgID: "n1", Subject: "mfa.notify.sms",
			BodySealed: []byte("sealed body"), CreatedAt: t0}); err != nil {
			return err
		}
		if _, _, err := tx.AddFailure(ctx, "alice", t0); err != nil {
			return err
		}
		if err := tx.SetMeta(ctx, "key_canary", []byte("sealed canary")); err != nil {
			return err
		}
		for i := range 5 {
			if err := tx.Append(ctx, event("alice", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := src.Writable(ctx); err != nil { // leaves a readiness row, which is not copied
		t.Fatal(err)
	}
	spent := func() int64 {
		var id int64
		read(t, src, func(ctx context.Context, tx channels.Tx) error {
			codes, err := tx.UnusedBackupCodes(ctx, "alice")
			id = codes[0].ID
			return err
		})
		return id
	}()
	write(t, src, "alice", func(ctx context.Context, tx channels.Tx) error {
		_, err := tx.SpendBackupCode(ctx, spent, t0)
		return err
	})
	if err := src.Outbox().MarkPublished(ctx, 1, 3, t0); err != nil {
		t.Fatal(err)
	}
	src.Close()

	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	url := pgtest.Shared(t).NewDatabase(t)
	dst := open(t, url)
	var counts map[string]int
	if err := ro.Export(ctx, func(snap sqlite.Snapshot) error {
		counts, err = dst.Import(ctx, snap)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"users": 1, "methods": 3, "backup_codes": 2, "pending_codes": 1, "code_sends": 1, "commands": 1,
		"notify_outbox": 1, "audit_log": 5, "store_meta": 1}
	for table, n := range want {
		if counts[table] != n {
			t.Errorf("copied %d rows of %s, want %d (%v)", counts[table], table, n, counts)
		}
	}

	// The audit log is the same, row for row, and verifies.
	var srcRecs, dstRecs []audit.Record
	collect := func(r audit.Records, into *[]audit.Record) {
		if err := r.Walk(ctx, func(rec *audit.Record) error { *into = append(*into, *rec); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	collect(ro.Records(), &srcRecs)
	collect(dst.Records(), &dstRecs)
	if fmt.Sprint(srcRecs) != fmt.Sprint(dstRecs) || len(dstRecs) != 5 || !dstRecs[0].Published || dstRecs[3].Published {
		t.Fatalf("audit log copied as\n%v\nfrom\n%v", dstRecs, srcRecs)
	}
	if n, err := audit.Verify(ctx, dst.Records(), sqlitetest.Chain()); err != nil || n != 5 {
		t.Fatalf("copied chain: %d %v", n, err)
	}

	read(t, dst, func(ctx context.Context, tx channels.Tx) error {
		u, err := tx.User(ctx, "alice")
		if err != nil || !u.SignInEnabled || u.FailedAttempts != 1 {
			return fmt.Errorf("user %+v %v", u, err)
		}
		m, ok, err := tx.MethodByID(ctx, totp)
		if err != nil || !ok || !m.Verified || m.LastUsedStep != 1234 || m.Algorithm != "SHA256" || m.Digits != 8 ||
			string(m.SecretEnc) != "sealed secret" {
			return fmt.Errorf("TOTP method %+v %v %v", m, ok, err)
		}
		list, err := tx.ListMethods(ctx, "alice", "")
		if err != nil || len(list) != 1 || list[0].ID != totp || list[0].VerifiedAt == nil {
			return fmt.Errorf("list %+v %v", list, err)
		}
		if p, ok, err := tx.PendingMethod(ctx, "alice", mfa.KindTOTP, &pending, t0); err != nil || !ok || string(p.SecretEnc) != "pending secret" {
			return fmt.Errorf("pending setup %+v %v %v", p, ok, err)
		}
		codes, err := tx.OutstandingCodes(ctx, "alice", "register", mfa.KindSMS, t0)
		if err != nil || len(codes) != 1 || string(codes[0].Hash.Sum) != "code hash" || string(codes[0].Method.DestEnc) != "sealed number" {
			return fmt.Errorf("one-time codes %+v %v", codes, err)
		}
		if total, left, err := tx.BackupCodeCounts(ctx, "alice"); err != nil || total != 2 || left != 1 {
			return fmt.Errorf("backup codes %d/%d %v", left, total, err)
		}
		if v, ok, err := tx.Meta(ctx, "key_canary"); err != nil || !ok || string(v) != "sealed canary" {
			return fmt.Errorf("key canary %q %v %v", v, ok, err)
		}
		if _, ok, err := tx.Meta(ctx, "readiness"); err != nil || ok {
			return fmt.Errorf("the source's readiness row was copied: %v %v", ok, err)
		}
		return nil
	})
	write(t, dst, "alice", func(ctx context.Context, tx channels.Tx) error {
		c, found, err := tx.ReserveCommand(ctx, "alice", "key-1", "totp.setup", []byte("hash"), t0.Add(time.Minute), time.Hour)
		if err != nil || !found || string(c.ReplySealed) != "sealed reply" {
			return fmt.Errorf("idempotent reply %+v %v %v", c, found, err)
		}
		if ok, _, err := tx.TakeSendSlot(ctx, "alice", t0.Add(time.Minute), time.Hour, 1); err != nil || ok {
			return fmt.Errorf("the copied send record does not count: %v %v", ok, err)
		}
		// New rows continue after the copied ones.
		id, err := tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindEmail, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
		if err != nil || id <= gone {
			return fmt.Errorf("a new method got id %d, though ids up to %d were given out before the copy: %v", id, gone, err)
		}
		return tx.Append(ctx, event("alice", 9))
	})
	var relayed []string
	if _, err := dst.RelayNotifications(ctx, 0, 10, func(b []channels.QueuedNotification) []int64 {
		for _, q := range b {
			relayed = append(relayed, q.MsgID+"="+string(q.BodySealed))
		}
		return nil
	}); err != nil || fmt.Sprint(relayed) != "[n1=sealed body]" {
		t.Fatalf("queued notifications %v %v", relayed, err)
	}
	if n, err := audit.Verify(ctx, dst.Records(), sqlitetest.Chain()); err != nil || n != 6 {
		t.Fatalf("the chain after a new record: %d %v", n, err)
	}

	err = ro.Export(ctx, func(snap sqlite.Snapshot) error {
		_, err := dst.Import(ctx, snap)
		return err
	})
	if !errors.Is(err, postgres.ErrNotEmpty) {
		t.Fatalf("a second copy: %v, want ErrNotEmpty", err)
	}
}

// TestKeyRotationOnPostgres: what `mfad keys status` and `mfad keys reseal` read and
// write: records counted by the key that seals them, and methods sealed again under a
// new first key.
func TestKeyRotationOnPostgres(t *testing.T) {
	s := open(t, pgtest.Shared(t).NewDatabase(t))
	oldKey, newKey := sqlitetest.Key(1), sqlitetest.Key(2)
	old, err := channels.NewSealer(oldKey)
	if err != nil {
		t.Fatal(err)
	}
	aad := []byte("methods\x00alice") // what the rules bind a method's secrets to
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
			return err
		}
		for i := range 3 {
			id, err := tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindTOTP, Label: fmt.Sprint(i),
				SecretEnc: old.Seal([]byte("secret"), aad), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
			if err != nil {
				return err
			}
			if _, err := tx.MarkVerified(ctx, id, t0, 1, 0); err != nil {
				return err
			}
		}
		if _, err := tx.ReplaceBackupCodes(ctx, "alice", []channels.CodeHash{{KeyID: old.PrimaryKeyID(), Sum: []byte("h")}}, t0); err != nil {
			return err
		}
		return tx.SetMeta(ctx, "key_canary", old.Seal([]byte("canary"), []byte("store_meta")))
	})
	uses, err := channels.KeyUsage(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, u := range uses {
		got[u.Record+"/"+u.KeyID] += u.Count
	}
	oldID := old.PrimaryKeyID()
	if got[channels.RecordSecret+"/"+oldID] != 3 || got[channels.RecordBackupCode+"/"+oldID] != 1 ||
		got[channels.RecordCanary+"/"+oldID] != 1 {
		t.Fatalf("usage before the rotation: %v", got)
	}
	var stale []channels.Method
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		var err error
		stale, err = tx.StaleMethods(ctx, channels.KeyID(newKey), 0, 2)
		return err
	})
	if len(stale) != 2 {
		t.Fatalf("a page of 2 stale methods: %d", len(stale))
	}
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		rotated, err := channels.NewSealer(newKey, oldKey)
		if err != nil {
			return err
		}
		return tx.ResealMethod(ctx, stale[0].ID, rotated.Seal([]byte("secret"), aad), nil)
	})
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		left, err := tx.StaleMethods(ctx, channels.KeyID(newKey), 0, 10)
		if err != nil || len(left) != 2 || left[0].ID == stale[0].ID {
			return fmt.Errorf("stale after resealing one: %+v %v", left, err)
		}
		return nil
	})
}

// TestSchemaMatchesSQLite: every table and column of the SQLite schema (of record,
// schema.sql) exists here with the same name, and `mfad store copy` moves every one of
// them: a column added to one store and not the other fails here, not in a copy.
func TestSchemaMatchesSQLite(t *testing.T) {
	srv := pgtest.Shared(t)
	url := srv.NewDatabase(t)
	open(t, url)
	path := filepath.Join(t.TempDir(), "mfad.db")
	sqlitetest.Open(t, path)
	lite, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close(context.Background())
	columns := func(rows interface {
		Next() bool
		Scan(...any) error
		Err() error
	}) []string {
		var out []string
		for rows.Next() {
			var c string
			if err := rows.Scan(&c); err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	tables, err := lite.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	names := columns(tables)
	tables.Close()
	copied := postgres.CopiedColumns()
	if len(names) != len(copied) {
		t.Fatalf("SQLite tables %v, copied %v", names, copied)
	}
	for _, table := range names {
		lr, err := lite.Query(`SELECT name FROM pragma_table_info(?)`, table)
		if err != nil {
			t.Fatal(err)
		}
		want := columns(lr)
		lr.Close()
		pr, err := pg.Query(context.Background(), `SELECT column_name::text FROM information_schema.columns WHERE table_name = $1`, table)
		if err != nil {
			t.Fatal(err)
		}
		got := columns(pr)
		c := slices.Clone(copied[table])
		slices.Sort(c)
		if !slices.Equal(got, want) || !slices.Equal(c, want) {
			t.Errorf("table %s: SQLite %v, PostgreSQL %v, copied %v", table, want, got, c)
		}
	}
}

// TestKeyCheckRaced: workers started at the same moment on a new database with
// different secret keys. The first to seal the key canary wins; every other one must
// see that canary and refuse to start, not seal a second one over it and run with a
// key the database no longer names.
func TestKeyCheckRaced(t *testing.T) {
	srv := pgtest.Shared(t)
	const rounds, workers = 5, 4
	for round := range rounds {
		url := srv.NewDatabase(t)
		stores := make([]*postgres.Store, workers)
		for i := range stores {
			stores[i] = open(t, url)
		}
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for i := range workers {
			wg.Go(func() {
				sealer, err := channels.NewSealer(sqlitetest.Key(byte(i + 1)))
				if err != nil {
					errs[i] = err
					return
				}
				w, err := channels.NewWorker(channels.Config{}, stores[i], sealer)
				if err == nil {
					err = w.Stop(context.Background())
				} else if !errors.Is(err, channels.ErrUnknownKey) {
					t.Errorf("worker %d: %v, want the unknown key refusal", i, err)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		started := 0
		for _, err := range errs {
			if err == nil {
				started++
			}
		}
		if started != 1 {
			t.Fatalf("round %d: %d of %d workers with different keys started: %v", round, started, workers, errs)
		}
	}
}

// TestMispredictedClaimRunsTheBatchAgain: a TOTP step claim answered from the unit's
// read is checked when its UPDATE is sent. When a writer outside the user's lock (here
// a plain connection) moved the step in between, the batch runs again without the
// prediction and the claim is refused; the other unit of the batch keeps its outcome,
// applied once (the attempt that mispredicted must not commit). With the chain head,
// with nothing to append, and unchained: each sends the claim in a different round
// trip.
func TestMispredictedClaimRunsTheBatchAgain(t *testing.T) {
	for _, variant := range []string{"head", "no events", "unchained", "carried by the next unit"} {
		t.Run(variant, func(t *testing.T) {
			ctx := context.Background()
			url := pgtest.Shared(t).NewDatabase(t)
			s := open(t, url)
			if variant == "unchained" {
				postgres.Unchain(s, 0)
			}
			id := storetest.VerifiedDevice(t, s, "alice", "Phone", 10)
			outside, err := pgx.Connect(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			defer outside.Close(ctx)
			events := variant != "no events"
			var (
				runs int
				won  []bool
			)
			// Alice's unit last: no statement of another unit sends her claim, the
			// batch's end does; or first, and bob's first statement carries it.
			units := []channels.Unit{
				{UserID: "bob", Run: func(ctx context.Context, tx channels.Tx) error {
					if err := tx.EnsureUser(ctx, "bob", t0); err != nil {
						return err
					}
					// Not idempotent: counted twice if the wrong attempt committed.
					if _, _, err := tx.AddFailure(ctx, "bob", t0); err != nil {
						return err
					}
					if events {
						return tx.Append(ctx, event("bob", 0))
					}
					return nil
				}},
				{UserID: "alice", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
					runs++
					_, methods, err := tx.UserAndMethods(ctx, "alice")
					if err != nil || len(methods) != 1 {
						return fmt.Errorf("read alice: %+v %v", methods, err)
					}
					if runs == 1 {
						if _, err := outside.Exec(ctx, "UPDATE methods SET last_used_step = 20 WHERE id = $1", id); err != nil {
							return err
						}
					}
					ok, err := tx.ClaimStep(ctx, id, 11, t0.Add(time.Minute))
					if err != nil {
						return err
					}
					won = append(won, ok)
					if events {
						return tx.Append(ctx, event("alice", runs))
					}
					return nil
				}},
			}
			if variant == "carried by the next unit" {
				units[0], units[1] = units[1], units[0]
			}
			for i, err := range s.Write(ctx, units) {
				if err != nil {
					t.Fatalf("unit %d: %v", i, err)
				}
			}
			if runs != 2 || !slices.Equal(won, []bool{true, false}) || postgres.Mispredicted(s) != 1 {
				t.Fatalf("alice's unit ran %d times claiming %v, %d mispredicted batches; want 2 runs, [true false], 1",
					runs, won, postgres.Mispredicted(s))
			}
			read(t, s, func(ctx context.Context, tx channels.Tx) error {
				_, methods, err := tx.UserAndMethods(ctx, "alice")
				if err != nil || len(methods) != 1 || methods[0].LastUsedStep != 20 {
					return fmt.Errorf("alice's device: %+v %v, want the outside writer's step 20", methods, err)
				}
				if u, err := tx.User(ctx, "bob"); err != nil || u.FailedAttempts != 1 {
					return fmt.Errorf("bob: %+v %v, want 1 failure: only the second attempt commits", u, err)
				}
				return nil
			})
		})
	}
}

// TestMispredictedDeleteRunsTheBatchAgain: a method the unit read is deleted with the
// next round trip; when a writer outside the user's lock removed it first, the batch
// runs again without the prediction, and the second run no longer reads it.
func TestMispredictedDeleteRunsTheBatchAgain(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	s := open(t, url)
	ids := []int64{storetest.VerifiedDevice(t, s, "alice", "Phone", 10), storetest.VerifiedDevice(t, s, "alice", "Tablet", 10)}
	outside, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close(ctx)
	var seen [][]int64
	unit := channels.Unit{UserID: "alice", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
		_, methods, err := tx.UserAndMethods(ctx, "alice")
		if err != nil {
			return err
		}
		var got []int64
		for _, m := range methods {
			got = append(got, m.ID)
		}
		seen = append(seen, got)
		if len(seen) == 1 {
			if _, err := outside.Exec(ctx, "DELETE FROM methods WHERE id = $1", ids[0]); err != nil {
				return err
			}
		}
		for _, id := range got {
			if err := tx.DeleteMethod(ctx, id); err != nil {
				return err
			}
		}
		return tx.Append(ctx, event("alice", len(seen)))
	}}
	if errs := s.Write(ctx, []channels.Unit{unit}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if len(seen) != 2 || !slices.Equal(seen[0], ids) || !slices.Equal(seen[1], ids[1:]) || postgres.Mispredicted(s) != 1 {
		t.Fatalf("the unit read %v, %d mispredicted batches; want %v then %v, 1", seen, postgres.Mispredicted(s), ids, ids[1:])
	}
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		if _, methods, err := tx.UserAndMethods(ctx, "alice"); err != nil || len(methods) != 0 {
			return fmt.Errorf("alice's methods after the batch: %+v %v, want none", methods, err)
		}
		return nil
	})
}

// TestDeferredWriteFailureBelongsToItsUnit: a deferred delete that PostgreSQL refuses
// (here a trigger) fails the unit that deferred it, not the unit whose statement
// carried it; the other unit commits.
func TestDeferredWriteFailureBelongsToItsUnit(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Shared(t).NewDatabase(t)
	s := open(t, url)
	id := storetest.VerifiedDevice(t, s, "alice", "Phone", 10)
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
		$$ BEGIN RAISE EXCEPTION 'kept by the test'; END $$;
		CREATE TRIGGER keep BEFORE DELETE ON methods FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	units := []channels.Unit{
		{UserID: "alice", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
			if _, _, err := tx.UserAndMethods(ctx, "alice"); err != nil {
				return err
			}
			return tx.DeleteMethod(ctx, id)
		}},
		{UserID: "bob", Run: func(ctx context.Context, tx channels.Tx) error {
			if err := tx.EnsureUser(ctx, "bob", t0); err != nil {
				return err
			}
			return tx.Append(ctx, event("bob", 0))
		}},
	}
	errs := s.Write(ctx, units)
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "kept by the test") || errs[1] != nil {
		t.Fatalf("unit errors %v; want alice's unit refused by the trigger and bob's committed", errs)
	}
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		if u, err := tx.User(ctx, "bob"); err != nil || u.ID != "bob" {
			return fmt.Errorf("bob: %+v %v", u, err)
		}
		if _, found, err := tx.MethodByID(ctx, id); err != nil || !found {
			return fmt.Errorf("alice's method: %v %v, want kept", found, err)
		}
		return nil
	})
}

// TestTwoSignInsOfOneUserInABatch: the second unit of a user reads what the first one
// wrote, though the first sent no statement of its own (its claim waits for the next
// round trip): the prefetched entry serves one read only, and the prediction holds.
func TestTwoSignInsOfOneUserInABatch(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.Shared(t).NewDatabase(t))
	id := storetest.VerifiedDevice(t, s, "alice", "Phone", 10)
	var steps []int64
	var won []bool
	signIn := channels.Unit{UserID: "alice", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
		_, methods, err := tx.UserAndMethods(ctx, "alice")
		if err != nil || len(methods) != 1 {
			return fmt.Errorf("read alice: %+v %v", methods, err)
		}
		steps = append(steps, methods[0].LastUsedStep)
		ok, err := tx.ClaimStep(ctx, id, 11, t0)
		won = append(won, ok)
		return err
	}}
	for i, err := range s.Write(ctx, []channels.Unit{signIn, signIn}) {
		if err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
	}
	if !slices.Equal(steps, []int64{10, 11}) || !slices.Equal(won, []bool{true, false}) || postgres.Mispredicted(s) != 0 {
		t.Fatalf("the units read steps %v and claimed %v, %d mispredicted batches; want [10 11], [true false], 0",
			steps, won, postgres.Mispredicted(s))
	}
}

// TestBadUserIDFailsOnlyItsUnit: a user id PostgreSQL cannot store (a NUL inside)
// fails its own unit; the batch's shared prefetch leaves it out, so the others commit.
func TestBadUserIDFailsOnlyItsUnit(t *testing.T) {
	ctx := context.Background()
	s := open(t, pgtest.Shared(t).NewDatabase(t))
	units := []channels.Unit{
		{UserID: "bob", Run: func(ctx context.Context, tx channels.Tx) error {
			if err := tx.EnsureUser(ctx, "bob", t0); err != nil {
				return err
			}
			return tx.Append(ctx, event("bob", 0))
		}},
		{UserID: "a\x00b", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
			_, _, err := tx.UserAndMethods(ctx, "a\x00b")
			return err
		}},
	}
	errs := s.Write(ctx, units)
	if errs[0] != nil || errs[1] == nil {
		t.Fatalf("unit errors %v; want bob's committed and the bad id's refused", errs)
	}
}
