package channels

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

// newTestWorker runs a worker without NATS on a fresh store; tests call Do.
func newTestWorker(t *testing.T, path string, cfg Config, keys ...[]byte) (*Worker, *Store) {
	t.Helper()
	store, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sealer, err := NewSealer(keys...)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = quietLogger()
	w, err := NewWorker(cfg, store, sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })
	return w, store
}

func do(t *testing.T, w *Worker, typ, user string, params any) mfa.Reply {
	t.Helper()
	cmd := mfa.Command{ID: mfa.NewID(), Type: typ, UserID: user, Actor: user}
	if params != nil {
		cmd.Params = mustJSON(t, params)
	}
	r, err := w.Do(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestWrongKeyFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mfad.db")
	w, store := newTestWorker(t, path, Config{}, key(1))
	if r := do(t, w, mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: "Phone"}); !r.OK {
		t.Fatalf("setup: %+v", r)
	}
	w.Stop(context.Background())
	store.Close()

	store2, err := OpenStore(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	wrong, _ := NewSealer(key(2))
	_, err = NewWorker(Config{Logger: quietLogger()}, store2, wrong)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), KeyID(key(1))) ||
		!strings.Contains(err.Error(), KeyID(key(2))) {
		t.Fatalf("start with the wrong key: %v", err)
	}
	// Rotation: the new key first, the old one still configured to open old values.
	rotated, _ := NewSealer(key(2), key(1))
	w2, err := NewWorker(Config{Logger: quietLogger()}, store2, rotated)
	if err != nil {
		t.Fatalf("start with rotated keys: %v", err)
	}
	defer w2.Stop(context.Background())
	var canary []byte
	store2.write.QueryRow("SELECT value FROM store_meta WHERE name = 'key_canary'").Scan(&canary)
	if KeyOf(canary) != KeyID(key(2)) {
		t.Fatal("canary not re-sealed with the new primary key")
	}
}

func TestSealer(t *testing.T) {
	s, _ := NewSealer(key(3))
	sealed := s.Seal([]byte("JBSWY3DPEHPK3PXP"), []byte("alice"))
	if bytes.Contains(sealed, []byte("JBSWY3DPEHPK3PXP")) {
		t.Fatal("plaintext visible")
	}
	if got, err := s.Open(sealed, []byte("alice")); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open(sealed, []byte("bob")); err == nil {
		t.Fatal("a value sealed for alice opened for bob")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(sealed, []byte("alice")); err == nil {
		t.Fatal("a tampered value opened")
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
	id, sum := s.Hash("alice", "abcd-efgh")
	if !s.Match(id, "alice", "abcd-efgh", sum) || s.Match(id, "bob", "abcd-efgh", sum) || s.Match(id, "alice", "abcd-efgi", sum) {
		t.Fatal("keyed hash matches wrongly")
	}
}

// TestFaultRollsBackStateAndAudit: a command that changed state and appended audit
// records, then failed before commit, leaves neither behind; the commands batched with
// it are not affected.
func TestFaultRollsBackStateAndAudit(t *testing.T) {
	w, store := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{BatchWait: 50 * time.Millisecond}, key(1))
	w.routes["test.fault"] = route{fn: func(ctx context.Context, tx *dbTx, c *call) (any, error) {
		if err := ensureUser(ctx, tx, c.cmd.UserID, c.now); err != nil {
			return nil, err
		}
		if err := w.setSignIn(ctx, tx, c, true, "test"); err != nil {
			return nil, err
		}
		return nil, errors.New("disk on fire")
	}}
	var wg sync.WaitGroup
	replies := make([]mfa.Reply, 3)
	for i, typ := range []string{mfa.CmdTOTPSetup, "test.fault", mfa.CmdTOTPSetup} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = do(t, w, typ, []string{"alice", "mallory", "bob"}[i], mfa.TOTPSetupParams{DeviceName: "Phone"})
		}()
	}
	wg.Wait()
	if !replies[0].OK || !replies[2].OK || replies[1].OK || replies[1].Code != mfa.CodeInternal {
		t.Fatalf("replies %+v", replies)
	}
	db := store.Reader()
	if n := count(t, db, "SELECT count(*) FROM users WHERE id = 'mallory'"); n != 0 {
		t.Fatal("the failed command's user row survived")
	}
	if n := count(t, db, "SELECT count(*) FROM audit_log WHERE user_id = 'mallory'"); n != 0 {
		t.Fatal("the failed command's audit records survived")
	}
	if n := count(t, db, "SELECT count(*) FROM audit_log WHERE type = ?", mfa.EventTOTPDeviceSetUp); n != 2 {
		t.Fatalf("%d setup events, want 2", n)
	}
	// The chain skips the rolled-back record: the command after it chained to the
	// record before it (the transaction's cached chain head was forgotten).
	if n, err := audit.Verify(context.Background(), db); err != nil || n != 2 {
		t.Fatalf("audit chain after a rolled-back command: %d records, %v", n, err)
	}
}

func TestIdempotentCommandAppliesOnce(t *testing.T) {
	w, store := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{}, key(1))
	cmd := mfa.Command{ID: mfa.NewID(), Key: "k1", Type: mfa.CmdTOTPSetup, UserID: "alice", Actor: "alice",
		Params: mustJSON(t, mfa.TOTPSetupParams{DeviceName: "Phone"})}
	first, _ := w.Do(context.Background(), cmd)
	cmd.ID = mfa.NewID()
	second, _ := w.Do(context.Background(), cmd)
	if !first.OK || !second.Replayed || string(first.Data) != string(second.Data) {
		t.Fatalf("first %+v second %+v", first, second)
	}
	if n := count(t, store.Reader(), "SELECT count(*) FROM methods"); n != 1 {
		t.Fatalf("%d methods after a repeated key", n)
	}
	// Keys are per user: bob's k1 is his own.
	cmd.UserID, cmd.Actor = "bob", "bob"
	if r, _ := w.Do(context.Background(), cmd); r.Replayed {
		t.Fatal("bob got alice's reply")
	}
	// After the window, the key is free again.
	w.cfg.Now = func() time.Time { return time.Now().Add(IdempotencyWindow + time.Minute) }
	cmd.UserID, cmd.Actor = "alice", "alice"
	if r, _ := w.Do(context.Background(), cmd); r.Replayed || !r.OK {
		t.Fatalf("after the window: %+v", r)
	}
}

func TestCodeSendLimit(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	w, store := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"),
		Config{Now: clock, CodeSendLimit: 3, CodeSendWindow: 10 * time.Minute}, key(1))
	register := func() mfa.Reply {
		return do(t, w, mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Address: "+34600111222"})
	}
	for i := range 3 {
		if r := register(); !r.OK {
			t.Fatalf("send %d: %+v", i+1, r)
		}
		now = now.Add(time.Minute)
	}
	r := register()
	if r.OK || r.Code != mfa.CodeTooManyAttempts || r.RetryAfter != 7*60 {
		t.Fatalf("fourth send: %+v, want TOO_MANY_ATTEMPTS retry after 420 s", r)
	}
	var plan string
	store.Reader().QueryRow(`EXPLAIN QUERY PLAN SELECT count(*), min(created_at) FROM audit_log
		WHERE type = 'channel.code_sent' AND user_id = ? AND created_at > ?`, "alice", 0).Scan(new(int), new(int), new(int), &plan)
	if !strings.Contains(plan, "audit_log_codes_sent") {
		t.Fatalf("the send limit scans: %s", plan)
	}
	now = now.Add(7 * time.Minute)
	if r := register(); !r.OK {
		t.Fatalf("after the window: %+v", r)
	}
	// Nothing of the refused send was kept: three sends, three pending codes replaced.
	if n := count(t, store.Reader(), "SELECT count(*) FROM audit_log WHERE type = ?", mfa.EventChannelCodeSent); n != 4 {
		t.Fatalf("%d codes sent, want 4", n)
	}
}

// TestStatementCacheNeverHoldsItsLockWhilePreparing: preparing waits for a connection;
// a transaction holding the last connection must still be able to look statements up
// meanwhile, or neither ever goes on (this deadlocked the read pool under load).
func TestStatementCacheNeverHoldsItsLockWhilePreparing(t *testing.T) {
	store, err := OpenStore(context.Background(), filepath.Join(t.TempDir(), "mfad.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cache := newStmtCache(store.write) // one connection
	cache.lookup("SELECT 1")           // seen, to be prepared
	tx, err := store.write.Begin()     // the connection is now taken
	if err != nil {
		t.Fatal(err)
	}
	preparing := make(chan struct{})
	go func() { cache.prepareMissing(context.Background()); close(preparing) }()
	time.Sleep(50 * time.Millisecond) // prepareMissing is waiting for the connection
	looked := make(chan struct{})
	go func() { cache.lookup("SELECT 2"); close(looked) }()
	select {
	case <-looked:
	case <-time.After(5 * time.Second):
		t.Fatal("lookup blocked behind a prepare waiting for our own connection")
	}
	tx.Rollback()
	<-preparing
	if cache.lookup("SELECT 1") == nil {
		t.Fatal("SELECT 1 was not prepared once the connection was free")
	}
}

// TestConcurrentReadsDoNotStall: many reads at once on a fresh worker, while the
// statement cache is still filling, all answer (they once deadlocked on the cache).
func TestConcurrentReadsDoNotStall(t *testing.T) {
	w, _ := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{ReadConcurrency: 64}, key(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 256)
	for i := range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			typ := []string{mfa.CmdStatus, mfa.CmdTOTPList, mfa.CmdBackupCount, mfa.CmdSettings}[i%4]
			user := "u" + strconv.Itoa(i%7)
			r, err := w.Do(ctx, mfa.Command{ID: mfa.NewID(), Type: typ, UserID: user, Actor: user})
			if err != nil {
				errs <- err
			} else if !r.OK {
				errs <- errors.New(r.Code)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestSweepDeletesWhatExpired: old idempotent replies, pending setups nobody verified
// and dead one-time codes go; what is still valid stays.
func TestSweepDeletesWhatExpired(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w, store := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{Now: clock}, key(1))
	ctx := context.Background()
	w.Do(ctx, mfa.Command{ID: mfa.NewID(), Key: "old", Type: mfa.CmdTOTPSetup, UserID: "alice", Actor: "alice",
		Params: mustJSON(t, mfa.TOTPSetupParams{DeviceName: "x"})})
	do(t, w, mfa.CmdChannelRegister, "bob", mfa.ChannelParams{Channel: mfa.KindSMS, Address: "+34600111222"})
	mu.Lock()
	now = now.Add(IdempotencyWindow + time.Minute)
	mu.Unlock()
	w.Do(ctx, mfa.Command{ID: mfa.NewID(), Key: "new", Type: mfa.CmdTOTPSetup, UserID: "carol", Actor: "carol",
		Params: mustJSON(t, mfa.TOTPSetupParams{DeviceName: "x"})})

	runSweep(t, w)
	db := store.Reader()
	if n := count(t, db, "SELECT count(*) FROM commands"); n != 1 {
		t.Errorf("%d stored replies, want carol's alone", n)
	}
	if n := count(t, db, "SELECT count(*) FROM methods WHERE user_id IN ('alice', 'bob')"); n != 0 {
		t.Errorf("%d expired pending rows left", n)
	}
	if n := count(t, db, "SELECT count(*) FROM pending_codes"); n != 0 {
		t.Errorf("%d expired codes left", n)
	}
	if n := count(t, db, "SELECT count(*) FROM methods WHERE user_id = 'carol'"); n != 1 {
		t.Error("carol's fresh pending setup was swept")
	}
}

// runSweep runs one sweep through the writer and waits for it.
func runSweep(t *testing.T, w *Worker) {
	t.Helper()
	done := make(chan mfa.Reply, 1)
	if !w.enqueueSweep(func(r mfa.Reply) { done <- r }) {
		t.Fatal("worker stopped")
	}
	if r := <-done; !r.OK {
		t.Fatalf("sweep: %+v", r)
	}
}

// TestCheckpointsHappenBesideTheWriter: the writer never checkpoints inside a commit;
// the checkpointer copies the WAL back into the database within a few ticks.
func TestCheckpointsHappenBesideTheWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mfad.db")
	w, store := newTestWorker(t, path, Config{}, key(1))
	var auto int
	if err := store.write.QueryRow("PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writer wal_autocheckpoint = %d (%v), want 0", auto, err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	for i := range 300 {
		do(t, w, mfa.CmdTOTPSetup, "u"+strconv.Itoa(i), mfa.TOTPSetupParams{DeviceName: "x"})
	}
	// Only a checkpoint writes pages into the database file; nobody here asks for one.
	deadline := time.Now().Add(5 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("database file still %d bytes: no checkpoint ran", before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
