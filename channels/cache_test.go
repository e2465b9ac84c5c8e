package channels_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	mfa "github.com/mfad/mfad"
	. "github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// cacheRig is alice with one TOTP device on a worker with the read cache and metrics.
type cacheRig struct {
	*phoneRig
	reg    *prometheus.Registry
	secret string
}

func newCacheRig(t *testing.T, lockout LockoutPolicy) *cacheRig {
	t.Helper()
	reg := prometheus.NewRegistry()
	r := &cacheRig{phoneRig: newPhoneRig(t, Config{Lockout: lockout, ReadCacheBytes: 1 << 20, Metrics: reg}), reg: reg}
	r.secret = r.addDevice("Phone")
	return r
}

// addDevice sets up and verifies a TOTP device of alice's; it returns its secret.
func (r *cacheRig) addDevice(name string) string {
	r.t.Helper()
	var s mfa.TOTPSetup
	mustUnmarshal(r.t, r.ok(mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: name}).Data, &s)
	r.ok(mfa.CmdTOTPVerify, "alice", mfa.TOTPVerifyParams{Code: TOTPCode(s.Secret, r.clock())})
	return s.Secret
}

func (r *cacheRig) status() mfa.Status {
	r.t.Helper()
	var st mfa.Status
	mustUnmarshal(r.t, r.ok(mfa.CmdStatus, "alice", nil).Data, &st)
	return st
}

// lookups is mfad_read_cache_lookups_total{result}.
func (r *cacheRig) lookups(result string) float64 {
	r.t.Helper()
	return r.metric("mfad_read_cache_lookups_total", result)
}

// metric is the value of the series name, with the label value label if it has one.
func (r *cacheRig) metric(name, label string) float64 {
	r.t.Helper()
	for _, m := range family(r.t, r.reg, name).GetMetric() {
		if len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() != label {
			continue
		}
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	r.t.Fatalf("no %s{%q}", name, label)
	return 0
}

// TestReadsAfterAWriteSeeIt: with readers filling the cache all the while, every read
// made after a write's reply sees that write (the commit empties the user's answers
// before the reply goes out, and a read that began before the commit keeps nothing).
func TestReadsAfterAWriteSeeIt(t *testing.T) {
	r := newCacheRig(t, LockoutPolicy{Threshold: 1000, Duration: time.Minute, MaxDuration: time.Minute, MaxFailures: 1000})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			typ := []string{mfa.CmdStatus, mfa.CmdTOTPList}[i%2]
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := r.w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: typ, UserID: "alice", Actor: "alice"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	hitsBefore := r.lookups("hit")
	for i := 1; i <= 30; i++ {
		if g := r.do(mfa.CmdVerify, "alice", "", mfa.VerifyParams{Code: wrong(TOTPCode(r.secret, r.clock()))}); g.Code != mfa.CodeInvalidCode {
			t.Fatalf("guess %d: %+v", i, g)
		}
		if st := r.status(); st.FailedAttempts != i {
			t.Fatalf("after failure %d the status says %d", i, st.FailedAttempts)
		}
		if i%10 == 0 {
			r.addDevice("Tablet")
			var list mfa.Devices
			mustUnmarshal(t, r.ok(mfa.CmdTOTPList, "alice", nil).Data, &list)
			if want := 1 + i/10; len(list.Devices) != want || len(r.status().Methods) != want {
				t.Fatalf("after adding device %d: the list has %d, want %d", want, len(list.Devices), want)
			}
		}
	}
	if hits := r.lookups("hit") - hitsBefore; hits == 0 {
		t.Fatal("no read was answered from the cache: the test did not test it")
	}
}

// TestLockedStatusIsNotKept: a lock ends by the clock, not by a write, so a status that
// shows one is read from the store every time.
func TestLockedStatusIsNotKept(t *testing.T) {
	r := newCacheRig(t, LockoutPolicy{Threshold: 2, Duration: time.Minute, MaxDuration: time.Hour, MaxFailures: 100})
	r.status()
	if st := r.status(); st.LockedUntil != nil || r.lookups("hit") != 1 {
		t.Fatalf("the second status: %+v, %v hits, want one from the cache", st, r.lookups("hit"))
	}
	for range 2 {
		r.do(mfa.CmdVerify, "alice", "", mfa.VerifyParams{Code: wrong(TOTPCode(r.secret, r.clock()))})
	}
	until := r.clock().Add(time.Minute)
	for range 2 {
		if st := r.status(); st.LockedUntil == nil || !st.LockedUntil.Equal(until) {
			t.Fatalf("locked status: %+v, want locked until %s", st, until)
		}
	}
	r.advance(time.Minute + time.Second)
	if st := r.status(); st.LockedUntil != nil || st.FailedAttempts != 2 {
		t.Fatalf("status after the lock ended: %+v, want no lock and two failures", st)
	}
}

// pausingStore holds one read, once armed, after its first query has fixed its
// snapshot, until the test releases it.
type pausingStore struct {
	Store
	armed   atomic.Bool
	paused  chan struct{}
	release chan struct{}
}

func (s *pausingStore) Read(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	return s.Store.Read(ctx, func(ctx context.Context, tx Tx) error {
		if s.armed.CompareAndSwap(true, false) {
			if _, err := tx.User(ctx, "alice"); err != nil {
				return err
			}
			close(s.paused)
			<-s.release
		}
		return fn(ctx, tx)
	})
}

// TestAReadOlderThanAWriteIsNotKept: a status read whose snapshot predates a write
// that commits and is answered while it runs answers what it saw, but what it saw is
// not kept: the next read shows the write.
func TestAReadOlderThanAWriteIsNotKept(t *testing.T) {
	clock := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	store := &pausingStore{Store: sqlitetest.Open(t, filepath.Join(t.TempDir(), "mfad.db")),
		paused: make(chan struct{}), release: make(chan struct{})}
	sealer, err := NewSealer(key(3))
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(Config{Now: func() time.Time { return clock }, Logger: quietLogger(), ReadCacheBytes: 1 << 20,
		Lockout: LockoutPolicy{Threshold: 100, Duration: time.Minute, MaxDuration: time.Minute, MaxFailures: 100}}, store, sealer)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop(context.Background())
	var setup mfa.TOTPSetup
	mustUnmarshal(t, do(t, w, mfa.CmdTOTPSetup, "alice", mfa.TOTPSetupParams{DeviceName: "Phone"}).Data, &setup)
	if r := do(t, w, mfa.CmdTOTPVerify, "alice", mfa.TOTPVerifyParams{Code: TOTPCode(setup.Secret, clock)}); !r.OK {
		t.Fatalf("verify the device: %+v", r)
	}
	failures := func(r mfa.Reply) int {
		var st mfa.Status
		mustUnmarshal(t, r.Data, &st)
		return st.FailedAttempts
	}

	store.armed.Store(true)
	old := make(chan mfa.Reply, 1)
	go func() {
		r, _ := w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: mfa.CmdStatus, UserID: "alice", Actor: "alice"})
		old <- r
	}()
	<-store.paused
	if r := do(t, w, mfa.CmdVerify, "alice", mfa.VerifyParams{Code: wrong(TOTPCode(setup.Secret, clock))}); r.Code != mfa.CodeInvalidCode {
		t.Fatalf("wrong code: %+v", r)
	}
	close(store.release)
	if n := failures(<-old); n != 0 {
		t.Fatalf("the read begun before the failure saw %d failures, want 0 (its snapshot)", n)
	}
	for range 2 {
		if n := failures(do(t, w, mfa.CmdStatus, "alice", nil)); n != 1 {
			t.Fatalf("status after the failure's reply: %d failures, want 1", n)
		}
	}
}

// TestTheSweepKeepsTheCacheAndAnAdminResetDropsIt: the sweep deletes only what no kept
// answer shows, so answers survive it; an administrator's reset of alice drops hers.
func TestTheSweepKeepsTheCacheAndAnAdminResetDropsIt(t *testing.T) {
	r := newCacheRig(t, LockoutPolicy{Threshold: 100, Duration: time.Minute, MaxDuration: time.Minute, MaxFailures: 100})
	for range 3 {
		r.do(mfa.CmdVerify, "alice", "", mfa.VerifyParams{Code: wrong(TOTPCode(r.secret, r.clock()))})
	}
	if st := r.status(); st.FailedAttempts != 3 {
		t.Fatalf("status: %d failures, want 3", st.FailedAttempts)
	}
	hits := r.lookups("hit")
	runSweep(t, r.w)
	if st := r.status(); st.FailedAttempts != 3 || r.lookups("hit") != hits+1 {
		t.Fatalf("status after a sweep: %+v, %v hits, want one more from the cache", st, r.lookups("hit")-hits)
	}
	if kept := r.metric("mfad_read_cache_bytes", ""); kept < 200 {
		t.Fatalf("mfad_read_cache_bytes %v with alice's status kept", kept)
	}
	reset, err := r.w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: mfa.CmdAdminReset, UserID: "alice", Actor: "ops", Admin: true})
	if err != nil || !reset.OK {
		t.Fatalf("admin reset: %+v %v", reset, err)
	}
	if kept := r.metric("mfad_read_cache_bytes", ""); kept != 0 {
		t.Fatalf("mfad_read_cache_bytes %v after the reset dropped alice's answers", kept)
	}
	if st := r.status(); st.FailedAttempts != 0 || len(st.Methods) != 0 {
		t.Fatalf("status after an admin reset: %+v, want nothing left", st)
	}
}
