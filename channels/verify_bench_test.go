package channels_test

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	. "github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// addDevice sets up a TOTP device for user and verifies it with its code at now; it
// returns the setup and the verification's reply.
func addDevice(w *Worker, user, name string, now time.Time) (mfa.TOTPSetup, mfa.Reply) {
	r, _ := w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: mfa.CmdTOTPSetup, UserID: user, Actor: user,
		Params: mustJSONB(mfa.TOTPSetupParams{DeviceName: name})})
	var s mfa.TOTPSetup
	mustUnmarshalB(r.Data, &s)
	r, _ = w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: mfa.CmdTOTPVerify, UserID: user, Actor: user,
		Params: mustJSONB(mfa.TOTPVerifyParams{Code: TOTPCode(s.Secret, now)})})
	return s, r
}

// benchVerify drives sign-in verifications, each with a fresh time step so replay
// protection accepts it, through the worker and SQLite (synchronous=FULL). parallel
// submitters share commits when group commit is on.
func benchVerify(b *testing.B, batch, parallel int) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w, _ := sqlitetest.Worker(b, filepath.Join(b.TempDir(), "mfad.db"), Config{Now: clock, BatchSize: batch,
		Lockout: LockoutPolicy{Threshold: 1 << 30, MaxFailures: 1 << 30}})
	secrets := make([]string, parallel)
	for i := range parallel {
		user := "u" + strconv.Itoa(i)
		s, _ := addDevice(w, user, "x", now)
		secrets[i] = s.Secret
	}
	b.ReportAllocs()
	b.ResetTimer()
	rounds := b.N/parallel + 1
	for range rounds {
		mu.Lock()
		now = now.Add(30 * time.Second)
		mu.Unlock()
		var wg sync.WaitGroup
		for i := range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := "u" + strconv.Itoa(i)
				code := TOTPCode(secrets[i], clock())
				r, _ := w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: mfa.CmdVerify, UserID: user, Actor: user,
					Params: mustJSONB(mfa.VerifyParams{Code: code})})
				if !r.OK {
					b.Errorf("verify: %+v", r)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(rounds*parallel)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkVerifyCommand: one command at a time, one fsync each.
func BenchmarkVerifyCommand(b *testing.B) { benchVerify(b, 1, 1) }

// BenchmarkVerifyGroupCommit: 64 concurrent commands sharing commits, against the same
// 64 with group commit off: the gain of the one fsync per batch.
func BenchmarkVerifyGroupCommit(b *testing.B) {
	b.Run("on", func(b *testing.B) { benchVerify(b, 128, 64) })
	b.Run("off", func(b *testing.B) { benchVerify(b, 1, 64) })
}

// benchRemove drives device removals through the worker and SQLite, parallel at a
// time. Each submitter has users of two verified devices each, enough of them, added
// before the timer starts, to remove one device a round. It is delete-device's write
// path without HTTP and NATS.
func benchRemove(b *testing.B, batch, parallel int) {
	now := time.Unix(1_700_000_000, 0)
	w, _ := sqlitetest.Worker(b, filepath.Join(b.TempDir(), "mfad.db"), Config{Now: func() time.Time { return now }, BatchSize: batch})
	type device struct {
		user string
		id   int64
	}
	rounds := b.N/parallel + 1
	devices := make([][]device, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range rounds {
				user := "u" + strconv.Itoa(i) + "-" + strconv.Itoa(d/2)
				s, r := addDevice(w, user, "d"+strconv.Itoa(d%2), now)
				if !r.OK {
					b.Errorf("verify a device of %s: %+v", user, r)
					return
				}
				devices[i] = append(devices[i], device{user, s.DeviceID})
			}
		}()
	}
	wg.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	for round := range rounds {
		for i := range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := devices[i][round]
				r, _ := w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: mfa.CmdTOTPRemove, UserID: d.user, Actor: d.user,
					Params: mustJSONB(mfa.DeviceParams{DeviceID: d.id})})
				if !r.OK {
					b.Errorf("remove: %+v", r)
				}
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(rounds*parallel)/b.Elapsed().Seconds(), "removals/s")
}

// BenchmarkRemoveGroupCommit: 64 concurrent device removals sharing commits, against
// the same 64 with group commit off, as BenchmarkVerifyGroupCommit does for sign-ins.
func BenchmarkRemoveGroupCommit(b *testing.B) {
	b.Run("on", func(b *testing.B) { benchRemove(b, 128, 64) })
	b.Run("off", func(b *testing.B) { benchRemove(b, 1, 64) })
}
