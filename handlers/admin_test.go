package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAdminGetAndReset(t *testing.T) {
	s := newStack(t, func(o *stackOptions) { o.worker.Lockout.Threshold = 2 })
	d := s.enrol("alice", "Phone")
	s.enrol("alice", "Tablet")
	// Alice locks herself out.
	for range 2 {
		s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+wrongCode(s.code(d))+`"}`)
	}
	admin := "Bearer " + s.token("helpdesk", map[string]any{"scope": "mfa:admin"})

	want(t, s.as("alice", http.MethodGet, "/api/v1/admin/users/alice/mfa", ""), 403, "FORBIDDEN")
	want(t, s.as("alice", http.MethodDelete, "/api/v1/admin/users/alice/mfa", ""), 403, "FORBIDDEN")
	want(t, s.call(http.MethodGet, "/api/v1/admin/users/alice/mfa", ""), 401, "UNAUTHORIZED")
	long := strings.Repeat("u", 129)
	want(t, s.call(http.MethodGet, "/api/v1/admin/users/"+long+"/mfa", "", "Authorization", admin), 422, "VALIDATION_ERROR")

	r := s.call(http.MethodGet, "/api/v1/admin/users/alice/mfa", "", "Authorization", admin)
	want(t, r, 200, "")
	if get(r.Body, "data", "enabled") != true || len(get(r.Body, "data", "methods").([]any)) != 2 ||
		get(r.Body, "data", "locked_until") == nil || get(r.Body, "data", "backup_codes_remaining") != float64(10) {
		t.Fatalf("admin view %s", r.Raw)
	}

	r = s.call(http.MethodDelete, "/api/v1/admin/users/alice/mfa", "", "Authorization", admin)
	want(t, r, 200, "")
	if get(r.Body, "data", "removed") != float64(2) || get(r.Body, "data", "enabled") != false {
		t.Fatalf("reset %s", r.Raw)
	}
	r = s.call(http.MethodGet, "/api/v1/admin/users/alice/mfa", "", "Authorization", admin)
	if len(get(r.Body, "data", "methods").([]any)) != 0 || get(r.Body, "data", "locked_until") != nil ||
		get(r.Body, "data", "backup_codes_remaining") != float64(0) {
		t.Fatalf("after reset %s", r.Raw)
	}
	// The lock went with the reset: alice can enrol again at once.
	s.Clock.Advance(30 * time.Second)
	s.enrol("alice", "New phone")

	// The reset is audited with the admin as the actor of every fact.
	rows, err := s.DB.Query(`SELECT type, actor FROM audit_log WHERE user_id = 'alice' AND seq >
		(SELECT seq FROM audit_log WHERE type = 'admin.reset') - 1 ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var facts []string
	for rows.Next() {
		var typ, actor string
		rows.Scan(&typ, &actor)
		if typ == "totp.device_set_up" {
			break // alice's new enrolment
		}
		if actor != "helpdesk" {
			t.Errorf("%s by %s, want helpdesk", typ, actor)
		}
		facts = append(facts, typ)
	}
	got := strings.Join(facts, ",")
	wantFacts := "admin.reset,totp.device_removed,totp.device_removed,backup_codes.revoked,signin.disabled"
	if got != wantFacts {
		t.Fatalf("facts %s\nwant  %s", got, wantFacts)
	}
}

// TestAdminPathUserIDIsUnescaped: the id a client percent-encodes is the user's id.
func TestAdminPathUserIDIsUnescaped(t *testing.T) {
	s := newStack(t)
	s.enrol("alice@example.com", "Phone")
	admin := "Bearer " + s.token("helpdesk", map[string]any{"scope": "mfa:admin"})
	r := s.call(http.MethodGet, "/api/v1/admin/users/alice%40example.com/mfa", "", "Authorization", admin)
	want(t, r, 200, "")
	if get(r.Body, "data", "user_id") != "alice@example.com" || len(get(r.Body, "data", "methods").([]any)) != 1 {
		t.Fatalf("admin view %s", r.Raw)
	}
	r = s.call(http.MethodDelete, "/api/v1/admin/users/alice%40example.com/mfa", "", "Authorization", admin)
	if get(r.Body, "data", "removed") != float64(1) {
		t.Fatalf("reset %s", r.Raw)
	}
}

// TestAdminPathUserIDDecodedOnce: a percent sign in a user id is %25 in the path, and the
// path is decoded once: x%2541 is the user "x%41", never "xA" (an admin reset the
// wrong user), with or without an escaped slash making Go keep the raw path.
func TestAdminPathUserIDDecodedOnce(t *testing.T) {
	s := newStack(t)
	for _, user := range []string{"xA", "x%41", "a%", "a/b", "a%2Fb"} {
		s.enrol(user, "Phone")
	}
	admin := "Bearer " + s.token("helpdesk", map[string]any{"scope": "mfa:admin"})
	for _, tc := range []struct{ path, user string }{
		{"xA", "xA"},
		{"x%2541", "x%41"},
		{"x%41", "xA"},
		{"a%25", "a%"},
		{"a%2Fb", "a/b"},
		{"a%252Fb", "a%2Fb"},
	} {
		r := s.call(http.MethodGet, "/api/v1/admin/users/"+tc.path+"/mfa", "", "Authorization", admin)
		want(t, r, 200, "")
		if got := get(r.Body, "data", "user_id"); got != tc.user {
			t.Errorf("GET …/users/%s/mfa answered for %q, want %q", tc.path, got, tc.user)
		}
	}
	r := s.call(http.MethodDelete, "/api/v1/admin/users/x%2541/mfa", "", "Authorization", admin)
	if get(r.Body, "data", "user_id") != "x%41" || get(r.Body, "data", "removed") != float64(1) {
		t.Fatalf("reset %s", r.Raw)
	}
	if r := s.as("xA", http.MethodGet, "/api/v1/mfa/status", ""); get(r.Body, "data", "enabled") != true {
		t.Fatalf("the reset of x%%41 reached xA: %s", r.Raw)
	}
}

// TestAdminKeysApartFromTheUsers: an admin's Idempotency-Key for a user is not in the
// user's own key space: the user cannot block a reset by taking its key first, nor
// meet a 409 for a key the admin used; the admin's retry is still a replay.
func TestAdminKeysApartFromTheUsers(t *testing.T) {
	s := newStack(t)
	s.enrol("alice", "Phone")
	admin := "Bearer " + s.token("helpdesk", map[string]any{"scope": "mfa:admin"})

	// alice takes the key the helpdesk tool will use.
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/backup-codes/regenerate", "", "Idempotency-Key", "reset-alice"), 200, "")
	r := s.call(http.MethodDelete, "/api/v1/admin/users/alice/mfa", "", "Authorization", admin, "Idempotency-Key", "reset-alice")
	want(t, r, 200, "")
	if get(r.Body, "data", "removed") != float64(1) || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the reset under a key alice had used: %s", r.Raw)
	}
	again := s.call(http.MethodDelete, "/api/v1/admin/users/alice/mfa", "", "Authorization", admin, "Idempotency-Key", "reset-alice")
	if again.Header.Get("Idempotent-Replayed") != "true" || get(again.Body, "data", "removed") != float64(1) {
		t.Fatalf("the admin's retry is not a replay: %s", again.Raw)
	}
	// And the other way: the admin's key is not alice's.
	want(t, s.call(http.MethodDelete, "/api/v1/admin/users/alice/mfa", "", "Authorization", admin, "Idempotency-Key", "k1"), 200, "")
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"New"}`, "Idempotency-Key", "k1")
	if r.Status != http.StatusOK || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("alice's setup under a key the admin had used: %d %s", r.Status, r.Raw)
	}
}

// TestAdminResetOfAnUnknownUser: a reset of an id mfad never saw (a typo) answers as
// for a user with nothing, and creates no user: the adoption figures do not count it.
func TestAdminResetOfAnUnknownUser(t *testing.T) {
	s := newStack(t)
	admin := "Bearer " + s.token("helpdesk", map[string]any{"scope": "mfa:admin"})
	r := s.call(http.MethodDelete, "/api/v1/admin/users/nobody-by-that-name/mfa", "", "Authorization", admin)
	want(t, r, 200, "")
	if get(r.Body, "data", "removed") != float64(0) || get(r.Body, "data", "enabled") != false {
		t.Fatalf("reset %s", r.Raw)
	}
	var n int
	if err := s.DB.QueryRow("SELECT count(*) FROM users WHERE id = 'nobody-by-that-name'").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d user rows for the unknown id (%v), want none", n, err)
	}
}
