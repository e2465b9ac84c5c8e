package handlers_test

import (
	"net/http"
	"testing"
)

func TestStatusTravelsThroughTheWorker(t *testing.T) {
	s := newStack(t)
	r := s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if r.Status != http.StatusOK {
		t.Fatalf("status = %d, body %s", r.Status, r.Raw)
	}
	if get(r.Body, "success") != true || get(r.Body, "data", "enabled") != false ||
		get(r.Body, "data", "backup_codes_remaining") != float64(0) {
		t.Fatalf("unexpected body %s", r.Raw)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id")
	}
}
