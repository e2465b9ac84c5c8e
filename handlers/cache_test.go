package handlers_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mfad/mfad/handlers"
)

// TestSecretsAreNeverStored: every answer that carries a TOTP secret, an otpauth URI or
// backup codes says Cache-Control: no-store, and so does every other answer of the
// mutating routes, refusals included.
func TestSecretsAreNeverStored(t *testing.T) {
	s := newStack(t)
	noStore := func(t *testing.T, what string, r response) {
		t.Helper()
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s: %d with Cache-Control %q, want no-store: %s", what, r.Status, cc, r.Raw)
		}
	}
	// Banking: the secret and otpauth URI, then sign-in with the backup codes.
	r := s.as("bob", http.MethodPost, "/settings/MfaSecret", "")
	if r.Status != http.StatusOK || r.Body["secret"] == nil || r.Body["otpauthUrl"] == nil {
		t.Fatalf("MfaSecret: %d %s", r.Status, r.Raw)
	}
	noStore(t, "POST /settings/MfaSecret", r)
	code := codeAt(t, r.Body["secret"].(string), s.Clock.Now())
	r = s.as("bob", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"`+code+`"}`)
	if r.Status != http.StatusOK || r.Body["backupCodes"] == nil {
		t.Fatalf("MfaSignIn: %d %s", r.Status, r.Raw)
	}
	noStore(t, "POST /settings/MfaSignIn with backup codes", r)

	// Device: setup, verify with backup codes, regenerate.
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Tablet"}`)
	if get(r.Body, "data", "otpauth_url") == nil {
		t.Fatalf("totp/setup: %d %s", r.Status, r.Raw)
	}
	noStore(t, "POST /api/v1/mfa/totp/setup", r)
	d := device{ID: int64(get(r.Body, "data", "device_id").(float64)), Secret: get(r.Body, "data", "secret").(string)}
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+s.code(d)+`","device_id":`+itoa(d.ID)+`}`)
	if get(r.Body, "data", "backup_codes") == nil {
		t.Fatalf("totp/verify: %d %s", r.Status, r.Raw)
	}
	noStore(t, "POST /api/v1/mfa/totp/verify with backup codes", r)
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/backup-codes/regenerate", "")
	if get(r.Body, "data", "backup_codes") == nil {
		t.Fatalf("regenerate: %d %s", r.Status, r.Raw)
	}
	noStore(t, "POST /api/v1/mfa/backup-codes/regenerate", r)

	// Refusals and the other mutating routes, in each dialect.
	noStore(t, "a refused setup", s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":""}`))
	noStore(t, "a wrong code", s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"000000"}`))
	noStore(t, "a 401", s.call(http.MethodPost, "/settings/MfaSecret", ""))
	noStore(t, "a DruID refusal", s.druid("alice", "validate", druidActivity("alice", "validate", "sms", "mfa_code", "123456")))
	noStore(t, "an admin reset", s.call(http.MethodDelete, "/api/v1/admin/users/alice/mfa", "",
		"Authorization", "Bearer "+s.token("root", jwt.MapClaims{"scope": "mfa:admin"})))
}

// concretePath fills an echo route pattern with values a request can use.
func concretePath(pattern string) string {
	r := strings.NewReplacer(":user_id", "alice", ":device_id", "1", "*", "index.html")
	return r.Replace(pattern)
}

// TestHeadOnEveryGetRoute: HEAD answers as GET does, the same status and headers, with
// no body; on the event stream it ends at once.
func TestHeadOnEveryGetRoute(t *testing.T) {
	s, _ := newDashStack(t) // the real event feed, so HEAD meets a live stream
	s.enrol("alice", "Phone")
	admin := s.token("root", jwt.MapClaims{"scope": "mfa:admin"})
	// A HEAD that held the event stream open would run into the timeout.
	client := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, s.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	n := 0
	for _, rt := range handlers.New(handlers.Config{}).Routes() {
		if rt.Method != http.MethodGet {
			continue
		}
		n++
		path := concretePath(rt.Path)
		for _, token := range []string{admin, ""} {
			head, body := do(http.MethodHead, path, token)
			if len(body) != 0 {
				t.Errorf("HEAD %s: a body of %d bytes", path, len(body))
			}
			if path == "/api/v1/dashboard/events" && head.StatusCode == http.StatusOK {
				if head.StatusCode != http.StatusOK || !strings.HasPrefix(head.Header.Get("Content-Type"), "text/event-stream") {
					t.Errorf("HEAD %s: %d %q", path, head.StatusCode, head.Header.Get("Content-Type"))
				}
				continue // a GET would stream for minutes
			}
			getResp, getBody := do(http.MethodGet, path, token)
			if head.StatusCode != getResp.StatusCode {
				t.Errorf("%s (token %v): HEAD %d, GET %d", path, token != "", head.StatusCode, getResp.StatusCode)
			}
			for _, h := range []string{"Content-Type", "Cache-Control", "WWW-Authenticate", "Location", "Content-Security-Policy"} {
				if head.Header.Get(h) != getResp.Header.Get(h) {
					t.Errorf("%s: HEAD %s %q, GET %q", path, h, head.Header.Get(h), getResp.Header.Get(h))
				}
			}
			if head.Header.Get("X-Request-Id") == "" {
				t.Errorf("HEAD %s: no X-Request-Id", path)
			}
			if cl := head.Header.Get("Content-Length"); cl != "" && strings.HasPrefix(path, "/dashboard/") && cl != getResp.Header.Get("Content-Length") {
				t.Errorf("HEAD %s: Content-Length %s, GET %d bytes", path, cl, len(getBody))
			}
		}
	}
	if n < 14 {
		t.Fatalf("only %d GET routes", n)
	}
	// HEAD where there is no GET stays refused.
	if r, _ := do(http.MethodHead, "/api/v1/mfa/totp/setup", admin); r.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("HEAD on a POST route: %d", r.StatusCode)
	}
}
