package handlers_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
)

// memberOrder is the names of raw's object members, in the order they are written;
// path leads to a nested object first (a member name, or an array's first element).
func memberOrder(t *testing.T, raw []byte, path ...string) []string {
	t.Helper()
	for _, step := range path {
		if step == "[0]" {
			var list []json.RawMessage
			if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
				t.Fatalf("%s: no first element (%v)", raw, err)
			}
			raw = list[0]
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: not an object (%v)", raw, err)
		}
		raw = obj[step]
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: not an object", raw)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// TestAnswersKeepTheContractsOrder: the members of each answer come in the order
// API.md's tables and the vendor pages give them, so an answer reads byte for byte
// like the vendor's (seed 004: {"success":true,"message":…} inside data).
func TestAnswersKeepTheContractsOrder(t *testing.T) {
	s := newStack(t)
	check := func(name string, r response, want []string, path ...string) {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", name, r.Status, r.Raw)
		}
		if got := memberOrder(t, r.Raw, path...); !slices.Equal(got, want) {
			t.Errorf("%s %v: members %v, want %v", name, path, got, want)
		}
	}
	data := []string{"data"}
	envelope := []string{"success", "data", "message"}

	// Device dialect.
	r := s.as("alice", http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"Phone"}`)
	check("setup", r, envelope)
	check("setup", r, []string{"device_id", "secret", "manual_entry_key", "otpauth_url", "qr_code", "device_name"}, data...)
	secret := get(r.Body, "data", "secret").(string)
	d := device{ID: int64(get(r.Body, "data", "device_id").(float64)), Secret: secret}
	r = s.as("alice", http.MethodPost, "/api/v1/mfa/totp/verify", `{"code":"`+s.code(d)+`"}`)
	check("totp/verify", r, []string{"success", "device_id", "backup_codes", "message"}, data...)
	backup := get(r.Body, "data", "backup_codes").([]any)[0].(string)
	check("devices", s.as("alice", http.MethodGet, "/api/v1/mfa/totp/devices", ""), []string{"devices", "total_count"}, data...)
	check("devices", s.as("alice", http.MethodGet, "/api/v1/mfa/totp/devices", ""),
		[]string{"id", "device_name", "type", "created_at", "last_used_at", "is_primary", "verified"}, "data", "devices", "[0]")
	check("status", s.as("alice", http.MethodGet, "/api/v1/mfa/status", ""), []string{"enabled", "methods", "backup_codes_remaining"}, data...)
	check("backup-codes", s.as("alice", http.MethodGet, "/api/v1/mfa/backup-codes", ""), []string{"remaining", "total"}, data...)
	check("verify", s.as("alice", http.MethodPost, "/api/v1/mfa/verify", `{"backup_code":"`+backup+`"}`), []string{"verified", "method"}, data...)
	check("regenerate", s.as("alice", http.MethodPost, "/api/v1/mfa/backup-codes/regenerate", ""), []string{"backup_codes"}, data...)
	r = s.as("alice", http.MethodDelete, "/api/v1/mfa/totp/devices/"+itoa(d.ID), "")
	check("remove", r, envelope)
	check("remove", r, []string{"success", "message"}, data...)

	// Banking dialect.
	r = s.as("bob", http.MethodPost, "/settings/MfaSecret", "")
	check("MfaSecret", r, []string{"secret", "otpauthUrl", "qrCodeUrl", "deviceId", "status"})
	b := device{ID: int64(get(r.Body, "deviceId").(float64)), Secret: get(r.Body, "secret").(string)}
	check("MfaSignIn", s.as("bob", http.MethodPost, "/settings/MfaSignIn", `{"mfaMethod":"authenticator","code":"`+s.code(b)+`"}`),
		[]string{"status", "mfaSignInEnabled", "backupCodes"})
	check("Mfa", s.as("bob", http.MethodGet, "/settings/Mfa", ""), []string{"mfaSignInEnabled", "methods", "backupCodesRemaining"})
	check("Mfa", s.as("bob", http.MethodGet, "/settings/Mfa", ""),
		[]string{"id", "type", "label", "verified", "voluntary", "createdAt", "lastUsedAt"}, "methods", "[0]")
	check("MfaSignIn off", s.as("bob", http.MethodDelete, "/settings/MfaSignIn", ""), []string{"status", "message", "mfaSignInEnabled"})
	check("MfaSecret off", s.as("bob", http.MethodDelete, "/settings/MfaSecret", ""), []string{"status", "message", "removed", "mfaSignInEnabled"})
}
