package handlers_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// codeAt is what an authenticator app shows for secret at t.
func codeAt(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// device is an enrolled TOTP device.
type device struct {
	ID          int64
	Secret      string
	BackupCodes []string
}

// setup starts a TOTP setup for user through the device dialect.
func (s *stack) setup(user, name string) device {
	s.t.Helper()
	r := s.as(user, http.MethodPost, "/api/v1/mfa/totp/setup", `{"device_name":"`+name+`"}`)
	if r.Status != http.StatusOK {
		s.t.Fatalf("setup: %d %s", r.Status, r.Raw)
	}
	return device{ID: int64(get(r.Body, "data", "device_id").(float64)), Secret: get(r.Body, "data", "secret").(string)}
}

// enrol sets up and verifies a TOTP device for user. The verification uses the code of
// the current step, so the clock is moved one step on afterwards: the next code the
// test computes is a fresh one, as it would be on a phone 30 s later.
func (s *stack) enrol(user, name string) device {
	s.t.Helper()
	d := s.setup(user, name)
	r := s.as(user, http.MethodPost, "/api/v1/mfa/totp/verify",
		`{"code":"`+codeAt(s.t, d.Secret, s.Clock.Now())+`","device_id":`+itoa(d.ID)+`}`)
	if r.Status != http.StatusOK {
		s.t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
	if codes, ok := get(r.Body, "data", "backup_codes").([]any); ok {
		for _, c := range codes {
			d.BackupCodes = append(d.BackupCodes, c.(string))
		}
	}
	s.Clock.Advance(30 * time.Second)
	return d
}

// code is the current code of d.
func (s *stack) code(d device) string { return codeAt(s.t, d.Secret, s.Clock.Now()) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// errorCode is the device dialect's error.code.
func errorCode(r response) string {
	c, _ := get(r.Body, "error", "code").(string)
	return c
}

// want checks status and, when code is set, the device dialect's error code.
func want(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.Status != status || (code != "" && errorCode(r) != code) {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Raw, status, code)
	}
}
