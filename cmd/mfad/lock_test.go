//go:build unix

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLockDataDir: one holder at a time; the file a holder leaves behind, as a crashed
// process does, blocks no one.
func TestLockDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock belongs to the open file, so a second open in this process conflicts just
	// as another process would.
	if _, err := lockDataDir(dir); err == nil || !strings.Contains(err.Error(), "data dir "+dir+" is in use by another mfad serve") ||
		!strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	// What a process killed with SIGKILL leaves: the file, with its pid, unlocked.
	if err := os.WriteFile(filepath.Join(dir, lockFile), []byte("999999\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	release, err = lockDataDir(dir)
	if err != nil {
		t.Fatalf("a stale lock file blocked the start: %v", err)
	}
	defer release()
	if b, _ := os.ReadFile(filepath.Join(dir, lockFile)); string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Fatalf("lock file holds %q, want this pid", b)
	}
}

// TestSecondServeRefused: a second mfad serve on the data dir of a running one exits
// at once with an error that says why; once the first is gone, even killed, the data
// dir is free again.
func TestSecondServeRefused(t *testing.T) {
	dataDir := t.TempDir()
	env := []string{"MFAD_DATA_DIR=" + dataDir, "MFAD_HTTP_ADDR=127.0.0.1:0", "MFAD_NATS_LISTEN=127.0.0.1:0"}
	first := startMFAD(t, "mfad serve 1", env...)

	cmd := exec.Command(mfadBinary(t), "serve")
	cmd.Env = cleanEnv(env...)
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second serve: %v, want exit status 1; stderr:\n%s", err, stderr.String())
	}
	want := "mfad: data dir " + dataDir + " is in use by another mfad serve (pid " + strconv.Itoa(first.cmd.Process.Pid) + " holds "
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("second serve's stderr lacks %q:\n%s", want, stderr.String())
	}
	if strings.Contains(stderr.String(), "embedded NATS listening") || strings.Contains(stderr.String(), "mfad started") {
		t.Fatalf("the second serve started something before it refused:\n%s", stderr.String())
	}

	first.kill9()
	again := startMFAD(t, "mfad serve 2", env...)
	again.stopCleanly()
}
