package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// problem checks an RFC 9457 answer of the banking dialect.
func problem(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.Status != status || get(r.Body, "code") != code || get(r.Body, "status") != float64(status) ||
		r.Header.Get("Content-Type") != "application/problem+json" ||
		get(r.Body, "type") == nil || get(r.Body, "title") == nil || get(r.Body, "detail") == nil {
		t.Fatalf("got %d %s (%s), want problem %d %s", r.Status, r.Raw, r.Header.Get("Content-Type"), status, code)
	}
}

func TestBankingSecretLifecycle(t *testing.T) {
	s := newStack(t)
	// Empty body, even with Content-Type JSON, is valid.
	r := s.as("alice", http.MethodPost, "/settings/MfaSecret", "")
	if r.Status != 200 || get(r.Body, "status") != "pending" {
		t.Fatalf("create secret: %d %s", r.Status, r.Raw)
	}
	secret := get(r.Body, "secret").(string)
	if get(r.Body, "otpauthUrl") != "otpauth://totp/mfad:alice?secret="+secret+"&issuer=mfad&algorithm=SHA1&digits=6&period=30" ||
		!strings.HasPrefix(get(r.Body, "qrCodeUrl").(string), "data:image/png;base64,") || get(r.Body, "deviceId") == nil {
		t.Fatalf("create secret answer %s", r.Raw)
	}
	// A pending secret is replaced by a new one.
	r = s.as("alice", http.MethodPost, "/settings/MfaSecret", `{"mfaMethod":"authenticator"}`)
	if r.Status != 200 || get(r.Body, "secret") == secret {
		t.Fatalf("replace pending secret: %d %s", r.Status, r.Raw)
	}
	secret = get(r.Body, "secret").(string)
	d := device{Secret: secret}

	problem(t, s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"`+wrongCode(s.code(d))+`"}`), 400, "INVALID_CODE")
	r = s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"`+s.code(d)+`"}`)
	if r.Status != 200 || get(r.Body, "status") != "enabled" || get(r.Body, "mfaSignInEnabled") != true ||
		len(get(r.Body, "backupCodes").([]any)) != 10 {
		t.Fatalf("enable: %d %s", r.Status, r.Raw)
	}
	// One authenticator per user in this dialect.
	problem(t, s.as("alice", http.MethodPost, "/settings/MfaSecret", ""), 409, "MFA_SECRET_EXISTS")

	r = s.as("alice", http.MethodGet, "/settings/Mfa", "")
	if r.Status != 200 || get(r.Body, "mfaSignInEnabled") != true || get(r.Body, "backupCodesRemaining") != float64(10) ||
		get(r.Body, "methods", 0, "type") != "authenticator" || get(r.Body, "methods", 0, "verified") != true ||
		get(r.Body, "methods", 0, "voluntary") != true || get(r.Body, "methods", 0, "createdAt") == nil {
		t.Fatalf("settings: %d %s", r.Status, r.Raw)
	}

	// Disabling sign-in keeps the methods and the backup codes.
	r = s.as("alice", http.MethodDelete, "/settings/MfaSignIn", "")
	if r.Status != 200 || get(r.Body, "status") != "success" || get(r.Body, "mfaSignInEnabled") != false || get(r.Body, "message") == nil {
		t.Fatalf("disable: %d %s", r.Status, r.Raw)
	}
	r = s.as("alice", http.MethodGet, "/settings/Mfa", "")
	if get(r.Body, "mfaSignInEnabled") != false || len(get(r.Body, "methods").([]any)) != 1 || get(r.Body, "backupCodesRemaining") != float64(10) {
		t.Fatalf("settings after disable %s", r.Raw)
	}
	// With no pending secret the code is checked against the verified device: sign-in
	// comes back on, with no new backup codes.
	s.Clock.Advance(30 * time.Second)
	r = s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"`+s.code(d)+`"}`)
	if r.Status != 200 || get(r.Body, "mfaSignInEnabled") != true || get(r.Body, "backupCodes") != nil {
		t.Fatalf("re-enable: %d %s", r.Status, r.Raw)
	}

	// Removing the secret removes the device, cascades, and says how many went.
	r = s.as("alice", http.MethodDelete, "/settings/MfaSecret", "")
	if r.Status != 200 || get(r.Body, "status") != "success" || get(r.Body, "removed") != float64(1) ||
		get(r.Body, "mfaSignInEnabled") != false {
		t.Fatalf("delete secret: %d %s", r.Status, r.Raw)
	}
	r = s.as("alice", http.MethodDelete, "/settings/MfaSecret", "")
	if r.Status != 200 || get(r.Body, "removed") != float64(0) {
		t.Fatalf("delete nothing: %d %s", r.Status, r.Raw)
	}
	r = s.as("alice", http.MethodGet, "/settings/Mfa", "")
	if len(get(r.Body, "methods").([]any)) != 0 || get(r.Body, "backupCodesRemaining") != float64(0) {
		t.Fatalf("settings after delete %s", r.Raw)
	}
	problem(t, s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"123456"}`), 400, "NO_PENDING_SECRET")
}

func TestBankingDeleteSecretDiscardsPending(t *testing.T) {
	s := newStack(t)
	r := s.as("alice", http.MethodPost, "/settings/MfaSecret", "")
	d := device{Secret: get(r.Body, "secret").(string)}
	r = s.as("alice", http.MethodDelete, "/settings/MfaSecret", "")
	if r.Status != 200 || get(r.Body, "removed") != float64(0) {
		t.Fatalf("delete pending: %d %s", r.Status, r.Raw)
	}
	problem(t, s.as("alice", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"`+s.code(d)+`"}`), 400, "NO_PENDING_SECRET")
}

func TestBankingValidation(t *testing.T) {
	s := newStack(t)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"secret: other method", "POST", "/settings/MfaSecret", `{"mfaMethod":"sms"}`, 400, "INVALID_MFA_METHOD", "mfaMethod"},
		{"secret: wrong type", "POST", "/settings/MfaSecret", `{"mfaMethod":1}`, 400, "VALIDATION_ERROR", "mfaMethod"},
		{"secret: malformed", "POST", "/settings/MfaSecret", `{`, 400, "VALIDATION_ERROR", "body"},
		{"signin: empty", "POST", "/settings/MfaSignIn", ``, 400, "VALIDATION_ERROR", "mfaMethod"},
		{"signin: unknown method", "POST", "/settings/MfaSignIn", `{"mfaMethod":"pigeon"}`, 400, "INVALID_MFA_METHOD", "mfaMethod"},
		{"signin: no code", "POST", "/settings/MfaSignIn", `{"mfaMethod":"authenticator"}`, 400, "VALIDATION_ERROR", "code"},
		{"signin: code format", "POST", "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"12ab56"}`, 400, "VALIDATION_ERROR", "code"},
		{"signin: code type", "POST", "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":123456}`, 400, "VALIDATION_ERROR", "code"},
		{"signin: sms without phone", "POST", "/settings/MfaSignIn", `{"mfaMethod":"sms"}`, 400, "VALIDATION_ERROR", "phoneNumber"},
		{"signin: sms bad phone", "POST", "/settings/MfaSignIn", `{"mfaMethod":"sms","phoneNumber":"600111222"}`, 400, "VALIDATION_ERROR", "phoneNumber"},
		{"signin: email without address", "POST", "/settings/MfaSignIn", `{"mfaMethod":"email"}`, 400, "VALIDATION_ERROR", "email"},
		{"signin: bad email", "POST", "/settings/MfaSignIn", `{"mfaMethod":"email","email":"Alice <a@b.c>"}`, 400, "VALIDATION_ERROR", "email"},
		{"signin off: not JSON", "DELETE", "/settings/MfaSignIn", `nope`, 400, "VALIDATION_ERROR", "body"},
		{"no token", "GET", "/settings/Mfa", ``, 401, "UNAUTHORIZED", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.status == 401 {
				r = s.call(tc.method, tc.path, tc.body)
				if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Fatalf("no challenge: %v", r.Header)
				}
			} else {
				r = s.as("alice", tc.method, tc.path, tc.body)
			}
			problem(t, r, tc.status, tc.code)
			if tc.field != "" && get(r.Body, "invalid-params", 0, "name") != tc.field {
				t.Fatalf("field: %s", r.Raw)
			}
		})
	}
}

func TestBankingSpanish(t *testing.T) {
	s := newStack(t)
	r := s.as("alice", http.MethodPost, "/settings/MfaSecret", `{"mfaMethod":"sms"}`, "Accept-Language", "es")
	problem(t, r, 400, "INVALID_MFA_METHOD")
	if get(r.Body, "title") != "El método MFA no está soportado" {
		t.Fatalf("title %s", r.Raw)
	}
}
