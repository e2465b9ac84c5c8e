package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mfad/mfad/handlers"
)

func TestRequestID(t *testing.T) {
	s := newStack(t)
	cases := []struct {
		name, sent string
		kept       bool
	}{
		{"none sent", "", false},
		{"sane id is echoed", "req-42.abc_DEF", true},
		{"128 chars is echoed", strings.Repeat("r", 128), true},
		{"129 chars is replaced", strings.Repeat("r", 129), false},
		{"spaces are replaced", "two words", false},
		{"non-ASCII is replaced", "réq", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.sent != "" {
				headers = []string{"X-Request-Id", tc.sent}
			}
			for _, path := range []string{"/healthz", statusPath} {
				got := s.call(http.MethodGet, path, "", headers...).Header.Get("X-Request-Id")
				if got == "" || (got == tc.sent) != tc.kept {
					t.Fatalf("%s: sent %q, got X-Request-Id %q (kept: want %v)", path, tc.sent, got, tc.kept)
				}
			}
		})
	}
}

// TestBodyLimit: bodies over 64 KiB are refused with 413 before anything else looks at
// the request, authentication included.
func TestBodyLimit(t *testing.T) {
	s := newStack(t)
	big := `{"pad":"` + strings.Repeat("x", handlers.MaxBody) + `"}`
	r := s.as("alice", http.MethodGet, statusPath, big)
	if r.Status != http.StatusRequestEntityTooLarge || get(r.Body, "error", "code") != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("status %d body %s, want 413 PAYLOAD_TOO_LARGE", r.Status, r.Raw)
	}
	if r := s.call(http.MethodGet, statusPath, big); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("without a token: status %d, want 413", r.Status)
	}
	if r := s.as("alice", http.MethodGet, statusPath, `{"pad":"small"}`); r.Status != http.StatusOK {
		t.Fatalf("small body: status %d body %s", r.Status, r.Raw)
	}
}
