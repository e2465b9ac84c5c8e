package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mfad/mfad/handlers"
)

// TestEveryMutationRefusesABrokenBody: a body is optional on several mutations (every
// DELETE, POST /settings/MfaSecret), but one that is there must be a JSON object. Each
// POST and DELETE route, given a body that is not JSON, answers 400 and changes
// nothing: an endpoint that skipped the check would carry out a removal the client may
// not have meant (it sent something else, cut short).
func TestEveryMutationRefusesABrokenBody(t *testing.T) {
	s := newStack(t)
	d := s.enrol("alice", "Phone")
	admin := s.token("root", jwt.MapClaims{"scope": "mfa:admin"})
	asAdmin := func(method, path string) response {
		return s.call(method, path, "", "Authorization", "Bearer "+admin)
	}
	snapshot := func() string {
		t.Helper()
		user := asAdmin(http.MethodGet, "/api/v1/admin/users/alice/mfa")
		log := asAdmin(http.MethodGet, "/api/v1/audit?user_id=alice&limit=500")
		if user.Status != http.StatusOK || log.Status != http.StatusOK {
			t.Fatalf("snapshot: %d %s / %d %s", user.Status, user.Raw, log.Status, log.Raw)
		}
		return string(user.Raw) + "\n" + string(log.Raw)
	}
	before := snapshot()
	n := 0
	for _, rt := range handlers.New(handlers.Config{}).Routes() {
		if rt.Method != http.MethodPost && rt.Method != http.MethodDelete {
			continue
		}
		n++
		path := strings.NewReplacer(":user_id", "alice", ":device_id", itoa(d.ID)).Replace(rt.Path)
		for _, body := range []string{`{`, `{"a":1}x`, `[]`, `"yes"`, "\xff", "{\"a\":\"\xff\"}"} {
			token := s.token("alice")
			if strings.HasPrefix(path, "/api/v1/admin/") {
				token = admin
			}
			r := s.call(rt.Method, path, body, "Authorization", "Bearer "+token, "From", "bank-web",
				"Content-Type", "application/json")
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s %s with body %q: %d %s", rt.Method, path, body, r.Status, r.Raw)
			}
		}
	}
	if n < 18 { // every POST and DELETE route when this was written
		t.Fatalf("only %d POST and DELETE routes found", n)
	}
	if after := snapshot(); after != before {
		t.Errorf("refused requests changed the state:\nbefore %s\nafter  %s", before, after)
	}
	// The same routes still work with no body at all.
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(d.ID), ""), 200, "")
}
