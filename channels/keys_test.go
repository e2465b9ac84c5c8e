package channels_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	. "github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// usage is KeyUsage as key id → record → count.
func usage(t *testing.T, store Store) map[string]map[string]int {
	t.Helper()
	uses, err := KeyUsage(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	for _, u := range uses {
		if out[u.KeyID] == nil {
			out[u.KeyID] = map[string]int{}
		}
		out[u.KeyID][u.Record] += u.Count
	}
	return out
}

// TestKeyRotationRetiresTheOldKey: after a rotation, secrets and addresses move to the
// new key as they are used, and all of them with Reseal; the old key then holds only
// keyed hashes, and once the user regenerates their backup codes, nothing: it can go.
func TestKeyRotationRetiresTheOldKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mfad.db")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	old, fresh := KeyID(key(1)), KeyID(key(2))

	w, store := sqlitetest.Worker(t, path, Config{Now: clock}, key(1))
	secrets := map[string]string{}
	for _, user := range []string{"alice", "bob"} {
		setup := do(t, w, mfa.CmdTOTPSetup, user, mfa.TOTPSetupParams{DeviceName: "Phone"})
		var s mfa.TOTPSetup
		mustUnmarshal(t, setup.Data, &s)
		secrets[user] = s.Secret
		if r := do(t, w, mfa.CmdTOTPVerify, user, mfa.TOTPVerifyParams{Code: TOTPCode(s.Secret, now)}); !r.OK {
			t.Fatalf("verify %s: %+v", user, r)
		}
	}
	do(t, w, mfa.CmdChannelRegister, "alice", mfa.ChannelParams{Channel: mfa.KindSMS, Address: testPhone})
	w.Stop(context.Background())
	if u := usage(t, store); u[old][RecordSecret] != 2 || u[old][RecordAddress] != 1 || u[old][RecordBackupCode] != 20 {
		t.Fatalf("before the rotation: %v", u)
	}

	// The new key first, the old one after it.
	rotated, err := NewSealer(key(2), key(1))
	if err != nil {
		t.Fatal(err)
	}
	w, err = NewWorker(Config{Now: clock, Logger: sqlitetest.Quiet()}, store, rotated)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Minute)
	if r := do(t, w, mfa.CmdVerify, "alice", mfa.VerifyParams{Code: TOTPCode(secrets["alice"], now)}); !r.OK {
		t.Fatalf("alice signs in after the rotation: %+v", r)
	}
	u := usage(t, store)
	if u[fresh][RecordSecret] != 1 || u[old][RecordSecret] != 1 || u[fresh][RecordCanary] != 1 {
		t.Fatalf("after alice's sign-in her secret, and only hers, should be under the new key: %v", u)
	}

	n, err := Reseal(context.Background(), store, rotated)
	if err != nil || n != 2 { // bob's secret and alice's pending SMS address
		t.Fatalf("Reseal: %d, %v", n, err)
	}
	if n, err := Reseal(context.Background(), store, rotated); err != nil || n != 0 {
		t.Fatalf("Reseal again: %d, %v", n, err)
	}
	u = usage(t, store)
	if u[old][RecordSecret] != 0 || u[old][RecordAddress] != 0 || u[fresh][RecordSecret] != 2 || u[fresh][RecordAddress] != 1 {
		t.Fatalf("after Reseal: %v", u)
	}
	// Backup codes are keyed hashes of codes mfad does not know: they stay on the old
	// key until the user regenerates them.
	if u[old][RecordBackupCode] != 20 {
		t.Fatalf("backup codes under the old key: %v", u)
	}
	for _, user := range []string{"alice", "bob"} {
		if r := do(t, w, mfa.CmdBackupRegenerate, user, nil); !r.OK {
			t.Fatalf("regenerate %s: %+v", user, r)
		}
	}
	w.Stop(context.Background())
	// What is left on the old key leaves by itself: the SMS code expires in minutes,
	// its message is deleted once the relay hands it to JetStream (no NATS here).
	u = usage(t, store)
	for record := range u[old] {
		if record != RecordOneTimeCode && record != RecordNotification {
			t.Fatalf("the old key still holds %v", u[old])
		}
	}

	// The old key is gone from the configuration; everything still opens.
	only, _ := NewSealer(key(2))
	w, err = NewWorker(Config{Now: clock, Logger: sqlitetest.Quiet()}, store, only)
	if err != nil {
		t.Fatalf("start without the old key: %v", err)
	}
	defer w.Stop(context.Background())
	now = now.Add(time.Minute)
	if r := do(t, w, mfa.CmdVerify, "bob", mfa.VerifyParams{Code: TOTPCode(secrets["bob"], now)}); !r.OK {
		t.Fatalf("bob signs in with the old key retired: %+v", r)
	}
}
