package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels"
)

// unpublished sets alice up (two audit records) and returns the seqs of the records
// not yet marked published.
func unpublished(t *testing.T) (*Store, int64, int64) {
	t.Helper()
	store := openStore(t, filepath.Join(t.TempDir(), "mfad.db"))
	w := testWorker(t, store, channels.Config{})
	do(t, w, mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: "phone"})
	recs, err := store.Outbox().Load(context.Background(), 1, 100)
	if err != nil || len(recs) == 0 {
		t.Fatalf("load audit records: %d, %v", len(recs), err)
	}
	return store, recs[0].Seq, recs[len(recs)-1].Seq
}

func backlog(t *testing.T, s *Store) int {
	t.Helper()
	n, _, err := s.Outbox().Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMarksRideOnTheNextBatch: a mark made while a command batch holds the writer is
// committed by that batch, without a transaction of its own, and is in the database
// when MarkPublished returns.
func TestMarksRideOnTheNextBatch(t *testing.T) {
	store, from, to := unpublished(t)
	started, release := make(chan struct{}), make(chan struct{})
	wrote := make(chan []error, 1)
	go func() {
		wrote <- store.Write(context.Background(), []channels.Unit{{UserID: "bob",
			Run: func(context.Context, channels.Tx) error {
				close(started)
				<-release
				return nil
			}}})
	}()
	<-started
	marked := make(chan error, 1)
	go func() { marked <- store.Outbox().MarkPublished(context.Background(), from, to, time.Now()) }()
	for queued := false; !queued; {
		store.marks.mu.Lock()
		queued = store.marks.open != nil
		store.marks.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-marked; err != nil {
		t.Fatalf("MarkPublished: %v", err)
	}
	if errs := <-wrote; errs[0] != nil {
		t.Fatalf("batch: %v", errs[0])
	}
	if n := backlog(t, store); n != 0 {
		t.Fatalf("backlog after MarkPublished = %d, want 0", n)
	}
	if n := store.markCommits.Load(); n != 0 {
		t.Fatalf("%d transactions of marks alone, want 0 (the batch carries the mark)", n)
	}
}

// TestMarksCommitThemselvesOnAnIdleWriter: with no batch coming, a mark takes the
// writer for a transaction of its own.
func TestMarksCommitThemselvesOnAnIdleWriter(t *testing.T) {
	store, from, to := unpublished(t)
	if n := backlog(t, store); n != int(to-from+1) {
		t.Fatalf("backlog before = %d, want %d", n, to-from+1)
	}
	if err := store.Outbox().MarkPublished(context.Background(), from, to, time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := backlog(t, store); n != 0 {
		t.Fatalf("backlog after MarkPublished = %d, want 0", n)
	}
	if n := store.markCommits.Load(); n != 1 {
		t.Fatalf("%d transactions of marks alone, want 1", n)
	}
}

// TestMarkAfterCloseFails: a mark that finds the store closed reports it, rather than
// waiting for a writer that is gone or claiming a commit.
func TestMarkAfterCloseFails(t *testing.T) {
	store, from, to := unpublished(t)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := store.Outbox().MarkPublished(context.Background(), from, to, time.Now()); err == nil {
		t.Fatal("MarkPublished on a closed store: no error")
	}
}
