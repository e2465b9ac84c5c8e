package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels"
)

// TestQueryPlans runs every command against a store, then asks SQLite for the plan of
// every statement the workers prepared on the way (the statement caches hold exactly
// what ran). None may scan a table that grows with the user base: each must find its
// rows by searching an index. A scan of a whole index counts as a scan: with the wide
// covering indexes of schema 4, a query that lost its user filter would otherwise walk
// methods_by_user end to end and still say "USING". None may sort in a temporary
// B-tree either: for a user's few rows SQLite's sorter cost more than the rest of the
// query, so the rules sort.
func TestQueryPlans(t *testing.T) {
	now := time.Now()
	store, err := Open(context.Background(), filepath.Join(t.TempDir(), "mfad.db"), testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	w := testWorker(t, store, channels.Config{Now: func() time.Time { return now }})
	ctx := context.Background()
	for _, u := range []string{"alice", "bob"} {
		setup := do(t, w, mfa.CmdTOTPSetup, u, mfa.TOTPSetupParams{DeviceName: "Phone"})
		var s mfa.TOTPSetup
		if err := json.Unmarshal(setup.Data, &s); err != nil {
			t.Fatal(err)
		}
		do(t, w, mfa.CmdTOTPVerify, u, mfa.TOTPVerifyParams{Code: totpCode(t, s.Secret, now)})
		now = now.Add(30 * time.Second)
		do(t, w, mfa.CmdVerify, u, mfa.VerifyParams{Code: totpCode(t, s.Secret, now)})
		do(t, w, mfa.CmdVerify, u, mfa.VerifyParams{Code: "000000"})
		do(t, w, mfa.CmdVerify, u, mfa.VerifyParams{BackupCode: "abcd-efgh"})
		do(t, w, mfa.CmdStatus, u, nil)
		do(t, w, mfa.CmdTOTPList, u, nil)
		do(t, w, mfa.CmdBackupCount, u, nil)
		do(t, w, mfa.CmdBackupRegenerate, u, nil)
		do(t, w, mfa.CmdChannelRegister, u, mfa.ChannelParams{Channel: mfa.KindSMS, Address: "+34600111222"})
		do(t, w, mfa.CmdChannelValidate, u, mfa.ChannelParams{Channel: mfa.KindSMS, Code: "000000"})
		do(t, w, mfa.CmdOTPSend, u, mfa.OTPSendParams{Method: mfa.KindSMS})
		do(t, w, mfa.CmdSignInDisable, u, nil)
		do(t, w, mfa.CmdTOTPRemove, u, mfa.DeviceParams{DeviceID: s.DeviceID})
		do(t, w, mfa.CmdChannelDelete, u, mfa.ChannelParams{Channel: mfa.KindSMS})
		do(t, w, mfa.CmdSecretRemove, u, nil)
		cmd := mfa.Command{ID: mfa.NewID(), Key: "k", Type: mfa.CmdTOTPSetup, UserID: u, Actor: u, Params: mustJSON(t, mfa.TOTPSetupParams{DeviceName: "x"})}
		w.Do(ctx, cmd)
		w.Do(ctx, mfa.Command{ID: mfa.NewID(), Type: mfa.CmdAdminReset, UserID: u, Actor: "admin", Admin: true})
		do(t, w, mfa.CmdAuditQuery, u, mfa.AuditQuery{UserID: u})
	}
	sweep(t, store, now)
	// Every statement a connection ran is prepared on it.
	var queries []string
	store.wmu.Lock()
	for q := range store.writer.stmts {
		queries = append(queries, q)
	}
	store.wmu.Unlock()
	for _, c := range store.readers.all {
		store.readers.with(ctx, func(*conn) error { return nil }) // the others are idle
		for q := range c.stmts {
			queries = append(queries, q)
		}
	}
	// WebAuthn's statements: the workload above runs no ceremony (they need an
	// authenticator), so their plans are checked from the source.
	queries = append(queries, qWebAuthnHandle, qPutChallenge, qTrimChallenges, qTakeChallenge, qDeleteChallenges,
		qAddCredential, qCredentials, qAdvanceSignCount, qFlagCredential)
	slices.Sort(queries)
	queries = slices.Compact(queries)
	if len(queries) < 30 {
		t.Fatalf("only %d statements ran; the workload above should reach most of them", len(queries))
	}
	for _, q := range queries {
		if strings.HasPrefix(q, "SAVEPOINT") || strings.HasPrefix(q, "RELEASE") || strings.HasPrefix(q, "ROLLBACK") ||
			strings.HasPrefix(q, "BEGIN") || q == "COMMIT" {
			continue
		}
		for _, step := range plan(t, store.read, q) {
			if strings.Contains(step, "TEMP B-TREE") {
				t.Errorf("sort %q in\n%s", step, q)
			}
			if strings.HasPrefix(step, "SCAN ") && !strings.HasPrefix(step, "SCAN CONSTANT") {
				t.Errorf("full scan %q in\n%s", step, q)
			}
		}
	}
}

// plan is SQLite's EXPLAIN QUERY PLAN of q, parameters unbound (NULL: the plan does not
// depend on the values).
func plan(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, make([]any, strings.Count(q, "?"))...)
	if err != nil {
		t.Fatalf("explain %s: %v", q, err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	return steps
}

// TestStatusReadsFromIndexes: the method list and the backup code counts, which every
// status and list read runs, are answered from their indexes without a table row (on a
// large database each of a user's devices lies on a page of its own).
func TestStatusReadsFromIndexes(t *testing.T) {
	store, err := Open(context.Background(), filepath.Join(t.TempDir(), "mfad.db"), testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, q := range []string{qListMethods, qBackupCodeCounts} {
		steps := plan(t, store.read, q)
		if len(steps) != 1 || !strings.Contains(steps[0], "USING COVERING INDEX") {
			t.Errorf("plan %q for\n%s; want one search of a covering index", steps, q)
		}
	}
}

// TestQueryUsesTheIndexes checks the plans: a user or type filter walks its index in
// seq order instead of sorting or scanning the table.
func TestQueryUsesTheIndexes(t *testing.T) {
	store, err := Open(context.Background(), filepath.Join(t.TempDir(), "mfad.db"), testChain(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := store.read
	plans := map[string]string{
		"user_id = ?": "audit_log_by_user",
		"type = ?":    "audit_log_by_type",
	}
	for filter, index := range plans {
		rows, err := db.Query("EXPLAIN QUERY PLAN SELECT seq FROM audit_log WHERE seq > 0 AND "+filter+" ORDER BY seq LIMIT 51", "x")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		text := strings.Join(plan, "; ")
		if !strings.Contains(text, index) || strings.Contains(text, "TEMP B-TREE") {
			t.Errorf("%s: plan %q, want %s without a sort", filter, text, index)
		}
	}
}
