package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mfad/mfad/channels"
)

// TestKeysStatusAndReseal drives `mfad keys` on a data dir a real `mfad serve` left:
// status names the generated key as primary and what it holds; after a rotation
// (new key first, the generated one after it) reseal moves the secrets, and status
// shows the old key holding only what cannot be recomputed.
func TestKeysStatusAndReseal(t *testing.T) {
	dataDir := t.TempDir()
	const secret = "keys-status-test-secret-of-32-bytes!!!"
	p := startMFAD(t, "mfad", "MFAD_DATA_DIR="+dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0",
		"MFAD_NATS_LISTEN=127.0.0.1:0", "MFAD_JWT_SECRET="+secret)
	c := newAPIClient(secret, 10*time.Second)
	for _, user := range []string{"alice", "bob"} {
		if a, err := c.do(http.MethodPost, "http://"+p.httpAddr()+"/api/v1/mfa/totp/setup", c.token(t, user), `{"device_name":"x"}`); err != nil || a.status != http.StatusOK {
			t.Fatalf("setup: %v %d %s", err, a.status, a.raw)
		}
	}
	p.stopCleanly()
	generated, err := readKey(filepath.Join(dataDir, sealingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	keys := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"keys"}, args...), func(string) string { return "" }, &out, os.Stderr)
		if err != nil {
			t.Fatalf("mfad keys %v: %v", args, err)
		}
		return out.String()
	}
	status := keys("status", "--data-dir", dataDir)
	if !strings.Contains(status, channels.KeyID(generated)+"  primary") || !strings.Contains(status, "2 "+channels.RecordSecret) {
		t.Fatalf("status:\n%s", status)
	}

	fresh := bytes.Repeat([]byte{0x5a}, 32)
	rotation := base64.StdEncoding.EncodeToString(fresh) + "," + base64.StdEncoding.EncodeToString(generated)
	// A new primary holds nothing yet, and is not to be dropped for it.
	for _, line := range strings.Split(keys("status", "--data-dir", dataDir, "--secret-key", rotation), "\n") {
		if strings.HasPrefix(line, channels.KeyID(fresh)) && (!strings.Contains(line, "primary") || strings.Contains(line, "dropped")) {
			t.Fatalf("the new primary before any reseal: %q", line)
		}
	}
	out := keys("reseal", "--data-dir", dataDir, "--secret-key", rotation)
	if !strings.Contains(out, "sealed again under key "+channels.KeyID(fresh)+": 2 methods") {
		t.Fatalf("reseal:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, channels.KeyID(generated)) &&
			(!strings.Contains(line, "configured") || strings.Contains(line, channels.RecordSecret)) {
			t.Fatalf("after reseal the old key still holds secrets, or is not listed as configured:\n%s", out)
		}
	}
	// Without the old key in the configuration, status says so of what it still holds.
	status = keys("status", "--data-dir", dataDir, "--secret-key", base64.StdEncoding.EncodeToString(fresh))
	if strings.Contains(status, channels.KeyID(generated)) && !strings.Contains(status, "NOT CONFIGURED") {
		t.Fatalf("status with the old key dropped:\n%s", status)
	}
}
