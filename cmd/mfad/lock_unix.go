//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile in the data dir is held with flock by the mfad serve that owns the dir.
const lockFile = "mfad.lock"

// lockDataDir makes this process the only mfad serve using dir: two would run two
// embedded NATS servers on one JetStream store, or two writers on one database, and
// their streams and logs would diverge. The lock is an flock on dir/mfad.lock, held
// until release or the process's end: the kernel drops it when a process dies, so the
// file a crash leaves behind blocks no one. The file holds the owner's pid, to name it
// in the refusal; it is never deleted, since a process could otherwise lock a file
// another has just unlinked.
func lockDataDir(dir string) (release func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	path := filepath.Join(abs, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner := "another process"
			if b, _ := os.ReadFile(path); len(strings.TrimSpace(string(b))) > 0 {
				owner = "pid " + strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("data dir %s is in use by another mfad serve (%s holds %s): stop it, or give this one its own --data-dir", abs, owner, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f.Close, nil // closing the last descriptor releases the lock
}
