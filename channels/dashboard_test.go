package channels_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	. "github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// dashboardStatsOf runs the dashboard read as an admin would.
func dashboardStatsOf(t *testing.T, w *Worker, admin bool) (mfa.Reply, mfa.DashboardStats) {
	t.Helper()
	r, err := w.Do(context.Background(), mfa.Command{ID: mfa.NewID(), Type: mfa.CmdDashboard,
		UserID: "ops", Actor: "ops", Admin: admin})
	if err != nil {
		t.Fatal(err)
	}
	var st mfa.DashboardStats
	if r.OK {
		if err := json.Unmarshal(r.Data, &st); err != nil {
			t.Fatal(err)
		}
	}
	return r, st
}

func TestDashboardStats(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	w, store := sqlitetest.Worker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{Now: func() time.Time { return now }}, key(1))
	db := sqlitetest.DB(t, store)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	// Users: 60 locked (more than the list shows), one whose lock has just ended, and
	// two free ones with sign-in on.
	ms := now.UnixMilli()
	for i := range 60 {
		exec("INSERT INTO users (id, failed_attempts, locked_until, created_at, updated_at) VALUES (?, 5, ?, ?, ?)",
			fmt.Sprintf("locked%02d", i), ms+int64(i+1)*1000, ms, ms)
	}
	exec("INSERT INTO users (id, failed_attempts, locked_until, created_at, updated_at) VALUES ('expired', 5, ?, ?, ?)", ms, ms, ms)
	exec("INSERT INTO users (id, mfa_signin_enabled, created_at, updated_at) VALUES ('alice', 1, ?, ?), ('bob', 1, ?, ?)", ms, ms, ms, ms)
	// Methods: alice has TOTP and SMS, bob two TOTP devices, and a pending setup that
	// is no method at all.
	exec(`INSERT INTO methods (user_id, kind, verified, created_at) VALUES
		('alice', 'totp', 1, ?), ('alice', 'sms', 1, ?), ('bob', 'totp', 1, ?), ('bob', 'totp', 1, ?), ('expired', 'totp', 0, ?)`,
		ms, ms, ms, ms, ms)

	// Audit records around the window's edges; the first two are published.
	var evs []mfa.Event
	for _, ev := range []struct {
		typ string
		at  time.Duration // before now
	}{
		{mfa.EventVerifyFailed, 61 * time.Minute}, // outside
		{mfa.EventVerifyFailed, time.Hour},        // the window's first instant
		{mfa.EventVerifyFailed, 59 * time.Minute},
		{mfa.EventTOTPDeviceRemoved, time.Minute},
		{mfa.EventTOTPDeviceRemoved, 0},
		{mfa.EventVerifyLocked, 0},
	} {
		evs = append(evs, mfa.Event{ID: mfa.NewID(), Type: ev.typ, UserID: "alice", Actor: "alice",
			Object: mfa.EventObject{Type: mfa.ObjectTOTPDevice}, Time: now.Add(-ev.at)})
	}
	sqlitetest.Append(t, store, evs...)
	exec("UPDATE audit_log SET published_at = ? WHERE seq <= 2", ms)
	exec("INSERT INTO notify_outbox (msg_id, subject, body_sealed, created_at) VALUES ('n1', 'mfa.notify.sms', x'00', ?), ('n2', 'mfa.notify.email', x'00', ?)",
		ms-5000, ms-1000)

	r, st := dashboardStatsOf(t, w, true)
	if !r.OK {
		t.Fatalf("dashboard stats: %+v", r)
	}
	if !st.From.Equal(now.Add(-time.Hour)) || !st.To.Equal(now) {
		t.Errorf("window %s – %s", st.From, st.To)
	}
	if len(st.Events) != len(mfa.EventCatalogue) {
		t.Errorf("%d event types, want every one of the catalogue's %d", len(st.Events), len(mfa.EventCatalogue))
	}
	want := map[string]int{mfa.EventVerifyFailed: 2, mfa.EventTOTPDeviceRemoved: 2, mfa.EventVerifyLocked: 1}
	for i, e := range st.Events {
		if i > 0 && st.Events[i-1].Type >= e.Type {
			t.Errorf("events not in type order: %s before %s", st.Events[i-1].Type, e.Type)
		}
		if e.Count != want[e.Type] {
			t.Errorf("%s: %d events, want %d", e.Type, e.Count, want[e.Type])
		}
	}

	wantAdoption := mfa.Adoption{UsersSeen: 63, SignInEnabled: 2, UsersWithMethod: 2,
		Methods: map[mfa.Kind]int{mfa.KindTOTP: 3, mfa.KindSMS: 1, mfa.KindEmail: 0, mfa.KindWebAuthn: 0}}
	if fmt.Sprint(st.Adoption) != fmt.Sprint(wantAdoption) {
		t.Errorf("adoption %+v, want %+v", st.Adoption, wantAdoption)
	}

	if st.Lockouts.Count != 60 || len(st.Lockouts.Users) != 50 {
		t.Fatalf("lockouts: count %d, %d listed", st.Lockouts.Count, len(st.Lockouts.Users))
	}
	first := st.Lockouts.Users[0]
	if first.UserID != "locked59" || !first.LockedUntil.Equal(now.Add(60*time.Second)) || first.FailedAttempts != 5 {
		t.Errorf("first lock listed: %+v, want locked59 ending last", first)
	}

	o := st.Outbox
	if o.AuditUnpublished != 4 || o.AuditOldest == nil || !o.AuditOldest.Equal(now.Add(-59*time.Minute)) ||
		o.NotificationsQueued != 2 || o.NotificationsOldest == nil || !o.NotificationsOldest.Equal(now.Add(-5*time.Second)) {
		t.Errorf("outbox %+v", o)
	}
}

func TestDashboardStatsEmptyStore(t *testing.T) {
	w, _ := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{}, key(1))
	r, st := dashboardStatsOf(t, w, true)
	if !r.OK {
		t.Fatalf("dashboard stats: %+v", r)
	}
	// Empty is zero, never null: the page draws these without checks.
	raw := string(r.Data)
	for _, part := range []string{`"users":[]`, `"methods":{"email":0,"sms":0,"totp":0,"webauthn":0}`, `"audit_unpublished":0`} {
		if !strings.Contains(raw, part) {
			t.Errorf("reply lacks %s: %s", part, raw)
		}
	}
	if st.Outbox.AuditOldest != nil || st.Outbox.NotificationsOldest != nil {
		t.Errorf("oldest set on an empty outbox: %+v", st.Outbox)
	}
}

func TestDashboardStatsNeedsAdmin(t *testing.T) {
	w, _ := newTestWorker(t, filepath.Join(t.TempDir(), "mfad.db"), Config{}, key(1))
	// The HTTP side checks the scope; the worker refuses too, so a command that reaches
	// NATS some other way reads nothing.
	if r, _ := dashboardStatsOf(t, w, false); r.OK || r.Code != mfa.CodeForbidden {
		t.Fatalf("non-admin dashboard read: %+v", r)
	}
}
