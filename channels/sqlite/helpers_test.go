package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// testKey is the chain and sealing key of these tests (sqlitetest imports this
// package, so its helpers are not available here).
var testKey = bytes.Repeat([]byte{0xa7}, 32)

func testChain(t testing.TB) *audit.Chain {
	t.Helper()
	c, err := audit.NewChain(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openStore opens (creating) the store at path, closed when the test ends.
func openStore(t testing.TB, path string) *Store {
	t.Helper()
	store, err := Open(context.Background(), path, testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// testWorker runs a worker without NATS over store.
func testWorker(t testing.TB, store *Store, cfg channels.Config) *channels.Worker {
	t.Helper()
	sealer, err := channels.NewSealer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := channels.NewWorker(cfg, store, sealer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Stop(context.Background()) })
	return w
}

func do(t testing.TB, w *channels.Worker, typ, user string, params any) mfa.Reply {
	t.Helper()
	cmd := mfa.Command{ID: mfa.NewID(), Type: typ, UserID: user, Actor: user}
	if params != nil {
		cmd.Params = mustJSON(t, params)
	}
	r, err := w.Do(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustJSON(t testing.TB, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// totpCode is the default-profile TOTP code of secret at now, from pquerna/otp.
func totpCode(t testing.TB, secret string, now time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// sweep runs the sweeper's statements as a write unit.
func sweep(t testing.TB, store *Store, now time.Time) {
	t.Helper()
	errs := store.Write(context.Background(), []channels.Unit{{Run: func(ctx context.Context, tx channels.Tx) error {
		return tx.Sweep(ctx, now, now.Add(-24*time.Hour), now.Add(-24*time.Hour), 1000)
	}}})
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
}
