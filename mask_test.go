package mfa

import (
	"testing"
	"unicode/utf8"
)

func TestMaskAddress(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want string
	}{
		{KindSMS, "+34600111222", "+34******222"}, // API.md's example
		{KindSMS, "+14155550123", "+14******123"},
		{KindSMS, "+491711234567", "+49*******567"},
		{KindSMS, "+123456789012345", "+12**********345"}, // E.164's longest
		{KindSMS, "+12345678", "+12***678"},               // and shortest we accept
		{KindSMS, "+12345", "******"},                     // too short to show any of it
		{KindSMS, "", ""},
		{KindEmail, "alice@example.com", "a****@example.com"},
		{KindEmail, "al@example.com", "a***@example.com"}, // never fewer than 3 stars
		{KindEmail, "a@example.com", "a***@example.com"},
		{KindEmail, "ñandú@example.es", "ñ****@example.es"}, // a character, not a byte
		{KindEmail, "élodie+mfa@exemple.fr", "é*********@exemple.fr"},
		{KindEmail, "@example.com", "****"},
		{KindEmail, "no-at-sign", "****"},
	}
	for _, tc := range tests {
		got := MaskAddress(tc.kind, tc.in)
		if got != tc.want {
			t.Errorf("MaskAddress(%s, %q) = %q, want %q", tc.kind, tc.in, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("MaskAddress(%s, %q) = %q is not valid UTF-8", tc.kind, tc.in, got)
		}
	}
}
