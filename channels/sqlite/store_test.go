package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels"
)

// TestCheckpointsHappenBesideTheWriter: the writer never checkpoints inside a commit;
// the checkpointer copies the WAL back into the database within a few ticks.
func TestCheckpointsHappenBesideTheWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mfad.db")
	store, err := Open(context.Background(), path, testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w := testWorker(t, store, channels.Config{})
	var auto int
	if err := store.writer.queryRow(context.Background(), "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
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

// TestFilesOwnerOnly: the database, its WAL and shared memory are readable by their
// owner only, also when an older mfad left them readable by others.
func TestFilesOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mfad.db")
	store, err := Open(context.Background(), path, testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	w := testWorker(t, store, channels.Config{})
	do(t, w, mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: "x"})
	check := func(when string) {
		t.Helper()
		for _, name := range []string{"mfad.db", "mfad.db-wal", "mfad.db-shm"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if mode := fi.Mode().Perm(); mode != 0o600 {
				t.Fatalf("%s: %s has mode %o, want 600", when, name, mode)
			}
		}
	}
	check("new database")
	w.Stop(context.Background())
	store.Close()
	for _, name := range []string{"mfad.db", "mfad.db-wal", "mfad.db-shm"} {
		os.Chmod(filepath.Join(dir, name), 0o644)
	}
	store, err = Open(context.Background(), path, testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	do(t, testWorker(t, store, channels.Config{}), mfa.CmdTOTPSetup, "bob", mfa.TOTPSetupParams{DeviceName: "x"})
	check("reopened after an older mfad")
}

// TestWALShrinksWhenIdle: a burst grows the WAL. For the keep delay after the last
// busy tick the file stays, for the next burst to reuse, although small writes (the
// sweep's, the readiness probe's) go on; past the delay the checkpointer truncates it,
// so it does not keep the size of its busiest moment.
func TestWALShrinksWhenIdle(t *testing.T) {
	dir := t.TempDir()
	store, err := Open(context.Background(), filepath.Join(dir, "mfad.db"), testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var limit int64
	if err := store.writer.queryRow(context.Background(), "PRAGMA journal_size_limit").Scan(&limit); err != nil || limit != walSizeLimit {
		t.Fatalf("writer journal_size_limit = %d (%v), want %d", limit, err, walSizeLimit)
	}
	if got := time.Duration(store.walKeep.Load()); got != keepWAL {
		t.Fatalf("WAL kept %s, want %s", got, keepWAL)
	}
	const keep = 3 * checkpointEvery
	store.walKeep.Store(int64(keep))
	store.writerIdle.Store(int64(300 * time.Millisecond))
	store.busyFrames.Store(16)
	w := testWorker(t, store, channels.Config{})
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; store.lastBusy.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("writes never made a checkpointer tick busy")
		}
		do(t, w, mfa.CmdTOTPSetup, "u"+strconv.Itoa(i%500), mfa.TOTPSetupParams{DeviceName: "x"})
	}
	busy := time.Unix(0, store.lastBusy.Load())
	wal := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, "mfad.db-wal"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	burst := wal()
	if burst == 0 {
		t.Fatal("the burst left no WAL: nothing to watch shrink")
	}
	small := func() {
		if err := store.Writable(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// Before the delay, with a small write every 700 ms: the file keeps its size.
	for time.Since(busy) < keep-checkpointEvery {
		small()
		time.Sleep(700 * time.Millisecond)
		if n := store.walTruncates.Load(); n > 0 {
			t.Fatalf("the WAL was truncated %s after the last busy tick, before the %s delay", time.Since(busy), keep)
		}
		if size := wal(); size < burst {
			t.Fatalf("the WAL shrank from %d to %d bytes %s after the last busy tick", burst, size, time.Since(busy))
		}
	}
	// Past it, the small writes go on and the WAL is truncated between them.
	deadline = time.Now().Add(keep + 15*time.Second)
	for store.walTruncates.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL is still %d bytes %s after the last busy tick", wal(), time.Since(busy))
		}
		small()
		time.Sleep(700 * time.Millisecond)
	}
	if since := time.Since(time.Unix(0, store.lastBusy.Load())); since < keep {
		t.Fatalf("the WAL was truncated %s after the last busy tick, before the %s delay", since, keep)
	}
	for wal() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the WAL is still %d bytes with the writer idle", wal())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWALRestartsUnderSustainedWrites: with the writer never idle long enough for the
// idle truncation, the checkpointer still has SQLite start the WAL over once it passes
// its limit, so the file is reused instead of growing with every write.
func TestWALRestartsUnderSustainedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mfad.db")
	store := openStore(t, path)
	store.walRestartAt.Store(1 << 20)
	w := testWorker(t, store, channels.Config{})
	// Salt-1 of the WAL header changes each time SQLite starts the WAL over.
	salt := func() uint32 {
		h := make([]byte, 32)
		f, err := os.Open(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := io.ReadFull(f, h); err != nil {
			t.Fatal(err)
		}
		return binary.BigEndian.Uint32(h[16:20])
	}
	do(t, w, mfa.CmdTOTPSetup, "first", mfa.TOTPSetupParams{DeviceName: "x"})
	before := salt()
	deadline := time.Now().Add(4 * checkpointEvery)
	for i := 0; time.Now().Before(deadline); i++ {
		do(t, w, mfa.CmdTOTPSetup, "u"+strconv.Itoa(i%500), mfa.TOTPSetupParams{DeviceName: "x"})
	}
	if n := store.walRestarts.Load(); n == 0 {
		t.Fatalf("no WAL restart in %s of writes", 4*checkpointEvery)
	}
	if after := salt(); after == before {
		t.Fatalf("WAL salt still %#x after %d restart checkpoints: SQLite never started the WAL over",
			after, store.walRestarts.Load())
	}
}

// pinnedSnapshot opens a store whose checkpoints the test runs itself and a read
// transaction on its first write, then writes until a passive checkpoint leaves more
// than left frames behind that reader. The transaction is rolled back when the test
// ends, unless the test did so.
func pinnedSnapshot(t *testing.T, left int) (*Store, *sql.Tx) {
	t.Helper()
	store := openStore(t, filepath.Join(t.TempDir(), "mfad.db"))
	store.stopCheckpoint()
	<-store.checkpointDone
	w := testWorker(t, store, channels.Config{})
	do(t, w, mfa.CmdTOTPSetup, "first", mfa.TOTPSetupParams{DeviceName: "x"})
	ctx := context.Background()
	reader, err := store.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reader.Rollback() })
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM methods").Scan(&n); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		wal, copied, err := store.passiveCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if wal-copied > left {
			return store, reader
		}
		do(t, w, mfa.CmdTOTPSetup, "u"+strconv.Itoa(i), mfa.TOTPSetupParams{DeviceName: "x"})
	}
}

// TestWALRestartWaitsForAnOldSnapshot: a reader holding a snapshot from before the
// WAL's newest frames keeps them from being copied back, so the checkpointer does not
// take the writer to restart it; once the reader is done, it does. That holds as well
// on a disk where no passive pass is ever quick enough to end the passes early.
func TestWALRestartWaitsForAnOldSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		quiet time.Duration
	}{
		{"quick passes", quickPass},
		{"no pass quick", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, reader := pinnedSnapshot(t, 2*restartLeft)
			store.quickPass.Store(int64(tc.quiet))
			ctx := context.Background()
			store.restartWAL(ctx)
			if got := store.walHolds.Load(); got != 0 {
				t.Fatalf("the writer was held back %d times while a reader held an old snapshot", got)
			}
			if got := store.walRestarts.Load(); got != 0 {
				t.Fatalf("%d restarts while a reader held an old snapshot", got)
			}
			if err := reader.Rollback(); err != nil {
				t.Fatal(err)
			}
			store.restartWAL(ctx)
			if got := store.walRestarts.Load(); got != 1 {
				t.Fatalf("%d restarts after the reader ended, want 1", got)
			}
		})
	}
}

// TestPassiveCheckpointReportsAnotherCheckpointer: while another connection (mfad keys,
// the sqlite3 shell, a backup tool) holds the checkpoint lock, SQLite answers a
// passive checkpoint with (1, -1, -1). That must come back as an error, not as a WAL
// with nothing left to copy, which would have restartWAL hold the writer for nothing.
func TestPassiveCheckpointReportsAnotherCheckpointer(t *testing.T) {
	// A reader on a snapshot older than the WAL's last frames: a RESTART checkpoint on
	// another connection holds the checkpoint lock while it waits for the reader.
	store, reader := pinnedSnapshot(t, 0)
	ctx := context.Background()
	other, err := sql.Open("sqlite3", "file:"+store.path+"?_busy_timeout=2000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	// The other checkpoint is refused at once when it meets one of ours; try again.
	saw := false
	for attempt := 0; attempt < 20 && !saw; attempt++ {
		done := make(chan struct{})
		go func() {
			defer close(done)
			var busy, wal, copied int
			_ = other.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &wal, &copied)
		}()
		for !saw {
			select {
			case <-done:
			case <-time.After(time.Millisecond):
				_, _, err := store.passiveCheckpoint(ctx)
				if err != nil && !errors.Is(err, errCheckpointBusy) {
					t.Fatal(err)
				}
				saw = err != nil
				continue
			}
			break
		}
		if saw {
			if err := reader.Rollback(); err != nil { // lets the other checkpoint end
				t.Fatal(err)
			}
		}
		<-done
	}
	if !saw {
		t.Fatal("no passive checkpoint reported the other connection's checkpoint")
	}
	if _, _, err := store.passiveCheckpoint(ctx); err != nil {
		t.Fatalf("passive checkpoint after the other one ended: %v", err)
	}
}
