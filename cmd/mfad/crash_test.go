package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfad/mfad/activity"
	"github.com/mfad/mfad/activity/natstest"
)

// TestKill9UnderLoad (issue 5): `mfad serve` in its default shape (embedded NATS,
// SQLite in the data dir) is killed with SIGKILL while users enrol, sign in and remove
// devices. Then:
//   - the database passes PRAGMA integrity_check;
//   - every write answered 200 before the kill has its audit record (one, naming its
//     device): a reply never goes out before its commit;
//   - mfad starts again on the same data dir; the writes that were in flight are
//     resent with their Idempotency-Key and are applied at most once in all;
//   - the outbox drains, and MFA_EVENTS on the embedded server holds exactly one message
//     per audit row, in seq order, without duplicates, although the process died with
//     publishes in flight;
//   - `mfad audit verify` accepts the hash chain.
func TestKill9UnderLoad(t *testing.T) {
	const (
		secret = "crash-test-hs256-secret-of-at-least-32-bytes"
		users  = 16
		before = 150 // answered operations before the kill
	)
	dataDir := t.TempDir()
	env := []string{"MFAD_DATA_DIR=" + dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0", "MFAD_NATS_LISTEN=127.0.0.1:0",
		"MFAD_JWT_SECRET=" + secret}
	p := startMFAD(t, "mfad", env...)
	d := &loadDriver{t: t, client: newAPIClient(secret, 15*time.Second), bases: []string{baseURL(p)}, giveUp: 20 * time.Second}
	stop := make(chan struct{})
	wait := d.run(users, "crash", stop)
	pollUntil(t, 60*time.Second, fmt.Sprint(before, " answered operations"), func() bool {
		return d.ok.Load() >= before || d.failing()
	})
	d.report()
	d.crashed.Store(true)
	p.kill9()
	close(stop)
	wait()
	d.report()
	t.Logf("killed after %d answered operations (%d setups, %d removals); %d writes were in flight",
		d.ok.Load(), d.count(opSetup), d.count(opRemove), len(d.lost))

	dbPath := filepath.Join(dataDir, "mfad.db")
	db := openDB(t, dbPath, false)
	integrityOK(t, db)
	rows := readAudit(t, db)
	checkOpsHaveEvents(t, d.ops, rows, false)
	t.Logf("after the kill: %d audit rows, %d of them not yet published", len(rows), unpublished(db))
	db.Close()

	// Start again on the same data dir and resend what got no answer, as a client
	// would: same key, same request. Setups and removals carry no code that could
	// have expired meanwhile, so each must now be answered 200 (replayed or applied).
	p = startMFAD(t, "mfad again", env...)
	d.bases = []string{baseURL(p)}
	d.crashed.Store(false)
	for _, lost := range d.lost {
		if lost.op != opSetup && lost.op != opRemove {
			continue
		}
		u := &loadUser{id: lost.user, token: d.client.token(t, lost.user)}
		r := lost
		r.answered = false
		a, ok := d.send(u, &r)
		if !ok {
			d.report()
			t.Fatalf("resend of %s %s failed: %d %s", r.method, r.path, a.status, a.raw)
		}
		t.Logf("resent %s %s (key %s): replayed=%q", r.method, r.path, r.key, a.header.Get("Idempotent-Replayed"))
		if r.op == opSetup {
			id, _ := get(a.body, "data", "device_id").(float64)
			r.device = int64(id)
		}
		for i := range d.ops {
			if d.ops[i].key == r.key && d.ops[i].user == r.user {
				d.ops[i] = r
			}
		}
	}

	nl := p.waitLog("embedded NATS listening")
	addr, _ := nl["addr"].(string)
	js, _, err := activity.OpenStream(context.Background(), natstest.Connect(t, natsURLOf(t, dataDir, addr, "auditor")),
		activity.EventsStream, activity.DomainAuto)
	if err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dbPath, true)
	pollUntil(t, 30*time.Second, "drained outbox", func() bool {
		var last int64
		if err := db.QueryRow("SELECT coalesce(max(seq), 0) FROM audit_log").Scan(&last); err != nil {
			return false
		}
		return unpublished(db) == 0 && lastEventSeq(js) == last
	})
	checkReady(t, baseURL(p), []string{"nats", "database", "outbox"})

	for _, l := range p.logs() {
		if m := l["msg"]; m == "outbox reconciled" || m == "republishing audit events JetStream acknowledged but no longer holds" {
			t.Logf("after the restart the relay logged %q: %v", m, l)
		}
	}
	rows = readAudit(t, db)
	checkEventsMatchAudit(t, readEvents(t, js), rows)
	checkOpsHaveEvents(t, d.ops, rows, true)
	db.Close()
	p.stopCleanly()

	db = openDB(t, dbPath, true)
	integrityOK(t, db)
	db.Close()
	cmd := exec.Command(mfadBinary(t), "audit", "verify", "--data-dir", dataDir)
	cmd.Env = cleanEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || out.String() != fmt.Sprintf("ok: %d records\n", len(rows)) {
		t.Fatalf("mfad audit verify: %v, stdout %q, stderr %q", err, out.String(), strings.TrimSpace(errOut.String()))
	}
	t.Logf("%d audit rows, all in MFA_EVENTS once, in order; audit verify ok", len(rows))
}
