package channels_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	. "github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// lockRig is a worker whose clock the test moves, and alice with one TOTP device and an
// SMS channel (so she can hear of a lock).
type lockRig struct {
	*phoneRig
	secret string
}

func newLockRig(t *testing.T, p LockoutPolicy) *lockRig {
	t.Helper()
	r := &lockRig{phoneRig: newPhoneRig(t, Config{Lockout: p})}
	setup := r.ok(mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: "Phone"})
	var s mfa.TOTPSetup
	mustUnmarshal(t, setup.Data, &s)
	r.secret = s.Secret
	r.ok(mfa.CmdTOTPVerify, "alice", mfa.TOTPVerifyParams{Code: TOTPCode(s.Secret, r.clock())})
	r.channel("alice", mfa.KindSMS, testPhone)
	r.sent()
	return r
}

// guess sends a wrong sign-in code and returns the reply.
func (r *lockRig) guess() mfa.Reply {
	return r.do(mfa.CmdVerify, "alice", "", mfa.VerifyParams{Code: wrong(TOTPCode(r.secret, r.clock()))})
}

// TestLockoutEscalates: every Threshold-th consecutive failure starts a lock twice as
// long as the one before, up to MaxDuration; a lock ending does not reset the count;
// while locked the code is not looked at and nothing is counted; Retry-After is the
// truth; at MaxFailures only an administrator unlocks, and the user hears of it.
func TestLockoutEscalates(t *testing.T) {
	r := newLockRig(t, LockoutPolicy{Threshold: 2, Duration: time.Minute, MaxDuration: 4 * time.Minute, MaxFailures: 10})
	wantLocks := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute}
	for n, lock := range wantLocks {
		if g := r.guess(); g.Code != mfa.CodeInvalidCode {
			t.Fatalf("lock %d, first guess: %+v", n+1, g)
		}
		if g := r.guess(); g.Code != mfa.CodeInvalidCode {
			t.Fatalf("lock %d, second guess (starts the lock): %+v", n+1, g)
		}
		// Locked: even the right code is refused, without counting, and Retry-After
		// says how long is left.
		right := r.do(mfa.CmdVerify, "alice", "", mfa.VerifyParams{Code: TOTPCode(r.secret, r.clock())})
		if right.Code != mfa.CodeTooManyAttempts || right.RetryAfter != int(lock/time.Second) {
			t.Fatalf("lock %d: the right code got %+v, want 429 retry after %s", n+1, right, lock)
		}
		r.advance(lock / 2)
		if g := r.guess(); g.Code != mfa.CodeTooManyAttempts || g.RetryAfter != int(lock/2/time.Second) {
			t.Fatalf("lock %d half way: %+v, want retry after %s", n+1, g, lock/2)
		}
		if failures := r.count("SELECT failed_attempts FROM users WHERE id = 'alice'"); failures != 2*(n+1) {
			t.Fatalf("lock %d: %d failures counted, want %d (a lock neither resets nor adds)", n+1, failures, 2*(n+1))
		}
		r.advance(lock / 2)
	}
	// Failures 9 and 10: the tenth is the last allowed.
	r.guess()
	if g := r.guess(); g.Code != mfa.CodeInvalidCode {
		t.Fatalf("the tenth failure: %+v", g)
	}
	notices := r.sent()
	if len(notices) != 1 || notices[0].Template != NoticeLocked || notices[0].To != testPhone || notices[0].Code != "" {
		t.Fatalf("notices at the last failure allowed: %+v, want one %s to %s", notices, NoticeLocked, testPhone)
	}
	r.advance(30 * 24 * time.Hour)
	right := r.do(mfa.CmdVerify, "alice", "", mfa.VerifyParams{Code: TOTPCode(r.secret, r.clock())})
	if right.Code != mfa.CodeTooManyAttempts || right.RetryAfter != 0 {
		t.Fatalf("a month after the last failure allowed: %+v, want 429 with no Retry-After (no end)", right)
	}
	locked := r.count("SELECT count(*) FROM audit_log WHERE type = 'verify.locked' AND body LIKE '%max_failures%'")
	if locked != 2 { // the lock itself, and the refusal just now
		t.Fatalf("%d verify.locked records naming max_failures, want 2", locked)
	}
	// Every other code check is refused too: sending an SMS code, confirming a factor.
	if reply := r.do(mfa.CmdOTPSend, "alice", "", mfa.OTPSendParams{Method: mfa.KindSMS}); reply.Code != mfa.CodeTooManyAttempts {
		t.Fatalf("otp/send while locked for good: %+v", reply)
	}

	reset, err := r.w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: mfa.CmdAdminReset, UserID: "alice", Actor: "ops", Admin: true})
	if err != nil || !reset.OK {
		t.Fatalf("admin reset: %+v %v", reset, err)
	}
	if n := r.count("SELECT failed_attempts + locked_until FROM users WHERE id = 'alice'"); n != 0 {
		t.Fatal("the admin reset left a count or a lock")
	}
}

// TestLockoutSuccessResets: a success before the threshold starts the count over, so
// the next lock is the first again.
func TestLockoutSuccessResets(t *testing.T) {
	r := newLockRig(t, LockoutPolicy{Threshold: 3, Duration: time.Minute, MaxDuration: time.Hour, MaxFailures: 6})
	for range 3 {
		r.guess()
	}
	r.advance(time.Minute)
	r.guess()
	r.guess()
	r.advance(30 * time.Second)
	if ok := r.do(mfa.CmdVerify, "alice", "", mfa.VerifyParams{Code: TOTPCode(r.secret, r.clock())}); !ok.OK {
		t.Fatalf("the right code between locks: %+v", ok)
	}
	if n := r.count("SELECT failed_attempts FROM users WHERE id = 'alice'"); n != 0 {
		t.Fatalf("%d failures after a success", n)
	}
	for range 3 {
		r.guess()
	}
	if g := r.guess(); g.Code != mfa.CodeTooManyAttempts || g.RetryAfter != 60 {
		t.Fatalf("after a success the lock is the first again: %+v, want 60 s", g)
	}
}

// TestLockoutRacedGuesses: guesses at once from many callers are each counted; the
// locks start where the policy says, whatever the interleaving.
func TestLockoutRacedGuesses(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w, store := sqlitetest.Worker(t, filepath.Join(dir, "mfad.db"),
		Config{Now: clock, Lockout: LockoutPolicy{Threshold: 4, Duration: time.Hour, MaxDuration: time.Hour, MaxFailures: 100}})
	setup := do(t, w, mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: "Phone"})
	var s mfa.TOTPSetup
	if err := json.Unmarshal(setup.Data, &s); err != nil {
		t.Fatal(err)
	}
	do(t, w, mfa.CmdTOTPVerify, "alice", mfa.TOTPVerifyParams{Code: TOTPCode(s.Secret, now)})
	var wg sync.WaitGroup
	replies := make([]mfa.Reply, 16)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = do(t, w, mfa.CmdVerify, "alice", mfa.VerifyParams{Code: wrong(TOTPCode(s.Secret, now))})
		}()
	}
	wg.Wait()
	invalid, locked := 0, 0
	for _, r := range replies {
		switch r.Code {
		case mfa.CodeInvalidCode:
			invalid++
		case mfa.CodeTooManyAttempts:
			locked++
		}
	}
	if invalid != 4 || locked != 12 {
		t.Fatalf("%d wrong and %d locked answers, want exactly 4 guesses let through", invalid, locked)
	}
	if n := sqlitetest.Count(t, sqlitetest.DB(t, store), "SELECT failed_attempts FROM users WHERE id = 'alice'"); n != 4 {
		t.Fatalf("%d failures counted, want 4", n)
	}
}
