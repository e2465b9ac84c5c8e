package audit_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/audit"
	"github.com/mfad/mfad/channels"
	"github.com/mfad/mfad/channels/sqlite"
)

func query(t *testing.T, store *sqlite.Store, q mfa.AuditQuery) mfa.AuditPage {
	t.Helper()
	var page mfa.AuditPage
	err := store.Read(context.Background(), func(ctx context.Context, tx channels.Tx) error {
		var err error
		page, err = tx.QueryAudit(ctx, q)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func seqs(p mfa.AuditPage) []int64 {
	out := make([]int64, len(p.Records))
	for i, r := range p.Records {
		out[i] = r.Seq
	}
	return out
}

func TestQueryFiltersAndPages(t *testing.T) {
	store := openStore(t)
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// 30 events, one a minute: alice on even i, bob on odd; types cycle by i.
	for i := range 30 {
		user := "alice"
		if i%2 == 1 {
			user = "bob"
		}
		appendEvents(t, store, newEvent(i, user, base.Add(time.Duration(i)*time.Minute)))
	}
	read := store

	all := query(t, read, mfa.AuditQuery{})
	if len(all.Records) != 30 || all.NextCursor != 0 || all.Records[0].Seq != 1 {
		t.Fatalf("default query: %v next %d", seqs(all), all.NextCursor)
	}
	r := all.Records[3]
	if r.UserID != "bob" || r.Actor != "bob" || r.Type != types[3] || r.Source != "pc" ||
		!r.CreatedAt.Equal(base.Add(3*time.Minute)) || r.Published {
		t.Fatalf("record 4 = %+v", r)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Event, &body); err != nil || body["mfa:seq"] != float64(4) {
		t.Fatalf("record 4 event = %s (%v)", r.Event, err)
	}

	tests := []struct {
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := query(t, read, tt.q)
			if got := seqs(p); !equal(got, tt.want) || p.NextCursor != tt.next {
				t.Fatalf("seqs %v next %d; want %v next %d", got, p.NextCursor, tt.want, tt.next)
			}
			if p.Records == nil {
				t.Fatal("records is nil: it would encode as null")
			}
		})
	}
}

func TestQueryLimits(t *testing.T) {
	store := openStore(t)
	evs := make([]mfa.Event, 600)
	for i := range evs {
		evs[i] = newEvent(i, "alice", time.Now())
	}
	appendEvents(t, store, evs...)
	if p := query(t, store, mfa.AuditQuery{}); len(p.Records) != audit.DefaultLimit || p.NextCursor != 50 {
		t.Fatalf("default limit: %d records, next %d", len(p.Records), p.NextCursor)
	}
	if p := query(t, store, mfa.AuditQuery{Limit: 10_000}); len(p.Records) != audit.MaxLimit || p.NextCursor != 500 {
		t.Fatalf("limit above the maximum: %d records, next %d", len(p.Records), p.NextCursor)
	}
}

// TestQueryUsesTheIndexes checks the plans: a user or type filter walks its index in
// seq order instead of sorting or scanning the table.
func TestQueryUsesTheIndexes(t *testing.T) {
	db := dbOf(t, openStore(t))
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

func equal(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
