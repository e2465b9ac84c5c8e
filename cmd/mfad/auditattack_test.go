package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuditRewriteAttackOnADataDirCopy is the attack of issue 11 against the real
// binary: someone with a copy of the data dir (the database, without the JetStream
// store) rewrites one record and recomputes every later link, as a plain hash chain
// allowed. `mfad audit verify`, which has the chain key, names the rewritten record.
func TestAuditRewriteAttackOnADataDirCopy(t *testing.T) {
	dataDir := t.TempDir()
	const secret = "audit-attack-test-secret-of-32-bytes!!"
	p := startMFAD(t, "mfad", "MFAD_DATA_DIR="+dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0",
		"MFAD_NATS_LISTEN=127.0.0.1:0", "MFAD_JWT_SECRET="+secret)
	base := "http://" + p.httpAddr()
	c := newAPIClient(secret, 10*time.Second)
	for _, user := range []string{"alice", "bob", "carol"} {
		tok := c.token(t, user)
		for i := range 3 {
			a, err := c.do(http.MethodPost, base+"/api/v1/mfa/totp/setup", tok, fmt.Sprintf(`{"device_name":"d%d"}`, i))
			if err != nil || a.status != http.StatusOK {
				t.Fatalf("setup: %v %d %s", err, a.status, a.raw)
			}
		}
	}
	p.stopCleanly()

	// The copy: everything but nats/.
	copyDir := t.TempDir()
	entries, err := os.ReadDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		copyFile(t, filepath.Join(dataDir, e.Name()), filepath.Join(copyDir, e.Name()))
	}
	if code, out, errOut := mfadExit(t, "audit", "verify", "--data-dir", copyDir); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("the untouched copy: exit %d, %q %q", code, out, errOut)
	}

	db, err := sql.Open("sqlite3", "file:"+filepath.Join(copyDir, "mfad.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var last int64
	if err := db.QueryRow("SELECT max(seq) FROM audit_log").Scan(&last); err != nil || last < 10 {
		t.Fatalf("%d records (%v): too few to attack the middle", last, err)
	}
	target := last / 2
	for _, stmt := range []string{"DROP TRIGGER audit_log_no_update",
		fmt.Sprintf("UPDATE audit_log SET actor = 'mallory', user_id = 'mallory' WHERE seq = %d", target)} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	var prev []byte
	if err := db.QueryRow("SELECT hash FROM audit_log WHERE seq = ?", target-1).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	for seq := target; seq <= last; seq++ {
		var id, typ, user, actor, entry, source, body string
		var created int64
		err := db.QueryRow("SELECT event_id, type, user_id, actor, entry_point, source, body, created_at FROM audit_log WHERE seq = ?", seq).
			Scan(&id, &typ, &user, &actor, &entry, &source, &body, &created)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		h.Write(prev)
		put := func(v int64) { var n [8]byte; binary.BigEndian.PutUint64(n[:], uint64(v)); h.Write(n[:]) }
		put(seq)
		for _, s := range []string{id, typ, user, actor, entry, source, body} {
			put(int64(len(s)))
			h.Write([]byte(s))
		}
		put(created)
		sum := h.Sum(nil)
		if _, err := db.Exec("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?", prev, sum, seq); err != nil {
			t.Fatal(err)
		}
		prev = sum
	}
	db.Close()

	code, out, errOut := mfadExit(t, "audit", "verify", "--data-dir", copyDir)
	if code != 1 || out != "" || !strings.Contains(errOut, fmt.Sprintf("audit record %d altered", target)) {
		t.Fatalf("rewritten and recomputed: exit %d, stdout %q, stderr %q; want record %d named", code, out, errOut, target)
	}
	// Without the key nothing is verified at all: a verifier cannot be fooled into
	// checking the plain hashes the attacker can make.
	if err := os.Remove(filepath.Join(copyDir, auditKeyFile)); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := mfadExit(t, "audit", "verify", "--data-dir", copyDir); code != 1 || !strings.Contains(errOut, "no audit chain key") {
		t.Fatalf("without the key: exit %d, %q", code, errOut)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
