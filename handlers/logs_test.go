package handlers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// syncBuffer is a log sink shared by the HTTP side and the workers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretInLogs runs the whole TOTP lifecycle, failures included, with debug logs
// on, and greps them for every secret, code and token that went by.
func TestNoSecretInLogs(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := newStack(t, func(o *stackOptions) {
		o.worker.Logger = logger
		o.handler.Logger = logger
	})
	tok := s.token("alice")
	call := func(method, path, body string) response {
		return s.call(method, path, body, "Authorization", "Bearer "+tok, "Idempotency-Key", "k-"+path+body)
	}
	r := call(http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Phone"}`)
	d := device{ID: int64(get(r.Body, "data", "device_id").(float64)), Secret: get(r.Body, "data", "secret").(string)}
	wrong := wrongCode(s.code(d))
	call(http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+wrong+`"}`)
	good := s.code(d)
	r = call(http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+good+`"}`)
	backup := get(r.Body, "data", "backup_codes", 0).(string)
	call(http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+backup+`"}`)
	call(http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+backup+`"}`)
	call(http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"sms","phoneNumber":"+34600111222"}`)
	s.call(http.MethodGet, "/api/v1/mfa/status", "", "Authorization", "Bearer "+tok+"x")

	out := logs.String()
	if !strings.Contains(out, `"route":"/api/v1/mfa/totp/verify"`) {
		t.Fatalf("the requests were not logged at all:\n%s", out)
	}
	for name, secret := range map[string]string{
		"TOTP secret": d.Secret, "wrong code": wrong, "good code": good, "backup code": backup,
		"token": tok, "token signature": tok[strings.LastIndex(tok, ".")+1:], "phone number": "+34600111222",
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs hold the %s", name)
		}
	}
}

// TestIdempotencyKeyOnEveryMutation: a repeated key returns the first answer, marked as
// replayed, and changes nothing; a different key does the work again.
func TestIdempotencyKeyOnEveryMutation(t *testing.T) {
	s := newStack(t)
	d := s.enrol("alice", "Phone")
	// Sign-in verification ignores the key: a replayed success would accept a code twice.
	code := `{"backup_code":"` + d.BackupCodes[0] + `"}`
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", code, "Idempotency-Key", "v-1"), 200, "")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", code, "Idempotency-Key", "v-1"), 400, "INVALID_CODE")
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/api/v1/mfa/backup-codes/regenerate", ""},
		{http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Tablet"}`},
		{http.MethodPost, "/settings/MfaSecret", ""},
		{http.MethodDelete, "/settings/MfaSignIn", ""},
		{http.MethodPost, "/api/v1/mfa/otp/send", `{"method":"sms"}`},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			key := "key-" + tc.path
			first := s.as("alice", tc.method, tc.path, tc.body, "Idempotency-Key", key)
			second := s.as("alice", tc.method, tc.path, tc.body, "Idempotency-Key", key)
			strip := func(r response) string { // timestamps differ between answers
				if e, ok := r.Body["error"].(map[string]any); ok {
					delete(e, "timestamp")
				}
				b, _ := json.Marshal(r.Body)
				return string(b)
			}
			if first.Status != second.Status || strip(first) != strip(second) || second.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("first %d %s\nsecond %d %s (%q)", first.Status, first.Raw, second.Status, second.Raw,
					second.Header.Get("Idempotent-Replayed"))
			}
		})
	}
	// The same key for a different request is refused, not answered with the first reply.
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Other"}`,
		"Idempotency-Key", "key-/api/v1/mfa/totp/setup"), 409, "IDEMPOTENCY_KEY_REUSED")
	want(t, s.as("alice", http.MethodDelete, "/settings/MfaSignIn", "", "Idempotency-Key", "key-/api/v1/mfa/totp/setup"),
		409, "")
	// Keys of ingested activities are reserved.
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"X"}`, "Idempotency-Key", "activity:x"), 422, "VALIDATION_ERROR")
	long := strings.Repeat("k", 256)
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"X"}`, "Idempotency-Key", long), 422, "VALIDATION_ERROR")
}

// TestIdempotencyKeyMustBeText: a key that is not UTF-8 (or holds a control character)
// is refused with 400 in each dialect's shape, before anything is done: such keys
// would have collapsed into one once encoded.
func TestIdempotencyKeyMustBeText(t *testing.T) {
	s := newStack(t)
	for _, key := range []string{"k-\xff", "k-\xc3", "k-\xfe\xff", "k-\tx"} {
		for _, tc := range []struct {
			path, body string
			headers    []string
			code       func(response) any
		}{
			{"/api/v1/mfa/totp/setup", `{"device_name":"Phone"}`, nil, func(r response) any { return get(r.Body, "error", "code") }},
			{"/settings/MfaSecret", "", nil, func(r response) any { return r.Body["code"] }},
			{"/activityid/v1/mfa/update", druidActivity("alice", "update", "sms", "mfa_channel_address", "+34600111222"),
				[]string{"From", "bank-web"}, func(r response) any { return get(r.Body, "result", "errors", 0, "field") }},
		} {
			r := s.as("alice", http.MethodPost, tc.path, tc.body, append(tc.headers, "Idempotency-Key", key)...)
			want := map[string]any{"/api/v1/mfa/totp/setup": "VALIDATION_ERROR", "/settings/MfaSecret": "VALIDATION_ERROR",
				"/activityid/v1/mfa/update": "Idempotency-Key"}[tc.path]
			if r.Status != http.StatusBadRequest || tc.code(r) != want {
				t.Errorf("%s with key %q: %d %s", tc.path, key, r.Status, r.Raw)
			}
		}
	}
	// Nothing was set up: the first valid request is no replay of anything.
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Phone"}`, "Idempotency-Key", "k-ok")
	if r.Status != http.StatusOK || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first valid setup: %d %s", r.Status, r.Raw)
	}
}

// logLines decodes the JSON log lines with message msg.
func logLines(t *testing.T, logs *syncBuffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// TestRefusedTokenLogsWhy: the access log line of a refused request says why, in a
// fixed phrase, and holds nothing of the token.
func TestRefusedTokenLogsWhy(t *testing.T) {
	var logs syncBuffer
	s := newStack(t, func(o *stackOptions) {
		o.handler.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	now := s.Clock.Now()
	expired := s.token("alice", jwt.MapClaims{"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()})
	good := s.token("alice")
	badSig := good[:len(good)-4] + "AAAA"
	stringExp := s.token("alice", jwt.MapClaims{"exp": fmt.Sprint(now.Add(time.Hour).Unix())})
	bidi := s.token("alice\u202e")
	future := s.token("alice", jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})
	cases := []struct{ token, reason string }{
		{"", "no bearer token"},
		{expired, "expired"},
		{badSig, "bad signature or algorithm"},
		{stringExp, "time claim not a number"},
		{bidi, "bad sub"},
		{future, "not yet valid"},
		{"a.b.c", "malformed"},
	}
	for _, tc := range cases {
		headers := []string{}
		if tc.token != "" {
			headers = bearerHeader(tc.token)
		}
		if r := s.call(http.MethodGet, statusPath, "", headers...); r.Status != http.StatusUnauthorized {
			t.Fatalf("%s: %d", tc.reason, r.Status)
		}
	}
	if r := s.as("bob", http.MethodGet, "/api/v1/admin/users/alice/mfa", ""); r.Status != http.StatusForbidden {
		t.Fatalf("admin route without the scope: %d", r.Status)
	}
	lines := logLines(t, &logs, "request")
	if len(lines) != len(cases)+1 {
		t.Fatalf("%d request lines, want %d:\n%s", len(lines), len(cases)+1, logs.String())
	}
	for i, tc := range cases {
		if lines[i]["status"] != float64(401) || lines[i]["auth_error"] != tc.reason || lines[i]["level"] != "INFO" {
			t.Errorf("line for %q: %v", tc.reason, lines[i])
		}
	}
	if last := lines[len(lines)-1]; last["status"] != float64(403) || last["auth_error"] != "admin scope required" {
		t.Errorf("403 line: %v", last)
	}
	out := logs.String()
	for _, tok := range []string{expired, badSig, stringExp, bidi, future} {
		for _, part := range strings.Split(tok, ".") {
			if strings.Contains(out, part) {
				t.Fatalf("the log holds part of a token: %s", part)
			}
		}
	}
}

// TestQuietRoutesLogAtDebug: probes, scrapes, the dashboard's files and its stats poll
// are logged at debug level; the API at info.
func TestQuietRoutesLogAtDebug(t *testing.T) {
	var logs syncBuffer
	s := newStack(t, func(o *stackOptions) {
		o.handler.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	admin := s.token("root", jwt.MapClaims{"scope": "mfa:admin"})
	quiet := []string{"/healthz", "/readyz", "/metrics", "/dashboard", "/dashboard/", "/dashboard/app.js",
		"/dashboard/style.css", "/api/v1/dashboard/stats"}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range append(quiet, statusPath, "/openapi.json") {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	want := map[string]string{
		"/healthz 200": "DEBUG", "/readyz 200": "DEBUG", "/metrics 200": "DEBUG", "/dashboard 302": "DEBUG",
		"/dashboard/* 200": "DEBUG", "/api/v1/dashboard/stats 200": "DEBUG",
		statusPath + " 200": "INFO", "/openapi.json 200": "INFO",
	}
	// The access log line is written once the answer is out: the client may read it
	// before the line exists.
	levels := map[string]string{}
	for deadline := time.Now().Add(5 * time.Second); len(levels) < len(want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		for _, l := range logLines(t, &logs, "request") {
			levels[l["route"].(string)+" "+fmt.Sprint(l["status"])] = l["level"].(string)
		}
	}
	for k, level := range want {
		if levels[k] != level {
			t.Errorf("%s logged at %q, want %s (all: %v)", k, levels[k], level, levels)
		}
	}
}
