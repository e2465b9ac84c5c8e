package channels_test

import (
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	. "github.com/mfad/mfad/channels"
)

// collidingSecret's codes of the consecutive steps collidingStep and collidingStep+1
// are the same six digits (found by search; one step pair in a million collides).
const (
	collidingSecret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	collidingStep   = int64(59141676)
)

// TestTOTPAdjacentStepCollision: when a device's codes of two steps of the window are
// the same digits, the code is matched to the later step (match prefers the latest),
// so the client's code of that later step, sent afterwards, is refused as a replay:
// "a valid code of a newer step refused" with verify.replayed, without any store
// prefetch (this runs on SQLite). mfaload must not count it as a server fault.
func TestTOTPAdjacentStepCollision(t *testing.T) {
	w, db := newTestWorker(t, "", Config{})
	stepTime := func(s int64) time.Time { return time.Unix(s*30+5, 0) }
	now := stepTime(collidingStep - 4)
	w.SetClock(func() time.Time { return now })
	setup := do(t, w, mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: "Phone"})
	var s mfa.TOTPSetup
	mustUnmarshal(t, setup.Data, &s)
	if r := do(t, w, mfa.CmdTOTPVerify, "alice", mfa.TOTPVerifyParams{Code: TOTPCode(s.Secret, now)}); !r.OK {
		t.Fatalf("enrol: %+v", r)
	}
	// The device's secret becomes the colliding one (sealed as the rules seal it).
	sealer, err := NewSealer(key(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE methods SET secret_enc = ? WHERE id = ?",
		sealer.Seal([]byte(collidingSecret), []byte("methods\x00alice")), s.DeviceID); err != nil {
		t.Fatal(err)
	}
	a, b := TOTPCode(collidingSecret, stepTime(collidingStep)), TOTPCode(collidingSecret, stepTime(collidingStep+1))
	if a != b {
		t.Fatalf("codes %s and %s differ: the search's pair is wrong", a, b)
	}
	// Early in step s the client sends the code of s: accepted, recorded as step s+1.
	now = stepTime(collidingStep)
	if r := do(t, w, mfa.CmdVerify, "alice", mfa.VerifyParams{Code: a}); !r.OK {
		t.Fatalf("code of step s: %+v", r)
	}
	if n := count(t, db, "SELECT count(*) FROM methods WHERE id = ? AND last_used_step = ?", s.DeviceID, collidingStep+1); n != 1 {
		t.Fatalf("the device's last step is not s+1")
	}
	// In step s+1 the client sends the code of s+1, newer than the one it had accepted.
	now = stepTime(collidingStep + 1)
	r := do(t, w, mfa.CmdVerify, "alice", mfa.VerifyParams{Code: b})
	if r.OK || r.Code != mfa.CodeInvalidCode {
		t.Fatalf("code of step s+1: %+v, want INVALID_CODE", r)
	}
	if n := count(t, db, "SELECT count(*) FROM audit_log WHERE type = 'verify.replayed' AND user_id = 'alice'"); n != 1 {
		t.Fatalf("%d verify.replayed records, want 1", n)
	}
}
