package handlers

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	mfa "github.com/mfad/mfad"
)

// The fuzz targets feed arbitrary bodies to the request decoders of the device and
// banking dialects: whatever comes in, a decoder returns parameters or a validation
// outcome naming the field, never a panic and never a fault (which would be a 500).

var decoderSeeds = []string{
	``, `null`, `{}`, `[]`, `"x"`, `42`, `{`, `{"a":}`, `{"device_name":"Phone"}`,
	`{"device_name":42}`, `{"device_name":"` + "\u0000" + `"}`, `{"code":"123456","device_id":7}`,
	`{"code":"123456","device_id":"7"}`, `{"code":123456}`, `{"device_id":1e400}`,
	`{"method":"sms","user_id":"bob"}`, `{"method":["sms"]}`, `{"backup_code":"abcd-efgh"}`,
	`{"code":"123456","backup_code":"abcd-efgh"}`, `{"mfaMethod":"authenticator"}`,
	`{"mfaMethod":"sms","phoneNumber":"+34600111222","code":"123456"}`,
	`{"mfaMethod":"email","email":"a@b.co"}`, `{"mfaMethod":{"x":1}}`, "\xff\xfe", `{"code":"١٢٣٤٥٦"}`,
	`{"device_name":"a\u202eb"}`, `{"device_name":"a\ud800b"}`, "{\"device_name\":\"a\xffb\"}",
}

// checkOutcome fails unless err is nil or a validation outcome.
func checkOutcome(t *testing.T, name string, body []byte, err error) {
	if err == nil {
		return
	}
	var e *mfa.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s(%q): a fault, not an outcome: %v", name, body, err)
	}
	switch e.Code {
	case mfa.CodeValidation, mfa.CodeMalformed, mfa.CodeInvalidMethod:
		if e.Field == "" || e.Reason == "" {
			t.Fatalf("%s(%q): %v names no field", name, body, e)
		}
	default:
		t.Fatalf("%s(%q): unexpected outcome %v", name, body, e)
	}
}

func FuzzDeviceDecoders(f *testing.F) {
	for _, s := range decoderSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		setup, err := parseTOTPSetup(body)
		checkOutcome(t, "parseTOTPSetup", body, err)
		if err == nil && (!utf8.ValidString(setup.DeviceName) || strings.IndexFunc(setup.DeviceName, unsafeInLabel) >= 0) {
			t.Fatalf("parseTOTPSetup(%q) accepted the name %q", body, setup.DeviceName)
		}
		p, err := parseTOTPVerify(body)
		checkOutcome(t, "parseTOTPVerify", body, err)
		if err == nil && (len(p.Code) != 6 && len(p.Code) != 8) {
			t.Fatalf("parseTOTPVerify(%q) accepted code %q", body, p.Code)
		}
		_, err = parseOTPSend(body)
		checkOutcome(t, "parseOTPSend", body, err)
		v, err := parseVerify(body)
		checkOutcome(t, "parseVerify", body, err)
		if err == nil && (v.Code == "") == (v.BackupCode == "") {
			t.Fatalf("parseVerify(%q) accepted %+v", body, v)
		}
	})
}

func FuzzBankingDecoders(f *testing.F) {
	for _, s := range decoderSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := parseSecretCreate(body)
		checkOutcome(t, "parseSecretCreate", body, err)
		p, err := parseSignIn(body)
		checkOutcome(t, "parseSignIn", body, err)
		if err == nil {
			switch p.Method {
			case mfaMethodAuthenticator:
				if p.Code == "" {
					t.Fatalf("parseSignIn(%q) accepted no code", body)
				}
			case "sms", "email":
				if !mfa.ValidAddress(mfa.Kind(p.Method), p.Address) {
					t.Fatalf("parseSignIn(%q) accepted address %q", body, p.Address)
				}
			default:
				t.Fatalf("parseSignIn(%q) accepted method %q", body, p.Method)
			}
		}
	})
}
