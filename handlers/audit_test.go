package handlers_test

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	mfa "github.com/mfad/mfad"
	"github.com/mfad/mfad/channels/sqlite/sqlitetest"
)

// seedAudit appends events straight into the stack's log, in one transaction on the
// writer as a worker would: alice on even i, bob on odd, a minute apart.
func seedAudit(t *testing.T, s *stack, n int, start time.Time) {
	t.Helper()
	kinds := []string{mfa.EventVerifyFailed, mfa.EventTOTPDeviceVerified}
	evs := make([]mfa.Event, n)
	for i := range n {
		user := "alice"
		if i%2 == 1 {
			user = "bob"
		}
		evs[i] = mfa.Event{
			ID: mfa.NewID(), Type: kinds[(i/2)%2], UserID: user, Actor: user, Source: "pc",
			Object: mfa.EventObject{Type: mfa.ObjectTOTPDevice, ID: fmt.Sprint(i)},
			Time:   start.Add(time.Duration(i) * time.Minute),
		}
	}
	sqlitetest.Append(t, s.Store, evs...)
}

// auditSeqs lists the seq of each record of an answer, and its next_cursor (0 = null).
func auditSeqs(t *testing.T, r response) ([]float64, float64) {
	t.Helper()
	if r.Status != http.StatusOK || get(r.Body, "success") != true {
		t.Fatalf("status %d: %s", r.Status, r.Raw)
	}
	recs, ok := get(r.Body, "data", "records").([]any)
	if !ok {
		t.Fatalf("no records array: %s", r.Raw)
	}
	out := make([]float64, len(recs))
	for i := range recs {
		out[i] = get(recs[i], "seq").(float64)
	}
	next, _ := get(r.Body, "data", "next_cursor").(float64)
	return out, next
}

func TestAuditQueryOverHTTP(t *testing.T) {
	s := newStack(t)
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	seedAudit(t, s, 12, start)
	admin := "Bearer " + s.token("ops", jwt.MapClaims{"scope": "mfa:admin"})
	alice := "Bearer " + s.token("alice")

	tests := []struct {
		name  string
		token string
		query string
		want  []float64
		next  float64
	}{
		{"a user sees their own", alice, "", []float64{1, 3, 5, 7, 9, 11}, 0},
		{"a user may name themselves", alice, "user_id=alice&limit=2", []float64{1, 3}, 3},
		{"next page", alice, "limit=2&cursor=3", []float64{5, 7}, 7},
		{"admin sees everyone", admin, "limit=5", []float64{1, 2, 3, 4, 5}, 5},
		{"admin filters a user", admin, "user_id=bob", []float64{2, 4, 6, 8, 10, 12}, 0},
		{"type", admin, "type=totp.device_verified", []float64{3, 4, 7, 8, 11, 12}, 0},
		{"since", admin, "since=" + url.QueryEscape(start.Add(9*time.Minute).Format(time.RFC3339)), []float64{10, 11, 12}, 0},
		{"since with an offset", alice, "since=2025-06-01T14:09:00%2B02:00", []float64{11}, 0},
		{"limit above the maximum", admin, "limit=100000", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.call(http.MethodGet, "/api/v1/audit?"+tt.query, "", "Authorization", tt.token)
			got, next := auditSeqs(t, r)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || next != tt.next {
				t.Fatalf("seqs %v next %v; want %v next %v", got, next, tt.want, tt.next)
			}
		})
	}

	// One record in full: the row's columns and the AS2 event as stored.
	r := s.call(http.MethodGet, "/api/v1/audit?limit=1", "", "Authorization", alice)
	rec := get(r.Body, "data", "records", 0)
	if get(rec, "event_id") == "" || get(rec, "type") != mfa.EventVerifyFailed || get(rec, "user_id") != "alice" ||
		get(rec, "actor") != "alice" || get(rec, "source") != "pc" || get(rec, "published") != false ||
		get(rec, "created_at") != "2025-06-01T12:00:00Z" ||
		get(rec, "event", "type") != "Reject" || get(rec, "event", "mfa:seq") != float64(1) {
		t.Fatalf("record = %s", r.Raw)
	}
}

func TestAuditQueryRefusals(t *testing.T) {
	s := newStack(t)
	seedAudit(t, s, 2, time.Now())
	alice := "Bearer " + s.token("alice")
	tests := []struct {
		name   string
		token  string
		query  string
		status int
		code   string
		field  string
	}{
		{"another user's records", alice, "user_id=bob", http.StatusForbidden, "FORBIDDEN", ""},
		{"limit not a number", alice, "limit=ten", http.StatusBadRequest, "VALIDATION_ERROR", "limit"},
		{"limit zero", alice, "limit=0", http.StatusUnprocessableEntity, "VALIDATION_ERROR", "limit"},
		{"cursor not a number", alice, "cursor=abc", http.StatusBadRequest, "VALIDATION_ERROR", "cursor"},
		{"cursor negative", alice, "cursor=-4", http.StatusUnprocessableEntity, "VALIDATION_ERROR", "cursor"},
		{"since not RFC 3339", alice, "since=yesterday", http.StatusUnprocessableEntity, "VALIDATION_ERROR", "since"},
		{"since as a date only", alice, "since=2025-06-01", http.StatusUnprocessableEntity, "VALIDATION_ERROR", "since"},
		{"unknown type", alice, "type=totp.exploded", http.StatusBadRequest, "VALIDATION_ERROR", "type"},
		{"no token", "", "", http.StatusUnauthorized, "UNAUTHORIZED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.token != "" {
				h = []string{"Authorization", tt.token}
			}
			r := s.call(http.MethodGet, "/api/v1/audit?"+tt.query, "", h...)
			if r.Status != tt.status || get(r.Body, "success") != false || get(r.Body, "error", "code") != tt.code {
				t.Fatalf("status %d: %s; want %d %s", r.Status, r.Raw, tt.status, tt.code)
			}
			if tt.field != "" && get(r.Body, "error", "details", "field") != tt.field {
				t.Fatalf("error does not name %s: %s", tt.field, r.Raw)
			}
		})
	}
}
