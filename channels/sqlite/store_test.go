package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels"
)

// TestStatementCacheNeverHoldsItsLockWhilePreparing: preparing waits for a connection;
// a transaction holding the last connection must still be able to look statements up
// meanwhile, or neither ever goes on (this deadlocked the read pool under load).
func TestStatementCacheNeverHoldsItsLockWhilePreparing(t *testing.T) {
	store, err := Open(context.Background(), filepath.Join(t.TempDir(), "mfad.db"), testChain(t))
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
