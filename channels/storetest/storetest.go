// Package storetest is the conformance suite every channels.Store must pass: each
// contract the rules rely on, alone and raced from several goroutines on separate
// handles of one database (as several worker processes would be), and the audit
// chain's order and verification. channels/sqlite and channels/postgres run it.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
)

// Store is a store under test: the rules' view and the audit log's.
type Store interface {
	channels.Store
	Outbox() audit.Outbox
	Records() audit.Records
}

// Database is one fresh, empty database of the store under test.
type Database struct {
	// Open returns a new handle on the database, with connections of its own, closed
	// when the test ends. The first call creates the schema.
	Open func() Store
	// Chain is the audit chain the handles link records with.
	Chain *audit.Chain
	// OneRelay says the store supports a single notification relay per database
	// (SQLite: one worker host owns the file), so relays on two handles are not raced.
	OneRelay bool
}

// Run runs the suite. newDatabase makes a fresh database for each test.
func Run(t *testing.T, newDatabase func(t *testing.T) Database) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db Database)
	}{
		{"Users", testUsers},
		{"FailuresCountedExactly", testFailuresRaced},
		{"Methods", testMethods},
		{"DeviceLimitExact", testDeviceLimitRaced},
		{"ClaimStepOnce", testClaimStepRaced},
		{"DeleteAfterReadOnce", testDeleteAfterReadRaced},
		{"BackupCodeSpentOnce", testBackupCodesRaced},
		{"OneTimeCodeSpentOnce", testCodesRaced},
		{"SendLimitExact", testSendSlotsRaced},
		{"IdempotencyKeyReservedOnce", testReserveRaced},
		{"UnitRollback", testUnitRollback},
		{"UserReadsInABatch", testUserReadsInBatch},
		{"AuditChainRaced", testAuditRaced},
		{"AuditQuery", testAuditQuery},
		{"Outbox", testOutbox},
		{"Notifications", testNotifications},
		{"SweepAndMeta", testSweepAndMeta},
		{"WebAuthnHandleSetOnce", testWebAuthnHandleRaced},
		{"WebAuthnChallengeTakenOnce", testChallengesRaced},
		{"WebAuthnCredentials", testCredentials},
		{"WebAuthnSignCountOnlyUp", testSignCountRaced},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newDatabase(t)) })
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// write runs fn as one unit of user and fails the test on any error.
func write(t *testing.T, s channels.Store, user string, fn func(ctx context.Context, tx channels.Tx) error) {
	t.Helper()
	if errs := s.Write(context.Background(), []channels.Unit{{UserID: user, Run: fn}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
}

// VerifiedDevice gives user (created if need be) a verified TOTP device, label, whose
// last used step is step, and returns its id.
func VerifiedDevice(t *testing.T, s channels.Store, user, label string, step int64) int64 {
	t.Helper()
	var id int64
	write(t, s, user, func(ctx context.Context, tx channels.Tx) error {
		if err := tx.EnsureUser(ctx, user, t0); err != nil {
			return err
		}
		var err error
		if id, err = tx.InsertMethod(ctx, newTOTP(user, label, t0.Add(time.Hour))); err != nil {
			return err
		}
		_, err = tx.MarkVerified(ctx, id, t0, step, 0)
		return err
	})
	return id
}

// read runs fn in a read transaction and fails the test on any error.
func read(t *testing.T, s channels.Store, fn func(ctx context.Context, tx channels.Tx) error) {
	t.Helper()
	if err := s.Read(context.Background(), fn); err != nil {
		t.Fatal(err)
	}
}

// race runs n writes of one unit each at once, spread over handles, and returns what
// each reported. A unit may run more than once (a store may retry a batch); the last
// run's result counts.
func race[T any](t *testing.T, handles []Store, n int, user func(i int) string,
	fn func(ctx context.Context, tx channels.Tx, i int) (T, error)) []T {
	t.Helper()
	out := make([]T, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			h := handles[i%len(handles)]
			res := h.Write(context.Background(), []channels.Unit{{UserID: user(i), Run: func(ctx context.Context, tx channels.Tx) error {
				v, err := fn(ctx, tx, i)
				out[i] = v
				return err
			}}})
			errs[i] = res[0]
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	return out
}

// handles opens n handles on db.
func handles(db Database, n int) []Store {
	hs := make([]Store, n)
	for i := range hs {
		hs[i] = db.Open()
	}
	return hs
}

func alice(int) string { return "alice" }

func count[T comparable](vs []T, v T) int {
	n := 0
	for _, x := range vs {
		if x == v {
			n++
		}
	}
	return n
}

func testUsers(t *testing.T, db Database) {
	s := db.Open()
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		u, err := tx.User(ctx, "nobody")
		if err != nil || u.ID != "nobody" || u.SignInEnabled || u.FailedAttempts != 0 || !u.LockedUntil.IsZero() {
			return fmt.Errorf("a user never seen: %+v, %v", u, err)
		}
		return nil
	})
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		for range 2 {
			if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
				return err
			}
		}
		if changed, err := tx.SetSignIn(ctx, "alice", true, t0); err != nil || !changed {
			return fmt.Errorf("sign-in on: changed %v, %v", changed, err)
		}
		if changed, err := tx.SetSignIn(ctx, "alice", true, t0); err != nil || changed {
			return fmt.Errorf("sign-in on again: changed %v, %v", changed, err)
		}
		for want := 1; want <= 3; want++ {
			n, locked, err := tx.AddFailure(ctx, "alice", t0)
			if err != nil || n != want || !locked.IsZero() {
				return fmt.Errorf("failure %d: count %d, lock %v, %v", want, n, locked, err)
			}
		}
		if err := tx.LockUntil(ctx, "alice", t0.Add(time.Hour), t0); err != nil {
			return err
		}
		if err := tx.LockUntil(ctx, "alice", t0.Add(time.Minute), t0); err != nil { // never shorter
			return err
		}
		n, locked, err := tx.AddFailure(ctx, "alice", t0)
		if err != nil || n != 4 || !locked.Equal(t0.Add(time.Hour)) {
			return fmt.Errorf("failure 4: count %d, lock %v, %v", n, locked, err)
		}
		// A failure of a user never seen creates them.
		if n, _, err := tx.AddFailure(ctx, "bob", t0); err != nil || n != 1 {
			return fmt.Errorf("bob's first failure: %d, %v", n, err)
		}
		return nil
	})
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		u, err := tx.User(ctx, "alice")
		if err != nil || !u.SignInEnabled || u.FailedAttempts != 4 || !u.LockedUntil.Equal(t0.Add(time.Hour)) {
			return fmt.Errorf("alice: %+v, %v", u, err)
		}
		return nil
	})
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.ResetFailures(ctx, "alice", t0); err != nil {
			return err
		}
		u, err := tx.User(ctx, "alice")
		if err != nil || u.FailedAttempts != 0 || !u.LockedUntil.Equal(t0.Add(time.Hour)) {
			return fmt.Errorf("after a reset of the count: %+v, %v", u, err)
		}
		if err := tx.ClearLockout(ctx, "alice", t0); err != nil {
			return err
		}
		if u, err = tx.User(ctx, "alice"); err != nil || !u.LockedUntil.IsZero() {
			return fmt.Errorf("after clearing the lock: %+v, %v", u, err)
		}
		return nil
	})
}

// testFailuresRaced: failures counted at once from several handles each get a count of
// their own, and the total is exact.
func testFailuresRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	const n = 40
	counts := race(t, hs, n, alice, func(ctx context.Context, tx channels.Tx, _ int) (int, error) {
		c, _, err := tx.AddFailure(ctx, "alice", t0)
		return c, err
	})
	slices.Sort(counts)
	for i, c := range counts {
		if c != i+1 {
			t.Fatalf("counts %v, want 1…%d once each", counts, n)
		}
	}
}

func newTOTP(user, label string, expires time.Time) channels.NewMethod {
	return channels.NewMethod{UserID: user, Kind: mfa.KindTOTP, Label: label, SecretEnc: []byte("sealed"),
		Algorithm: "SHA1", Digits: 6, Period: 30, CreatedAt: t0, ExpiresAt: expires}
}

func testMethods(t *testing.T, db Database) {
	s := db.Open()
	var first, second, sms int64
	write(t, s, "carol", func(ctx context.Context, tx channels.Tx) error {
		// A user with a row and no verified method: sign-in on, a pending setup.
		if err := tx.EnsureUser(ctx, "carol", t0); err != nil {
			return err
		}
		if _, err := tx.SetSignIn(ctx, "carol", true, t0); err != nil {
			return err
		}
		_, err := tx.InsertMethod(ctx, newTOTP("carol", "Pending", t0.Add(time.Hour)))
		return err
	})
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
			return err
		}
		var err error
		if first, err = tx.InsertMethod(ctx, newTOTP("alice", "Phone", t0.Add(time.Minute))); err != nil {
			return err
		}
		if second, err = tx.InsertMethod(ctx, newTOTP("alice", "Tablet", t0.Add(time.Minute))); err != nil {
			return err
		}
		sms, err = tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindSMS, Label: "+34******222",
			DestEnc: []byte("sealed address"), Hint: "+34******222", EntryPoint: "bank-app", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)})
		if err != nil {
			return err
		}
		if first == second || second == sms {
			return fmt.Errorf("ids %d %d %d", first, second, sms)
		}
		m, ok, err := tx.PendingMethod(ctx, "alice", mfa.KindTOTP, nil, t0)
		if err != nil || !ok || m.ID != second || m.Verified || m.Label != "Tablet" || string(m.SecretEnc) != "sealed" ||
			m.Algorithm != "SHA1" || m.Digits != 6 || m.Period != 30 || m.LastUsedStep != -1 {
			return fmt.Errorf("latest pending: %+v %v %v", m, ok, err)
		}
		if m, ok, err = tx.PendingMethod(ctx, "alice", mfa.KindTOTP, &first, t0); err != nil || !ok || m.ID != first {
			return fmt.Errorf("pending by id: %+v %v %v", m, ok, err)
		}
		if _, ok, err = tx.PendingMethod(ctx, "alice", mfa.KindTOTP, &first, t0.Add(time.Minute)); err != nil || ok {
			return fmt.Errorf("an expired pending row was found: %v %v", ok, err)
		}
		if _, ok, err = tx.PendingMethod(ctx, "bob", mfa.KindTOTP, &first, t0); err != nil || ok {
			return fmt.Errorf("another user's pending row was found: %v %v", ok, err)
		}
		for _, id := range []int64{first, second} {
			if ok, err := tx.MarkVerified(ctx, id, t0.Add(time.Duration(id)*time.Second), 100, 5); err != nil || !ok {
				return fmt.Errorf("verify %d: %v %v", id, ok, err)
			}
		}
		if ok, err := tx.MarkVerified(ctx, first, t0, 100, 5); err != nil || ok {
			return fmt.Errorf("verified twice: %v %v", ok, err)
		}
		if ok, err := tx.MarkVerified(ctx, sms, t0, -1, 0); err != nil || !ok {
			return fmt.Errorf("verify the SMS channel: %v %v", ok, err)
		}
		return nil
	})
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		all, err := tx.Methods(ctx, "alice", "")
		if err != nil || len(all) != 3 || all[0].ID != first || all[1].ID != second || all[2].ID != sms || !all[0].Verified ||
			all[0].LastUsedStep != 100 || all[2].EntryPoint != "bank-app" || string(all[2].DestEnc) != "sealed address" {
			return fmt.Errorf("methods %+v, %v", all, err)
		}
		u, both, err := tx.UserAndMethods(ctx, "alice")
		if err != nil || u.ID != "alice" || len(both) != len(all) {
			return fmt.Errorf("user and methods: %+v %+v %v", u, both, err)
		}
		if alone, err := tx.User(ctx, "alice"); err != nil || alone != u {
			return fmt.Errorf("user and methods read the user as %+v, User as %+v (%v)", u, alone, err)
		}
		for i := range all {
			if both[i].ID != all[i].ID || both[i].Kind != all[i].Kind || string(both[i].SecretEnc) != string(all[i].SecretEnc) ||
				string(both[i].DestEnc) != string(all[i].DestEnc) || both[i].LastUsedStep != all[i].LastUsedStep {
				return fmt.Errorf("user and methods, method %d: %+v, Methods: %+v", i, both[i], all[i])
			}
		}
		// A user the store has never seen, and one with only a pending method.
		if u, none, err := tx.UserAndMethods(ctx, "nobody"); err != nil || u.ID != "nobody" || u.SignInEnabled || len(none) != 0 {
			return fmt.Errorf("unknown user and methods: %+v %+v %v", u, none, err)
		}
		if u, none, err := tx.UserAndMethods(ctx, "carol"); err != nil || u.ID != "carol" || !u.SignInEnabled || len(none) != 0 {
			return fmt.Errorf("user with a pending method only: %+v %+v %v", u, none, err)
		}
		totp, err := tx.Methods(ctx, "alice", mfa.KindTOTP)
		if err != nil || len(totp) != 2 {
			return fmt.Errorf("TOTP methods %+v, %v", totp, err)
		}
		counts, err := tx.CountVerified(ctx, "alice")
		if err != nil || counts[mfa.KindTOTP] != 2 || counts[mfa.KindSMS] != 1 || len(counts) != 2 {
			return fmt.Errorf("counts %v, %v", counts, err)
		}
		// The rules decide the primary and the order; the store hands over the rows.
		list, err := tx.ListMethods(ctx, "alice", "")
		if err != nil || len(list) != 3 {
			return fmt.Errorf("list %+v, %v", list, err)
		}
		byID := map[int64]mfa.Method{}
		for _, m := range list {
			if m.Primary || !m.Verified {
				return fmt.Errorf("list entry %+v: the store sets no primary, lists only verified methods", m)
			}
			byID[m.ID] = m
		}
		if f := byID[first]; f.VerifiedAt == nil || f.LastUsedAt != nil || f.Kind != mfa.KindTOTP || !f.CreatedAt.Equal(t0) {
			return fmt.Errorf("first device listed as %+v", f)
		}
		if m := byID[sms]; m.Destination != "+34******222" || m.Kind != mfa.KindSMS || m.EntryPoint != "bank-app" {
			return fmt.Errorf("SMS method listed as %+v", m)
		}
		if _, ok := byID[second]; !ok {
			return fmt.Errorf("second device missing from %+v", list)
		}
		if m, ok, err := tx.MethodByID(ctx, sms); err != nil || !ok || m.Kind != mfa.KindSMS || m.UserID != "alice" {
			return fmt.Errorf("by id: %+v %v %v", m, ok, err)
		}
		if _, ok, err := tx.MethodByID(ctx, 1<<40); err != nil || ok {
			return fmt.Errorf("an absent id was found: %v %v", ok, err)
		}
		return nil
	})
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.TouchMethod(ctx, second, t0.Add(time.Hour)); err != nil {
			return err
		}
		if err := tx.DeleteMethod(ctx, first); err != nil {
			return err
		}
		list, err := tx.ListMethods(ctx, "alice", mfa.KindTOTP)
		if err != nil || len(list) != 1 || list[0].ID != second || list[0].LastUsedAt == nil ||
			!list[0].LastUsedAt.Equal(t0.Add(time.Hour)) {
			return fmt.Errorf("after removing the primary: %+v, %v", list, err)
		}
		if _, err := tx.InsertMethod(ctx, newTOTP("alice", "Pending", t0.Add(time.Minute))); err != nil {
			return err
		}
		gone, err := tx.DeletePending(ctx, "alice", mfa.KindTOTP)
		if err != nil || len(gone) != 1 || gone[0].Label != "Pending" {
			return fmt.Errorf("discarded %+v, %v", gone, err)
		}
		if gone, err = tx.DeletePending(ctx, "alice", mfa.KindTOTP); err != nil || len(gone) != 0 {
			return fmt.Errorf("discarded again %+v, %v", gone, err)
		}
		return nil
	})
}

// testDeviceLimitRaced: pending devices verified at once never exceed the limit.
func testDeviceLimitRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	const n, limit = 12, 5
	ids := make([]int64, n)
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
			return err
		}
		for i := range ids {
			var err error
			if ids[i], err = tx.InsertMethod(ctx, newTOTP("alice", fmt.Sprint(i), t0.Add(time.Hour))); err != nil {
				return err
			}
		}
		return nil
	})
	won := race(t, hs, n, alice, func(ctx context.Context, tx channels.Tx, i int) (bool, error) {
		return tx.MarkVerified(ctx, ids[i], t0, 1, limit)
	})
	if got := count(won, true); got != limit {
		t.Fatalf("%d devices verified at once under a limit of %d", got, limit)
	}
}

// testClaimStepRaced: one TOTP step claimed at once from several handles is accepted
// once; an earlier step afterwards not at all.
func testClaimStepRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	id := VerifiedDevice(t, hs[0], "alice", "Phone", 10)
	used := t0.Add(time.Minute)
	won := race(t, hs, 30, alice, func(ctx context.Context, tx channels.Tx, _ int) (bool, error) {
		return tx.ClaimStep(ctx, id, 11, used)
	})
	if got := count(won, true); got != 1 {
		t.Fatalf("step claimed %d times", got)
	}
	lastUse := func(ctx context.Context, tx channels.Tx) (time.Time, error) {
		list, err := tx.ListMethods(ctx, "alice", mfa.KindTOTP)
		if err != nil || len(list) != 1 || list[0].LastUsedAt == nil {
			return time.Time{}, fmt.Errorf("list %+v, %v", list, err)
		}
		return *list[0].LastUsedAt, nil
	}
	write(t, hs[1], "alice", func(ctx context.Context, tx channels.Tx) error {
		for _, step := range []int64{10, 11, 9} {
			if ok, err := tx.ClaimStep(ctx, id, step, t0.Add(time.Hour)); err != nil || ok {
				return fmt.Errorf("claim step %d: %v %v, want refused", step, ok, err)
			}
		}
		if at, err := lastUse(ctx, tx); err != nil || !at.Equal(used) {
			return fmt.Errorf("last use %v (%v): a claim records it, a refused one does not", at, err)
		}
		if ok, err := tx.ClaimStep(ctx, id, 12, t0.Add(2*time.Minute)); err != nil || !ok {
			return fmt.Errorf("claim step 12: %v %v", ok, err)
		}
		return nil
	})
	// The race as sign-ins run it: each unit reads the user and its methods first (a
	// store may answer the claim from that read), some claim twice.
	for _, step := range []int64{13, 15} {
		won = race(t, hs, 30, alice, func(ctx context.Context, tx channels.Tx, i int) (bool, error) {
			_, methods, err := tx.UserAndMethods(ctx, "alice")
			if err != nil || len(methods) != 1 || methods[0].ID != id {
				return false, fmt.Errorf("read alice: %+v %v", methods, err)
			}
			if methods[0].LastUsedStep >= step {
				return false, nil
			}
			ok, err := tx.ClaimStep(ctx, id, step, used)
			if ok && i%2 == 0 {
				// The same step again in the same unit: refused.
				if again, err := tx.ClaimStep(ctx, id, step, used); err != nil || again {
					return false, fmt.Errorf("step %d claimed twice in one unit: %v %v", step, again, err)
				}
			}
			return ok, err
		})
		if got := count(won, true); got != 1 {
			t.Fatalf("step %d claimed %d times by units that read first", step, got)
		}
	}
	read(t, hs[2], func(ctx context.Context, tx channels.Tx) error {
		_, methods, err := tx.UserAndMethods(ctx, "alice")
		if err != nil || len(methods) != 1 || methods[0].LastUsedStep != 15 {
			return fmt.Errorf("alice's device after the races: %+v %v, want last step 15", methods, err)
		}
		return nil
	})
}

// testDeleteAfterReadRaced: units that read the user's methods and delete one they saw
// (as a removal does), raced from several handles: exactly one sees it and deletes it,
// and a read later in the same unit no longer finds it.
func testDeleteAfterReadRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	id := VerifiedDevice(t, hs[0], "alice", "Phone", 10)
	deleted := race(t, hs, 30, alice, func(ctx context.Context, tx channels.Tx, _ int) (bool, error) {
		_, methods, err := tx.UserAndMethods(ctx, "alice")
		if err != nil || len(methods) == 0 {
			return false, err
		}
		if err := tx.DeleteMethod(ctx, methods[0].ID); err != nil {
			return false, err
		}
		if _, found, err := tx.MethodByID(ctx, id); err != nil || found {
			return false, fmt.Errorf("method %d found after its deletion in the same unit (%v)", id, err)
		}
		return true, tx.Append(ctx, event("alice", 0))
	})
	if got := count(deleted, true); got != 1 {
		t.Fatalf("the method was deleted by %d units", got)
	}
}

func testBackupCodesRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	codes := make([]channels.CodeHash, 10)
	for i := range codes {
		codes[i] = channels.CodeHash{KeyID: "k1", Sum: bytes.Repeat([]byte{byte(i)}, 32)}
	}
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
			return err
		}
		if n, err := tx.ReplaceBackupCodes(ctx, "alice", codes[:3], t0); err != nil || n != 0 {
			return fmt.Errorf("first set: replaced %d, %v", n, err)
		}
		if n, err := tx.ReplaceBackupCodes(ctx, "alice", codes, t0); err != nil || n != 3 {
			return fmt.Errorf("second set: replaced %d, %v", n, err)
		}
		return nil
	})
	var target int64
	read(t, hs[1], func(ctx context.Context, tx channels.Tx) error {
		unused, err := tx.UnusedBackupCodes(ctx, "alice")
		if err != nil || len(unused) != 10 {
			return fmt.Errorf("unused %d, %v", len(unused), err)
		}
		for _, c := range unused {
			if bytes.Equal(c.Sum, codes[4].Sum) && c.KeyID == "k1" {
				target = c.ID
			}
		}
		if target == 0 {
			return fmt.Errorf("code 4 is not among the unused: %+v", unused)
		}
		return nil
	})
	won := race(t, hs, 20, alice, func(ctx context.Context, tx channels.Tx, _ int) (bool, error) {
		return tx.SpendBackupCode(ctx, target, t0)
	})
	if got := count(won, true); got != 1 {
		t.Fatalf("one backup code spent %d times", got)
	}
	read(t, hs[2], func(ctx context.Context, tx channels.Tx) error {
		total, remaining, err := tx.BackupCodeCounts(ctx, "alice")
		if err != nil || total != 10 || remaining != 9 {
			return fmt.Errorf("counts %d/%d, %v", remaining, total, err)
		}
		return nil
	})
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		if n, err := tx.DeleteBackupCodes(ctx, "alice"); err != nil || n != 10 {
			return fmt.Errorf("deleted %d, %v", n, err)
		}
		return nil
	})
}

func testCodesRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	sum := bytes.Repeat([]byte{7}, 32)
	var sms, email int64
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
			return err
		}
		var err error
		if sms, err = tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindSMS, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if email, err = tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindEmail, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if _, err := tx.MarkVerified(ctx, email, t0, -1, 0); err != nil {
			return err
		}
		// A second code for a method replaces its first.
		for _, s := range [][]byte{bytes.Repeat([]byte{1}, 32), sum} {
			err := tx.PutCode(ctx, channels.PendingCode{MethodID: sms, Purpose: "register",
				Hash: channels.CodeHash{KeyID: "k1", Sum: s}, ExpiresAt: t0.Add(5 * time.Minute), CreatedAt: t0})
			if err != nil {
				return err
			}
		}
		return tx.PutCode(ctx, channels.PendingCode{MethodID: email, Purpose: "signin",
			Hash: channels.CodeHash{KeyID: "k1", Sum: sum}, ExpiresAt: t0.Add(5 * time.Minute), CreatedAt: t0})
	})
	read(t, hs[1], func(ctx context.Context, tx channels.Tx) error {
		reg, err := tx.OutstandingCodes(ctx, "alice", "register", mfa.KindSMS, t0)
		if err != nil || len(reg) != 1 || reg[0].Method.ID != sms || !bytes.Equal(reg[0].Hash.Sum, sum) ||
			reg[0].Purpose != "register" || reg[0].Method.Verified {
			return fmt.Errorf("register codes %+v, %v", reg, err)
		}
		in, err := tx.OutstandingCodes(ctx, "alice", "signin", "", t0)
		if err != nil || len(in) != 1 || in[0].Method.ID != email || !in[0].Method.Verified {
			return fmt.Errorf("sign-in codes %+v, %v", in, err)
		}
		if none, err := tx.OutstandingCodes(ctx, "alice", "register", mfa.KindEmail, t0); err != nil || len(none) != 0 {
			return fmt.Errorf("another kind's codes %+v, %v", none, err)
		}
		if none, err := tx.OutstandingCodes(ctx, "alice", "register", "", t0.Add(5*time.Minute)); err != nil || len(none) != 0 {
			return fmt.Errorf("expired codes %+v, %v", none, err)
		}
		return nil
	})
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		if ok, err := tx.SpendCode(ctx, sms, bytes.Repeat([]byte{1}, 32)); err != nil || ok {
			return fmt.Errorf("a replaced code spent: %v %v", ok, err)
		}
		return nil
	})
	won := race(t, hs, 20, alice, func(ctx context.Context, tx channels.Tx, _ int) (bool, error) {
		return tx.SpendCode(ctx, sms, sum)
	})
	if got := count(won, true); got != 1 {
		t.Fatalf("one code spent %d times", got)
	}
}

// testSendSlotsRaced: codes sent at once never exceed the limit, and a refusal says
// when the oldest leaves the window.
func testSendSlotsRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	const limit, window = 5, 10 * time.Minute
	won := race(t, hs, 16, alice, func(ctx context.Context, tx channels.Tx, i int) (bool, error) {
		ok, _, err := tx.TakeSendSlot(ctx, "alice", t0.Add(time.Duration(i)*time.Millisecond), window, limit)
		return ok, err
	})
	if got := count(won, true); got != limit {
		t.Fatalf("%d codes sent under a limit of %d", got, limit)
	}
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		ok, retry, err := tx.TakeSendSlot(ctx, "alice", t0.Add(time.Minute), window, limit)
		if err != nil || ok || retry.Before(t0.Add(window)) || retry.After(t0.Add(window+time.Second)) {
			return fmt.Errorf("over the limit: %v, retry at %v, %v", ok, retry, err)
		}
		if ok, _, err := tx.TakeSendSlot(ctx, "bob", t0.Add(time.Minute), window, limit); err != nil || !ok {
			return fmt.Errorf("another user's first send: %v, %v", ok, err)
		}
		if ok, _, err := tx.TakeSendSlot(ctx, "alice", t0.Add(window+time.Second), window, limit); err != nil || !ok {
			return fmt.Errorf("after the window: %v, %v", ok, err)
		}
		return nil
	})
}

// testReserveRaced: one idempotency key used at once from several handles runs one
// command; the others find it with its reply.
func testReserveRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	hash := []byte("request hash")
	type result struct {
		found bool
		reply string
	}
	got := race(t, hs, 20, alice, func(ctx context.Context, tx channels.Tx, _ int) (result, error) {
		c, found, err := tx.ReserveCommand(ctx, "alice", "key-1", "totp.setup", hash, t0, time.Hour)
		if err != nil || found {
			return result{found, string(c.ReplySealed)}, err
		}
		return result{}, tx.SaveReply(ctx, "alice", "key-1", []byte("the reply"))
	})
	ran := 0
	for _, r := range got {
		switch {
		case !r.found:
			ran++
		case r.reply != "the reply":
			t.Fatalf("a retry found reply %q", r.reply)
		}
	}
	if ran != 1 {
		t.Fatalf("the command ran %d times", ran)
	}
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		c, found, err := tx.ReserveCommand(ctx, "alice", "key-1", "totp.setup", []byte("other"), t0.Add(time.Minute), time.Hour)
		if err != nil || !found || c.Type != "totp.setup" || string(c.RequestHash) != string(hash) {
			return fmt.Errorf("the key within its window: %+v %v %v", c, found, err)
		}
		if _, found, err := tx.ReserveCommand(ctx, "bob", "key-1", "totp.setup", hash, t0, time.Hour); err != nil || found {
			return fmt.Errorf("keys are per user: bob found alice's (%v)", err)
		}
		// Past the window the key is free again.
		if _, found, err := tx.ReserveCommand(ctx, "alice", "key-1", "totp.verify", hash, t0.Add(2*time.Hour), time.Hour); err != nil || found {
			return fmt.Errorf("an expired key was found: %v %v", found, err)
		}
		c, found, err = tx.ReserveCommand(ctx, "alice", "key-1", "totp.verify", hash, t0.Add(2*time.Hour), time.Hour)
		if err != nil || !found || c.Type != "totp.verify" {
			return fmt.Errorf("the key taken over: %+v %v %v", c, found, err)
		}
		return nil
	})
}

// testUnitRollback: a unit that fails keeps none of its writes or records, and the
// units beside it in the batch commit.
func testUnitRollback(t *testing.T, db Database) {
	s := db.Open()
	boom := fmt.Errorf("boom")
	units := []channels.Unit{
		{UserID: "alice", Run: func(ctx context.Context, tx channels.Tx) error {
			if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
				return err
			}
			return tx.Append(ctx, event("alice", 0))
		}},
		{UserID: "mallory", Run: func(ctx context.Context, tx channels.Tx) error {
			if err := tx.EnsureUser(ctx, "mallory", t0); err != nil {
				return err
			}
			if _, err := tx.SetSignIn(ctx, "mallory", true, t0); err != nil {
				return err
			}
			if err := tx.Append(ctx, event("mallory", 1)); err != nil {
				return err
			}
			return boom
		}},
		{UserID: "bob", Run: func(ctx context.Context, tx channels.Tx) error {
			if err := tx.EnsureUser(ctx, "bob", t0); err != nil {
				return err
			}
			return tx.Append(ctx, event("bob", 2))
		}},
	}
	errs := s.Write(context.Background(), units)
	if errs[0] != nil || errs[1] != boom || errs[2] != nil {
		t.Fatalf("errors %v", errs)
	}
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		if u, err := tx.User(ctx, "mallory"); err != nil || u.SignInEnabled {
			return fmt.Errorf("the failed unit's write survived: %+v %v", u, err)
		}
		page, err := tx.QueryAudit(ctx, mfa.AuditQuery{})
		if err != nil || len(page.Records) != 2 || page.Records[0].UserID != "alice" || page.Records[1].UserID != "bob" ||
			page.Records[1].Seq != 2 {
			return fmt.Errorf("records %+v, %v", page.Records, err)
		}
		return nil
	})
	if n, err := audit.Verify(context.Background(), s.Records(), db.Chain); err != nil || n != 2 {
		t.Fatalf("chain after a rolled-back unit: %d, %v", n, err)
	}
}

// testUserReadsInBatch: units that start by reading their user (Unit.ReadsUser) see
// every write made before their read, by an earlier unit of the same user, by a unit
// of no user, or by themselves, and a unit's idempotency key changes nothing of it.
func testUserReadsInBatch(t *testing.T, db Database) {
	s := db.Open()
	ids := map[string][]int64{}
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		write(t, s, u, func(ctx context.Context, tx channels.Tx) error {
			if err := tx.EnsureUser(ctx, u, t0); err != nil {
				return err
			}
			if _, err := tx.SetSignIn(ctx, u, true, t0); err != nil {
				return err
			}
			for _, label := range []string{"Phone", "Tablet"} {
				id, err := tx.InsertMethod(ctx, newTOTP(u, label, t0.Add(time.Hour)))
				if err != nil {
					return err
				}
				if ok, err := tx.MarkVerified(ctx, id, t0, 1, 0); err != nil || !ok {
					return fmt.Errorf("verify %s's %s: %v %v", u, label, ok, err)
				}
				ids[u] = append(ids[u], id)
			}
			return nil
		})
	}
	// expect reads the unit's user and compares what it sees.
	expect := func(ctx context.Context, tx channels.Tx, user string, signIn bool, failures int, methods []int64) error {
		u, ms, err := tx.UserAndMethods(ctx, user)
		if err != nil {
			return err
		}
		var got []int64
		for _, m := range ms {
			got = append(got, m.ID)
		}
		if u.ID != user || u.SignInEnabled != signIn || u.FailedAttempts != failures || !slices.Equal(got, methods) {
			return fmt.Errorf("%s read as %+v with methods %v; want sign-in %v, %d failures, methods %v",
				user, u, got, signIn, failures, methods)
		}
		return nil
	}
	units := []channels.Unit{
		{UserID: "alice", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
			if err := expect(ctx, tx, "alice", true, 0, ids["alice"]); err != nil {
				return err
			}
			if err := tx.DeleteMethod(ctx, ids["alice"][0]); err != nil {
				return err
			}
			_, _, err := tx.AddFailure(ctx, "alice", t0)
			return err
		}},
		{UserID: "alice", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
			return expect(ctx, tx, "alice", true, 1, ids["alice"][1:])
		}},
		{UserID: "bob", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
			if _, found, err := tx.ReserveCommand(ctx, "bob", "key-1", mfa.CmdVerify, []byte("h"), t0, time.Hour); err != nil || found {
				return fmt.Errorf("reserve: %v %v", found, err)
			}
			return expect(ctx, tx, "bob", true, 0, ids["bob"])
		}},
		{Run: func(ctx context.Context, tx channels.Tx) error {
			_, err := tx.SetSignIn(ctx, "carol", false, t0)
			return err
		}},
		{UserID: "carol", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
			return expect(ctx, tx, "carol", false, 0, ids["carol"])
		}},
		{UserID: "dave", ReadsUser: true, Run: func(ctx context.Context, tx channels.Tx) error {
			if err := tx.DeleteMethod(ctx, ids["dave"][1]); err != nil {
				return err
			}
			return expect(ctx, tx, "dave", true, 0, ids["dave"][:1])
		}},
	}
	for i, err := range s.Write(context.Background(), units) {
		if err != nil {
			t.Errorf("unit %d: %v", i, err)
		}
	}
}

func event(user string, i int) mfa.Event {
	return mfa.Event{ID: mfa.NewID(), Type: mfa.EventVerifyFailed, UserID: user, Actor: user, Source: "pc",
		Object: mfa.EventObject{Type: mfa.ObjectUser, ID: user}, Time: t0.Add(time.Duration(i) * time.Second),
		Detail: map[string]any{"i": i}}
}

// testAuditRaced: records appended at once from several handles and users form one
// gap-free chain in commit order that verifies.
func testAuditRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	const n, each = 40, 3
	race(t, hs, n, func(i int) string { return fmt.Sprint("user-", i%7) }, func(ctx context.Context, tx channels.Tx, i int) (struct{}, error) {
		for j := range each {
			if err := tx.Append(ctx, event(fmt.Sprint("user-", i%7), i*each+j)); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	got, err := audit.Verify(context.Background(), hs[0].Records(), db.Chain)
	if err != nil || got != n*each {
		t.Fatalf("Verify = %d, %v; want %d records", got, err, n*each)
	}
	// A command's records are consecutive: no other command's record falls between.
	records, err := hs[1].Outbox().Load(context.Background(), 1, n*each+10)
	if err != nil || len(records) != n*each {
		t.Fatalf("loaded %d records, %v", len(records), err)
	}
	for i := 0; i < len(records); i += each {
		for j := range each {
			if r := records[i+j]; r.Seq != int64(i+j+1) {
				t.Fatalf("record %d has seq %d", i+j+1, r.Seq)
			}
		}
		if records[i].UserID != records[i+each-1].UserID {
			t.Fatalf("records %d–%d mix commands", i+1, i+each)
		}
	}
}

func testAuditQuery(t *testing.T, db Database) {
	s := db.Open()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	types := []string{mfa.EventVerifyFailed, mfa.EventTOTPDeviceVerified, mfa.EventSignInEnabled, mfa.EventBackupUsed}
	for i := range 30 {
		user := "alice"
		if i%2 == 1 {
			user = "bob"
		}
		ev := mfa.Event{ID: mfa.NewID(), Type: types[i%len(types)], UserID: user, Actor: user, Source: "pc",
			Object: mfa.EventObject{Type: mfa.ObjectTOTPDevice, ID: fmt.Sprint(i)}, Time: base.Add(time.Duration(i) * time.Minute)}
		write(t, s, user, func(ctx context.Context, tx channels.Tx) error { return tx.Append(ctx, ev) })
	}
	query := func(q mfa.AuditQuery) mfa.AuditPage {
		t.Helper()
		var p mfa.AuditPage
		read(t, s, func(ctx context.Context, tx channels.Tx) error {
			var err error
			p, err = tx.QueryAudit(ctx, q)
			return err
		})
		if p.Records == nil {
			t.Fatal("records is nil: it would encode as null")
		}
		return p
	}
	all := query(mfa.AuditQuery{})
	if len(all.Records) != 30 || all.NextCursor != 0 {
		t.Fatalf("default query: %d records, next %d", len(all.Records), all.NextCursor)
	}
	r := all.Records[3]
	if r.Seq != 4 || r.UserID != "bob" || r.Actor != "bob" || r.Type != types[3] || r.Source != "pc" ||
		!r.CreatedAt.Equal(base.Add(3*time.Minute)) || r.Published || !bytes.Contains(r.Event, []byte(`"mfa:seq":4`)) {
		t.Fatalf("record 4 = %+v %s", r, r.Event)
	}
	for _, tc := range []struct {
		name string
		q    mfa.AuditQuery
		want []int64
		next int64
	}{
		{"user", mfa.AuditQuery{UserID: "bob", Limit: 4}, []int64{2, 4, 6, 8}, 8},
		{"user next page", mfa.AuditQuery{UserID: "bob", Limit: 4, Cursor: 8}, []int64{10, 12, 14, 16}, 16},
		{"user last page", mfa.AuditQuery{UserID: "bob", Limit: 4, Cursor: 24}, []int64{26, 28, 30}, 0},
		{"exactly a page", mfa.AuditQuery{UserID: "bob", Limit: 3, Cursor: 24}, []int64{26, 28, 30}, 0},
		{"type", mfa.AuditQuery{Type: types[1], Limit: 3}, []int64{2, 6, 10}, 10},
		{"user and type", mfa.AuditQuery{UserID: "alice", Type: types[2]}, []int64{3, 7, 11, 15, 19, 23, 27}, 0},
		{"since", mfa.AuditQuery{Since: base.Add(25 * time.Minute).UnixMilli()}, []int64{26, 27, 28, 29, 30}, 0},
		{"since and cursor", mfa.AuditQuery{Since: base.Add(25 * time.Minute).UnixMilli(), Cursor: 28}, []int64{29, 30}, 0},
		{"nobody", mfa.AuditQuery{UserID: "carol"}, []int64{}, 0},
		{"past the end", mfa.AuditQuery{Cursor: 30}, []int64{}, 0},
		{"over the most a page holds", mfa.AuditQuery{Limit: 10_000}, nil, 0},
	} {
		p := query(tc.q)
		seqs := make([]int64, 0, len(p.Records))
		for _, r := range p.Records {
			seqs = append(seqs, r.Seq)
		}
		if tc.want == nil {
			if len(seqs) != 30 {
				t.Errorf("%s: %d records", tc.name, len(seqs))
			}
			continue
		}
		if !slices.Equal(seqs, tc.want) || p.NextCursor != tc.next {
			t.Errorf("%s: seqs %v next %d; want %v next %d", tc.name, seqs, p.NextCursor, tc.want, tc.next)
		}
	}
}

// testOutbox: what the relay reads and marks.
func testOutbox(t *testing.T, db Database) {
	s := db.Open()
	o := s.Outbox()
	ctx := context.Background()
	if seq, err := o.FirstUnpublished(ctx); err != nil || seq != 1 {
		t.Fatalf("empty log: first unpublished %d, %v", seq, err)
	}
	for i := range 10 {
		write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error { return tx.Append(ctx, event("alice", i)) })
	}
	if n, oldest, err := o.Backlog(ctx); err != nil || n != 10 || !oldest.Equal(t0) {
		t.Fatalf("backlog %d oldest %v, %v", n, oldest, err)
	}
	recs, err := o.Load(ctx, 3, 4)
	if err != nil || len(recs) != 4 || recs[0].Seq != 3 || recs[3].Seq != 6 || recs[0].EventID == "" || recs[0].Body == "" ||
		recs[0].Type != mfa.EventVerifyFailed || recs[0].CreatedAt != t0.Add(2*time.Second).UnixMilli() {
		t.Fatalf("load: %+v, %v", recs, err)
	}
	if id, ok, err := o.EventID(ctx, 3); err != nil || !ok || id != recs[0].EventID {
		t.Fatalf("event id of 3: %q %v %v", id, ok, err)
	}
	if _, ok, err := o.EventID(ctx, 99); err != nil || ok {
		t.Fatalf("event id of an absent record: %v %v", ok, err)
	}
	if err := o.MarkPublished(ctx, 1, 4, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := o.MarkPublished(ctx, 2, 6, t0.Add(2*time.Hour)); err != nil { // 2–4 already marked: kept
		t.Fatal(err)
	}
	if seq, err := o.FirstUnpublished(ctx); err != nil || seq != 7 {
		t.Fatalf("first unpublished %d, %v", seq, err)
	}
	if n, err := o.PublishedFrom(ctx, 5); err != nil || n != 2 {
		t.Fatalf("published from 5: %d, %v", n, err)
	}
	if n, _, err := o.Backlog(ctx); err != nil || n != 4 {
		t.Fatalf("backlog %d, %v", n, err)
	}
	if err := o.MarkPublished(ctx, 7, 10, t0); err != nil {
		t.Fatal(err)
	}
	if seq, err := o.FirstUnpublished(ctx); err != nil || seq != 11 {
		t.Fatalf("all published: first unpublished %d, %v", seq, err)
	}
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		b, err := tx.OutboxBacklog(ctx)
		if err != nil || b.AuditUnpublished != 0 || b.AuditOldest != nil {
			return fmt.Errorf("dashboard backlog %+v, %v", b, err)
		}
		return nil
	})
}

// testNotifications: every queued notification is handed to a relay once, in order,
// and only the ones it reports sent are deleted.
func testNotifications(t *testing.T, db Database) {
	hs := handles(db, 2)
	const n = 60
	for i := range n {
		write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
			return tx.QueueNotification(ctx, channels.QueuedNotification{MsgID: fmt.Sprint("m", i), Subject: "mfa.notify.sms",
				BodySealed: []byte{byte(i)}, CreatedAt: t0.Add(time.Duration(i) * time.Second)})
		})
	}
	read(t, hs[0], func(ctx context.Context, tx channels.Tx) error {
		b, err := tx.OutboxBacklog(ctx)
		if err != nil || b.NotificationsQueued != n || b.NotificationsOldest == nil || !b.NotificationsOldest.Equal(t0) {
			return fmt.Errorf("backlog %+v, %v", b, err)
		}
		return nil
	})
	// A pass that sends nothing keeps everything.
	last, err := hs[0].RelayNotifications(context.Background(), 0, 10, func([]channels.QueuedNotification) []int64 { return nil })
	if err != nil || last == 0 {
		t.Fatalf("relay pass: last %d, %v", last, err)
	}
	relays := 1
	if !db.OneRelay {
		relays = len(hs)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for r := range relays {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var after int64
			for {
				last, err := hs[r].RelayNotifications(context.Background(), after, 7, func(batch []channels.QueuedNotification) []int64 {
					ids := make([]int64, 0, len(batch))
					for _, q := range batch {
						mu.Lock()
						seen[q.MsgID]++
						mu.Unlock()
						ids = append(ids, q.ID)
					}
					return ids
				})
				if err != nil {
					t.Error(err)
					return
				}
				if last == after {
					return
				}
				after = last
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("%d of %d notifications relayed", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("notification %s relayed %d times", id, c)
		}
	}
	read(t, hs[1], func(ctx context.Context, tx channels.Tx) error {
		b, err := tx.OutboxBacklog(ctx)
		if err != nil || b.NotificationsQueued != 0 {
			return fmt.Errorf("after relaying: %+v, %v", b, err)
		}
		return nil
	})
}

func testSweepAndMeta(t *testing.T, db Database) {
	s := db.Open()
	var old, fresh int64
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.EnsureUser(ctx, "alice", t0); err != nil {
			return err
		}
		var err error
		if old, err = tx.InsertMethod(ctx, newTOTP("alice", "old", t0.Add(time.Minute))); err != nil {
			return err
		}
		if fresh, err = tx.InsertMethod(ctx, newTOTP("alice", "fresh", t0.Add(time.Hour))); err != nil {
			return err
		}
		if err := tx.PutCode(ctx, channels.PendingCode{MethodID: fresh, Purpose: "register", Hash: channels.CodeHash{KeyID: "k", Sum: []byte("x")},
			ExpiresAt: t0.Add(time.Minute), CreatedAt: t0}); err != nil {
			return err
		}
		if _, _, err := tx.ReserveCommand(ctx, "alice", "old", "t", []byte("h"), t0, time.Hour); err != nil {
			return err
		}
		if _, _, err := tx.ReserveCommand(ctx, "alice", "new", "t", []byte("h"), t0.Add(2*time.Hour), time.Hour); err != nil {
			return err
		}
		_, _, err = tx.TakeSendSlot(ctx, "alice", t0, time.Hour, 5)
		if err != nil {
			return err
		}
		if _, found, err := tx.Meta(ctx, "canary"); err != nil || found {
			return fmt.Errorf("meta before it was set: %v %v", found, err)
		}
		if err := tx.SetMeta(ctx, "canary", []byte("one")); err != nil {
			return err
		}
		return tx.SetMeta(ctx, "canary", []byte("two"))
	})
	now := t0.Add(30 * time.Minute)
	write(t, s, "", func(ctx context.Context, tx channels.Tx) error {
		return tx.Sweep(ctx, now, t0.Add(time.Hour), now, 1000)
	})
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		if v, found, err := tx.Meta(ctx, "canary"); err != nil || !found || string(v) != "two" {
			return fmt.Errorf("meta %q %v %v", v, found, err)
		}
		if _, ok, err := tx.MethodByID(ctx, fresh); err != nil || !ok {
			return fmt.Errorf("a fresh pending row was swept: %v %v", ok, err)
		}
		if _, ok, err := tx.MethodByID(ctx, old); err != nil || ok {
			return fmt.Errorf("an expired pending row outlived the sweep: %v %v", ok, err)
		}
		if codes, err := tx.OutstandingCodes(ctx, "alice", "register", "", t0); err != nil || len(codes) != 0 {
			return fmt.Errorf("an expired code outlived the sweep: %+v %v", codes, err)
		}
		return nil
	})
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		if _, found, err := tx.ReserveCommand(ctx, "alice", "new", "t", []byte("h"), t0.Add(2*time.Hour), time.Hour); err != nil || !found {
			return fmt.Errorf("a key within its window was swept: %v %v", found, err)
		}
		if _, found, err := tx.ReserveCommand(ctx, "alice", "old", "t", []byte("h"), t0, 24*time.Hour); err != nil || found {
			return fmt.Errorf("an expired key outlived the sweep: %v %v", found, err)
		}
		// The send record went with the sweep: a limit of one is free again.
		if ok, _, err := tx.TakeSendSlot(ctx, "alice", t0.Add(time.Second), time.Hour, 1); err != nil || !ok {
			return fmt.Errorf("the swept send record still counts: %v %v", ok, err)
		}
		return nil
	})
	if err := s.Writable(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// testWebAuthnHandleRaced: the first handle stored is every caller's, however many
// propose one at once; a user never seen is created by it.
func testWebAuthnHandleRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	got := race(t, hs, 20, alice, func(ctx context.Context, tx channels.Tx, i int) (string, error) {
		h, err := tx.WebAuthnHandle(ctx, "alice", bytes.Repeat([]byte{byte(i + 1)}, 32), t0)
		return string(h), err
	})
	for _, h := range got {
		if h != got[0] || len(h) != 32 {
			t.Fatalf("handles differ: %x", got)
		}
	}
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		if h, err := tx.WebAuthnHandle(ctx, "alice", nil, t0); err != nil || string(h) != got[0] {
			return fmt.Errorf("handle read back %x, %v", h, err)
		}
		if h, err := tx.WebAuthnHandle(ctx, "bob", []byte("bob's"), t0); err != nil || string(h) != "bob's" {
			return fmt.Errorf("another user's handle %q, %v", h, err)
		}
		return nil
	})
}

func challenge(user, id, purpose string, created time.Time) channels.Challenge {
	return channels.Challenge{ID: id, UserID: user, Purpose: purpose, SessionSealed: []byte("sealed " + id),
		ExpiresAt: created.Add(5 * time.Minute), CreatedAt: created}
}

// testChallengesRaced: a challenge is taken once, only by its user, for its purpose,
// before it expires; the newest few of a user are kept; the sweep takes expired ones.
func testChallengesRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	ids := make([]string, 7)
	for i := range ids {
		ids[i] = mfa.NewID()
	}
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		for i, id := range ids {
			if err := tx.PutChallenge(ctx, challenge("alice", id, "login", t0.Add(time.Duration(i)*time.Second)), 5); err != nil {
				return err
			}
		}
		if err := tx.PutChallenge(ctx, challenge("alice", "reg-1", "register", t0), 5); err != nil {
			return err
		}
		return tx.PutChallenge(ctx, challenge("bob", "bob-1", "login", t0), 5)
	})
	write(t, hs[1], "alice", func(ctx context.Context, tx channels.Tx) error {
		for _, tc := range []struct {
			user, id, purpose string
			now               time.Time
		}{
			{"alice", ids[0], "login", t0},                                    // trimmed: the oldest two went
			{"alice", ids[1], "login", t0},                                    //
			{"bob", ids[6], "login", t0},                                      // someone else's
			{"alice", ids[6], "register", t0},                                 // another purpose
			{"alice", ids[6], "login", t0.Add(6*time.Second + 5*time.Minute)}, // expired
			{"alice", "no-such-id", "login", t0},
		} {
			if sealed, ok, err := tx.TakeChallenge(ctx, tc.user, tc.id, tc.purpose, tc.now); err != nil || ok || sealed != nil {
				return fmt.Errorf("take %+v: %q %v %v", tc, sealed, ok, err)
			}
		}
		return nil
	})
	won := race(t, hs, 20, alice, func(ctx context.Context, tx channels.Tx, _ int) (string, error) {
		sealed, _, err := tx.TakeChallenge(ctx, "alice", ids[6], "login", t0.Add(time.Minute))
		return string(sealed), err
	})
	if got := count(won, "sealed "+ids[6]); got != 1 || count(won, "") != len(won)-1 {
		t.Fatalf("a challenge taken %d times: %q", got, won)
	}
	write(t, hs[2], "alice", func(ctx context.Context, tx channels.Tx) error {
		if _, ok, err := tx.TakeChallenge(ctx, "alice", ids[2], "login", t0); err != nil || !ok {
			return fmt.Errorf("a kept challenge: %v %v", ok, err)
		}
		if n, err := tx.DeleteChallenges(ctx, "alice"); err != nil || n != 4 { // ids 3, 4, 5 and reg-1
			return fmt.Errorf("deleted %d challenges, %v", n, err)
		}
		return tx.Sweep(ctx, t0.Add(time.Hour), t0, t0, 1000)
	})
	write(t, hs[3], "bob", func(ctx context.Context, tx channels.Tx) error {
		if _, ok, err := tx.TakeChallenge(ctx, "bob", "bob-1", "login", t0); err != nil || ok {
			return fmt.Errorf("an expired challenge outlived the sweep: %v %v", ok, err)
		}
		return nil
	})
}

func credential(id byte) channels.WebAuthnCredential {
	return channels.WebAuthnCredential{CredentialID: bytes.Repeat([]byte{id}, 16), PublicKey: []byte("cose key"),
		SignCount: 3, AAGUID: bytes.Repeat([]byte{0xaa}, 16), UserVerified: true, BackupEligible: true,
		AttestationFormat: "packed", Transports: []string{"usb", "nfc"}, Attachment: "cross-platform"}
}

// addCredential inserts a webauthn method with c and verifies it, as registration does.
func addCredential(ctx context.Context, tx channels.Tx, user, label string, c channels.WebAuthnCredential) (int64, bool, error) {
	if err := tx.EnsureUser(ctx, user, t0); err != nil {
		return 0, false, err
	}
	id, err := tx.InsertMethod(ctx, channels.NewMethod{UserID: user, Kind: mfa.KindWebAuthn, Label: label,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)})
	if err != nil {
		return 0, false, err
	}
	ok, err := tx.AddCredential(ctx, id, c)
	if err != nil || !ok {
		return id, ok, err
	}
	_, err = tx.MarkVerified(ctx, id, t0, -1, 10)
	return id, true, err
}

// testCredentials: a credential is stored and read back as it was, a credential id is
// registered once across users, and removing the method removes the credential.
func testCredentials(t *testing.T, db Database) {
	s := db.Open()
	var key int64
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		var ok bool
		var err error
		if key, ok, err = addCredential(ctx, tx, "alice", "Key", credential(1)); err != nil || !ok {
			return fmt.Errorf("first credential: %v %v", ok, err)
		}
		if _, ok, err := addCredential(ctx, tx, "bob", "Stolen", credential(1)); err != nil || ok {
			return fmt.Errorf("one credential id registered to a second user: %v %v", ok, err)
		}
		if err := tx.TouchMethod(ctx, key, t0.Add(time.Hour)); err != nil {
			return err
		}
		// A pending method's credential is not one yet.
		id, err := tx.InsertMethod(ctx, channels.NewMethod{UserID: "alice", Kind: mfa.KindWebAuthn, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)})
		if err != nil {
			return err
		}
		_, err = tx.AddCredential(ctx, id, credential(2))
		return err
	})
	read(t, s, func(ctx context.Context, tx channels.Tx) error {
		cs, err := tx.Credentials(ctx, "alice")
		if err != nil || len(cs) != 1 {
			return fmt.Errorf("credentials %+v, %v", cs, err)
		}
		c, want := cs[0], credential(1)
		if c.MethodID != key || c.Label != "Key" || !c.CreatedAt.Equal(t0) || c.LastUsedAt == nil || !c.LastUsedAt.Equal(t0.Add(time.Hour)) ||
			!bytes.Equal(c.CredentialID, want.CredentialID) || !bytes.Equal(c.PublicKey, want.PublicKey) || c.SignCount != 3 ||
			!bytes.Equal(c.AAGUID, want.AAGUID) || !c.UserVerified || !c.BackupEligible || c.BackupState ||
			c.AttestationFormat != "packed" || !slices.Equal(c.Transports, want.Transports) || c.Attachment != "cross-platform" ||
			!c.FlaggedAt.IsZero() {
			return fmt.Errorf("credential read back as %+v", c)
		}
		if bob, err := tx.Credentials(ctx, "bob"); err != nil || len(bob) != 0 {
			return fmt.Errorf("bob's credentials %+v, %v", bob, err)
		}
		counts, err := tx.CountVerified(ctx, "alice")
		if err != nil || counts[mfa.KindWebAuthn] != 1 {
			return fmt.Errorf("counts %v, %v", counts, err)
		}
		return nil
	})
	write(t, s, "alice", func(ctx context.Context, tx channels.Tx) error {
		if err := tx.DeleteMethod(ctx, key); err != nil {
			return err
		}
		if _, ok, err := addCredential(ctx, tx, "bob", "Reused", credential(1)); err != nil || !ok {
			return fmt.Errorf("the credential id of a removed method: %v %v", ok, err)
		}
		return nil
	})
}

// testSignCountRaced: a sign count is accepted only above the stored one (or zero
// while zero), once when raced, never for a flagged credential.
func testSignCountRaced(t *testing.T, db Database) {
	hs := handles(db, 4)
	var key, counterless int64
	write(t, hs[0], "alice", func(ctx context.Context, tx channels.Tx) error {
		var err error
		if key, _, err = addCredential(ctx, tx, "alice", "Key", credential(1)); err != nil {
			return err
		}
		zero := credential(2)
		zero.SignCount = 0
		counterless, _, err = addCredential(ctx, tx, "alice", "Passkey", zero)
		return err
	})
	won := race(t, hs, 20, alice, func(ctx context.Context, tx channels.Tx, _ int) (bool, error) {
		return tx.AdvanceSignCount(ctx, key, 7, true)
	})
	if got := count(won, true); got != 1 {
		t.Fatalf("sign count 7 accepted %d times", got)
	}
	write(t, hs[1], "alice", func(ctx context.Context, tx channels.Tx) error {
		for _, tc := range []struct {
			id    int64
			count uint32
			want  bool
		}{
			{key, 7, false}, {key, 3, false}, {key, 0, false}, {key, 8, true},
			{counterless, 0, true}, {counterless, 0, true}, {counterless, 2, true}, {counterless, 0, false},
		} {
			if ok, err := tx.AdvanceSignCount(ctx, tc.id, tc.count, false); err != nil || ok != tc.want {
				return fmt.Errorf("advance %d to %d: %v %v, want %v", tc.id, tc.count, ok, err, tc.want)
			}
		}
		return nil
	})
	flagged := race(t, hs, 10, alice, func(ctx context.Context, tx channels.Tx, _ int) (bool, error) {
		return tx.FlagCredential(ctx, key, t0)
	})
	if got := count(flagged, true); got != 1 {
		t.Fatalf("flagged %d times", got)
	}
	write(t, hs[2], "alice", func(ctx context.Context, tx channels.Tx) error {
		if ok, err := tx.AdvanceSignCount(ctx, key, 100, false); err != nil || ok {
			return fmt.Errorf("a flagged credential's count advanced: %v %v", ok, err)
		}
		cs, err := tx.Credentials(ctx, "alice")
		if err != nil || len(cs) != 2 || !cs[0].FlaggedAt.Equal(t0) || cs[0].SignCount != 8 || cs[0].BackupState ||
			!cs[1].FlaggedAt.IsZero() || cs[1].SignCount != 2 {
			return fmt.Errorf("after flagging: %+v, %v", cs, err)
		}
		return nil
	})
}
