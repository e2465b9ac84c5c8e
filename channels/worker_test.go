package channels_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	. "github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

var (
	key         = sqlitetest.Key
	quietLogger = sqlitetest.Quiet
)

// newTestWorker runs a worker without NATS on a fresh store; tests call Do. db is a
// connection to the store's file for the test to look at the tables.
func newTestWorker(t *testing.T, path string, cfg Config, keys ...[]byte) (*Worker, *sql.DB) {
	t.Helper()
	w, store := sqlitetest.Worker(t, path, cfg, keys...)
	return w, sqlitetest.DB(t, store)
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
	return sqlitetest.Count(t, db, query, args...)
}

func TestWrongKeyFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mfad.db")
	w, store := sqlitetest.Worker(t, path, Config{}, key(1))
	if r := do(t, w, mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: "Phone"}); !r.OK {
		t.Fatalf("setup: %+v", r)
	}
	w.Stop(context.Background())
	store.Close()

	store2 := sqlitetest.Open(t, path)
	wrong, _ := NewSealer(key(2))
	_, err := NewWorker(Config{Logger: quietLogger()}, store2, wrong)
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
	sqlitetest.DB(t, store2).QueryRow("SELECT value FROM store_meta WHERE name = 'key_canary'").Scan(&canary)
	if KeyOf(canary) != KeyID(key(2)) {
		t.Fatal("canary not re-sealed with the new primary key")
	}
}

// TestFaultRollsBackStateAndAudit: a command that changed state and appended audit
// records, then failed before commit, leaves neither behind; the commands batched with
// it are not affected.
func TestFaultRollsBackStateAndAudit(t *testing.T) {
	w, store := sqlitetest.Worker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{BatchWait: 50 * time.Millisecond}, key(1))
	w.AddRoute("test.fault", func(ctx context.Context, tx Tx, cmd *mfa.Command, now time.Time) error {
		if err := tx.EnsureUser(ctx, cmd.UserID, now); err != nil {
			return err
		}
		if err := w.SetSignInForTest(ctx, tx, cmd, now); err != nil {
			return err
		}
		return errors.New("disk on fire")
	})
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
	db := sqlitetest.DB(t, store)
	if n := count(t, db, "SELECT count(*) FROM users WHERE id = 'mallory'"); n != 0 {
		t.Fatal("the failed command's user row survived")
	}
	if n := count(t, db, "SELECT count(*) FROM audit_log WHERE user_id = 'mallory'"); n != 0 {
		t.Fatal("the failed command's audit records survived")
	}
	if n := count(t, db, "SELECT count(*) FROM audit_log WHERE type = ?", mfa.EventTOTPDeviceSetUp); n != 2 {
		t.Fatalf("%d setup events, want 2", n)
	}
	// The rolled-back command took no place in the chain.
	if n, err := audit.Verify(context.Background(), store.Records(), sqlitetest.Chain()); err != nil || n != 2 {
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
	if n := count(t, store, "SELECT count(*) FROM methods"); n != 1 {
		t.Fatalf("%d methods after a repeated key", n)
	}
	// Keys are per user: bob's k1 is his own.
	cmd.UserID, cmd.Actor = "bob", "bob"
	if r, _ := w.Do(context.Background(), cmd); r.Replayed {
		t.Fatal("bob got alice's reply")
	}
	// After the window, the key is free again.
	w.SetClock(func() time.Time { return time.Now().Add(IdempotencyWindow + time.Minute) })
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
	now = now.Add(7 * time.Minute)
	if r := register(); !r.OK {
		t.Fatalf("after the window: %+v", r)
	}
	// Nothing of the refused send was kept: three sends, three pending codes replaced.
	if n := count(t, store, "SELECT count(*) FROM audit_log WHERE type = ?", mfa.EventChannelCodeSent); n != 4 {
		t.Fatalf("%d codes sent, want 4", n)
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

// TestStopAnswersEveryRead: reads racing a Stop each get an answer, their result or
// SERVICE_UNAVAILABLE, and none is left waiting; reads after it are refused.
func TestStopAnswersEveryRead(t *testing.T) {
	w, _ := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{ReadConcurrency: 2}, key(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func(i int) (mfa.Reply, error) {
		user := "u" + strconv.Itoa(i%5)
		return w.Do(ctx, mfa.Command{ID: mfa.NewID(), Type: mfa.CmdStatus, UserID: user, Actor: user})
	}
	if r, err := read(0); err != nil || !r.OK {
		t.Fatalf("read before Stop: %+v, %v", r, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			r, err := read(i)
			switch {
			case err != nil:
				errs <- fmt.Errorf("read %d left waiting: %w", i, err)
			case !r.OK && r.Code != mfa.CodeUnavailable:
				errs <- fmt.Errorf("read %d: %s", i, r.Code)
			}
		})
		if i == 100 {
			if err := w.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if r, err := read(0); err != nil || r.Code != mfa.CodeUnavailable {
		t.Errorf("read after Stop: %+v, %v; want SERVICE_UNAVAILABLE", r, err)
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
	db := store
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
	if r := w.RunSweep(); !r.OK {
		t.Fatalf("sweep: %+v", r)
	}
}

// TestCommandNeedsIDAndActor: a message that is not a command from an entry point (an
// event delivered to mfa.cmd.> by a misconfigured consumer, say) changes nothing.
func TestCommandNeedsIDAndActor(t *testing.T) {
	w, db := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{}, key(1))
	for _, cmd := range []mfa.Command{
		{Type: mfa.CmdSignInDisable, UserID: "alice", Actor: "alice"},
		{ID: mfa.NewID(), Type: mfa.CmdSignInDisable, UserID: "alice"},
	} {
		r, err := w.Do(context.Background(), cmd)
		if err != nil || r.OK || r.Code != mfa.CodeValidation {
			t.Fatalf("%+v: %+v %v", cmd, r, err)
		}
	}
	if n := count(t, db, "SELECT count(*) FROM audit_log"); n != 0 {
		t.Fatalf("%d audit records", n)
	}
}

// TestCommandUserIDMustBeValid: a command published on NATS by a client other than the
// API meets the API's user id rule; nothing of it reaches the store.
func TestCommandUserIDMustBeValid(t *testing.T) {
	w, db := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{}, key(1))
	for _, user := range []string{"a\x00b", "\x00key_canary", "bad\xffutf8", "right\u202eleft", strings.Repeat("x", 129)} {
		r := do(t, w, mfa.CmdVerify, user, mfa.VerifyParams{Code: "123456"})
		if r.OK || r.Code != mfa.CodeValidation {
			t.Fatalf("user id %q: %+v", user, r)
		}
	}
	long := strings.Repeat("é", 128)
	if r := do(t, w, mfa.CmdTOTPSetup, long, mfa.TOTPSetupParams{DeviceName: "Phone"}); !r.OK {
		t.Fatalf("128 characters (256 bytes): %+v", r)
	}
	if n, mine := count(t, db, "SELECT count(*) FROM audit_log"), count(t, db, "SELECT count(*) FROM audit_log WHERE user_id = ?", long); n == 0 || n != mine {
		t.Fatalf("%d audit records, %d of the valid command: want only its own", n, mine)
	}
}
