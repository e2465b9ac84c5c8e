package handlers_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/mfad/mfad/handlers"
)

// TestReadyzNamesFailingChecksWithoutDetail: /readyz is public; why a check fails (paths,
// driver errors) is for the log.
func TestReadyzNamesFailingChecksWithoutDetail(t *testing.T) {
	s := newStack(t, func(o *stackOptions) {
		o.handler.Ready = []handlers.Check{
			{Name: "nats", Check: func(context.Context) error { return nil }},
			{Name: "database", Check: func(context.Context) error {
				return errors.New("open /var/lib/mfad/mfad.db: permission denied")
			}},
		}
	})
	r := s.call(http.MethodGet, "/readyz", "")
	if r.Status != http.StatusServiceUnavailable || get(r.Body, "status") != "not_ready" ||
		get(r.Body, "checks", "database") != "failing" || get(r.Body, "checks", "nats") != "ok" ||
		strings.Contains(string(r.Raw), "/var/lib") {
		t.Fatalf("/readyz: %d %s", r.Status, r.Raw)
	}
	if r := s.call(http.MethodGet, "/healthz", ""); r.Status != http.StatusOK {
		t.Fatalf("/healthz: %d", r.Status)
	}
}
