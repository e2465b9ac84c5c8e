package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels/sqlite"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// auditDataDir makes a data dir whose mfad.db holds n audit records, and returns the
// open store too (closed when the test ends).
func auditDataDir(t *testing.T, n int) (string, *sqlite.Store) {
	t.Helper()
	dir := t.TempDir()
	// The chain key lives beside the database, as serve keeps it without MFAD_AUDIT_KEY.
	key := base64.StdEncoding.EncodeToString(sqlitetest.ChainKey) + "\n"
	if err := os.WriteFile(filepath.Join(dir, auditKeyFile), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	store := sqlitetest.Open(t, filepath.Join(dir, "mfad.db"))
	kinds := []string{mfa.EventTOTPDeviceVerified, mfa.EventVerifyFailed, mfa.EventSignInDisabled}
	for i := range n {
		sqlitetest.Append(t, store, mfa.Event{ID: mfa.NewID(), Type: kinds[i%len(kinds)],
			UserID: "alice", Actor: "alice", Source: "pc", EntryPoint: "bank-app",
			Object: mfa.EventObject{Type: mfa.ObjectTOTPDevice, ID: fmt.Sprint(i + 1)}, Time: time.Now()})
	}
	return dir, store
}

// auditRun runs the program in-process with no environment.
func auditRun(t *testing.T, ctx context.Context, stdout io.Writer, args ...string) error {
	t.Helper()
	return run(ctx, args, func(string) string { return "" }, stdout, io.Discard)
}

// TestAuditHelperProcess is the mfad binary when run by mfadExit: it lets a test see
// the real exit status of main without building the binary.
func TestAuditHelperProcess(t *testing.T) {
	if os.Getenv("MFAD_AUDIT_HELPER") != "1" {
		t.Skip("helper process for the exit status tests")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Args = append([]string{"mfad"}, args...)
	main()
	os.Exit(0)
}

// mfadExit runs mfad with args in a process of its own and returns its exit status
// and output.
func mfadExit(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestAuditHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "MFAD_AUDIT_HELPER=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errOut.String()
	}
	t.Fatal(err)
	return 0, "", ""
}

func TestAuditVerifyExitStatus(t *testing.T) {
	dir, store := auditDataDir(t, 6)
	code, out, _ := mfadExit(t, "audit", "verify", "--data-dir", dir)
	if code != 0 || out != "ok: 6 records\n" {
		t.Fatalf("intact log: exit %d, output %q", code, out)
	}

	// Tamper as someone with write access to the file would.
	db := sqlitetest.DB(t, store)
	for _, stmt := range []string{
		"DROP TRIGGER audit_log_no_update",
		"UPDATE audit_log SET actor = 'mallory' WHERE seq = 4",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := mfadExit(t, "audit", "verify", "--data-dir", dir)
	if code != 1 || out != "" || !strings.Contains(errOut, "audit record 4 altered") {
		t.Fatalf("altered log: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	empty := t.TempDir()
	code, _, errOut = mfadExit(t, "audit", "verify", "--data-dir", empty)
	if code != 1 || !strings.Contains(errOut, "no database") {
		t.Fatalf("no database: exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(empty, "mfad.db")); err == nil {
		t.Fatal("verify created a database")
	}
	if code, _, _ := mfadExit(t, "audit", "verify", "--data-dir"); code != 2 {
		t.Fatalf("flag without value: exit %d, want 2", code)
	}
}

func TestAuditHelp(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"audit", "--help"}, {"help", "audit"}} {
		var out bytes.Buffer
		if err := auditRun(t, ctx, &out, args...); err != nil || !strings.Contains(out.String(), "verify") ||
			!strings.Contains(out.String(), "sink") {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
	}
	for _, sub := range []string{"verify", "tail", "sink"} {
		var out bytes.Buffer
		err := auditRun(t, ctx, &out, "audit", sub, "--help")
		if err != nil || !strings.Contains(out.String(), "Usage: mfad audit "+sub) ||
			!strings.Contains(out.String(), "[MFAD_") || !strings.Contains(out.String(), "Ends on") && sub != "verify" {
			t.Fatalf("audit %s --help: %v\n%s", sub, err, out.String())
		}
	}
	var usage usageError
	if err := auditRun(t, ctx, io.Discard, "audit"); !errors.As(err, &usage) {
		t.Fatalf("audit without a command: %v", err)
	}
	if err := auditRun(t, ctx, io.Discard, "audit", "sink"); !errors.As(err, &usage) {
		t.Fatalf("sink without --db: %v", err)
	}
	if err := auditRun(t, ctx, io.Discard, "audit", "tail", "--since", "yesterday"); !errors.As(err, &usage) {
		t.Fatalf("tail --since yesterday: %v", err)
	}
}

// publishedBus starts NATS, relays a data dir's audit log into MFA_EVENTS and returns
// the server URL and a JetStream context.
func publishedBus(t *testing.T, store *sqlite.Store) (string, jetstream.JetStream) {
	t.Helper()
	ns := natstest.Server(t)
	js := natstest.JetStream(t, natstest.Connect(t, ns.ClientURL()))
	relay := audit.NewRelay(store.Outbox(), js, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := relay.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	return ns.ClientURL(), js
}

// sinkRows reads the sink's rows: event id → audit seq.
func sinkRows(t *testing.T, path string) map[string]int64 {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT event_id, audit_seq FROM events")
	if err != nil {
		return nil // not created yet
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			t.Fatal(err)
		}
		out[id] = seq
	}
	return out
}

// sinkUntil runs `mfad audit sink` until the sink holds want rows, then stops it as
// SIGTERM would (its context ends) and checks it returned cleanly.
func sinkUntil(t *testing.T, url, path, durable string, want int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- auditRun(t, ctx, io.Discard, "audit", "sink", "--db", path, "--nats-url", url, "--durable", durable, "--batch", "7")
	}()
	deadline := time.Now().Add(15 * time.Second)
	for len(sinkRows(t, path)) < want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let a redelivery, if any, land too
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sink: %v", err)
	}
}

func TestAuditSinkStoresEachEventOnce(t *testing.T) {
	dir, store := auditDataDir(t, 25)
	url, js := publishedBus(t, store)
	ctx := context.Background()
	// A message that is not an audit event is skipped, not stored.
	if _, err := js.Publish(ctx, "mfa.events.foreign.note", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sink", "audit.db")

	sinkUntil(t, url, path, "sink-a", 25)
	check := func() {
		t.Helper()
		rows := sinkRows(t, path)
		if len(rows) != 25 {
			t.Fatalf("sink holds %d rows, want 25", len(rows))
		}
		seen := map[int64]bool{}
		for _, seq := range rows {
			seen[seq] = true
		}
		for seq := int64(1); seq <= 25; seq++ {
			if !seen[seq] {
				t.Fatalf("audit seq %d missing from the sink", seq)
			}
		}
	}
	check()

	// Deliver every event again: the durable consumer is deleted and recreated, so
	// JetStream sends the whole stream a second time. Still one row each.
	if err := js.DeleteConsumer(ctx, activity.EventsStream, "sink-a"); err != nil {
		t.Fatal(err)
	}
	sinkUntil(t, url, path, "sink-a", 25)
	check()
	// A second consumer name over the same file: a third delivery, same rows.
	sinkUntil(t, url, path, "sink-b", 25)
	check()

	// The sink's copy verifies against the source: same ids, same bodies.
	src, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "mfad.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Exec("ATTACH DATABASE ? AS sink", "file:"+path+"?mode=ro"); err != nil {
		t.Fatal(err)
	}
	var mismatches int
	err = src.QueryRow(`SELECT count(*) FROM audit_log a WHERE NOT EXISTS
		(SELECT 1 FROM sink.events e WHERE e.event_id = a.event_id AND e.body = a.body AND e.audit_seq = a.seq)`).Scan(&mismatches)
	if err != nil || mismatches != 0 {
		t.Fatalf("sink differs from the audit log: %d rows (%v)", mismatches, err)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer and a reader at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestAuditTailFromASeq(t *testing.T) {
	_, store := auditDataDir(t, 40)
	url, js := publishedBus(t, store)
	// Foreign content in the middle must not confuse the search for the start.
	if _, err := js.Publish(context.Background(), "mfa.events.foreign.note", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() { done <- auditRun(t, ctx, &out, "audit", "tail", "--nats-url", url, "--since", "37") }()

	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < 5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("tail printed %d lines:\n%s", len(lines), out.String())
	}
	for i, want := range []string{" 37  ", " 38  ", " 39  ", " 40  ", "not an audit event"} {
		if !strings.Contains(lines[i], want) {
			t.Fatalf("line %d = %q, want %q in it", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], "totp.device_verified") || !strings.Contains(lines[0], "user=alice actor=alice") ||
		!strings.Contains(lines[0], "alice: a TOTP device was verified") {
		t.Fatalf("line = %q", lines[0])
	}
}
