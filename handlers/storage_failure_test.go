package handlers_test

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"
)

// TestDeviceRemovalStorageFailure: when the database refuses the removal (here a
// trigger raising an error, as a full disk or a corrupt page would), the device dialect
// answers API.md §2's 500 DEVICE_REMOVE_ERROR in its error envelope, without the
// database's words, and nothing of the removal is kept: the device, its backup codes
// and sign-in stay, and no removal is audited. Once the database accepts writes again
// the same request succeeds.
func TestDeviceRemovalStorageFailure(t *testing.T) {
	s := newStack(t)
	d := s.enrol("alice", "Phone")
	db, err := sql.Open("sqlite3", s.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const refusal = "storage refused the delete"
	if _, err := db.Exec(`CREATE TRIGGER refuse_removal BEFORE DELETE ON methods
		BEGIN SELECT RAISE(ABORT, '` + refusal + `'); END`); err != nil {
		t.Fatal(err)
	}

	path := "/api/v1/mfa/totp/devices/" + itoa(d.ID)
	r := s.as("alice", http.MethodDelete, path, "")
	want(t, r, http.StatusInternalServerError, "DEVICE_REMOVE_ERROR")
	if get(r.Body, "success") != false || get(r.Body, "error", "message") == nil || get(r.Body, "error", "timestamp") == nil {
		t.Fatalf("not the device dialect's error envelope: %s", r.Raw)
	}
	if strings.Contains(string(r.Raw), refusal) {
		t.Fatalf("the database's error reached the client: %s", r.Raw)
	}

	st := s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if get(st.Body, "data", "enabled") != true || get(st.Body, "data", "backup_codes_remaining") == float64(0) {
		t.Fatalf("a failed removal changed the user: %s", st.Raw)
	}
	list := s.as("alice", http.MethodGet, "/api/v1/mfa/totp/devices", "")
	if get(list.Body, "data", "total_count") != float64(1) {
		t.Fatalf("device gone after a failed removal: %s", list.Raw)
	}
	removals := func() (n int) {
		t.Helper()
		if err := db.QueryRow(`SELECT count(*) FROM audit_log WHERE type IN
			('totp.device_removed', 'backup_codes.revoked', 'signin.disabled')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := removals(); n != 0 {
		t.Fatalf("%d audit records of a removal that did not happen", n)
	}

	if _, err := db.Exec("DROP TRIGGER refuse_removal"); err != nil {
		t.Fatal(err)
	}
	want(t, s.as("alice", http.MethodDelete, path, ""), http.StatusOK, "")
	if n := removals(); n != 3 {
		t.Fatalf("the removal and its cascade left %d audit records, want 3", n)
	}
}
