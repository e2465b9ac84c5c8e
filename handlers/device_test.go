package handlers_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mfad/mfad/channels"
)

func TestTOTPSetupValidation(t *testing.T) {
	s := newStack(t)
	for _, tc := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"malformed JSON", `{"device_name":`, 400, "body"},
		{"not an object", `["Phone"]`, 400, "body"},
		{"wrong type", `{"device_name":42}`, 400, "device_name"},
		{"missing", `{}`, 422, "device_name"},
		{"empty body", ``, 422, "device_name"},
		{"blank", `{"device_name":"   "}`, 422, "device_name"},
		{"too long", `{"device_name":"` + strings.Repeat("x", 65) + `"}`, 422, "device_name"},
		{"control characters", `{"device_name":"a\u0007b"}`, 422, "device_name"},
		{"right-to-left override", `{"device_name":"Phone \u202egnp.exe"}`, 422, "device_name"},
		{"isolate", "{\"device_name\":\"a\u2067b\"}", 422, "device_name"},
		{"line separator", `{"device_name":"a\u2028b"}`, 422, "device_name"},
		{"lone surrogate", `{"device_name":"a\ud800b"}`, 422, "device_name"},
		{"not UTF-8", "{\"device_name\":\"a\xffb\"}", 400, "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", tc.body)
			want(t, r, tc.status, "VALIDATION_ERROR")
			if get(r.Body, "error", "details", "field") != tc.field || get(r.Body, "success") != false ||
				get(r.Body, "error", "timestamp") == nil || get(r.Body, "message") == nil {
				t.Fatalf("error body %s", r.Raw)
			}
		})
	}
	// 64 characters, multi-byte, is fine; so are emoji joined by U+200D.
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"`+strings.Repeat("ñ", 64)+`"}`)
	want(t, r, 200, "")
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Family 👩\u200d👧"}`)
	want(t, r, 200, "")
	// A right-to-left name with the marks that keep its punctuation in place.
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"הטלפון של דנה\u200f (2)"}`)
	want(t, r, 200, "")
}

func TestTOTPSetupAnswer(t *testing.T) {
	s := newStack(t)
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Phone"}`)
	want(t, r, 200, "")
	secret, _ := get(r.Body, "data", "secret").(string)
	wantURL := "otpauth://totp/mfad:alice?secret=" + secret + "&issuer=mfad&algorithm=SHA1&digits=6&period=30"
	if len(secret) != 32 || get(r.Body, "data", "otpauth_url") != wantURL ||
		get(r.Body, "data", "device_name") != "Phone" || get(r.Body, "success") != true ||
		strings.ReplaceAll(get(r.Body, "data", "manual_entry_key").(string), " ", "") != secret ||
		!strings.HasPrefix(get(r.Body, "data", "qr_code").(string), "data:image/png;base64,") {
		t.Fatalf("setup answer %s", r.Raw)
	}
	// A pending setup is not a device anywhere.
	list := s.as("alice", http.MethodGet, "/api/v1/mfa/totp/devices", "")
	if get(list.Body, "data", "total_count") != float64(0) {
		t.Fatalf("pending setup listed: %s", list.Raw)
	}
	st := s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if get(st.Body, "data", "enabled") != false || len(get(st.Body, "data", "methods").([]any)) != 0 {
		t.Fatalf("pending setup counted: %s", st.Raw)
	}
}

func TestTOTPVerify(t *testing.T) {
	s := newStack(t)
	d := s.setup("alice", "Phone")
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"malformed JSON", `{"code":`, 400, "VALIDATION_ERROR"},
		{"code of wrong type", `{"code":123456}`, 400, "VALIDATION_ERROR"},
		{"device_id of wrong type", `{"code":"123456","device_id":"1"}`, 400, "VALIDATION_ERROR"},
		{"code missing", `{}`, 422, "VALIDATION_ERROR"},
		{"code not 6 digits", `{"code":"12345"}`, 422, "VALIDATION_ERROR"},
		{"code not digits", `{"code":"12345a"}`, 422, "VALIDATION_ERROR"},
		{"8 digits with 6-digit TOTP", `{"code":"12345678"}`, 422, "VALIDATION_ERROR"},
		{"wrong code", `{"code":"` + wrongCode(s.code(d)) + `"}`, 400, "INVALID_CODE"},
		{"other device id", `{"code":"` + s.code(d) + `","device_id":999}`, 400, "NO_PENDING_SETUP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", tc.body), tc.status, tc.code)
		})
	}
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+s.code(d)+`"}`)
	want(t, r, 200, "")
	if get(r.Body, "data", "success") != true || get(r.Body, "data", "device_id") != float64(d.ID) ||
		len(get(r.Body, "data", "backup_codes").([]any)) != 10 || get(r.Body, "data", "message") == nil {
		t.Fatalf("verify answer %s", r.Raw)
	}
	st := s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if get(st.Body, "data", "enabled") != true || get(st.Body, "data", "backup_codes_remaining") != float64(10) {
		t.Fatalf("status after verify %s", st.Raw)
	}
	// Nothing is pending any more.
	s.Clock.Advance(30 * time.Second)
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+s.code(d)+`"}`), 400, "NO_PENDING_SETUP")
	// The second device gets no backup codes.
	d2 := s.setup("alice", "Tablet")
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+s.code(d2)+`"}`)
	want(t, r, 200, "")
	if get(r.Body, "data", "backup_codes") != nil {
		t.Fatalf("second device got backup codes: %s", r.Raw)
	}
}

// wrongCode is a six-digit code that is not c.
func wrongCode(c string) string {
	if c == "000000" {
		return "000001"
	}
	return "000000"
}

func TestTOTPSkewAndPendingExpiry(t *testing.T) {
	s := newStack(t)
	d := s.setup("alice", "Phone")
	// A code two steps old is refused, one step old is accepted.
	old := codeAt(t, d.Secret, s.Clock.Now().Add(-60*time.Second))
	if old != s.code(d) && old != codeAt(t, d.Secret, s.Clock.Now().Add(-30*time.Second)) {
		want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+old+`"}`), 400, "INVALID_CODE")
	}
	prev := codeAt(t, d.Secret, s.Clock.Now().Add(-30*time.Second))
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+prev+`"}`), 200, "")

	// A pending setup expires after 10 minutes.
	p := s.setup("bob", "Phone")
	s.Clock.Advance(10*time.Minute + time.Second)
	want(t, s.as("bob", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+s.code(p)+`"}`), 400, "NO_PENDING_SETUP")
}

func TestTOTPSetupReplacesPendingAndLimitsDevices(t *testing.T) {
	s := newStack(t, func(o *stackOptions) { o.worker.MaxTOTPDevices = 2 })
	first := s.setup("alice", "One")
	second := s.setup("alice", "Two")
	// The earlier pending setup was replaced: its id verifies nothing.
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify",
		`{"code":"`+s.code(first)+`","device_id":`+itoa(first.ID)+`}`), 400, "NO_PENDING_SETUP")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify",
		`{"code":"`+s.code(second)+`","device_id":`+itoa(second.ID)+`}`), 200, "")
	s.enrol("alice", "Three")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Four"}`), 409, "DEVICE_LIMIT_REACHED")
}

func TestDeviceListOrderAndPrimary(t *testing.T) {
	s := newStack(t)
	a := s.enrol("alice", "A")
	s.Clock.Advance(time.Minute)
	s.enrol("alice", "B")
	s.Clock.Advance(time.Minute)
	s.enrol("alice", "C")
	s.setup("alice", "pending")
	names := func() []string {
		r := s.as("alice", http.MethodGet, "/api/v1/mfa/totp/devices", "")
		want(t, r, 200, "")
		var out []string
		for _, d := range get(r.Body, "data", "devices").([]any) {
			m := d.(map[string]any)
			if m["type"] != "totp" || m["verified"] != true {
				t.Fatalf("device %v", m)
			}
			name := m["device_name"].(string)
			if m["is_primary"] == true {
				name += "*"
			}
			out = append(out, name)
		}
		if get(r.Body, "data", "total_count") != float64(len(out)) {
			t.Fatalf("total_count disagrees: %s", r.Raw)
		}
		return out
	}
	if got := strings.Join(names(), ","); got != "A*,C,B" {
		t.Fatalf("devices %s, want A*,C,B (primary first, then newest)", got)
	}
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(a.ID), ""), 200, "")
	if got := strings.Join(names(), ","); got != "B*,C" {
		t.Fatalf("after removing the primary: %s, want B*,C", got)
	}
}

func TestDeviceRemoval(t *testing.T) {
	s := newStack(t)
	mine := s.enrol("alice", "Phone")
	theirs := s.enrol("bob", "Phone")
	pending := s.setup("alice", "Pending")
	for _, tc := range []struct {
		name, id string
		status   int
		code     string
	}{
		{"not an integer", "abc", 400, "VALIDATION_ERROR"},
		{"not an integer either", "1.5", 400, "VALIDATION_ERROR"},
		{"overflow", "99999999999999999999", 400, "VALIDATION_ERROR"},
		{"plus sign", "+" + itoa(mine.ID), 400, "VALIDATION_ERROR"},
		{"leading zero", "0" + itoa(mine.ID), 400, "VALIDATION_ERROR"},
		{"absent", "424242", 404, "DEVICE_NOT_FOUND"},
		{"zero", "0", 404, "DEVICE_NOT_FOUND"},
		{"someone else's", itoa(theirs.ID), 404, "DEVICE_NOT_FOUND"},
		{"not verified", itoa(pending.ID), 404, "DEVICE_NOT_FOUND"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+tc.id, ""), tc.status, tc.code)
		})
	}
	r := s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(mine.ID), "", "Idempotency-Key", "rm-1")
	want(t, r, 200, "")
	const body = `{"success":true,"data":{"success":true,"message":"TOTP device removed successfully"},"message":"TOTP device removed successfully"}`
	if strings.TrimSpace(string(r.Raw)) != body {
		t.Fatalf("body %s\nwant %s", r.Raw, body)
	}
	// Cascade: the last TOTP device took the backup codes and sign-in MFA with it.
	st := s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if get(st.Body, "data", "enabled") != false || get(st.Body, "data", "backup_codes_remaining") != float64(0) {
		t.Fatalf("status after removal %s", st.Raw)
	}
	// A retry with the same key gets the first answer; without it, the truth.
	again := s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(mine.ID), "", "Idempotency-Key", "rm-1")
	want(t, again, 200, "")
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("replayed answer not marked")
	}
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(mine.ID), ""), 404, "DEVICE_NOT_FOUND")
	// Bob's device is untouched.
	want(t, s.as("bob", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(theirs)+`"}`), 200, "")
}

func TestRemovingOneOfTwoDevicesKeepsBackupCodes(t *testing.T) {
	s := newStack(t)
	a := s.enrol("alice", "A")
	s.enrol("alice", "B")
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(a.ID), ""), 200, "")
	st := s.as("alice", http.MethodGet, "/api/v1/mfa/status", "")
	if get(st.Body, "data", "enabled") != true || get(st.Body, "data", "backup_codes_remaining") != float64(10) {
		t.Fatalf("status %s", st.Raw)
	}
}

func TestSignInVerification(t *testing.T) {
	s := newStack(t)
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"123456"}`), 400, "MFA_NOT_ENABLED")
	d := s.enrol("alice", "Phone")
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"nothing", `{}`, 422, "VALIDATION_ERROR"},
		{"both", `{"code":"123456","backup_code":"abcd-efgh"}`, 422, "VALIDATION_ERROR"},
		{"code format", `{"code":"12"}`, 422, "VALIDATION_ERROR"},
		{"code type", `{"code":true}`, 400, "VALIDATION_ERROR"},
		{"someone else without admin", `{"code":"123456","user_id":"bob"}`, 403, "FORBIDDEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", tc.body), tc.status, tc.code)
		})
	}
	code := s.code(d)
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+code+`"}`)
	want(t, r, 200, "")
	if get(r.Body, "data", "verified") != true || get(r.Body, "data", "method") != "totp" {
		t.Fatalf("verify answer %s", r.Raw)
	}
	// The same code again is a replay: refused like a wrong code.
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+code+`"}`), 400, "INVALID_CODE")
	// An admin may verify for a user.
	s.Clock.Advance(30 * time.Second)
	admin := s.token("svc", map[string]any{"scope": "mfa:admin"})
	r = s.call(http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(d)+`","user_id":"alice"}`, "Authorization", "Bearer "+admin)
	want(t, r, 200, "")
}

func TestSetupCodeCannotSignIn(t *testing.T) {
	s := newStack(t)
	d := s.setup("alice", "Phone")
	code := s.code(d)
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+code+`"}`), 200, "")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+code+`"}`), 400, "INVALID_CODE")
}

func TestBackupCodes(t *testing.T) {
	s := newStack(t)
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/backup-codes/regenerate", ""), 400, "NO_TOTP_DEVICE")
	d := s.enrol("alice", "Phone")
	count := func() (float64, float64) {
		r := s.as("alice", http.MethodGet, "/api/v1/mfa/backup-codes", "")
		want(t, r, 200, "")
		return get(r.Body, "data", "remaining").(float64), get(r.Body, "data", "total").(float64)
	}
	if rem, tot := count(); rem != 10 || tot != 10 {
		t.Fatalf("backup codes %v/%v", rem, tot)
	}
	used := strings.ToUpper(d.BackupCodes[0]) // people type them any way
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+used+`"}`)
	want(t, r, 200, "")
	if get(r.Body, "data", "method") != "backup_code" {
		t.Fatalf("method %s", r.Raw)
	}
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+used+`"}`), 400, "INVALID_CODE")
	if rem, _ := count(); rem != 9 {
		t.Fatalf("remaining %v after one use", rem)
	}
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/backup-codes/regenerate", "")
	want(t, r, 200, "")
	fresh := get(r.Body, "data", "backup_codes").([]any)
	if len(fresh) != 10 {
		t.Fatalf("regenerated %s", r.Raw)
	}
	// The old codes died with the regeneration.
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+d.BackupCodes[1]+`"}`), 400, "INVALID_CODE")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+fresh[0].(string)+`"}`), 200, "")
}

func TestLockout(t *testing.T) {
	s := newStack(t, func(o *stackOptions) {
		o.worker.Lockout.Threshold = 3
		o.worker.Lockout.Duration = 5 * time.Minute
	})
	d := s.enrol("alice", "Phone")
	bad := func() response {
		return s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+wrongCode(s.code(d))+`"}`)
	}
	// Two failures, a success, two failures: the success reset the count.
	want(t, bad(), 400, "INVALID_CODE")
	want(t, bad(), 400, "INVALID_CODE")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(d)+`"}`), 200, "")
	want(t, bad(), 400, "INVALID_CODE")
	want(t, bad(), 400, "INVALID_CODE")
	// The third consecutive failure still answers 400 and starts the lock.
	want(t, bad(), 400, "INVALID_CODE")
	s.Clock.Advance(30 * time.Second)
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(d)+`"}`)
	want(t, r, 429, "TOO_MANY_ATTEMPTS")
	if r.Header.Get("Retry-After") != "270" {
		t.Fatalf("Retry-After %q, want 270", r.Header.Get("Retry-After"))
	}
	// Locked: every code check answers 429 without extending the lock, backup codes too.
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+d.BackupCodes[0]+`"}`), 429, "TOO_MANY_ATTEMPTS")
	s.Clock.Advance(4*time.Minute + 31*time.Second)
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(d)+`"}`), 200, "")
	// Lockout is per user: bob never noticed.
	b := s.enrol("bob", "Phone")
	want(t, s.as("bob", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(b)+`"}`), 200, "")
}

func TestLockoutCountsSetupFailuresToo(t *testing.T) {
	s := newStack(t, func(o *stackOptions) { o.worker.Lockout.Threshold = 2 })
	d := s.setup("alice", "Phone")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+wrongCode(s.code(d))+`"}`), 400, "INVALID_CODE")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+wrongCode(s.code(d))+`"}`), 400, "INVALID_CODE")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+s.code(d)+`"}`), 429, "TOO_MANY_ATTEMPTS")
}

// TestParallelReplay: 30 simultaneous submissions of one valid code, exactly one wins.
func TestParallelReplay(t *testing.T) {
	s := newStack(t, func(o *stackOptions) { o.worker.Lockout.Threshold = 100 })
	d := s.enrol("alice", "Phone")
	code := s.code(d)
	tok := s.token("alice")
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := s.call(http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+code+`"}`, "Authorization", "Bearer "+tok)
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if statuses[200] != 1 || statuses[400] != 29 {
		t.Fatalf("statuses %v, want one 200 and 29 400", statuses)
	}
}

func TestParallelReplayWithoutGroupCommit(t *testing.T) {
	s := newStack(t, func(o *stackOptions) { o.worker.BatchSize = 1; o.worker.Lockout.Threshold = 100 })
	d := s.enrol("alice", "Phone")
	code := s.code(d)
	var wg sync.WaitGroup
	var ok sync.Map
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+code+`"}`).Status == 200 {
				ok.Store(i, true)
			}
		}()
	}
	wg.Wait()
	n := 0
	ok.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d successes, want 1", n)
	}
}

func TestSpanishMessages(t *testing.T) {
	s := newStack(t)
	r := s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/7", "", "Accept-Language", "es-ES,es;q=0.9,en;q=0.5")
	want(t, r, 404, "DEVICE_NOT_FOUND")
	if get(r.Body, "error", "message") != "Dispositivo TOTP no encontrado" {
		t.Fatalf("message %s", r.Raw)
	}
	d := s.enrol("alice", "Móvil")
	r = s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(d.ID), "", "Accept-Language", "es")
	if get(r.Body, "message") != "Dispositivo TOTP eliminado correctamente" {
		t.Fatalf("message %s", r.Raw)
	}
	r = s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/7", "", "Accept-Language", "fr, en;q=0.1")
	if get(r.Body, "error", "message") != "TOTP device not found" {
		t.Fatalf("message %s", r.Raw)
	}
}

func TestStepUp(t *testing.T) {
	s := newStack(t, func(o *stackOptions) { o.handler.StepUpMaxAge = 5 * time.Minute })
	d := s.enrol("alice", "Phone")
	stale := s.token("alice", map[string]any{"auth_time": s.Clock.Now().Add(-10 * time.Minute).Unix()})
	r := s.call(http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(d.ID), "", "Authorization", "Bearer "+stale)
	want(t, r, 401, "UNAUTHORIZED")
	if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, `error="insufficient_user_authentication"`) ||
		!strings.Contains(ch, "max_age=300") {
		t.Fatalf("challenge %q", ch)
	}
	// The contract's one 401 code; the message and the challenge say what to do.
	if get(r.Body, "error", "message") != "This operation needs a more recent sign-in" {
		t.Fatalf("message %s", r.Raw)
	}
	want(t, s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(d.ID), ""), 200, "")
	// Adding a factor needs a recent sign-in too.
	want(t, s.call(http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"x"}`, "Authorization", "Bearer "+stale), 401, "UNAUTHORIZED")
	want(t, s.call(http.MethodPost, "/api/v1/mfa/backup-codes/regenerate", "", "Authorization", "Bearer "+stale), 401, "UNAUTHORIZED")
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"x"}`), 200, "")
}

func TestOversizedBody(t *testing.T) {
	s := newStack(t)
	big := `{"device_name":"` + strings.Repeat("x", 70<<10) + `"}`
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", big), 413, "PAYLOAD_TOO_LARGE")
	r := s.as("alice", http.MethodPost, "/settings/MfaSecret", big)
	if r.Status != 413 || get(r.Body, "code") != "PAYLOAD_TOO_LARGE" {
		t.Fatalf("banking: %d %s", r.Status, r.Raw)
	}
}

func TestDeviceErrorsAreDocumentedStatuses(t *testing.T) {
	s := newStack(t)
	// Unknown routes and methods answer in the dialect's shape, never 500.
	want(t, s.as("alice", http.MethodGet, "/api/v1/mfa/nope", ""), 404, "NOT_FOUND")
	want(t, s.as("alice", http.MethodPut, "/api/v1/mfa/status", ""), 405, "METHOD_NOT_ALLOWED")
}

var _ = channels.KeySize

// TestEnrolmentDoesNotResetLockout: a stolen token could otherwise enrol a device of its
// own between bursts of guesses against the user's real factor and never be locked.
func TestEnrolmentDoesNotResetLockout(t *testing.T) {
	s := newStack(t, func(o *stackOptions) { o.worker.Lockout.Threshold = 3 })
	real := s.enrol("alice", "Phone")
	bad := func() int {
		return s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+wrongCode(s.code(real))+`"}`).Status
	}
	bad()
	bad()
	s.enrol("alice", "Attacker's phone") // succeeds: the token is enough to enrol
	bad()                                // the third failure in a row
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(real)+`"}`), 429, "TOO_MANY_ATTEMPTS")
}

// TestBankingReEnableResetsFailures: turning sign-in back on with a code of an existing
// device is a success like a sign-in.
func TestBankingReEnableResetsFailures(t *testing.T) {
	s := newStack(t, func(o *stackOptions) { o.worker.Lockout.Threshold = 3 })
	d := s.enrol("alice", "Phone")
	s.as("alice", http.MethodDelete, "/settings/MfaSignIn", "")
	for range 2 {
		s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"`+wrongCode(s.code(d))+`"}`)
	}
	r := s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"`+s.code(d)+`"}`)
	if r.Status != 200 {
		t.Fatalf("re-enable: %d %s", r.Status, r.Raw)
	}
	s.Clock.Advance(30 * time.Second)
	for range 2 { // two more failures: not three in a row
		want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+wrongCode(s.code(d))+`"}`), 400, "INVALID_CODE")
	}
	want(t, s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"code":"`+s.code(d)+`"}`), 200, "")
}
