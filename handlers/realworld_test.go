package handlers_test

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tool finds an outside program a test needs; CI installs them, elsewhere the test is
// skipped with the reason.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; .ci/run installs it", name)
		}
		t.Skipf("%s not installed (apt-get install oathtool zbar-tools)", name)
	}
	return path
}

// TestAuthenticatorFromQRCode is what a user does: scan the QR code, type the code the
// app shows. zbarimg reads the QR as a phone camera would, oathtool computes the code
// as an authenticator app would.
func TestAuthenticatorFromQRCode(t *testing.T) {
	zbarimg, oathtool := tool(t, "zbarimg"), tool(t, "oathtool")
	s := newStack(t)
	for _, path := range []string{"/api/v1/mfa/totp/setup", "/settings/MfaSecret"} {
		user := "user-" + filepath.Base(path)
		r := s.as(user, http.MethodPost, path, `{"device_name":"Phone"}`)
		if r.Status != 200 {
			t.Fatalf("%s: %d %s", path, r.Status, r.Raw)
		}
		qr, uri := get(r.Body, "data", "qr_code"), get(r.Body, "data", "otpauth_url")
		if path == "/settings/MfaSecret" {
			qr, uri = get(r.Body, "qrCodeUrl"), get(r.Body, "otpauthUrl")
		}
		png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(qr.(string), "data:image/png;base64,"))
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "qr.png")
		if err := os.WriteFile(file, png, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zbarimg, "--quiet", "--raw", file).Output()
		if err != nil {
			t.Fatalf("zbarimg: %v", err)
		}
		scanned := strings.TrimSpace(string(out))
		if scanned != uri {
			t.Fatalf("QR decodes to\n %s\nwant\n %s", scanned, uri)
		}
		u, err := url.Parse(scanned)
		if err != nil {
			t.Fatal(err)
		}
		now := s.Clock.Now().UTC().Format("2006-01-02 15:04:05 UTC")
		code, err := exec.Command(oathtool, "--totp", "-b", "--now", now, u.Query().Get("secret")).Output()
		if err != nil {
			t.Fatalf("oathtool: %v", err)
		}
		verify := s.as(user, http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+strings.TrimSpace(string(code))+`"}`)
		if verify.Status != 200 {
			t.Fatalf("code from oathtool refused: %d %s", verify.Status, verify.Raw)
		}
	}
}

// TestNoSecretInTheDataFiles greps the SQLite files for what must never be there in
// clear: TOTP secrets (also inside stored idempotent replies) and backup codes.
func TestNoSecretInTheDataFiles(t *testing.T) {
	s := newStack(t)
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Phone"}`, "Idempotency-Key", "setup-1")
	secret := get(r.Body, "data", "secret").(string)
	d := device{ID: int64(get(r.Body, "data", "device_id").(float64)), Secret: secret}
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+s.code(d)+`"}`, "Idempotency-Key", "verify-1")
	var codes []string
	for _, c := range get(r.Body, "data", "backup_codes").([]any) {
		codes = append(codes, c.(string))
	}
	s.Clock.Advance(30 * time.Second)
	s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(d)+`"}`)
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	needles := append([][]byte{[]byte(secret), []byte(strings.ToLower(secret)), raw}, bytesOf(codes)...)
	files, _ := filepath.Glob(s.DBPath + "*")
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s holds %q in clear", filepath.Base(f), n)
			}
		}
	}
	// The replayed reply still carries the secret: sealed is not lost.
	again := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Phone"}`, "Idempotency-Key", "setup-1")
	if get(again.Body, "data", "secret") != secret {
		t.Fatalf("idempotent replay lost the secret: %s", again.Raw)
	}
}

func bytesOf(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
